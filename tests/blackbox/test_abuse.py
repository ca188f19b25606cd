"""Abuse limits: the server keeps serving others while one client misbehaves.

Each test starts its own server with small limits, runs the abuse, and meanwhile measures
requests of a well-behaved client on fresh connections (wall time of a whole request and answer):

- slowloris: 1,000 connections dribbling a request head that never ends, and 1,000 connections
  opened and left idle: held until the head deadline (--header-timeout), then closed; a normal
  request is answered within 1 s throughout;
- one address opening connections as fast as it can past --max-connections-per-ip: exactly the
  cap is held, every other one gets 503 ("too many connections from this address",
  Retry-After: 1, Connection: close) or is closed; another address (127.0.0.2: any 127/8 address
  is the loopback) is served; closing a held connection frees a place;
- a body dribbled at 1 byte/s under --min-body-rate 64: ended with 408 within its 10 s window,
  the bytes it delivered kept; an upload at a steady rate meanwhile finishes;
- oversized heads: a request line or header block over --max-header-bytes, more fields than
  --max-headers: 431; a head just within the limits is served;
- --max-unfinished: one address creating uploads and abandoning them gets 429 ("too many
  unfinished uploads") on the next creation in each protocol (tus POST, IETF POST, the article's
  first POST /upload of a new id), thousands of times, while another address (and with
  --auth-tokens, another token) still creates; finishing or deleting one frees a place, and so
  does expiry (--expire-after).
"""

import json
import os
import resource
import selectors
import socket
import threading
import time

from harness import (ConnectionClosed, Conn, Server, Sentinel, TestFailure, build_head, build_request,
                     check, eq, file_sha, make_tempdir, rand_id, sha)

TUS = ('Tus-Resumable', '1.0.0')
OCTET = 'application/offset+octet-stream'
IETF = ('Upload-Draft-Interop-Version', '8')
FAST = 1.0                 # seconds a normal request may take while the server is under abuse
UNFINISHED_REASON = b'too many unfinished uploads'
PER_IP_REASON = b'too many connections from this address'


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    check(soft == resource.RLIM_INFINITY or soft >= need,
          'RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs' % (soft, need))


class SrcConn(Conn):
    """harness.Conn from a chosen loopback source address (127.0.0.2 is another client)."""

    def __init__(self, port, src='127.0.0.1', timeout=10.0):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((src, 0))
        self.sock.connect(('127.0.0.1', port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b''


class SockConn(Conn):
    """harness.Conn over a socket that is already connected."""

    def __init__(self, sock, timeout=10.0):
        self.port = None
        self.sock = sock
        self.sock.setblocking(True)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b''


def _request(port, method, path, headers=(), body=b'', src='127.0.0.1'):
    with SrcConn(port, src) as c:
        return c.request(method, path, list(headers), body)


def _timed(port, method, path, headers=(), body=b'', src='127.0.0.1'):
    """(seconds, response) of one request on a fresh connection, connect included."""
    t0 = time.monotonic()
    r = _request(port, method, path, headers, body, src)
    return time.monotonic() - t0, r


def _open_many(port, n, src='127.0.0.1'):
    """n connected sockets (non-blocking after connect) and the time each was connected."""
    socks, times = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        if src:
            s.bind((src, 0))
        s.connect(('127.0.0.1', port))
        s.setblocking(False)
        socks.append(s)
        times.append(time.monotonic())
    return socks, times


def _watch_closes(socks, until, closed_at=None, received=None):
    """Wait until every socket is closed by the server or `until` (monotonic) passes.
    closed_at[i] = time socket i was seen closed (EOF or reset); received[i] = bytes it got.
    Returns closed_at, received."""
    closed_at = closed_at if closed_at is not None else [None] * len(socks)
    received = received if received is not None else [b''] * len(socks)
    sel = selectors.DefaultSelector()    # epoll: select() cannot take descriptors over 1023
    for i, s in enumerate(socks):
        if closed_at[i] is None:
            sel.register(s, selectors.EVENT_READ, i)
    try:
        while sel.get_map() and time.monotonic() < until:
            for key, _ in sel.select(max(0.0, min(0.2, until - time.monotonic()))):
                i = key.data
                try:
                    d = socks[i].recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b''
                if d:
                    received[i] += d
                    continue
                closed_at[i] = time.monotonic()
                sel.unregister(socks[i])
    finally:
        sel.close()
    return closed_at, received


def _close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def _tus_upload(port, length, body=b''):
    """A tus upload of `length` bytes holding `body`; returns its path."""
    r = _request(port, 'POST', '/files/', [TUS, ('Upload-Length', str(length)), ('Content-Type', OCTET)], body)
    eq(r.status, 201, 'tus creation')
    return r.header('Location')


def _probe_head(port, loc, held, what, src='127.0.0.1'):
    dt, r = _timed(port, 'HEAD', loc, [TUS], src=src)
    eq((r.status, r.header('Upload-Offset')), (200, str(held)), '%s: tus HEAD' % what)
    check(dt < FAST, '%s: tus HEAD answered in %.2f s (limit %.1f s)' % (what, dt, FAST))
    return dt


def _probe_upload(port, what, src='127.0.0.1'):
    """A small article upload on a fresh connection, start to Success."""
    data = os.urandom(20000)
    fid = rand_id('probe')
    dt, r = _timed(port, 'POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0'),
                                             ('X-File-Size', str(len(data)))], data, src=src)
    eq((r.status, r.body), (200, b'Success %d' % len(data)), '%s: small upload' % what)
    check(dt < FAST, '%s: small upload answered in %.2f s (limit %.1f s)' % (what, dt, FAST))
    return dt


