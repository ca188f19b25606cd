#!/usr/bin/env python3
"""Run the black-box tests of the resumed-upload client: python3 tests/client/run.py [-v] [filter ...]

Discovers test_*.py next to this file and the test_* functions in them (in file order), runs
each sequentially, prints `PASS name` / `FAIL name: reason`, and as the last line
`N passed, N failed`.  Exit code 1 if any test failed.  A filter is a substring of
`module.function`.  Env: RESUMED_UPLOAD_BIN (client, default build/resumed-upload), RESUMED_BIN
(server, default build/resumed), CLIENT_TEST_TIMEOUT (per test, default 60 s).
Every process a test started is killed by PID after it (clientlib.finish_test).
"""

import importlib
import inspect
import os
import signal
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True   # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import clientlib  # noqa: E402

TEST_TIMEOUT = float(os.environ.get('CLIENT_TEST_TIMEOUT', '60'))


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith('test_') and fn.endswith('.py')):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(name, f) for name, f in vars(mod).items()
                 if name.startswith('test_') and inspect.isfunction(f) and f.__module__ == mod.__name__]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for name, f in funcs:
            tests.append(('%s.%s' % (mod.__name__, name), f))
    return tests


def run_one(f):
    result = {}

    def target():
        try:
            f()
            result['ok'] = True
        except BaseException as e:  # noqa
            result['exc'] = e
            result['tb'] = traceback.format_exc()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(TEST_TIMEOUT)
    if t.is_alive():
        clientlib.kill_current()     # blocked waits and sockets return once the processes are gone
        t.join(5)
        return 'timed out after %.0f s' % TEST_TIMEOUT, None
    if 'ok' in result:
        return None, None
    e = result['exc']
    if isinstance(e, AssertionError):
        msg = str(e) or 'assertion failed'
    else:
        msg = '%s: %s' % (type(e).__name__, e)
    return msg, result.get('tb')


def _on_term(signum, frame):
    raise SystemExit(130)   # so that atexit (kills servers by PID, removes temp dirs) runs


def main(argv):
    signal.signal(signal.SIGTERM, _on_term)
    verbose = '-v' in argv
    filters = [a for a in argv if a != '-v']
    tests = discover()
    if filters:
        tests = [(n, f) for n, f in tests if any(flt in n for flt in filters)]
    passed = failed = 0
    t0 = time.monotonic()
    try:
        for name, f in tests:
            t1 = time.monotonic()
            err, tb = run_one(f)
            reports = clientlib.finish_test()
            if reports and not err:
                err = 'sanitizer report:\n' + reports[0]
            elif reports:
                err += '\n  (also sanitizer report: %s)' % reports[0]
            dt = time.monotonic() - t1
            if err:
                failed += 1
                print('FAIL %s: %s' % (name, err.replace('\n', '\n    ')), flush=True)
                if verbose and tb:
                    print('    ' + tb.replace('\n', '\n    '), flush=True)
            else:
                passed += 1
                print('PASS %s%s' % (name, (' (%.1fs)' % dt) if verbose else ''), flush=True)
    finally:
        clientlib.kill_current()
    if verbose:
        print('total %.1fs' % (time.monotonic() - t0), flush=True)
    print('%d passed, %d failed' % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
