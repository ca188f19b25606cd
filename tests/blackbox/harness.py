"""Black-box test harness for `resumed` (standard library only).

- Server: starts the binary (env RESUMED_BIN, default <repo>/build/resumed) with
  `--listen 127.0.0.1:0 --dir DIR --web WEB` plus extra flags, waits for the
  `resumed: listening on http://127.0.0.1:PORT` line on stderr (10 s), then keeps
  draining stderr (and stdout) in threads into lists.  Every process started is
  registered and killed by PID at the end of the test (run.py calls finish_test())
  and at interpreter exit (atexit).
- Sanitizer reports on a server's stderr make the owning test fail (finish_test).
- Conn: raw-socket HTTP/1.1 client (send bytes, read full responses incl. 1xx,
  detect close).
"""

import atexit
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def _resolve_bin():
    b = os.environ.get('RESUMED_BIN') or os.path.join('build', 'resumed')
    if os.path.isabs(b):
        return b
    if os.path.exists(b):          # relative to the current directory
        return os.path.abspath(b)
    return os.path.join(REPO, b)   # relative to the repo root


BIN = _resolve_bin()

SOCK_TIMEOUT = 10.0
LISTEN_RE = re.compile(r'resumed: listening on http://127\.0\.0\.1:(\d+)')
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer',
                     'ERROR: UndefinedBehaviorSanitizer', 'WARNING: ThreadSanitizer',
                     # valgrind's "==PID== Invalid read of size 4" and the like (make valgrind)
                     'Invalid read of size', 'Invalid write of size', 'uninitialised',
                     'definitely lost in loss record', 'Invalid free()', 'Mismatched free()')
# RESUMED_WRAPPER: a command prefix for the server's command line (make valgrind); it starts slower.
WRAPPER = shlex.split(os.environ.get('RESUMED_WRAPPER', ''))
LISTEN_TIMEOUT = 60.0 if WRAPPER else 10.0

INDEX_HTML = b'<!doctype html>\n<html><head><title>bb-index</title></head><body>blackbox index</body></html>\n'
APP_JS = b'// blackbox app\nconsole.log("bb-app");\n'


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure('%s: expected %r, got %r' % (what, _short(want), _short(got)))


def _short(v):
    if isinstance(v, bytes) and len(v) > 200:
        return v[:200] + b'...(len %d)' % len(v)
    if isinstance(v, str) and len(v) > 200:
        return v[:200] + '...(len %d)' % len(v)
    return v


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def rand_id(prefix='id'):
    return '%s-%s' % (prefix, os.urandom(6).hex())


# ---------------------------------------------------------------------------
# process registry
# ---------------------------------------------------------------------------

_registry_lock = threading.Lock()
_all_servers = []          # every Server ever created (for atexit)
_test_servers = []         # servers created during the current test
_test_tempdirs = []        # temp dirs created during the current test
_all_tempdirs = []


def _kill_pid(proc):
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def make_tempdir(prefix='resumed-bb-'):
    d = tempfile.mkdtemp(prefix=prefix)
    with _registry_lock:
        _test_tempdirs.append(d)
        _all_tempdirs.append(d)
    return d


def finish_test():
    """Kill every server of the current test, remove its temp dirs.
    Returns a list of sanitizer report excerpts (empty if none)."""
    with _registry_lock:
        servers = list(_test_servers)
        dirs = list(_test_tempdirs)
        _test_servers.clear()
        _test_tempdirs.clear()
    reports = []
    for s in servers:
        try:
            # SIGTERM first so that an ASan build can run its leak check at exit; SIGKILL after 3 s
            s.stop(timeout=3.0)
        except Exception:
            pass
        try:
            s.kill()
        except Exception:
            pass
        reports.extend(s.sanitizer_reports())
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return reports


def kill_current_servers():
    with _registry_lock:
        servers = list(_test_servers)
    for s in servers:
        try:
            s.kill()
        except Exception:
            pass


@atexit.register
def _atexit_cleanup():
    for s in list(_all_servers):
        try:
            for p in s.procs:
                _kill_pid(p)
        except Exception:
            pass
    for d in list(_all_tempdirs):
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------