def _hold_many_and_probe(srv, n, timeout, dribble):
    """Open n connections (dribbling a never-ending head if `dribble`), probe the server while
    they are held, then require each to be closed by the deadline: not before it (they were
    held, not refused), and within 3 s after it."""
    loc = _tus_upload(srv.port, 1000, b'x' * 100)
    socks, opened = _open_many(srv.port, n)
    stop = threading.Event()
    send_errors = [0]

    def dribbler():
        # the request line and a field at once, then a field that never ends, a byte at a time
        b = b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n'
        field = b'X-Slow: '
        pos = 0
        while not stop.is_set():
            for s in socks:
                try:
                    s.send(b)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    send_errors[0] += 1
            b = field[pos:pos + 1] or b'a'
            pos += 1
            stop.wait(0.2)

    t = threading.Thread(target=dribbler, daemon=True)
    if dribble:
        t.start()
    closed_at, received = [None] * n, [b''] * n
    try:
        check(opened[-1] - opened[0] < 1.0, 'opening %d connections took %.1f s' % (n, opened[-1] - opened[0]))
        probes = []
        # probes while every connection is held (the first deadline is opened[0] + timeout)
        while time.monotonic() < opened[0] + timeout - 1.2 or not probes:
            probes.append(_probe_head(srv.port, loc, 100, 'probe %d with %d connections held' % (len(probes) + 1, n)))
            probes.append(_probe_upload(srv.port, 'probe %d' % len(probes)))
            _watch_closes(socks, time.monotonic() + 0.2, closed_at, received)
        early = [i for i in range(n) if closed_at[i] is not None and closed_at[i] - opened[i] < timeout - 0.5]
        check(not early, '%d of %d connections closed before the %d s deadline (first after %.2f s, got %r): not held'
              % (len(early), n, timeout, closed_at[early[0]] - opened[early[0]] if early else 0,
                 received[early[0]][:100] if early else b''))
        # keep probing until every held connection is gone
        until = opened[-1] + timeout + 3.0
        while time.monotonic() < until and any(c is None for c in closed_at):
            _watch_closes(socks, min(until, time.monotonic() + 0.5), closed_at, received)
            probes.append(_probe_head(srv.port, loc, 100, 'probe %d while the held connections close'
                                      % (len(probes) + 1)))
    finally:
        stop.set()
        if dribble:
            t.join(5)
        _close_all(socks)
    still = [i for i in range(n) if closed_at[i] is None]
    check(not still, '%d of %d connections still open %.1f s after the %d s deadline'
          % (len(still), n, time.monotonic() - opened[-1] - timeout, timeout))
    late = max(closed_at[i] - opened[i] for i in range(n))
    check(late <= timeout + 3.0, 'last connection closed %.1f s after it opened (deadline %d s)' % (late, timeout))
    answered = [received[i] for i in range(n) if received[i]]
    bad = [a for a in answered if not a.startswith(b'HTTP/1.1 408 ')]
    check(not bad, '%d closed connections got something other than a 408: %r' % (len(bad), bad[0][:100] if bad else b''))
    return max(probes)


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

