"""A fault storm across the three protocols through tests/tools/faultproxy.py.

Small Python clients (tus: POST creation, HEAD, PATCH; IETF draft interop 8: POST with
Upload-Complete: ?0 (Location from the 104), HEAD, PATCH application/partial-upload; article:
GET /status, POST /upload with X-File-Size) upload several files at once through the proxy, which
cuts every connection after a random number of client->server bytes (RST and FIN alternately),
and now and then stalls, drips single bytes and delays connections to the server in random
order.  Each client resumes from the offset the server tells it, on the connection it has until
that connection dies.

What must hold:
- every upload finishes and its bytes are exactly the file (tus/IETF: GET of the finished upload;
  article: a stored file under DIR/uploads with the file's SHA-256, as test_upload.py checks);
- no offset a client was told (HEAD, PATCH/POST answers, 104s, /status) is ever below one it was
  told before for that upload (for the article, /status 0 after progress is accepted only when the
  finished file is stored: the article forgets finished uploads);
- the number of cuts: a connection forwards at most `hi` client->server bytes before it is cut, so
  an upload of S bytes needs at least ceil(S / hi) connections and all but its last one are cut.
  Sizes are chosen so that this bound is >= 300 over the run, and the proxy's count is asserted.

test_reordered_stale_requests makes the reordering deterministic: a request delayed by the
proxy reaches the server after a newer one (and in the second case while the newer one is still
sending), carrying a stale offset and bytes that are not the file's; the server must refuse it
and keep exactly what the newer request delivered.
"""

import math
import os
import random
import re
import socket
import sys
import threading
import time

from harness import (ConnectionClosed, Conn, Server, TestFailure, build_head, build_request, check,
                     eq, file_sha, sha)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from faultproxy import FaultProxy  # noqa: E402

TUS = ('Tus-Resumable', '1.0.0')
OCTET = 'application/offset+octet-stream'
PARTIAL = 'application/partial-upload'
IETF_V = '8'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})$')
SOCK_TIMEOUT = 30.0     # a request through the proxy: stalls and drips are far shorter
STORM_TIME = 55.0       # the runner's limit per test is 60 s (BB_TEST_TIMEOUT)
STALE_DELAY = 1.5       # how long the proxy holds the stale request


class _Reconnect(Exception):
    """The session cannot go on on this connection (the client opens a new one)."""


