#!/usr/bin/env python3
"""Crash trials: kill -9 (and simulated power loss) at random moments under concurrent uploads.

One trial: start `resumed --quiet` on 127.0.0.1 with a fresh --dir, run several uploads at
once (2-3 each of tus, the IETF draft and the article's protocol; a few MiB each, random
request and body-piece sizes, bodies paced so that kills land inside them), SIGKILL the
server at random moments (2-4 times), restart it on the same directory (same port when it
can be bound again, else a new one that the clients switch to), and after EVERY restart,
while the clients are held back, check every upload:

  (a) the offset the server reports (tus HEAD, IETF HEAD, article /status) is never below
      the highest offset the server ever told a client: tus Upload-Offset of PATCH/HEAD
      answers; IETF Upload-Offset of 104 interim answers, final answers and HEAD; article
      /status bodies, the held count of "400 Wrong start byte", an empty 200 after a full
      body (start + body length: the server commits before it answers) and "Success n";
  (b) the data file DIR/uploads/<key> (the key is the last segment of the Location, or for
      the article's protocol the target of the DIR/article/<sha256("article\\n" + id)>
      symlink) holds exactly the source's first <offset> bytes: nothing else, nothing more;
      a finished upload holds the whole source;
then release the clients, which ask for the offset and resume from it, and at the end
  (c) every upload completes, and its bytes' sha256 equals the source's: tus/IETF by a GET
      download of its URL; article by the finished upload's data file (the alias is gone once
      an article upload is finished; the finished uploads of that length, found through
      their .meta records, must all hold the source: a client that never saw its "Success"
      sends the file again, which makes a second finished copy).

About 3 in 10 restarts are killed again within 20 ms, while the server recovers (it may
not have listened yet), and restarted once more.

--power-loss: the server runs under tests/tools/synctrack.so (LD_PRELOAD), which logs the
size and path of every file at the start of each successful fsync/fdatasync, every
ftruncate, and every rename with what its target held before. After each SIGKILL every
data file is cut to the size it had at its last successful sync (0 if never synced; lowered
by a later ftruncate), which is all a power cut guarantees to keep, and in half of the cases
extended back to its pre-crash length with zeros or random bytes (what a filesystem may show
after a power cut); of the renames no later fsync of their directory covers, a random tail
per directory is undone (the previous record or alias comes back, or none); then the server
restarts with a NEW boot id (--boot-id-file), so its recovery must cut every upload back to
the offset it recorded, which it may only record after syncing.

--selftest: two power-loss trials against broken servers, each of which must fail: one whose
fdatasync does nothing and returns 0 (SYNCTRACK_BREAK=fdatasync: it acknowledges bytes it
never made durable), one whose fsync of a directory does nothing (SYNCTRACK_BREAK=dirfsync;
all its unsynced renames are undone: records and aliases it acknowledged vanish or go
back). The first kill waits until some upload was told an offset above 0, so each must
report violations; a self-test passes only if it does.

Usage: trials.py [--trials N] [--seed S] [--power-loss | --both] [--selftest] [-v]
Prints the seed (sizes, data, choices and kill delays derive from it; thread timing does
not), every violation, a summary line "crash-trials: ..." and, last, "N passed, N failed"
(one per trial; each self-test counts as one). Exit status 1 if any trial failed.
Env: RESUMED_BIN (default build/resumed), SYNCTRACK_SO (default build/tools/synctrack.so).
"""

import argparse
import hashlib
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def _repo_path(p):
    return p if os.path.isabs(p) else os.path.join(REPO, p)


BIN = _repo_path(os.environ.get('RESUMED_BIN') or 'build/resumed')
SHIM = _repo_path(os.environ.get('SYNCTRACK_SO') or 'build/tools/synctrack.so')
LISTEN_RE = re.compile(rb'listening on http://127\.0\.0\.1:(\d+)')
KEY_RE = re.compile(r'^[0-9a-f]{32}$')
SOCK_TIMEOUT = 10.0
QUIESCE_TIMEOUT = 20.0
FINISH_TIMEOUT = 90.0
KiB = 1024
MiB = 1024 * 1024


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------
# a small HTTP/1.1 client that sees interim (1xx) answers while a body is sent
# ---------------------------------------------------------------------------

class ConnectionClosed(OSError):
    pass


class ProtocolError(Exception):
    """A live server answered something this driver cannot continue from."""


class Aborted(Exception):
    """The trial is over: the client stops without reporting anything."""