def test_slowloris_thousand_dribbling_heads():
    _raise_nofile(2 * 1000 + 200)
    srv = Server('--max-connections-per-ip', '0', '--header-timeout', '3', '--keepalive-timeout', '30',
                 '--quiet')
    s = Sentinel(srv)
    _hold_many_and_probe(srv, 1000, 3, dribble=True)
    s.check('1,000 slowloris connections')


def test_thousand_idle_connections():
    _raise_nofile(2 * 1000 + 200)
    srv = Server('--max-connections-per-ip', '0', '--header-timeout', '3', '--keepalive-timeout', '3',
                 '--quiet')
    s = Sentinel(srv)
    _hold_many_and_probe(srv, 1000, 3, dribble=False)
    s.check('1,000 idle connections')


def _parse_refusal(data):
    """(status, headers dict lower-case, body) of a raw response, or None if no complete one."""
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        return None
    lines = head.decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    h = {}
    for l in lines[1:]:
        k, _, v = l.partition(':')
        h[k.strip().lower()] = v.strip()
    return int(parts[1]), h, body


def test_per_ip_cap():
    cap = 20
    srv = Server('--max-connections-per-ip', str(cap))
    loc = _tus_upload(srv.port, 1000, b'y' * 10)
    time.sleep(0.3)     # the set-up connection is gone
    socks, _ = _open_many(srv.port, 300)
    try:
        closed_at, received = _watch_closes(socks, time.monotonic() + 1.5)
        held = [i for i in range(len(socks)) if closed_at[i] is None and not received[i]]
        check(held == list(range(cap)), '%d of 300 connections from 127.0.0.1 held, want the first %d '
              '(--max-connections-per-ip): %r' % (len(held), cap, held[:cap + 5]))
        refused = [i for i in range(len(socks)) if i not in held]
        full = 0
        for i in refused:
            check(closed_at[i] is not None, 'connection %d got %r but was not closed' % (i, received[i][:100]))
            if not received[i]:
                continue      # closed without an answer: allowed
            p = _parse_refusal(received[i])
            check(p is not None and p[0] == 503, 'refused connection %d got %r' % (i, received[i][:200]))
            st, h, body = p
            eq((h.get('retry-after'), h.get('connection')), ('1', 'close'),
               'refused connection %d: (Retry-After, Connection)' % i)
            check(PER_IP_REASON in body, 'refused connection %d: body %r' % (i, body))
            full += 1
        check(full >= 1, 'none of the %d refused connections got the 503' % len(refused))

        # a flood goes on from 127.0.0.1: none of it is held; 127.0.0.2 and the held ones are served
        stop = threading.Event()
        flood = {'opened': 0, 'held': 0, 'errors': []}

        def flooder():
            while not stop.is_set():
                try:
                    f = socket.create_connection(('127.0.0.1', srv.port), timeout=2)
                except OSError as e:
                    flood['errors'].append(str(e))
                    continue
                flood['opened'] += 1
                try:
                    f.settimeout(1.0)
                    d = f.recv(4096)
                    if d and not d.startswith(b'HTTP/1.1 503 '):
                        flood['errors'].append('flood connection got %r' % d[:80])
                except socket.timeout:
                    flood['held'] += 1        # no refusal within 1 s: held beyond the cap
                except OSError:
                    pass                      # reset: refused
                finally:
                    f.close()

        ft = [threading.Thread(target=flooder, daemon=True) for _ in range(2)]
        for t in ft:
            t.start()
        try:
            time.sleep(0.3)
            for k in range(5):
                _probe_head(srv.port, loc, 10, 'request from 127.0.0.2 during the flood (%d)' % k, src='127.0.0.2')
                _probe_upload(srv.port, 'upload from 127.0.0.2 during the flood (%d)' % k, src='127.0.0.2')
            for i in held:
                r = SockConn(socks[i]).request('HEAD', loc, [TUS])
                eq((r.status, r.header('Upload-Offset')), (200, '10'), 'held connection %d serves a request' % i)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in ft:
                t.join(5)
        check(flood['opened'] >= 20, 'the flood opened only %d connections' % flood['opened'])
        eq(flood['held'], 0, 'flood connections held past the cap (of %d opened)' % flood['opened'])
        check(not flood['errors'], 'flood: %r' % flood['errors'][:3])
        # one held connection closes: its place is free again
        socks[held[0]].close()
        deadline = time.monotonic() + 3
        while True:
            try:
                dt, r = _timed(srv.port, 'HEAD', loc, [TUS])
                if r.status == 200:
                    break
            except (ConnectionClosed, ConnectionError, TestFailure):
                pass
            check(time.monotonic() < deadline, '127.0.0.1 refused 3 s after one of its %d connections closed' % cap)
            time.sleep(0.1)
    finally:
        _close_all(socks)