def _sendall_quiet(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass


def _stop_sender(c, t):
    """End a sender thread: shutdown wakes a sendall blocked on a full socket."""
    if t is None:
        return
    t.join(0.5)
    if t.is_alive():
        try:
            c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        t.join(5)


class _Upload:
    """One file uploaded through the proxy by one protocol's client."""

    def __init__(self, proto, name, size, rnd, proxy_port, srv, impatient=0):
        self.proto = proto
        self.name = name
        self.size = size
        self.data = rnd.randbytes(size)
        self.sha = sha(self.data)
        self.rnd = random.Random(rnd.random())
        self.proxy_port = proxy_port
        self.srv = srv
        self.impatient = impatient    # give up a request on every n-th connection that can send one
        self.eligible = 0
        self.loc = None               # tus/IETF upload path
        self.fid = 'storm-%s-%s' % (name, os.urandom(4).hex())
        self.max_off = 0
        self.told = []                # every offset told, in order
        self.breaks = 0               # connections that died under a request
        self.connections = 0
        self.abandoned = 0
        self.done = False
        self.finished_unseen = False  # article: finished, answer lost, /status went to 0
        self.err = None

    # -- offsets ---------------------------------------------------------
    def tell(self, off, what):
        check(0 <= off <= self.size, '%s: %s told offset %d outside [0, %d]' % (self.name, what, off, self.size))
        check(off >= self.max_off, '%s: %s told offset %d after %d (went backwards); offsets so far %r'
              % (self.name, what, off, self.max_off, self.told[-8:]))
        self.max_off = off
        self.told.append(off)

    def _offset_header(self, r, what):
        v = r.header('Upload-Offset')
        check(v is not None and v.isdigit(), '%s: %s without a valid Upload-Offset: %r' % (self.name, what, r))
        off = int(v)
        self.tell(off, what)
        return off

    # -- one request on the session's connection --------------------------
    def _exchange(self, c, method, path, headers, body=b'', on_interim=None):
        head = build_head(method, path, list(headers) + [('Content-Length', str(len(body)))]
                          if body or method in ('POST', 'PATCH') else list(headers))
        t = None
        if body:
            t = threading.Thread(target=_sendall_quiet, args=(c.sock, head + body), daemon=True)
            t.start()
        else:
            c.send(head)
        try:
            while True:
                r = c.read_response(method)
                if 100 <= r.status < 200:
                    if on_interim:
                        on_interim(r)
                    continue
                break
        finally:
            if t is not None and t.is_alive():
                t.join(0.5)
        if t is not None and t.is_alive():
            # answered before the body was taken (an error): this connection is done
            _stop_sender(c, t)
            raise _Reconnect()
        if r.conn_close():
            raise _Reconnect()
        return r

    def _piece(self, off):
        """How many bytes the next request carries: usually all that is left, sometimes less."""
        left = self.size - off
        if left > 1 and self.rnd.random() < 0.3:
            return self.rnd.randint(1, left)
        return left

    # -- protocols ---------------------------------------------------------
    def _tus_session(self, c):
        if self.loc is None:
            r = self._exchange(c, 'POST', '/files/', [TUS, ('Upload-Length', str(self.size))])
            eq(r.status, 201, '%s: tus creation' % self.name)
            self.loc = r.header('Location')
            check(self.loc and LOCATION_RE.search(self.loc), '%s: Location %r' % (self.name, self.loc))
        while True:
            r = self._exchange(c, 'HEAD', self.loc, [TUS])
            eq(r.status, 200, '%s: tus HEAD status' % self.name)
            off = self._offset_header(r, 'HEAD')
            if off == self.size:
                return True
            n = self._piece(off)
            r = self._exchange(c, 'PATCH', self.loc, [TUS, ('Upload-Offset', str(off)), ('Content-Type', OCTET)],
                               self.data[off:off + n])
            eq(r.status, 204, '%s: tus PATCH at %d with %d bytes (%r)' % (self.name, off, n, r.body[:200]))
            got = self._offset_header(r, 'PATCH')
            eq(got, off + n, '%s: Upload-Offset after a whole PATCH of %d bytes at %d' % (self.name, n, off))
            if got == self.size:
                return True

    def _ietf_interim(self, r):
        if r.status != 104:
            return
        loc = r.header('Location')
        if loc and LOCATION_RE.search(loc):
            if self.loc is None:
                self.loc = loc
            check(self.loc == loc, '%s: 104 Location %r, expected %r' % (self.name, loc, self.loc))
        if r.header('Upload-Offset') is not None:
            self._offset_header(r, '104')

    def _ietf_session(self, c):
        v = ('Upload-Draft-Interop-Version', IETF_V)
        if self.loc is None:
            # the 104 comes once the upload is durably created, which takes longer than the
            # proxy needs to forward 32 KiB: a creation with the whole file is cut before its
            # 104 most of the time.  Mostly small first pieces, then, and now and then all of it.
            n = self._piece(0) if self.rnd.random() < 0.25 else min(self.size, self.rnd.randint(0, 4096))
            r = self._exchange(c, 'POST', '/files/',
                               [v, ('Upload-Complete', '?0'), ('Upload-Length', str(self.size)),
                                ('Content-Type', 'application/octet-stream')],
                               self.data[:n], on_interim=self._ietf_interim)
            eq(r.status, 201, '%s: IETF creation with %d bytes (%r)' % (self.name, n, r.body[:200]))
            check(self.loc is not None, '%s: 201 before any 104 with a Location' % self.name)
            eq(r.header('Location'), self.loc, '%s: Location of the 201' % self.name)
            got = self._offset_header(r, 'creation 201')
            eq(got, n, '%s: Upload-Offset of a whole creation with %d bytes' % (self.name, n))
        while True:
            r = self._exchange(c, 'HEAD', self.loc, [v])
            eq(r.status, 204, '%s: IETF HEAD status' % self.name)
            off = self._offset_header(r, 'HEAD')
            complete = r.header('Upload-Complete')
            if off == self.size and complete == '?1':
                return True
            n = self._piece(off)
            last = off + n == self.size
            r = self._exchange(c, 'PATCH', self.loc,
                               [v, ('Upload-Offset', str(off)), ('Upload-Complete', '?1' if last else '?0'),
                                ('Content-Type', PARTIAL)], self.data[off:off + n])
            eq(r.status, 204, '%s: IETF PATCH at %d with %d bytes (%r)' % (self.name, off, n, r.body[:200]))
            got = self._offset_header(r, 'PATCH')
            eq(got, off + n, '%s: Upload-Offset after a whole PATCH of %d bytes at %d' % (self.name, n, off))
            if last:
                eq(r.header('Upload-Complete'), '?1', '%s: Upload-Complete of the last PATCH' % self.name)
                return True

    def _article_session(self, c):
        while True:
            r = self._exchange(c, 'GET', '/status', [('X-File-Id', self.fid)])
            eq(r.status, 200, '%s: /status' % self.name)
            check(r.body.isdigit(), '%s: /status body %r' % (self.name, r.body))
            held = int(r.body)
            if held < self.max_off and held == 0 and _stored(self.srv, self.sha):
                # finished by a request whose answer the cut took; the article forgets it
                self.finished_unseen = True
                return True
            self.tell(held, '/status')
            n = self._piece(held)
            r = self._exchange(c, 'POST', '/upload',
                               [('X-File-Id', self.fid), ('X-Start-Byte', str(held)),
                                ('X-File-Size', str(self.size))], self.data[held:held + n])
            if held == 0 and r.status == 409:
                # README (Limits): two requests that start an id afresh at once, the second
                # gets 409 and should retry (here: ours, cut, whose creation is still running)
                time.sleep(0.01)
                continue
            if held + n == self.size:
                eq((r.status, r.body), (200, b'Success %d' % self.size),
                   '%s: last POST /upload at %d with %d bytes' % (self.name, held, n))
                return True
            eq((r.status, r.body), (200, b''), '%s: POST /upload at %d with %d bytes' % (self.name, held, n))

    # -- a given-up connection (reordering) ----------------------------------
    def _abandon(self):
        """Send a request at the last offset told (no question first) and give up on it after a
        moment without reading: with reorder() on, it may reach the server after newer ones."""
        off = self.max_off
        n = self._piece(off)
        body = self.data[off:off + n]
        if self.proto == 'tus':
            raw = build_request('PATCH', self.loc, [TUS, ('Upload-Offset', str(off)), ('Content-Type', OCTET)], body)
        elif self.proto == 'ietf':
            last = off + n == self.size
            raw = build_request('PATCH', self.loc, [('Upload-Draft-Interop-Version', IETF_V),
                                                    ('Upload-Offset', str(off)),
                                                    ('Upload-Complete', '?1' if last else '?0'),
                                                    ('Content-Type', PARTIAL)], body)
        else:
            raw = build_request('POST', '/upload', [('X-File-Id', self.fid), ('X-Start-Byte', str(off)),
                                                    ('X-File-Size', str(self.size))], body)
        c = Conn(self.proxy_port, SOCK_TIMEOUT)
        self.abandoned += 1
        t = threading.Thread(target=_sendall_quiet, args=(c.sock, raw), daemon=True)
        t.start()
        time.sleep(self.rnd.uniform(0.02, 0.15))
        _stop_sender(c, t)
        c.close()

    def _article_first_byte(self):
        """The article's protocol starts an upload afresh on X-Start-Byte 0 (its spec), so a
        start-0 request the proxy held back (reorder) and delivered after newer ones would
        rightly empty the upload. The first byte goes straight to the server; every request
        through the proxy then starts past 0."""
        with self.srv.conn() as c:
            c.send(build_request('POST', '/upload', [('X-File-Id', self.fid), ('X-Start-Byte', '0'),
                                                     ('X-File-Size', str(self.size))], self.data[:1]))
            r = c.read_final('POST')
        eq((r.status, r.body), (200, b''), '%s: first byte, straight to the server' % self.name)
        self.tell(1, 'first POST /upload')

    # -- the client ---------------------------------------------------------
    def run(self, deadline):
        try:
            session = {'tus': self._tus_session, 'ietf': self._ietf_session,
                       'article': self._article_session}[self.proto]
            if self.proto == 'article':
                self._article_first_byte()
            while not self.done:
                check(time.monotonic() < deadline, '%s: not finished in time (offset %d of %d, %d connections)'
                      % (self.name, self.max_off, self.size, self.connections))
                if self.impatient and (self.loc if self.proto != 'article' else self.max_off > 0):
                    self.eligible += 1
                    if self.eligible % self.impatient == 1:
                        self._abandon()
                c = Conn(self.proxy_port, SOCK_TIMEOUT)
                self.connections += 1
                try:
                    self.done = session(c)
                except (ConnectionClosed, ConnectionError):
                    self.breaks += 1
                except _Reconnect:
                    pass
                finally:
                    c.close()
        except BaseException as e:  # noqa: reported by the test thread
            self.err = '%s: %s' % (type(e).__name__, e)

    def verify(self):
        """The finished upload is exactly the file."""
        if self.proto in ('tus', 'ietf'):
            with self.srv.conn() as c:
                r = c.request('GET', self.loc)
            eq(r.status, 200, '%s: GET %s of the finished upload' % (self.name, self.loc))
            eq((len(r.body), sha(r.body)), (self.size, self.sha), '%s: (length, sha256) of the download' % self.name)
            key = LOCATION_RE.search(self.loc).group(1)
            eq(file_sha(os.path.join(self.srv.dir, 'uploads', key)), self.sha, '%s: stored file sha256' % self.name)
        else:
            check(_stored(self.srv, self.sha), '%s: no file under uploads/ has the article upload\'s sha256'
                  % self.name)
            eq(self.srv.status(self.fid), 0, '%s: /status after the article upload finished' % self.name)


def _stored(srv, digest):
    """Whether a data file under DIR/uploads holds exactly the bytes with this SHA-256."""
    for p in srv.data_files():
        try:
            if file_sha(p) == digest:
                return True
        except OSError:
            pass
    return False


def _run_all(uploads, timeout):
    deadline = time.monotonic() + timeout
    threads = [threading.Thread(target=u.run, args=(deadline,), daemon=True) for u in uploads]
    for t in threads:
        t.start()
    return threads


def _join_all(threads, uploads, timeout, seed):
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, end - time.monotonic()))
    errs = ['%s: %s' % (u.name, u.err) for u in uploads if u.err]
    stuck = [u.name for u, t in zip(uploads, threads) if t.is_alive()]
    check(not errs, '%d of %d uploads failed (seed %d): %s' % (len(errs), len(uploads), seed, '; '.join(errs[:4])))
    check(not stuck, 'uploads still running: %r' % stuck)


