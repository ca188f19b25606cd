"""The test runner shared by the black-box suites (tests/blackbox, tests/client).

run_tests(here, argv, ...) discovers test_*.py in `here` and the test_* functions in them (in
file order), runs each sequentially in a thread with a timeout, prints `PASS name` /
`FAIL name: reason`, and as the last line `N passed, N failed`; returns the exit code (1 if
any test failed).  argv: `-v` and filters (substrings of `module.function`).
After each test `finish_test()` stops what it started and returns sanitizer report excerpts,
which fail the test; on a timeout `kill_current()` kills its processes so blocked calls return.
"""

import importlib
import inspect
import os
import signal
import threading
import time
import traceback


def discover(here):
    tests = []
    for fn in sorted(os.listdir(here)):
        if not (fn.startswith('test_') and fn.endswith('.py')):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(name, f) for name, f in vars(mod).items()
                 if name.startswith('test_') and inspect.isfunction(f) and f.__module__ == mod.__name__]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for name, f in funcs:
            tests.append(('%s.%s' % (mod.__name__, name), f))
    return tests


def run_one(f, timeout, kill_current):
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
    t.join(timeout)
    if t.is_alive():
        # kill the processes so blocked sockets and waits return, then give the thread a moment
        kill_current()
        t.join(5)
        return 'timed out after %.0f s' % timeout, None
    if 'ok' in result:
        return None, None
    e = result['exc']
    if isinstance(e, AssertionError):
        msg = str(e) or 'assertion failed'
    else:
        msg = '%s: %s' % (type(e).__name__, e)
    return msg, result.get('tb')


def _on_term(signum, frame):
    raise SystemExit(130)   # so that atexit (kills processes by PID, removes temp dirs) runs


def run_tests(here, argv, finish_test, kill_current, timeout, report_label='sanitizer report:'):
    signal.signal(signal.SIGTERM, _on_term)
    verbose = '-v' in argv
    filters = [a for a in argv if a != '-v']
    tests = discover(here)
    if filters:
        tests = [(n, f) for n, f in tests if any(flt in n for flt in filters)]
    passed = failed = 0
    t0 = time.monotonic()
    try:
        for name, f in tests:
            t1 = time.monotonic()
            err, tb = run_one(f, timeout, kill_current)
            reports = finish_test()
            if reports and not err:
                err = report_label + '\n' + reports[0]
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
        kill_current()
    if verbose:
        print('total %.1fs' % (time.monotonic() - t0), flush=True)
    print('%d passed, %d failed' % (passed, failed), flush=True)
    return 1 if failed else 0