def test_min_body_rate():
    srv = Server('--min-body-rate', '64')
    total = 10000
    data = os.urandom(total)
    fid = rand_id('dribble')
    slow = Conn(srv.port, timeout=30)
    steady = {'err': None, 'done': False}
    sdata = os.urandom(96 * 1024)

    def steady_upload():
        # 8 KiB/s for 12 s, across the 10 s window: must not be ended
        try:
            sid = rand_id('steady')
            with Conn(srv.port, timeout=30) as c:
                c.send(build_head('POST', '/upload', [('X-File-Id', sid), ('X-Start-Byte', '0'),
                                                      ('X-File-Size', str(len(sdata))),
                                                      ('Content-Length', str(len(sdata)))]))
                for i in range(0, len(sdata), 2048):
                    c.send(sdata[i:i + 2048])
                    time.sleep(0.25)
                r = c.read_final('POST')
            if (r.status, r.body) != (200, b'Success %d' % len(sdata)):
                steady['err'] = 'steady upload answered %r' % r
            steady['done'] = True
        except BaseException as e:  # noqa: reported below
            steady['err'] = '%s: %s' % (type(e).__name__, e)

    st = threading.Thread(target=steady_upload, daemon=True)
    st.start()
    try:
        slow.send(build_head('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0'),
                                                 ('X-File-Size', str(total)), ('Content-Length', str(total))]))
        slow.send(data[:300])
        t0 = time.monotonic()
        sent = 300
        got = b''
        closed = False
        while time.monotonic() - t0 < 18 and not closed:
            closed, extra = slow.wait_closed(1.0)
            got += extra
            if closed or got:
                break
            try:
                slow.send(data[sent:sent + 1])
                sent += 1
            except OSError:
                closed = True
        ended = time.monotonic() - t0
        if not closed:
            closed, extra = slow.wait_closed(2.0)
            got += extra
        check(got or closed, 'a body at 1 byte/s still going after %.0f s with --min-body-rate 64' % ended)
        check(8.0 <= ended <= 15.0, 'slow body ended after %.1f s (10 s window)' % ended)
        check(got.startswith(b'HTTP/1.1 408 '), 'slow body ended after %.1f s, answered %r (want a 408)'
              % (ended, got[:100]))
    finally:
        slow.close()
    held = srv.status(fid)
    check(sent - 1 <= held <= sent, '/status %d after a slow body ended with %d bytes sent' % (held, sent))
    path = srv.data_path(fid)
    eq(file_sha(path), sha(data[:held]), 'kept bytes of the ended body')
    st.join(20)
    check(steady['done'] and not steady['err'], 'steady upload beside the slow one: %s' % steady['err'])
    with srv.conn() as c:
        r = c.request('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', str(held)),
                                          ('X-File-Size', str(total))], data[held:])
    eq((r.status, r.body), (200, b'Success %d' % total), 'resume of the ended body')
    eq(file_sha(path), sha(data), 'stored sha256 after the resume')


def test_oversized_heads():
    srv = Server('--max-header-bytes', '4096', '--max-headers', '20')
    s = Sentinel(srv)
    loc = _tus_upload(srv.port, 1000, b'z' * 7)

    def served(what):
        dt, r = _timed(srv.port, 'HEAD', loc, [TUS])
        eq((r.status, r.header('Upload-Offset')), (200, '7'), 'after %s: tus HEAD' % what)
        s.check(what)

    cases = [
        ('request line of 5,000 bytes', build_request('GET', '/status?' + 'q' * 5000, [('X-File-Id', s.fid)])),
        ('10 fields of 500 bytes', build_request('GET', '/status', [('X-File-Id', s.fid)] +
                                                 [('X-Big-%d' % i, 'b' * 500) for i in range(10)])),
        ('one field of 8,000 bytes', build_request('HEAD', loc, [TUS, ('X-Huge', 'h' * 8000)])),
        ('30 small fields', build_request('GET', '/status', [('X-File-Id', s.fid)] +
                                          [('X-F%d' % i, 'v') for i in range(30)])),
    ]
    for what, raw in cases:
        with srv.conn() as c:
            c.send(raw)
            r = c.read_final(raw.split(b' ', 1)[0].decode())
            eq(r.status, 431, what)
        served(what)
    # 1 MiB of head that never ends: 431 long before it is all sent, then closed
    with srv.conn() as c:
        t = threading.Thread(target=lambda: _send_quiet(c.sock, b'GET /status HTTP/1.1\r\nX-Endless: ' + b'e' * (1 << 20)),
                             daemon=True)
        t.start()
        r = c.read_final()
        eq(r.status, 431, 'a head of 1 MiB')
        closed, _ = c.wait_closed(3)
        check(closed, 'connection kept after a 431 for an endless head')
        t.join(5)
    served('an endless head')
    # within the limits: served
    with srv.conn() as c:
        r = c.request('GET', '/status', [('X-File-Id', s.fid)] + [('X-F%d' % i, 'v' * 100) for i in range(15)])
        eq((r.status, r.body), (200, b'%d' % s.held), '16 fields and ~2 KiB of head (within the limits)')