RETRY = object()    # a request failed because of a kill (or is to be retried)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> last value
        self.body = body

    def h(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return '<%d %r %r>' % (self.status, self.headers, bytes(self.body[:120]))


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=SOCK_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, block):
        # (MSG_DONTWAIT would not do: a socket with a timeout waits for readability first)
        if not block and not select.select([self.sock], [], [], 0)[0]:
            return False
        d = self.sock.recv(256 * KiB)
        if not d:
            raise ConnectionClosed('connection closed by the server')
        self.buf += d
        return True

    def _parse(self, method):
        """One complete response from the buffer, or None."""
        buf = self.buf
        i = buf.find(b'\r\n\r\n')
        if i < 0:
            return None
        lines = bytes(buf[:i]).decode('latin-1').split('\r\n')
        m = re.match(r'HTTP/1\.[01] (\d{3})', lines[0])
        if not m:
            raise ProtocolError('bad status line %r' % lines[0])
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(':')
            headers[k.strip().lower()] = v.strip()
        start = i + 4
        if 100 <= status < 200 or status in (204, 304) or method == 'HEAD':
            del buf[:start]
            return Response(status, headers, b'')
        if 'chunked' in headers.get('transfer-encoding', '').lower():
            body, pos = bytearray(), start
            while True:
                j = buf.find(b'\r\n', pos)
                if j < 0:
                    return None
                size = int(bytes(buf[pos:j]).split(b';')[0], 16)
                if size == 0:
                    k = buf.find(b'\r\n\r\n', j)
                    if k < 0:
                        return None
                    del buf[:k + 4]
                    return Response(status, headers, bytes(body))
                if len(buf) < j + 2 + size + 2:
                    return None
                body += buf[j + 2:j + 2 + size]
                pos = j + 2 + size + 2
        n = int(headers.get('content-length', '0'))
        if len(buf) < start + n:
            return None
        body = bytes(buf[start:start + n])
        del buf[:start + n]
        return Response(status, headers, body)

    def read(self, method):
        while True:
            r = self._parse(method)
            if r is not None:
                return r
            self._recv(True)

    def poll(self, method):
        """Responses complete in what has arrived so far (does not block)."""
        out = []
        while self._recv(False):
            pass
        while True:
            r = self._parse(method)
            if r is None:
                return out
            out.append(r)