# ---------------------------------------------------------------------------

def test_storm_cuts_stalls_drips():
    """Nine uploads (three per protocol) at once; every connection is cut after 1 B-16 KiB,
    RST and FIN alternately; stalls, drips and reordered connects are switched on as the cuts
    pile up.  At least 300 cuts by construction; every byte intact, offsets never go back."""
    srv = Server()
    seed = int.from_bytes(os.urandom(4), 'big')
    rnd = random.Random(seed)
    lo, hi = 1, 16 << 10
    sizes = [40 * hi + rnd.randint(0, 4 * hi) for _ in range(9)]
    bound = sum(math.ceil(s / hi) - 1 for s in sizes)
    check(bound >= 300, 'construction: sizes guarantee only %d cuts' % bound)
    with FaultProxy(srv.port, seed=seed) as p:
        p.cut(lo, hi, mode='alternate')
        uploads = [_Upload(proto, '%s%d' % (proto, i), sizes[3 * k + i], rnd, p.port, srv)
                   for k, proto in enumerate(('tus', 'ietf', 'article')) for i in range(3)]
        t0 = time.monotonic()
        threads = _run_all(uploads, STORM_TIME)
        # faults switched on at cut counts the run is sure to reach, so each one happens while
        # uploads are running: (cuts so far, fault, seconds)
        plan = [(40, 'stall', 0.4), (80, 'drip', 0.25), (120, 'reorder', 0.6), (160, 'stall', 0.3),
                (200, 'drip', 0.25), (240, 'reorder', 0.6), (280, 'stall', 0.4)]
        applied = []
        try:
            for at, fault, secs in plan:
                while p.cuts < at and any(t.is_alive() for t in threads):
                    time.sleep(0.01)
                if p.cuts < at:
                    break
                active = sum(1 for u in uploads if not u.done)
                if fault == 'stall':
                    p.stall()
                elif fault == 'drip':
                    p.drip(0.0005)
                else:
                    p.reorder(0, 0.08)
                time.sleep(secs)
                p.unstall()
                p.drip(None)
                p.no_reorder()
                applied.append((fault, at, active))
        finally:
            p.unstall()
            p.drip(None)
            p.no_reorder()
        _join_all(threads, uploads, STORM_TIME + 2, seed)
        dt = time.monotonic() - t0
        cuts, log = p.cuts, list(p.cut_log)
    for u in uploads:
        u.verify()
    check(cuts >= 300, 'only %d cuts (construction bound %d); seed %d' % (cuts, bound, seed))
    modes = [m for _, _, m in log]
    check(modes.count('rst') >= 150 and modes.count('fin') >= 150,
          'cut modes: %d rst, %d fin' % (modes.count('rst'), modes.count('fin')))
    check(all(lo <= n <= hi for _, n, _ in log if n), 'cut outside [%d, %d]' % (lo, hi))
    for proto in ('tus', 'ietf', 'article'):
        us = [u for u in uploads if u.proto == proto]
        need = sum(math.ceil(u.size / hi) - 1 for u in us)
        got = sum(u.breaks for u in us)
        check(got >= need, '%s clients saw %d broken connections, the construction needs %d' % (proto, got, need))
    eq([f for f, _, _ in applied], [f for _, f, _ in plan], 'faults applied during the storm (fault, at cut, '
       'uploads running): %r' % applied)
    check(all(a > 0 for _, _, a in applied), 'a fault was applied with no upload running: %r' % applied)
    check(srv.alive(), 'server died')
    if os.environ.get('STORM_VERBOSE'):
        sys.stderr.write('storm: %d cuts, %.1f s, seed %d, faults %r\n' % (cuts, dt, seed, applied))


