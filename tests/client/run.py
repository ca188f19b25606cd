#!/usr/bin/env python3
"""Run the black-box tests of the resumed-upload client: python3 tests/client/run.py [-v] [filter ...]

Discovers test_*.py next to this file and the test_* functions in them (in file order), runs
each sequentially, prints `PASS name` / `FAIL name: reason`, and as the last line
`N passed, N failed`.  Exit code 1 if any test failed.  A filter is a substring of
`module.function`.  Env: RESUMED_UPLOAD_BIN (client, default build/resumed-upload), RESUMED_BIN
(server, default build/resumed), CLIENT_TEST_TIMEOUT (per test, default 60 s).
Every process a test started is killed by PID after it (clientlib.finish_test).
The runner itself is tests/blackbox/runner.py, shared with the black-box suite.
"""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, '..', 'blackbox'))

import clientlib  # noqa: E402
from runner import run_tests  # noqa: E402

TEST_TIMEOUT = float(os.environ.get('CLIENT_TEST_TIMEOUT', '60'))

if __name__ == '__main__':
    sys.exit(run_tests(HERE, sys.argv[1:], clientlib.finish_test, clientlib.kill_current, TEST_TIMEOUT))