def head_bytes(method, path, headers):
    lines = ['%s %s HTTP/1.1' % (method, path), 'Host: 127.0.0.1']
    lines += ['%s: %s' % kv for kv in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')


def exchange(port, method, path, headers, body=b'', rng=None, pace=None, on_interim=None):
    """One request on a new connection. The body goes out in pieces (sizes and pauses from
    pace = (min_piece, max_piece, max_pause)) while interim answers are handed to on_interim;
    returns the final response."""
    c = Conn(port)
    try:
        headers = list(headers)
        if body or method in ('POST', 'PATCH'):
            headers.append(('Content-Length', str(len(body))))
        c.send(head_bytes(method, path, headers))
        pos = 0
        while pos < len(body):
            n = rng.randint(pace[0], pace[1]) if pace else len(body)
            c.send(body[pos:pos + n])
            pos += n
            for r in c.poll(method):
                if 100 <= r.status < 200:
                    if on_interim:
                        on_interim(r)
                else:
                    return r   # answered before the body ended
            if pace and pos < len(body):
                time.sleep(rng.uniform(0, pace[2]))
        while True:
            r = c.read(method)
            if 100 <= r.status < 200:
                if on_interim:
                    on_interim(r)
                continue
            return r
    finally:
        c.close()


# ---------------------------------------------------------------------------
# the server and the kill/restart controller
# ---------------------------------------------------------------------------

class ServerProc:
    def __init__(self, base, power_loss, broken, rng):
        self.base = base
        self.dir = os.path.realpath(os.path.join(base, 'data'))
        self.bootf = os.path.join(base, 'boot_id')
        self.synclog = os.path.join(base, 'synctrack.log')
        self.prevdir = os.path.join(base, 'prev')     # what renames replaced (synctrack)
        os.makedirs(self.prevdir)
        self.errlog = os.path.join(base, 'stderr.log')
        self.power_loss = power_loss
        self.broken = broken
        self.rng = rng
        self.proc = None
        self.port = 0
        self.port_changes = 0
        self.new_boot()

    def new_boot(self):
        with open(self.bootf, 'w') as f:
            f.write('%032x\n' % self.rng.getrandbits(128))

    def start(self, sync_interval, kill_after=None):
        argv_tail = ['--dir', self.dir, '--boot-id-file', self.bootf]
        if sync_interval:
            argv_tail += ['--sync-interval', sync_interval]
        env = dict(os.environ)
        if self.power_loss:
            env['LD_PRELOAD'] = SHIM
            env['SYNCTRACK_LOG'] = self.synclog
            env['SYNCTRACK_PREV_DIR'] = self.prevdir
            if self.broken:
                env['SYNCTRACK_BREAK'] = self.broken
        for port in ([self.port, 0] if self.port else [0]):
            with open(self.errlog, 'ab') as err:
                mark = err.tell()
                self.proc = subprocess.Popen(
                    [BIN, '--quiet', '--listen', '127.0.0.1:%d' % port] + argv_tail,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
            if kill_after is not None:
                time.sleep(kill_after)
                self.kill()
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(self.errlog, 'rb') as f:
                    f.seek(mark)
                    m = LISTEN_RE.search(f.read())
                if m:
                    if self.port and int(m.group(1)) != self.port:
                        self.port_changes += 1
                    self.port = int(m.group(1))
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.01)
            self.kill()
        raise RuntimeError('server did not start; stderr tail: %r' % self.stderr_tail())

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stderr_tail(self, n=12):
        try:
            with open(self.errlog, 'rb') as f:
                return f.read().decode('utf-8', 'replace').splitlines()[-n:]
        except OSError:
            return []

    def uploads_dir(self):
        return os.path.join(self.dir, 'uploads')


class Controller:
    """Holds the clients back while the server is down and while the checks run.

    A client passes gate() before every request; a request that fails calls failed(): if
    the server was killed since the request began, the client waits in there for the
    release. kill() waits until every unfinished client is waiting, so nothing talks to
    the restarted server, or touches the files, before the checks are done."""

    def __init__(self):
        self.cv = threading.Condition()
        self.running = False
        self.epoch = 0
        self.port = 0
        self.aborted = False
        self.waiting = set()
        self.active = set()

    def gate(self, client):
        with self.cv:
            if not self.running:
                self._wait_release(client, self.epoch)
            if self.aborted:
                raise Aborted()
            return self.port, self.epoch

    def _wait_release(self, client, epoch):
        self.waiting.add(client)
        self.cv.notify_all()
        while not (self.running and self.epoch > epoch) and not self.aborted:
            self.cv.wait()
        self.waiting.discard(client)
        if self.aborted:
            raise Aborted()

    def failed(self, client, epoch):
        """True if the failure is explained by a kill (the client then waited for the restart)."""
        with self.cv:
            if self.aborted:
                raise Aborted()
            if self.running and self.epoch == epoch:
                return False
            if self.epoch == epoch:
                self._wait_release(client, epoch)
            return True

    def abort(self):
        with self.cv:
            self.aborted = True
            self.running = False
            self.cv.notify_all()

    def client_done(self, client):
        with self.cv:
            self.active.discard(client)
            self.cv.notify_all()

    def stop_clients(self):
        with self.cv:
            self.running = False

    def quiesce(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not self.active <= self.waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    return sorted(c.name for c in self.active - self.waiting)
                self.cv.wait(left)
        return []

    def release(self, port):
        with self.cv:
            self.port = port
            self.epoch += 1
            self.running = True
            self.cv.notify_all()


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

class Upload:
    proto = None

    def __init__(self, trial, name, data, rng):
        self.t = trial
        self.name = name
        self.data = data
        self.n = len(data)
        self.rng = rng
        self.told = 0            # highest offset the server ever told about this upload
        self.complete = False    # the server said it is complete
        self.failed = None       # why this client gave up
        self.unexplained = 0     # failures of requests to a live server, in a row
        self.thread = None

    # -- shared plumbing --
    def tell(self, off, what):
        if off > self.n:
            self.t.violation(self, '%s: offset %d beyond the source length %d' % (what, off, self.n))
        self.told = max(self.told, off)
        with self.t.vlock:
            self.t.tells[what] = self.t.tells.get(what, 0) + 1

    def pace(self):
        return self.t.pace

    def attempt(self, fn):
        """Runs fn(port); RETRY if the request failed because of a kill (after the restart),
        or failed on a live server (up to 5 times in a row)."""
        port, epoch = self.t.ctl.gate(self)
        try:
            r = fn(port)
            self.unexplained = 0
            return r
        except OSError as e:
            if self.t.ctl.failed(self, epoch):
                return RETRY
            self.unexplained += 1
            if self.unexplained >= 5:
                raise ProtocolError('5 requests in a row failed on a live server, last: %r' % e)
            time.sleep(0.05)
            return RETRY

    def run(self):
        try:
            self.upload()
        except Aborted:
            pass
        except ProtocolError as e:
            self.failed = str(e)
            self.t.violation(self, 'client gave up: %s' % e)
        except Exception as e:  # noqa: a driver bug must not hang the trial
            self.failed = '%s: %s' % (type(e).__name__, e)
            self.t.violation(self, 'client crashed: %s' % self.failed)
        finally:
            self.t.ctl.client_done(self)

    def chunk(self, off):
        """Size of the next request's body: anything from 128 KiB to the whole rest."""
        left = self.n - off
        if self.rng.random() < 0.25:
            return left
        return min(left, self.rng.randint(128 * KiB, 2 * MiB))


class TusUpload(Upload):
    proto = 'tus'

    def __init__(self, *a):
        super().__init__(*a)
        self.url = None

    def key(self):
        return self.url.rsplit('/', 1)[-1] if self.url else None

    def query(self, port):
        """(offset, complete) from HEAD, or None for 404."""
        r = exchange(port, 'HEAD', self.url, [('Tus-Resumable', '1.0.0')])
        if r.status == 404:
            return None
        if r.status != 200 or r.h('upload-offset') is None:
            raise ProtocolError('HEAD %s: %r' % (self.url, r))
        off = int(r.h('upload-offset'))
        return off, off == self.n

    def upload(self):
        while not self.complete:
            if not self.url:
                r = self.attempt(lambda p: exchange(p, 'POST', self.t.base_path, [
                    ('Tus-Resumable', '1.0.0'), ('Upload-Length', str(self.n))]))
                if r is RETRY:
                    continue
                if r.status != 201 or not r.h('location'):
                    raise ProtocolError('POST: %r' % r)
                self.url = re.sub(r'^https?://[^/]+', '', r.h('location'))
                continue
            q = self.attempt(self.query)
            if q is RETRY:
                continue
            if q is None:
                raise ProtocolError('HEAD %s: 404' % self.url)
            off, _ = q
            self.tell(off, 'HEAD')
            if off == self.n:
                self.complete = True
                break
            while off < self.n:
                body = self.data[off:off + self.chunk(off)]
                r = self.attempt(lambda p: exchange(p, 'PATCH', self.url, [
                    ('Tus-Resumable', '1.0.0'), ('Upload-Offset', str(off)),
                    ('Content-Type', 'application/offset+octet-stream')], body, self.rng, self.pace()))
                if r is RETRY or r.status == 409:
                    break    # ask again
                if r.status != 204 or r.h('upload-offset') is None:
                    raise ProtocolError('PATCH at %d: %r' % (off, r))
                new = int(r.h('upload-offset'))
                if new != off + len(body):
                    raise ProtocolError('PATCH at %d with %d bytes answered offset %d' % (off, len(body), new))
                off = new
                self.tell(off, 'PATCH')
            if off == self.n:
                self.complete = True


class IetfUpload(Upload):
    proto = 'ietf'

    def __init__(self, *a):
        super().__init__(*a)
        self.url = None
        self.version = self.rng.choice((4, 5, 6, 7, 8))
        self.send_length = self.rng.random() < 0.5

    key = TusUpload.key

    def vh(self):
        return ('Upload-Draft-Interop-Version', str(self.version))

    def on_interim(self, r):
        if r.status != 104:
            return
        if r.h('location') and not self.url:
            self.url = re.sub(r'^https?://[^/]+', '', r.h('location'))
        if r.h('upload-offset') is not None:
            self.tell(int(r.h('upload-offset')), '104')

    def final(self, r, what, off, sent):
        """Offset after a creation or append answer; raises if the answer is not a success."""
        if r.status not in (201, 204) or r.h('upload-offset') is None:
            raise ProtocolError('%s: %r' % (what, r))
        new = int(r.h('upload-offset'))
        if new != off + sent:
            raise ProtocolError('%s at %d with %d bytes answered offset %d' % (what, off, sent, new))
        self.tell(new, what)
        if r.h('upload-complete') == '?1':
            if new != self.n:
                raise ProtocolError('%s: complete at %d of %d' % (what, new, self.n))
            self.complete = True
        return new

    def query(self, port):
        r = exchange(port, 'HEAD', self.url, [self.vh()])
        if r.status == 404:
            return None
        if r.status not in (200, 204) or r.h('upload-offset') is None:
            raise ProtocolError('HEAD %s: %r' % (self.url, r))
        return int(r.h('upload-offset')), r.h('upload-complete') == '?1'

    def upload(self):
        while not self.complete:
            if not self.url:
                first = self.chunk(0) if self.rng.random() < 0.7 else 0
                body = self.data[:first]
                h = [self.vh(), ('Upload-Complete', '?1' if first == self.n else '?0'),
                     ('Content-Type', 'application/octet-stream')]
                if self.send_length:
                    h.append(('Upload-Length', str(self.n)))
                r = self.attempt(lambda p: exchange(p, 'POST', self.t.base_path, h, body, self.rng,
                                                    self.pace(), self.on_interim))
                if r is RETRY:
                    continue
                if not r.h('location'):
                    raise ProtocolError('POST: %r' % r)
                self.url = re.sub(r'^https?://[^/]+', '', r.h('location'))
                self.final(r, 'POST', 0, first)
                continue
            q = self.attempt(self.query)
            if q is RETRY:
                continue
            if q is None:
                raise ProtocolError('HEAD %s: 404' % self.url)
            off, complete = q
            self.tell(off, 'HEAD')
            if complete:
                if off != self.n:
                    raise ProtocolError('HEAD: complete at %d of %d' % (off, self.n))
                self.complete = True
                break
            while not self.complete:
                body = self.data[off:off + self.chunk(off)]
                last = off + len(body) == self.n
                h = [self.vh(), ('Upload-Offset', str(off)), ('Upload-Complete', '?1' if last else '?0'),
                     ('Content-Type', 'application/partial-upload')]
                r = self.attempt(lambda p: exchange(p, 'PATCH', self.url, h, body, self.rng, self.pace(),
                                                    self.on_interim))
                if r is RETRY or r.status == 409:
                    break
                off = self.final(r, 'PATCH', off, len(body))


class ArticleUpload(Upload):
    proto = 'article'

    def __init__(self, *a):
        super().__init__(*a)
        self.fid = 'crash-%s-%s' % (self.name, '%016x' % self.rng.getrandbits(64))
        self.alias = hashlib.sha256(b'article\n' + self.fid.encode()).hexdigest()
        self.with_size = self.rng.random() < 0.5

    def key(self):
        try:
            k = os.path.basename(os.readlink(os.path.join(self.t.srv.dir, 'article', self.alias)))
        except OSError:
            return None
        return k if KEY_RE.match(k) else None

    def query(self, port):
        r = exchange(port, 'GET', '/status', [('X-File-Id', self.fid)])
        if r.status != 200 or not re.fullmatch(rb'\d+', r.body):
            raise ProtocolError('GET /status: %r' % r)
        return int(r.body), False

    def upload(self):
        while not self.complete:
            q = self.attempt(self.query)
            if q is RETRY:
                continue
            held = q[0]
            self.tell(held, '/status')
            while not self.complete:
                if self.with_size:
                    body = self.data[held:held + self.chunk(held)]
                else:
                    body = self.data[held:]   # the article's client: the whole rest
                h = [('X-File-Id', self.fid), ('X-Start-Byte', str(held))]
                if self.with_size:
                    h.append(('X-File-Size', str(self.n)))
                r = self.attempt(lambda p: exchange(p, 'POST', '/upload', h, body, self.rng, self.pace()))
                if r is RETRY:
                    break
                if r.status == 400 and re.fullmatch(rb'\d+', r.body):   # Wrong start byte
                    self.tell(int(r.body), '400 Wrong start byte')
                    break
                if r.status != 200:
                    raise ProtocolError('POST /upload at %d: %r' % (held, r))
                m = re.fullmatch(rb'Success (\d+)', r.body)
                if m:
                    if int(m.group(1)) != self.n or held + len(body) != self.n:
                        raise ProtocolError('POST /upload at %d with %d bytes: %r' % (held, len(body), r))
                    self.tell(self.n, 'Success')
                    self.complete = True
                    break
                if r.body:
                    raise ProtocolError('POST /upload at %d: %r' % (held, r))
                held += len(body)
                self.tell(held, 'empty 200 after the whole body')


# ---------------------------------------------------------------------------
# the trial
# ---------------------------------------------------------------------------

def read_meta(path):
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return {}
    out = {}
    for line in text.split('\n'):
        k, _, v = line.partition(' ')
        out.setdefault(k, v)
    return out


class SyncLog:
    """What one server process's synctrack log says (see tests/tools/synctrack.c)."""

    def __init__(self, log_path):
        self.events = []      # (op, rc, size, seq, path, extra), in the order the calls ended
        try:
            with open(log_path, 'rb') as f:
                lines = f.read().decode('utf-8', 'replace').splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            head, _, extra = line.partition('\t')
            parts = head.split(' ', 4)
            if len(parts) == 5:
                self.events.append((parts[0], int(parts[1]), int(parts[2]), int(parts[3]), parts[4], extra))

    def update_durable(self, dur):
        """dur: path -> bytes a power cut must keep; the syncs and truncations of this log applied."""
        for op, rc, size, seq, path, extra in self.events:
            if rc != 0 or size < 0:
                continue
            if op in ('fsync', 'fdatasync'):
                dur[path] = max(dur.get(path, 0), size)
            elif op == 'ftruncate':
                dur[path] = min(dur.get(path, 0), size)

    def pending_renames(self):
        """Renames no fsync of their directory covers (one that began after the rename ended):
        {directory: [(seq, path, previous), ...] in seq order}."""
        synced = {}
        for op, rc, size, seq, path, extra in self.events:
            if op == 'fsync' and rc == 0:
                synced[path] = max(synced.get(path, 0), seq)
        out = {}
        for op, rc, size, seq, path, extra in self.events:
            d = os.path.dirname(path)
            if op == 'renameat' and rc == 0 and synced.get(d, 0) < seq:
                out.setdefault(d, []).append((seq, path, extra))
        for v in out.values():
            v.sort()
        return out


def undo_rename(path, prev):
    """Puts back what path held before a rename (see synctrack's "previous")."""
    if os.path.lexists(path):
        os.unlink(path)
    if prev.startswith('link:'):
        os.symlink(prev[5:], path)
    elif prev.startswith('copy:'):
        shutil.copyfile(prev[5:], path)


class Trial:
    def __init__(self, index, seed, mode, verbose=False, broken=None, wait_told=False):
        self.index = index
        self.seed = seed
        self.mode = mode
        self.power_loss = mode == 'power-loss'
        self.broken = broken
        self.wait_told = wait_told
        self.verbose = verbose
        self.rng = random.Random(seed)
        self.violations = []
        self.vlock = threading.Lock()
        self.ctl = Controller()
        self.base_path = '/files/'
        self.kills = 0
        self.kills_in_flight = 0
        self.checks = 0
        self.mid_checks = 0       # checks of an upload strictly between 0 and its end
        self.early_kills = 0      # kills during start-up (recovery)
        self.cut_bytes = 0
        self.durable = {}            # path -> bytes a power cut must keep
        self.renames_in_flight = 0   # renames a kill caught before their directory's fsync
        self.renames_undone = 0      # ... of which the simulated power cut undid
        self.tells = {}
        self.pace = (8 * KiB, 48 * KiB, 0.04)

    def label(self):
        if self.broken:
            return 'selftest (no %s) (seed %d)' % (self.broken, self.seed)
        return '%s trial %d (seed %d)' % (self.mode, self.index, self.seed)

    def violation(self, up, msg):
        with self.vlock:
            self.violations.append('%s: %s %s (%d bytes): %s' % (
                self.label(), up.proto if up else '-', up.name if up else '-', up.n if up else 0, msg))

    def log(self, msg):
        if self.verbose:
            print('  [%s] %s' % (self.label(), msg), flush=True)

    def make_uploads(self):
        ups, sizes = [], set()
        for cls in (TusUpload, IetfUpload, ArticleUpload):
            for i in range(self.rng.randint(2, 3)):
                n = self.rng.randint(1 * MiB, 5 * MiB)
                while n in sizes:    # article copies are found by length
                    n += 1
                sizes.add(n)
                sub = random.Random(self.rng.getrandbits(64))
                ups.append(cls(self, '%s%d' % (cls.proto, i), sub.randbytes(n), sub))
        return ups

    def run(self):
        base = tempfile.mkdtemp(prefix='resumed-crash-')
        self.srv = ServerProc(base, self.power_loss, self.broken, self.rng)
        ups = self.make_uploads()
        try:
            self._run(ups)
        except Exception as e:  # noqa: report, never hang
            self.violation(None, 'driver error: %s: %s' % (type(e).__name__, e))
        finally:
            self.ctl.abort()
            self.srv.kill()
            for u in ups:
                if u.thread:
                    u.thread.join(timeout=SOCK_TIMEOUT + 5)
            if self.violations:
                for line in self.srv.stderr_tail(20):
                    self.violations.append('%s:   server stderr: %s' % (self.label(), line))
            shutil.rmtree(base, ignore_errors=True)
        return ups

    def sync_interval(self):
        return self.rng.choice((None, '16K', '64K', '256K'))

    def _run(self, ups):
        srv, ctl = self.srv, self.ctl
        srv.start(self.sync_interval())
        ctl.release(srv.port)
        for u in ups:
            ctl.active.add(u)
            u.thread = threading.Thread(target=u.run, name=u.name, daemon=True)
            u.thread.start()
        nkills = self.rng.randint(2, 4)
        for k in range(nkills):
            time.sleep(self.rng.uniform(0.1, 0.8))
            if self.wait_told and k == 0:
                deadline = time.monotonic() + 30
                while not any(u.told > 0 for u in ups) and time.monotonic() < deadline:
                    time.sleep(0.02)
            in_flight = sum(1 for u in ups if not u.complete)
            ctl.stop_clients()
            self.check_alive('before kill %d' % (k + 1))
            srv.kill()
            self.kills += 1
            self.kills_in_flight += in_flight > 0
            stuck = ctl.quiesce(QUIESCE_TIMEOUT)
            if stuck:
                raise RuntimeError('clients did not stop after the kill: %s' % stuck)
            if self.power_loss:
                self.lose_power()
                srv.new_boot()
            if self.rng.random() < 0.3:
                # once more while it recovers (it may not even have listened yet)
                srv.start(self.sync_interval(), kill_after=self.rng.uniform(0, 0.02))
                self.kills += 1
                self.early_kills += 1
                if self.power_loss:
                    self.lose_power()
                    srv.new_boot()
            srv.start(self.sync_interval())
            self.log('kill %d: %d uploads in flight; restarted on port %d; told so far: %s'
                     % (k + 1, in_flight, srv.port, ' '.join('%s=%d' % (u.name, u.told) for u in ups)))
            for u in ups:
                self.check(u, srv.port)
            ctl.release(srv.port)
        deadline = time.monotonic() + FINISH_TIMEOUT
        for u in ups:
            u.thread.join(max(0.0, deadline - time.monotonic()))
            if u.thread.is_alive():
                self.violation(u, 'did not complete within %.0f s (told %d)' % (FINISH_TIMEOUT, u.told))
        ctl.stop_clients()
        for u in ups:
            if u.complete and not u.failed:
                self.verify_final(u, srv.port)
        self.check_alive('at the end')

    def check_alive(self, when):
        rc = self.srv.proc.poll()
        if rc is not None:
            self.violation(None, 'the server exited on its own %s (status %d)' % (when, rc))

    # -- power loss --
    def lose_power(self):
        """What a power cut may leave of what the killed process did: data past each file's
        last sync gone (or garbage), and of the renames whose directory was not yet synced, a
        random tail per directory undone (the filesystem keeps their order)."""
        log = SyncLog(self.srv.synclog)
        if os.path.exists(self.srv.synclog):
            os.unlink(self.srv.synclog)   # the next process starts a log of its own (seq restarts)
        log.update_durable(self.durable)
        for d, pending in sorted(log.pending_renames().items()):
            self.renames_in_flight += len(pending)
            # (against a server that never syncs a directory, all: the self-test must fail)
            keep = 0 if self.broken == 'dirfsync' else self.rng.randint(0, len(pending))
            unknown = [i for i, r in enumerate(pending) if r[2] not in ('none',) and
                       not r[2].startswith(('link:', 'copy:'))]
            if unknown:
                keep = max(keep, unknown[-1] + 1)
            for seq, path, prev in reversed(pending[keep:]):
                undo_rename(path, prev)
                self.renames_undone += 1
        dur = self.durable
        d = self.srv.uploads_dir()
        for name in sorted(os.listdir(d)):
            if not KEY_RE.match(name):
                continue
            path = os.path.join(d, name)
            cur = os.path.getsize(path)
            keep = min(dur.get(path, 0), cur)
            if keep == cur:
                continue
            self.cut_bytes += cur - keep
            with open(path, 'r+b') as f:
                f.truncate(keep)
                fill = self.rng.choice(('zeros', 'garbage')) if self.rng.random() < 0.5 else 'none'
                if fill == 'zeros':
                    f.truncate(cur)
                elif fill == 'garbage':
                    f.seek(keep)
                    f.write(self.rng.randbytes(cur - keep))

    # -- checks --
    def stored(self, key):
        path = os.path.join(self.srv.uploads_dir(), key)
        try:
            with open(path, 'rb') as f:
                return f.read()
        except OSError:
            return None

    def finished_article_copies(self, n):
        d = self.srv.uploads_dir()
        out = []
        for name in sorted(os.listdir(d)):
            if not name.endswith('.meta') or not KEY_RE.match(name[:-5]):
                continue
            m = read_meta(os.path.join(d, name))
            if m.get('kind') == 'article' and m.get('finished') == '1' and m.get('length') == str(n):
                out.append(name[:-5])
        return out

    def check_prefix(self, u, key, off, complete):
        data = self.stored(key)
        if data is None:
            self.violation(u, 'data file uploads/%s missing (reported offset %d)' % (key, off))
            return
        if complete and len(data) != u.n:
            self.violation(u, 'finished, but the data file has %d bytes' % len(data))
        elif len(data) != off:
            self.violation(u, 'data file has %d bytes, reported offset %d' % (len(data), off))
        if 0 < off < u.n and not complete:
            self.mid_checks += 1
        upto = min(off, len(data))
        if data[:upto] != u.data[:upto]:
            first = next(i for i in range(upto) if data[i] != u.data[i])
            self.violation(u, 'stored bytes differ from the source at byte %d (reported offset %d)'
                           % (first, off))

    def check(self, u, port):
        """(a) and (b) for one upload, right after a restart."""
        self.checks += 1
        if u.failed:
            return
        if u.proto == 'article':
            held = u.query(port)[0]
            if held < u.told:
                copies = self.finished_article_copies(u.n)
                good = [k for k in copies if self.stored(k) == u.data]
                if good and len(good) == len(copies):
                    # it finished (perhaps without the client seeing "Success"): /status is 0 and
                    # a client that sends again starts a new upload, promised nothing yet
                    self.log('%s finished (%d copies); /status %d' % (u.name, len(copies), held))
                    u.told = held
                else:
                    self.violation(u, '(a) /status %d after restart < %d told before, and no finished '
                                   'copy holds the source (%d finished of that length)' % (held, u.told, len(copies)))
                    u.told = held
            key = u.key()
            if held > 0 and key is None:
                self.violation(u, '/status %d but no DIR/article alias' % held)
            elif key is not None:
                self.check_prefix(u, key, held, False)
            u.told = max(u.told, held)
            return
        if not u.url:
            return    # never created as far as any answer said
        q = u.query(port)
        if q is None:
            self.violation(u, '%s HEAD %s: 404 after restart (told %d)' % (u.proto, u.url, u.told))
            u.failed = 'lost'
            return
        off, complete = q
        if off < u.told:
            self.violation(u, '(a) offset %d after restart < %d told before' % (off, u.told))
        if u.complete and (not complete or off != u.n):
            self.violation(u, 'was complete, after restart offset %d complete %r' % (off, complete))
        self.check_prefix(u, u.key(), off, complete)
        u.told = max(u.told, off)

    def verify_final(self, u, port):
        """(c): the finished upload holds the source."""
        if u.proto == 'article':
            copies = self.finished_article_copies(u.n)
            if not copies:
                self.violation(u, '(c) no finished article upload of this length')
            for k in copies:
                data = self.stored(k)
                if data is None or sha(data) != sha(u.data):
                    self.violation(u, '(c) finished copy %s: sha256 differs from the source' % k)
            return
        try:
            r = exchange(port, 'GET', u.url, [])
        except OSError as e:
            self.violation(u, '(c) GET %s failed: %r' % (u.url, e))
            return
        if r.status != 200 or sha(r.body) != sha(u.data):
            self.violation(u, '(c) GET %s: status %d, %d bytes, sha256 %s (source %s)'
                           % (u.url, r.status, len(r.body), sha(r.body)[:16], sha(u.data)[:16]))


def main(argv):
    ap = argparse.ArgumentParser(description='kill -9 / power-loss trials against resumed')
    ap.add_argument('--trials', type=int, default=5, help='trials per mode (default 5)')
    ap.add_argument('--seed', type=int, default=None, help='master seed (default: random)')
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--power-loss', action='store_true', help='simulate power loss after each kill')
    g.add_argument('--both', action='store_true', help='N trials of kill -9 and N of power loss')
    ap.add_argument('--selftest', action='store_true',
                    help='also run one trial against a server whose fdatasync is a no-op: it must fail')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 32)
    print('crash-trials: seed %d (reproduce with --seed %d)' % (seed, seed), flush=True)
    if not os.access(BIN, os.X_OK):
        print('server binary missing: %s' % BIN)
        print('0 passed, 1 failed')
        return 1
    need_shim = a.power_loss or a.both or a.selftest
    if need_shim and not os.path.exists(SHIM):
        print('shim missing: %s (make build/tools/synctrack.so)' % SHIM)
        print('0 passed, 1 failed')
        return 1
    master = random.Random(seed)
    modes = [] if a.power_loss else ['kill'] * a.trials
    if a.power_loss or a.both:
        modes += ['power-loss'] * a.trials
    passed = failed = kills = in_flight = checked = mid = violations = nups = renames = undone = 0
    tells = {}
    t0 = time.monotonic()
    for i, mode in enumerate(modes):
        t = Trial(i + 1, master.getrandbits(32), mode, a.verbose)
        t1 = time.monotonic()
        ups = t.run()
        kills += t.kills
        in_flight += t.kills_in_flight
        checked += t.checks
        mid += t.mid_checks
        renames += t.renames_in_flight
        undone += t.renames_undone
        nups += len(ups)
        for k, v in t.tells.items():
            tells[k] = tells.get(k, 0) + v
        violations += len([v for v in t.violations if 'server stderr' not in v])
        for v in t.violations:
            print('VIOLATION ' + v)
        ok = not t.violations
        passed += ok
        failed += not ok
        print('%s %s: %d uploads, %d kills (%d with uploads in flight, %d during start-up), '
              '%d checks (%d mid-upload)%s, %.1f s'
              % ('PASS' if ok else 'FAIL', t.label(), len(ups), t.kills, t.kills_in_flight, t.early_kills,
                 t.checks, t.mid_checks,
                 ', %d bytes lost to power cuts' % t.cut_bytes if t.power_loss else '',
                 time.monotonic() - t1), flush=True)
    for broken, what in (('fdatasync', 'fdatasync does nothing'),
                         ('dirfsync', 'fsync of a directory does nothing')):
        if not a.selftest:
            break
        t = Trial(0, master.getrandbits(32), 'power-loss', a.verbose, broken=broken, wait_told=True)
        t1 = time.monotonic()
        t.run()
        real = [v for v in t.violations if 'server stderr' not in v]
        for v in real[:3]:
            print('  expected: ' + v)
        ok = len(real) >= 1
        passed += ok
        failed += not ok
        print('%s %s: a server whose %s gave %d violations (at least 1 required), %.1f s'
              % ('PASS' if ok else 'FAIL', t.label(), what, len(real), time.monotonic() - t1), flush=True)
    print('offsets told, by source: %s' % ', '.join('%s %d' % kv for kv in sorted(tells.items())))
    if a.power_loss or a.both:
        print('renames caught by a kill before their directory was synced: %d, of which power cuts undid %d'
              % (renames, undone))
    print('crash-trials: %d trials, %d kills (%d with uploads in flight), %d uploads, %d upload checks '
          '(%d mid-upload), %d violations, %.0f s (seed %d)'
          % (len(modes), kills, in_flight, nups, checked, mid, violations, time.monotonic() - t0, seed))
    print('%d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
