#!/usr/bin/env python3
"""Run the black-box tests: python3 tests/blackbox/run.py [-v] [name-filter ...]

Discovers test_*.py next to this file and the test_* functions in them (in file order),
runs each sequentially, prints `PASS name` / `FAIL name: reason`, and as the last line
`N passed, N failed`.  Exit code 1 if any test failed.
A name filter is a substring matched against `module.function` (any of several filters).
Env: BB_TEST_TIMEOUT (per test, default 60 s).  The runner itself is runner.py.
"""

import os
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from runner import run_tests  # noqa: E402

TEST_TIMEOUT = float(os.environ.get('BB_TEST_TIMEOUT', '60'))

if __name__ == '__main__':
    sys.exit(run_tests(HERE, sys.argv[1:], harness.finish_test, harness.kill_current_servers, TEST_TIMEOUT,
                       report_label='sanitizer report on server stderr:'))