class Server:
    """A `resumed` process on a temp DIR.  `restart()` reuses the same DIR."""

    def __init__(self, *extra, web=True, start=True, base=None):
        self.extra = [str(x) for x in extra]
        self.base = base or make_tempdir()
        self.dir = os.path.join(self.base, 'data')
        os.makedirs(self.dir, exist_ok=True)
        self.web = None
        if web is True:
            self.web = os.path.join(self.base, 'web')
            os.makedirs(self.web, exist_ok=True)
            with open(os.path.join(self.web, 'index.html'), 'wb') as f:
                f.write(INDEX_HTML)
            with open(os.path.join(self.web, 'app.js'), 'wb') as f:
                f.write(APP_JS)
        elif isinstance(web, str):
            self.web = web
        self.proc = None
        self.procs = []
        self.port = None
        self.lines = []         # stderr lines of the current process
        self.all_lines = []     # stderr lines of every process (for sanitizer check)
        self.out_lines = []
        self._listen_evt = None
        self._threads = []
        with _registry_lock:
            _all_servers.append(self)
            _test_servers.append(self)
        if start:
            self.start()

    # -- lifecycle --
    def argv(self):
        a = [BIN, '--listen', '127.0.0.1:0', '--dir', self.dir]
        if self.web:
            a += ['--web', self.web]
        return a + self.extra

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, 'server already running')
        if not os.path.exists(BIN):
            raise TestFailure('server binary not found: %s' % BIN)
        self.lines = []
        self.port = None
        evt = threading.Event()
        self._listen_evt = evt
        proc = subprocess.Popen(WRAPPER + self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.proc = proc
        self.procs.append(proc)
        lines = self.lines

        def drain_err():
            for raw in iter(proc.stderr.readline, b''):
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                lines.append(line)
                self.all_lines.append(line)
                if self.port is None:
                    m = LISTEN_RE.search(line)
                    if m:
                        self.port = int(m.group(1))
                        evt.set()
            proc.stderr.close()
            evt.set()

        def drain_out():
            for raw in iter(proc.stdout.readline, b''):
                self.out_lines.append(raw.decode('utf-8', 'replace').rstrip('\n'))
            proc.stdout.close()

        for fn in (drain_err, drain_out):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)
        evt.wait(LISTEN_TIMEOUT)
        if self.port is None:
            _kill_pid(proc)
            raise TestFailure('server did not print the listening line within %.0f s; argv=%r rc=%r stderr=%r'
                              % (LISTEN_TIMEOUT, self.argv(), proc.poll(), self.lines[-20:]))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """SIGKILL by PID and wait."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._join()

    kill = kill9

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._join()

    def _join(self):
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def restart(self, hard=True):
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def sanitizer_reports(self):
        out = []
        lines = self.all_lines
        for i, l in enumerate(lines):
            if any(m in l for m in SANITIZER_MARKERS):
                out.append('\n'.join(lines[i:i + 12]))
        return out

    def stderr_text(self):
        return '\n'.join(self.lines)

    # -- helpers --
    def conn(self, timeout=SOCK_TIMEOUT):
        return Conn(self.port, timeout)

    def status(self, fid, timeout=SOCK_TIMEOUT):
        return get_status(self.port, fid, timeout)

    def upload(self, fid, data, **kw):
        return upload(self.port, fid, data, **kw)

    def article_link(self, fid):
        """DIR/article/<sha256("article\n" + id)>: the id hashed with a domain prefix."""
        return os.path.join(self.dir, 'article', hashlib.sha256(b'article\n' + _b(fid)).hexdigest())

    def has_article_link(self, fid):
        return os.path.lexists(self.article_link(fid))

    def data_path(self, fid):
        """Path of the data file of the *unfinished* upload for fid (via DIR/article/<sha256(id)>)."""
        link = self.article_link(fid)
        check(os.path.islink(link), 'expected symlink %s for id %r (DIR/article has %r)'
              % (link, fid, sorted(os.listdir(os.path.join(self.dir, 'article')))
                 if os.path.isdir(os.path.join(self.dir, 'article')) else None))
        key = os.path.basename(os.readlink(link).rstrip('/'))
        check(re.fullmatch(r'[0-9a-f]{32}', key) is not None, 'symlink target key not 32 hex: %r' % key)
        p = os.path.join(self.dir, 'uploads', key)
        check(os.path.isfile(p), 'data file %s missing' % p)
        return p

    def data_files(self):
        d = os.path.join(self.dir, 'uploads')
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d) if not n.endswith('.meta'))


def _b(s):
    return s if isinstance(s, bytes) else s.encode('utf-8')


# ---------------------------------------------------------------------------
# raw HTTP client
# ---------------------------------------------------------------------------

class ConnectionClosed(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (name, value) as str
        self.body = body
        self.raw_head = raw_head
        self.interim = []

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def conn_close(self):
        v = self.header('connection')
        return v is not None and 'close' in [t.strip().lower() for t in v.split(',')]

    def __repr__(self):
        return '<%s %d %r body=%r>' % (self.version, self.status, self.reason, _short(self.body))


class Conn:
    def __init__(self, port, timeout=SOCK_TIMEOUT):
        self.port = port
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b''

    def send(self, data):
        self.sock.sendall(_b(data))

    def _fill(self):
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b''
        except socket.timeout:
            raise TestFailure('no (complete) response within %.0f s; received so far %r'
                              % (self.timeout, self.buf[:200]))
        if not d:
            raise ConnectionClosed('connection closed by server (buffered %r)' % self.buf[:200])
        self.buf += d

    def _read_line(self):
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self, method='GET'):
        """Read the next response (may be 1xx)."""
        while True:
            while b'\r\n\r\n' not in self.buf and b'\n\n' not in self.buf:
                self._fill()
            i = self.buf.find(b'\r\n\r\n')
            j = self.buf.find(b'\n\n')
            if i >= 0 and (j < 0 or i < j):
                head, self.buf = self.buf[:i], self.buf[i + 4:]
            else:
                head, self.buf = self.buf[:j], self.buf[j + 2:]
            if head.strip():
                break
        lines = head.decode('latin-1').replace('\r\n', '\n').split('\n')
        m = re.match(r'(HTTP/\d\.\d) (\d{3})(?: (.*))?$', lines[0])
        if not m:
            raise TestFailure('bad status line %r' % lines[0])
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ''
        headers = []
        for l in lines[1:]:
            if ':' not in l:
                raise TestFailure('bad response header line %r' % l)
            k, v = l.split(':', 1)
            headers.append((k.strip(), v.strip()))
        r = Response(version, status, reason, headers, b'', head)
        if 100 <= status < 200 or status in (204, 304) or method == 'HEAD':
            return r
        te = r.header('transfer-encoding')
        cl = r.header('content-length')
        if te and 'chunked' in te.lower():
            body = b''
            while True:
                szl = self._read_line().strip()
                sz = int(szl.split(b';')[0], 16)
                if sz == 0:
                    while self._read_line().strip():
                        pass
                    break
                body += self._read_exact(sz)
                self._read_line()
            r.body = body
        elif cl is not None:
            r.body = self._read_exact(int(cl))
        else:
            # read until close
            while True:
                try:
                    self._fill()
                except ConnectionClosed:
                    break
            r.body, self.buf = self.buf, b''
        return r

    def read_final(self, method='GET'):
        interim = []
        while True:
            r = self.read_response(method)
            if 100 <= r.status < 200:
                interim.append(r)
                continue
            r.interim = interim
            return r

    def request(self, method, path, headers=(), body=b'', chunked=False):
        self.send(build_request(method, path, headers, body, chunked=chunked))
        return self.read_final(method)

    def wait_closed(self, timeout=3.0):
        """Wait until the server closes (recv -> b'' or RST). Returns (closed, extra_data)."""
        extra = self.buf
        self.buf = b''
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, extra
                self.sock.settimeout(left)
                try:
                    d = self.sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    return True, extra
                except socket.timeout:
                    return False, extra
                if not d:
                    return True, extra
                extra += d
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def build_head(method, path, headers=(), host=True):
    out = [_b('%s %s HTTP/1.1\r\n' % (method, path)) if isinstance(path, str)
           else _b(method) + b' ' + path + b' HTTP/1.1\r\n']
    names = [(_b(k).lower()) for k, _ in headers]
    if host and b'host' not in names:
        out.append(b'Host: 127.0.0.1\r\n')
    for k, v in headers:
        out.append(_b(k) + b': ' + _b(str(v) if not isinstance(v, (bytes, str)) else v) + b'\r\n')
    out.append(b'\r\n')
    return b''.join(out)


def chunk_encode(data, sizes=None, ext=False):
    """Encode data as chunked; sizes: iterable of chunk sizes (cycled)."""
    out = []
    pos = 0
    i = 0
    sizes = list(sizes or [len(data) or 1])
    while pos < len(data):
        n = min(sizes[i % len(sizes)], len(data) - pos)
        i += 1
        e = (b';ext%d=v%d' % (i, i)) if ext and i % 3 == 0 else b''
        out.append(b'%x%s\r\n' % (n, e))
        out.append(data[pos:pos + n])
        out.append(b'\r\n')
        pos += n
    out.append(b'0\r\n\r\n')
    return b''.join(out)


def build_request(method, path, headers=(), body=b'', chunked=False, content_length=True):
    headers = list(headers)
    names = [_b(k).lower() for k, _ in headers]
    if chunked:
        if b'transfer-encoding' not in names:
            headers.append(('Transfer-Encoding', 'chunked'))
        body = chunk_encode(body, [65536])
    elif content_length and b'content-length' not in names and (body or method in ('POST', 'PUT')):
        headers.append(('Content-Length', str(len(body))))
    return build_head(method, path, headers) + body


def upload_headers(fid, start=0, size=None, extra=()):
    h = [('X-File-Id', fid)]
    if start is not None:
        h.append(('X-Start-Byte', str(start)))
    if size is not None:
        h.append(('X-File-Size', str(size)))
    return h + list(extra)


def upload(port, fid, data, start=0, size=None, extra=(), chunked=False, timeout=SOCK_TIMEOUT):
    with Conn(port, timeout) as c:
        return c.request('POST', '/upload', upload_headers(fid, start, size, extra), data, chunked=chunked)


def get_status(port, fid, timeout=SOCK_TIMEOUT):
    with Conn(port, timeout) as c:
        r = c.request('GET', '/status', [('X-File-Id', fid)])
    eq(r.status, 200, 'GET /status %r status' % (fid,))
    check(re.fullmatch(rb'\d+', r.body) is not None, 'GET /status body not decimal: %r' % r.body)
    return int(r.body)


def poll_status(srv, fid, want, timeout=5.0):
    """Poll /status until it equals want (or timeout); return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = srv.status(fid)
        if v == want or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def expect_success(r, n, what='upload'):
    eq((r.status, r.body), (200, b'Success %d' % n), what + ' (status, body)')