def test_storm_reordered_connections():
    """Six uploads (two per protocol) with every connection connected to the server after a
    random 0-0.3 s, cuts after 1 B-32 KiB, and clients that now and then send a request at their
    last known offset and give up on it at once: stale requests reach the server after newer
    ones, in random order.  Every byte intact, offsets never go back."""
    srv = Server()
    seed = int.from_bytes(os.urandom(4), 'big')
    rnd = random.Random(seed)
    with FaultProxy(srv.port, seed=seed) as p:
        p.cut(1, 32 << 10, mode='alternate')
        p.reorder(0, 0.3)
        uploads = [_Upload(proto, '%s%d' % (proto, i), rnd.randint(120 << 10, 200 << 10), rnd, p.port, srv,
                           impatient=3)
                   for proto in ('tus', 'ietf', 'article') for i in range(2)]
        threads = _run_all(uploads, STORM_TIME)
        _join_all(threads, uploads, STORM_TIME + 2, seed)
        cuts, reordered, conns = p.cuts, p.reordered, p.connections
    for u in uploads:
        u.verify()
    # each upload needs >= 4 connections (32 KiB at most each): from its second one on it knows
    # where to send, and the first such connection gives a request up
    abandoned = sum(u.abandoned for u in uploads)
    check(all(u.abandoned >= 1 for u in uploads), 'requests given up per upload: %r'
          % [(u.name, u.abandoned) for u in uploads])
    check(cuts >= 6 * 4, 'only %d cuts' % cuts)
    check(srv.alive(), 'server died')
    if os.environ.get('STORM_VERBOSE'):
        sys.stderr.write('reorder storm: %d connections, %d reordered, %d cuts, %d given up, seed %d\n'
                         % (conns, reordered, cuts, abandoned, seed))