def _send_quiet(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- --max-unfinished --------------------------------------------------------

class _Creator:
    """Creates uploads in the three protocols from one address (and token), on one keep-alive
    connection (a new one when the server closes it)."""

    def __init__(self, port, src='127.0.0.1', token=None):
        self.port, self.src, self.token = port, src, token
        self.c = None

    def req(self, method, path, headers=(), body=b''):
        h = list(headers)
        if self.token:
            h.append(('Authorization', 'Bearer ' + self.token))
        for attempt in (0, 1):
            if self.c is None:
                self.c = SrcConn(self.port, self.src)
            try:
                r = self.c.request(method, path, h, body)
            except (ConnectionClosed, ConnectionError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
                continue
            if r.conn_close():
                self.c.close()
                self.c = None
            return r

    def tus(self):
        return self.req('POST', '/files/', [TUS, ('Upload-Length', '100')])

    def ietf(self):
        return self.req('POST', '/files/', [IETF, ('Upload-Complete', '?0'), ('Upload-Length', '100')])

    def article(self, fid=None):
        fid = fid or rand_id('abandoned')
        return fid, self.req('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0'), ('X-File-Size', '100')],
                             b'a')

    def create(self, proto):
        """(reference, response): the Location (tus, IETF) or the article id."""
        if proto == 'article':
            return self.article()
        r = self.tus() if proto == 'tus' else self.ietf()
        return r.header('Location'), r

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


def _created(proto, r):
    if proto == 'article':
        return (r.status, r.body) == (200, b'')
    return r.status == 201


def _check_429(proto, r, what):
    eq(r.status, 429, '%s: %s creation over --max-unfinished' % (what, proto))
    body = r.body
    if r.header('Content-Type') == 'application/problem+json':
        try:
            body = json.dumps(json.loads(body)).encode()
        except ValueError:
            raise TestFailure('%s: %s 429 problem body is not JSON: %r' % (what, proto, r.body))
    check(UNFINISHED_REASON in body, '%s: %s 429 without the reason: %r' % (what, proto, r.body[:200]))


PROTOS = ('tus', 'ietf', 'article')