def send_partial(srv, fid, data, nsend, start=0, size=None, total_len=None, mode='close', settle=0.3):
    """Send headers announcing the full body (Content-Length = total_len or len(data)),
    send nsend bytes of data, then cut: mode 'close' (FIN), 'rst' (SO_LINGER 0) or 'keep'
    (return the open Conn)."""
    c = srv.conn()
    cl = total_len if total_len is not None else len(data)
    h = upload_headers(fid, start, size) + [('Content-Length', str(cl))]
    c.send(build_head('POST', '/upload', h))
    c.send(data[:nsend])
    if mode == 'keep':
        return c
    if mode == 'rst':
        time.sleep(settle)    # let the server read everything before the RST
        c.abort()
    else:
        c.close()
    return None


def tree(dirpath):
    """Relative paths of everything under dirpath."""
    out = []
    for root, dirs, files in os.walk(dirpath):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(root, n), dirpath))
    return sorted(out)


class Sentinel:
    """An unrelated unfinished upload made at the start of a test; check() verifies it is intact
    and that the server still answers."""

    def __init__(self, srv, total=300000, held=123457):
        self.srv = srv
        self.fid = rand_id('sentinel')
        self.data = os.urandom(total)
        self.held = held
        r = srv.upload(self.fid, self.data[:held], start=0, size=total)
        eq(r.status, 200, 'sentinel upload status')
        eq(r.body, b'', 'sentinel partial upload body')
        eq(srv.status(self.fid), held, 'sentinel /status')
        self.path = srv.data_path(self.fid)

    def check(self, after=''):
        what = 'sentinel after %s' % after
        check(self.srv.alive(), 'server died (%s); stderr tail: %r' % (after, self.srv.lines[-10:]))
        eq(self.srv.status(self.fid), self.held, what + ': /status')
        eq(os.path.getsize(self.path), self.held, what + ': data file length')
        eq(file_sha(self.path), sha(self.data[:self.held]), what + ': data file sha256')