# ---------------------------------------------------------------------------
# deterministic reordering: a stale request overtaken by a newer one

def _create_direct(srv, proto, data, first):
    """An upload of len(data) holding data[:first], made on the server directly.
    Returns (path or id, offset question)."""
    n = len(data)
    if proto == 'tus':
        with srv.conn() as c:
            r = c.request('POST', '/files/', [TUS, ('Upload-Length', str(n)), ('Content-Type', OCTET)], data[:first])
        eq((r.status, r.header('Upload-Offset')), (201, str(first)), 'tus creation with %d bytes' % first)
        return r.header('Location')
    if proto == 'ietf':
        with srv.conn() as c:
            r = c.request('POST', '/files/', [('Upload-Draft-Interop-Version', IETF_V), ('Upload-Complete', '?0'),
                                              ('Upload-Length', str(n))], data[:first])
        eq((r.status, r.header('Upload-Offset')), (201, str(first)), 'IETF creation with %d bytes' % first)
        return r.header('Location')
    fid = 'stale-%s' % os.urandom(4).hex()
    with srv.conn() as c:
        r = c.request('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0'), ('X-File-Size', str(n))],
                      data[:first])
    eq((r.status, r.body), (200, b''), 'article first POST with %d bytes' % first)
    return fid


def _append_head(proto, ref, off, n, total):
    """The head of a request appending n bytes at off."""
    if proto == 'tus':
        return build_head('PATCH', ref, [TUS, ('Upload-Offset', str(off)), ('Content-Type', OCTET),
                                         ('Content-Length', str(n))])
    if proto == 'ietf':
        return build_head('PATCH', ref, [('Upload-Draft-Interop-Version', IETF_V), ('Upload-Offset', str(off)),
                                         ('Upload-Complete', '?1' if off + n == total else '?0'),
                                         ('Content-Type', PARTIAL), ('Content-Length', str(n))])
    return build_head('POST', '/upload', [('X-File-Id', ref), ('X-Start-Byte', str(off)),
                                          ('X-File-Size', str(total)), ('Content-Length', str(n))])


