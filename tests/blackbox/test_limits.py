"""Timeouts and connection limits with small values."""

import os
import time

from harness import (ConnectionClosed, Sentinel, Server, build_head, build_request, check, eq,
                     expect_success, file_sha, poll_status, rand_id, send_partial, sha, upload_headers)


def test_header_timeout_half_request_line():
    srv = Server('--header-timeout', '1')
    s = Sentinel(srv)
    with srv.conn() as c:
        t0 = time.monotonic()
        c.send(b'GET /sta')
        closed, extra = c.wait_closed(6)
        dt = time.monotonic() - t0
        check(closed, 'connection with half a request line not closed within 6 s')
        check(dt < 3.0, 'closed only after %.1f s with --header-timeout 1' % dt)
        check(extra.startswith(b'HTTP/1.1 408'), 'expected a 408 before the close, got %r' % extra[:100])
    s.check('header timeout')


def test_header_timeout_trickle():
    # a head trickling in byte by byte must still be cut at the deadline (slowloris)
    srv = Server('--header-timeout', '1')
    s = Sentinel(srv)
    raw = build_request('GET', '/status', [('X-File-Id', s.fid)] + [('X-Pad%d' % i, 'v' * 20) for i in range(40)])
    with srv.conn() as c:
        t0 = time.monotonic()
        closed = False
        for b in raw[:-4]:
            try:
                c.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed, extra = c.wait_closed(0.1)
            if closed:
                break
            if time.monotonic() - t0 > 5:
                break
        dt = time.monotonic() - t0
        check(closed, 'trickling head not cut within %.1f s with --header-timeout 1' % dt)
        check(dt < 3.0, 'trickling head cut only after %.1f s' % dt)
    s.check('trickle')


def test_header_timeout_idle_connection():
    srv = Server('--header-timeout', '1', '--keepalive-timeout', '1')
    with srv.conn() as c:
        t0 = time.monotonic()
        closed, extra = c.wait_closed(6)
        dt = time.monotonic() - t0
        check(closed, 'idle new connection not closed within 6 s')
        check(dt < 3.0, 'idle new connection closed only after %.1f s' % dt)


def test_keepalive_timeout():
    srv = Server('--keepalive-timeout', '1')
    with srv.conn() as c:
        r = c.request('GET', '/status', [('X-File-Id', 'ka')])
        eq((r.status, r.body), (200, b'0'), 'first request')
        t0 = time.monotonic()
        closed, extra = c.wait_closed(6)
        dt = time.monotonic() - t0
        check(closed, 'idle keep-alive connection not closed within 6 s (--keepalive-timeout 1)')
        check(dt < 3.0, 'idle keep-alive connection closed only after %.1f s' % dt)
        eq(extra, b'', 'data sent on idle keep-alive close')


def test_body_timeout_keeps_bytes():
    srv = Server('--body-timeout', '1')
    s = Sentinel(srv)
    data = os.urandom(1 << 20)
    fid = rand_id('bodyto')
    sent = 400009
    c = send_partial(srv, fid, data, sent, mode='keep')
    try:
        t0 = time.monotonic()
        closed, extra = c.wait_closed(6)
        dt = time.monotonic() - t0
        check(closed, 'stalled body not cut within 6 s with --body-timeout 1')
        check(dt < 3.5, 'stalled body cut only after %.1f s' % dt)
    finally:
        c.close()
    eq(poll_status(srv, fid, sent, 2), sent, '/status after body timeout')
    path = srv.data_path(fid)
    eq(file_sha(path), sha(data[:sent]), 'stored prefix')
    r = srv.upload(fid, data[sent:], start=sent)
    expect_success(r, len(data), 'resume after body timeout')
    eq(file_sha(path), sha(data), 'stored sha256')
    s.check('body timeout')


def test_body_timeout_is_idle_time():
    # a slow but steady body (a piece every 0.4 s, 2.4 s in all) is not cut by --body-timeout 1
    srv = Server('--body-timeout', '1')
    data = os.urandom(60000)
    fid = rand_id('slowbody')
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 0) + [('Content-Length', str(len(data)))]))
        for i in range(6):
            c.send(data[i * 10000:(i + 1) * 10000])
            time.sleep(0.4)
        r = c.read_final('POST')
    expect_success(r, len(data), 'slow steady body')


def test_max_connections():
    srv = Server('--max-connections', '5')
    s = Sentinel(srv)
    time.sleep(0.5)   # let the server reap the sentinel's closed connections
    conns = [srv.conn() for _ in range(5)]
    try:
        for i, c in enumerate(conns):
            r = c.request('GET', '/status', [('X-File-Id', s.fid)])
            eq((r.status, r.body), (200, str(s.held).encode()), 'connection %d request' % (i + 1))
        sixth = srv.conn()
        try:
            try:
                sixth.send(build_request('GET', '/status', [('X-File-Id', s.fid)]))
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                r = sixth.read_final()
                eq(r.status, 503, '6th connection (--max-connections 5)')
            except ConnectionClosed:
                pass   # closed without a response is acceptable
            closed, extra = sixth.wait_closed(3)
            check(closed, '6th connection not closed')
        finally:
            sixth.close()
        for i, c in enumerate(conns):
            r = c.request('GET', '/status', [('X-File-Id', s.fid)])
            eq((r.status, r.body), (200, str(s.held).encode()), 'connection %d still works' % (i + 1))
        # free a slot: a new connection works again
        conns.pop().close()
        ok = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not ok:
            c = srv.conn()
            try:
                r = c.request('GET', '/status', [('X-File-Id', s.fid)])
                ok = r.status == 200 and r.body == str(s.held).encode()
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                pass
            finally:
                c.close()
            if not ok:
                time.sleep(0.1)
        check(ok, 'no new connection accepted after one of the 5 closed')
    finally:
        for c in conns:
            c.close()
