"""Command-line flags and the request log."""

import os
import re
import subprocess
import time

from harness import BIN, Server, check, eq, expect_success, make_tempdir, rand_id


def _run(args, timeout=5):
    d = make_tempdir()
    p = subprocess.Popen([BIN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=d)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()   # by PID
        p.communicate()
        raise AssertionError('%r did not exit within %d s (still running -> killed)' % (args, timeout))
    return p.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')


def test_help():
    rc, out, err = _run(['--help'])
    eq(rc, 0, '--help exit code')
    check('--listen' in out, '--help stdout does not mention --listen: %r' % out[:300])


def test_version():
    rc, out, err = _run(['--version'])
    eq(rc, 0, '--version exit code')
    check(re.search(r'resumed \d+\.\d+\.\d+', out), '--version stdout %r' % out[:200])


def _bad(args):
    d = make_tempdir()
    rc, out, err = _run(['--listen', '127.0.0.1:0', '--dir', d] + args if args[0] != '--listen'
                        else args + ['--dir', d])
    eq(rc, 2, 'exit code for %r (stderr %r)' % (args, err[:200]))
    check(err.strip() != '', 'no message on stderr for %r' % args)


def test_bogus_flag():
    _bad(['--bogus'])


def test_bad_listen():
    _bad(['--listen', 'nonsense'])
    _bad(['--listen', '127.0.0.1:99999'])
    _bad(['--listen', '127.0.0.1:'])


def test_bad_values():
    _bad(['--max-size', 'abc'])
    _bad(['--max-size', '10X'])
    _bad(['--max-size', '-1'])
    _bad(['--header-timeout', 'abc'])
    _bad(['--max-connections', 'lots'])
    _bad(['--max-size'])    # missing value


def test_size_suffix():
    srv = Server('--max-size', '1K')
    fid = rand_id('k')
    r = srv.upload(fid, b'a' * 1025, start=0)
    eq(r.status, 413, '1025 bytes with --max-size 1K')
    r = srv.upload(fid, b'a' * 1024, start=0)
    expect_success(r, 1024, '1024 bytes with --max-size 1K')


_LOG_RE = re.compile(r'^\S+:\d+ "POST /upload" 200 (\d+) [\d.]+ms$')


def _log_lines(srv, pattern, wait=2.0):
    deadline = time.monotonic() + wait
    while True:
        hits = [l for l in list(srv.lines) if pattern in l]
        if hits or time.monotonic() > deadline:
            return hits
        time.sleep(0.05)


def test_request_log():
    srv = Server()
    fid = rand_id('log')
    n = 123457
    r = srv.upload(fid, os.urandom(n), start=0)
    expect_success(r, n, 'upload')
    hits = _log_lines(srv, '"POST /upload" 200')
    check(hits, 'no request log line with "POST /upload" 200 on stderr; stderr: %r' % srv.lines[-10:])
    m = [h for h in hits if _LOG_RE.match(h)]
    check(m, 'log line does not match `PEER "POST /upload" 200 BYTES MSms`: %r' % hits)
    eq(int(_LOG_RE.match(m[-1]).group(1)), n, 'BYTES_IN in the log line %r' % m[-1])
    srv.status(fid)
    hits = _log_lines(srv, '"GET /status" 200')
    check(hits, 'no request log line for GET /status; stderr: %r' % srv.lines[-10:])


def test_quiet_has_no_request_log():
    srv = Server('--quiet')
    fid = rand_id('quiet')
    r = srv.upload(fid, os.urandom(5000), start=0)
    expect_success(r, 5000, 'upload')
    srv.status(fid)
    time.sleep(0.5)
    hits = [l for l in srv.lines if '"POST /upload"' in l or '"GET /status"' in l]
    eq(hits, [], 'request log lines with --quiet')