def _offset(srv, proto, ref):
    with srv.conn() as c:
        if proto == 'article':
            r = c.request('GET', '/status', [('X-File-Id', ref)])
            eq(r.status, 200, '/status')
            return int(r.body)
        r = c.request('HEAD', ref, [TUS] if proto == 'tus' else [('Upload-Draft-Interop-Version', IETF_V)])
        check(r.status in (200, 204), 'HEAD %s: %r' % (ref, r))
        return int(r.header('Upload-Offset'))


def _check_stale_refused(proto, r, now, what):
    """The stale request was refused with the offset the server holds (`now`)."""
    if proto == 'article':
        eq((r.status, r.reason, r.body), (400, 'Wrong start byte', b'%d' % now), what + ': stale POST /upload')
    else:
        eq((r.status, r.header('Upload-Offset')), (409, str(now)), what + ': stale PATCH (status, Upload-Offset)')


def _data_file(srv, proto, ref):
    if proto == 'article':
        return srv.data_path(ref)
    return os.path.join(srv.dir, 'uploads', LOCATION_RE.search(ref).group(1))


def _finish_and_verify(srv, proto, ref, data, p):
    """Finish the upload through the proxy and check every byte."""
    off = _offset(srv, proto, ref)
    path = _data_file(srv, proto, ref)
    with Conn(p.port) as c:
        c.send(_append_head(proto, ref, off, len(data) - off, len(data)) + data[off:])
        r = c.read_final('POST' if proto == 'article' else 'PATCH')
    if proto == 'article':
        eq((r.status, r.body), (200, b'Success %d' % len(data)), 'last POST /upload')
    else:
        eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'last PATCH')
        with srv.conn() as c:
            r = c.request('GET', ref)
        eq((r.status, sha(r.body)), (200, sha(data)), 'GET of the finished upload (status, sha256)')
    eq(file_sha(path), sha(data), 'stored file sha256')