def test_max_unfinished():
    limit = 50
    srv = Server('--max-unfinished', str(limit))
    a = _Creator(srv.port)
    try:
        made = []
        for i in range(limit):
            proto = PROTOS[i % 3]
            ref, r = a.create(proto)
            check(_created(proto, r), 'creation %d (%s) under the limit: %r' % (i + 1, proto, r))
            made.append((proto, ref))
        # over the limit, in every protocol, again and again
        t0 = time.monotonic()
        for i in range(1500):
            proto = PROTOS[i % 3]
            ref, r = a.create(proto)
            _check_429(proto, r, 'attempt %d' % (i + 1))
            if proto == 'article' and i < 3:
                eq(srv.status(ref), 0, 'a refused article id holds nothing')
                check(not srv.has_article_link(ref), 'a refused article id has a link')
        refused_time = time.monotonic() - t0
        eq(len(srv.data_files()), limit, 'data files after 1,500 refused creations')
        # another address is another client
        b = _Creator(srv.port, src='127.0.0.2')
        try:
            for proto in PROTOS:
                ref, r = b.create(proto)
                check(_created(proto, r), '%s creation from 127.0.0.2 while 127.0.0.1 is at the limit: %r'
                      % (proto, r))
        finally:
            b.close()
        # uploads already there still take bytes (appending is not creating)
        tus_refs = [ref for proto, ref in made if proto == 'tus']
        r = a.req('PATCH', tus_refs[0], [TUS, ('Upload-Offset', '0'), ('Content-Type', OCTET)], b'p' * 40)
        eq((r.status, r.header('Upload-Offset')), (204, '40'), 'PATCH of an existing upload at the limit')
        # a DELETE frees one place, only one
        r = a.req('DELETE', tus_refs[1], [TUS])
        eq(r.status, 204, 'tus DELETE')
        ref, r = a.create('ietf')
        check(_created('ietf', r), 'IETF creation after a DELETE freed a place: %r' % r)
        _check_429('tus', a.tus(), 'after the freed place was taken')
        # finishing one frees one place
        r = a.req('PATCH', tus_refs[0], [TUS, ('Upload-Offset', '40'), ('Content-Type', OCTET)], b'p' * 60)
        eq((r.status, r.header('Upload-Offset')), (204, '100'), 'PATCH finishing an upload')
        fid, r = a.article()
        check(_created('article', r), 'article creation after an upload finished: %r' % r)
        _check_429('ietf', a.ietf(), 'after the place freed by finishing was taken')
        # the article's own finishing frees a place too
        r = a.req('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '1'), ('X-File-Size', '100')], b'f' * 99)
        eq((r.status, r.body), (200, b'Success 100'), 'finishing an article upload')
        ref, r = a.create('tus')
        check(_created('tus', r), 'tus creation after an article upload finished: %r' % r)
        _check_429('article', a.article()[1], 'after that place was taken')
        check(refused_time < 30, '1,500 refused creations took %.1f s' % refused_time)
    finally:
        a.close()


def test_max_unfinished_per_token():
    d = make_tempdir('resumed-abuse-')
    tokens = os.path.join(d, 'tokens')
    with open(tokens, 'w') as f:
        f.write('token-one-0123456789abcdef\ntoken-two-0123456789abcdef\n')
    srv = Server('--max-unfinished', '6', '--auth-tokens', tokens)
    one = _Creator(srv.port, token='token-one-0123456789abcdef')
    two = _Creator(srv.port, token='token-two-0123456789abcdef')
    try:
        for i in range(6):
            proto = PROTOS[i % 3]
            _, r = one.create(proto)
            check(_created(proto, r), 'token one, creation %d (%s): %r' % (i + 1, proto, r))
        for proto in PROTOS:
            _check_429(proto, one.create(proto)[1], 'token one at its limit')
        for proto in PROTOS:
            _, r = two.create(proto)
            check(_created(proto, r), 'token two (same address) while token one is at its limit, %s: %r' % (proto, r))
    finally:
        one.close()
        two.close()


def test_max_unfinished_expiry_frees_places():
    limit = 10
    srv = Server('--max-unfinished', str(limit), '--expire-after', '1')
    a = _Creator(srv.port)
    try:
        made = []
        refused = None
        for i in range(4 * limit):
            proto = PROTOS[i % 3]
            ref, r = a.create(proto)
            if r.status == 429:
                refused = i
                break
            check(_created(proto, r), 'creation %d (%s): %r' % (i + 1, proto, r))
            made.append((proto, ref))
        check(refused == limit, 'first 429 at creation %r, want %d (--max-unfinished %d)'
              % (None if refused is None else refused + 1, limit + 1, limit))
        t0 = time.monotonic()
        while True:
            ref, r = a.create('tus')
            if r.status == 201:
                break
            _check_429('tus', r, 'before the abandoned uploads expired')
            check(time.monotonic() - t0 < 6, 'creation still refused 6 s after --expire-after 1')
            time.sleep(0.2)
        # Each expires 1 s after its own last write, so the last ones made may still need a moment.
        for proto, ref in made:
            deadline = time.monotonic() + 4
            while True:
                if proto == 'article':
                    got, gone = srv.status(ref), 0
                else:
                    got = a.req('HEAD', ref, [TUS] if proto == 'tus' else [IETF]).status
                    gone = got if got in (404, 410) else 404
                if got == gone or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            eq(got, gone, 'expired %s upload (status / HEAD), 4 s after the first place freed' % proto)
        # An expired upload keeps its place until the sweeper (every 250 ms here) removes it.
        for i in range(limit - 1):
            proto = PROTOS[i % 3]
            deadline = time.monotonic() + 2
            _, r = a.create(proto)
            while r.status == 429 and time.monotonic() < deadline:
                time.sleep(0.1)
                _, r = a.create(proto)
            check(_created(proto, r), 'creation %d after expiry (%s): %r' % (i + 2, proto, r))
        _check_429('ietf', a.ietf(), 'at the limit again after expiry')
    finally:
        a.close()