def _stale_overtaken(proto, while_sending):
    srv = Server()
    data = os.urandom(300000)
    first, k, m = 100000, 20000, 50000
    ref = _create_direct(srv, proto, data, first)
    path = _data_file(srv, proto, ref)
    garbage = b'\xee' * k       # not the file's bytes: any of them stored shows in the sha256
    with FaultProxy(srv.port) as p:
        # A: held by the proxy for 1 s, then it reaches the server with offset `first`
        p.reorder(STALE_DELAY)
        a = Conn(p.port)
        a.send(_append_head(proto, ref, first, k, len(data)) + garbage)
        check(p.wait_for(lambda p: p.connections == 1, 5), 'proxy did not accept A')
        p.no_reorder()
        t_a = time.monotonic()
        # B: accepted later, reaches the server at once
        b = Conn(p.port)
        if not while_sending:
            b.send(_append_head(proto, ref, first, m, len(data)) + data[first:first + m])
            r = b.read_final('POST' if proto == 'article' else 'PATCH')
            if proto == 'article':
                eq((r.status, r.body), (200, b''), 'B: POST /upload')
            else:
                eq((r.status, r.header('Upload-Offset')), (204, str(first + m)), 'B: PATCH')
            check(time.monotonic() - t_a < STALE_DELAY - 0.2, 'B was answered only after A could have arrived')
            now = first + m
        else:
            # B announces m bytes and sends m // 2, then waits: A arrives while B is open and
            # takes the upload over (ending B, which keeps what it delivered)
            b.send(_append_head(proto, ref, first, m, len(data)) + data[first:first + m // 2])
            now = first + m // 2
        r = a.read_final('POST' if proto == 'article' else 'PATCH')
        check(time.monotonic() - t_a >= STALE_DELAY - 0.2, 'A answered %.2f s after B started: not delayed'
              % (time.monotonic() - t_a))
        _check_stale_refused(proto, r, now, 'A after B')
        eq(p.upstream_order[:2], [2, 1], 'order in which the connections reached the server')
        eq(p.reordered, 1, 'connections reordered by the proxy')
        if while_sending:
            # B was ended: closed, or answered with an error (never a success)
            closed, extra = b.wait_closed(5)
            check(closed or re.match(rb'HTTP/1\.1 [45]\d\d ', extra) is not None,
                  'B neither closed nor refused after A took its upload over: %r' % extra[:200])
            check(b'Success' not in extra and b' 204 ' not in extra, 'B was answered as a success: %r' % extra[:200])
        a.close()
        b.close()
        eq(_offset(srv, proto, ref), now, 'offset after the stale request')
        eq(file_sha(path), sha(data[:now]), 'stored bytes after the stale request (sha256 of the prefix)')
        _finish_and_verify(srv, proto, ref, data, p)


def test_reordered_stale_requests():
    for proto in ('tus', 'ietf', 'article'):
        for while_sending in (False, True):
            try:
                _stale_overtaken(proto, while_sending)
            except TestFailure as e:
                raise TestFailure('%s, stale request arriving %s: %s'
                                  % (proto, 'while the newer one sends' if while_sending else 'after the newer one', e))


def test_proxy_reorder_holds_bytes_of_a_closed_client():
    """faultproxy.reorder(): a client that sent a whole request and closed before the delay ran
    out still has it delivered (and gets nothing back: it is gone); cut_now() ends a waiting
    connection."""
    srv = Server()
    data = os.urandom(40000)
    with FaultProxy(srv.port) as p:
        p.reorder(0.5)
        fid = 'held-%s' % os.urandom(4).hex()
        c = Conn(p.port)
        c.send(build_request('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0'),
                                                 ('X-File-Size', str(len(data)))], data))
        t0 = time.monotonic()
        c.close()
        check(p.wait_for(lambda p: p.upstream_order == [1], 3), 'held connection never reached the server')
        check(time.monotonic() - t0 >= 0.3, 'connected upstream before the delay')
        deadline = time.monotonic() + 5
        while srv.data_files() == [] or not any(file_sha(f) == sha(data) for f in srv.data_files()):
            check(time.monotonic() < deadline, 'the held request was not stored')
            time.sleep(0.05)
        p.reorder(5)
        c = Conn(p.port)
        c.send(b'GET /status HTTP/1.1\r\n')
        check(p.wait_for(lambda p: p.connections == 2, 3), 'second connection not accepted')
        p.cut_now('fin')
        closed, _ = c.wait_closed(3)
        check(closed, 'cut_now() did not end a connection waiting to connect')
        eq(p.cut_log[-1][0], 2, 'cut_log of the waiting connection')
        eq(p.upstream_order, [1], 'connections that reached the server')
        c.close()
