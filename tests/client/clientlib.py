"""Helpers for the black-box tests of the resumed-upload client (standard library only).

- Client: runs the client binary (env RESUMED_UPLOAD_BIN, default <repo>/build/resumed-upload;
  a relative path is taken from the current directory, else from the repo) with XDG_STATE_HOME
  and HOME pointing into the test's temp dir and no proxy variables, drains stdout/stderr in
  threads.  run_client() runs one to completion.
- Every process a test starts (clients, @tus/server, plain HTTP servers) and every FaultProxy is
  registered and stopped by PID / close() in finish_test(), which also runs harness.finish_test()
  (the resumed servers and temp dirs of the blackbox harness).
- Sanitizer reports on a client's stderr make the test fail (finish_test returns them).
"""

import hashlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.append(os.path.join(REPO, 'tests', 'blackbox'))
sys.path.append(os.path.join(REPO, 'tests', 'tools'))

import harness  # noqa: E402
from harness import TestFailure, check, eq, make_tempdir, sha, Server  # noqa: E402,F401
from faultproxy import FaultProxy as _FaultProxy  # noqa: E402


def _resolve_client():
    b = os.environ.get('RESUMED_UPLOAD_BIN') or os.path.join('build', 'resumed-upload')
    if os.path.isabs(b):
        return b
    if os.path.exists(b):
        return os.path.abspath(b)
    return os.path.join(REPO, b)


CLIENT = _resolve_client()
NODE = os.environ.get('NODE', 'node')
TUS_NODE_DIR = os.path.join(REPO, 'tests', 'tus-node')

# fast retries for every test that does not say otherwise
FAST = ['--retry-delay', '0.05', '--retry-max-delay', '0.5']

_lock = threading.Lock()
_procs = []        # Popen objects of the current test
_proxies = []
_clients = []      # Client objects of the current test (sanitizer check)
_tmp = {}          # 'dir' -> the current test's scratch dir


def tmpdir():
    """The current test's scratch dir (removed by finish_test)."""
    with _lock:
        d = _tmp.get('dir')
    if d is None:
        d = make_tempdir('resumed-upload-test-')
        os.makedirs(os.path.join(d, 'state'))
        os.makedirs(os.path.join(d, 'home'))
        os.makedirs(os.path.join(d, 'files'))
        with _lock:
            _tmp['dir'] = d
    return d


def state_home():
    return os.path.join(tmpdir(), 'state')


def default_state_file():
    return os.path.join(state_home(), 'resumed-upload', 'uploads')


def _register(proc):
    with _lock:
        _procs.append(proc)
    return proc


_kill = harness._kill_pid  # SIGKILL by PID, then reap


def kill_current():
    """Kill every process of the current test and stop its proxies (used on a test timeout)."""
    with _lock:
        procs = list(_procs)
        proxies = list(_proxies)
    for p in procs:
        _kill(p)
    for p in proxies:
        p.close()
    harness.kill_current_servers()


def finish_test():
    """Stop everything the current test started; returns sanitizer report excerpts."""
    with _lock:
        procs, proxies, clients = list(_procs), list(_proxies), list(_clients)
        _procs.clear()
        _proxies.clear()
        _clients.clear()
        _tmp.clear()
    for p in procs:
        _kill(p)
    for p in proxies:
        try:
            p.close()
        except Exception:
            pass
    reports = []
    for c in clients:
        c.join_readers()
        reports.extend(c.sanitizer_reports())
    reports.extend(harness.finish_test())
    return reports


def FaultProxy(upstream_port, **kw):
    """A faultproxy.FaultProxy that is closed at the end of the test."""
    p = _FaultProxy(upstream_port, **kw)
    with _lock:
        _proxies.append(p)
    return p


# ---------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------

def client_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy')}
    env['XDG_STATE_HOME'] = state_home()
    env['HOME'] = os.path.join(tmpdir(), 'home')
    env['NO_PROXY'] = '*'
    if extra:
        env.update(extra)
    return env


class Client:
    def __init__(self, args, stdin_data=None, env=None, cwd=None):
        if not os.path.exists(CLIENT):
            raise TestFailure('client binary not found: %s' % CLIENT)
        self.args = [str(a) for a in args]
        self.argv = [CLIENT] + self.args
        self.out_chunks = []
        self.err_chunks = []
        self.proc = _register(subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client_env(env),
            cwd=cwd or tmpdir()))
        with _lock:
            _clients.append(self)
        self._threads = []
        for stream, sink in ((self.proc.stdout, self.out_chunks), (self.proc.stderr, self.err_chunks)):
            t = threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        if stdin_data is not None:
            t = threading.Thread(target=self._feed, args=(stdin_data,), daemon=True)
            t.start()

    def _drain(self, stream, sink):
        while True:
            d = stream.read1(65536) if hasattr(stream, 'read1') else stream.read(65536)
            if not d:
                break
            sink.append(d)
        stream.close()

    def _feed(self, data):
        try:
            for i in range(0, len(data), 65536):
                self.proc.stdin.write(data[i:i + 65536])
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    @property
    def pid(self):
        return self.proc.pid

    @property
    def out(self):
        return b''.join(self.out_chunks).decode('utf-8', 'replace')

    @property
    def err(self):
        return b''.join(self.err_chunks).decode('utf-8', 'replace')

    def err_lines(self):
        return [l for l in self.err.split('\n') if l]

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=40):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            self.join_readers()
            raise TestFailure('client did not finish within %.0f s: %s\nstderr tail:\n%s'
                              % (timeout, ' '.join(self.args), '\n'.join(self.err_lines()[-15:])))
        self.join_readers()
        self.rc = rc
        return rc

    def join_readers(self):
        for t in self._threads:
            t.join(5)

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.join_readers()

    def wait_stderr(self, pattern, timeout=15):
        """Wait until stderr matches the regex pattern; returns the match or raises."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.err)
            if m:
                return m
            if time.monotonic() > deadline or self.proc.poll() is not None:
                m = rx.search(self.err)
                if m:
                    return m
                raise TestFailure('client stderr never matched %r (rc %r); stderr:\n%s'
                                  % (pattern, self.proc.poll(), self.err[-3000:]))
            time.sleep(0.02)

    def sanitizer_reports(self):
        lines = self.err.split('\n')
        out = []
        for i, l in enumerate(lines):
            if any(m in l for m in harness.SANITIZER_MARKERS):
                out.append('client %s:\n%s' % (' '.join(self.args), '\n'.join(lines[i:i + 12])))
        return out

    def describe(self):
        return 'resumed-upload %s\n  rc=%r\n  stdout=%r\n  stderr:\n    %s' % (
            ' '.join(self.args), self.proc.poll(), self.out[-2000:],
            '\n    '.join(self.err_lines()[-60:]))


def run_client(args, timeout=40, **kw):
    c = Client(args, **kw)
    c.wait(timeout)
    return c


def expect_rc(c, rc, what='client'):
    if c.proc.returncode != rc:
        raise TestFailure('%s: expected exit %d, got %r\n%s' % (what, rc, c.proc.returncode, c.describe()))


# ---------------------------------------------------------------------------
# output parsing
# ---------------------------------------------------------------------------

def out_lines(c):
    """stdout as [(url, file)]; every line must be `<url>\\t<file>`."""
    res = []
    for l in c.out.split('\n'):
        if not l:
            continue
        check(l.count('\t') == 1, 'stdout line is not "<url>\\t<file>": %r\n%s' % (l, c.describe()))
        res.append(tuple(l.split('\t')))
    return res


def one_url(c, file_arg, endpoint):
    """The single stdout line must be `<url>\\t<file_arg>`, url absolute under endpoint."""
    lines = out_lines(c)
    eq(len(lines), 1, 'number of stdout lines (%r)' % (c.out,))
    url, f = lines[0]
    eq(f, file_arg, 'FILE column of the stdout line')
    check(url.startswith(endpoint) and len(url) > len(endpoint),
          'upload URL %r is not an absolute URL under %r' % (url, endpoint))
    return url


def retry_lines(c, file_arg):
    """stderr lines reporting a retry of file_arg: (N, M) of `(attempt N of M)`."""
    out = []
    for l in c.err_lines():
        if (file_arg + ': ') in l and 'retrying in ' in l:
            m = re.search(r'\(attempt (\d+) of (\d+)\)', l)
            if m:
                out.append((int(m.group(1)), int(m.group(2))))
    return out


def resume_lines(c, file_arg):
    """[(N, M)] of `resumed-upload: FILE: resuming at N of M bytes` lines."""
    rx = re.compile(r'^resumed-upload: ' + re.escape(file_arg) + r': resuming at (\d+) of (\d+) bytes')
    return [(int(m.group(1)), int(m.group(2))) for m in (rx.search(l) for l in c.err_lines()) if m]


def summary(c):
    lines = c.err_lines()
    check(lines, 'stderr is empty, expected a summary line\n' + c.describe())
    m = re.match(r'resumed-upload: (\d+) uploaded, (\d+) failed', lines[-1])
    check(m is not None, 'last stderr line is not the summary: %r\n%s' % (lines[-1], c.describe()))
    return int(m.group(1)), int(m.group(2))


def failed_line(c, file_arg):
    pre = 'resumed-upload: %s: failed: ' % file_arg
    for l in c.err_lines():
        if l.startswith(pre):
            return l[len(pre):]
    raise TestFailure('no %r line on stderr\n%s' % (pre, c.describe()))


def expect_usage_error(c, message):
    expect_rc(c, 2, 'usage error %r' % message)
    lines = c.err_lines()
    check(any(l.startswith('resumed-upload: ') and message in l for l in lines),
          'stderr lacks "resumed-upload: ...%s..."\n%s' % (message, c.describe()))
    check("Try 'resumed-upload --help'." in lines, "stderr lacks the line \"Try 'resumed-upload --help'.\"\n"
          + c.describe())
    eq(c.out, '', 'stdout of a usage error')


def state_entries(path=None):
    """[(hexkey, url)] of the state file (missing file: [])."""
    path = path or default_state_file()
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for l in f:
            l = l.rstrip('\n')
            if not l.strip():
                continue
            m = re.fullmatch(r'([0-9a-fA-F]+) (\S+)', l)
            check(m is not None, 'state file line is not "<hexkey> <url>": %r' % l)
            out.append((m.group(1), m.group(2)))
    return out


# ---------------------------------------------------------------------------
# files and HTTP
# ---------------------------------------------------------------------------

def make_file(size, name=None, data=None):
    """A file of `size` random bytes in the test's files dir; returns (path, data)."""
    d = os.path.join(tmpdir(), 'files')
    if name is None:
        name = 'f-%s.bin' % os.urandom(4).hex()
    path = os.path.join(d, name)
    if data is None:
        data = os.urandom(size)
    with open(path, 'wb') as f:
        f.write(data)
    return path, data


class HTTPResult:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def http_req(url, method='GET', headers=None, body=None, timeout=10):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or '/'
        if u.query:
            path += '?' + u.query
        h = {'X-Test-Harness': '1'}      # recorded_requests() leaves these out
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read() if method != 'HEAD' else b''
        return HTTPResult(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def expect_download(url, data, what='stored upload'):
    """GET url from resumed (finished tus/IETF uploads are downloadable): 200 and the same bytes."""
    r = http_req(url)
    check(r.status == 200, '%s: GET %s answered %d %s' % (what, url, r.status, r.reason))
    eq((len(r.body), sha(r.body)), (len(data), sha(data)), '%s: (length, sha256) of GET %s' % (what, url))


def base_url(port):
    return 'http://127.0.0.1:%d/' % port


def files_url(port):
    return 'http://127.0.0.1:%d/files/' % port


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def server_log_requests(srv, method, path_prefix='/files/'):
    """[(path, status, bytes_in)] of the server's request log lines for method."""
    rx = re.compile(r'"(\S+) (\S+)" (\S+)(?: \([^)]*\))? (\d+) [\d.]+ms')
    out = []
    for l in list(srv.lines):
        m = rx.search(l)
        if m and m.group(1) == method and m.group(2).startswith(path_prefix):
            out.append((m.group(2), m.group(3), int(m.group(4))))
    return out


# ---------------------------------------------------------------------------
# other servers
# ---------------------------------------------------------------------------

class ChildServer:
    """A helper server process that prints `... listening on http://127.0.0.1:PORT` (stderr or
    stdout); killed by PID at the end of the test."""

    RX = re.compile(r'listening on http://127\.0\.0\.1:(\d+)')

    def __init__(self, argv, cwd=None, what='server'):
        self.argv = argv
        self.lines = []
        self.port = None
        evt = threading.Event()
        self.proc = _register(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, cwd=cwd))

        def drain():
            for raw in iter(self.proc.stdout.readline, b''):
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                self.lines.append(line)
                m = self.RX.search(line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    evt.set()
            evt.set()
        threading.Thread(target=drain, daemon=True).start()
        evt.wait(20)
        if self.port is None:
            _kill(self.proc)
            raise TestFailure('%s did not start: %r rc=%r output=%r' % (what, argv, self.proc.poll(),
                                                                      self.lines[-10:]))


def tus_node_server(directory):
    main = os.path.join(TUS_NODE_DIR, 'server.mjs')
    check(os.path.isdir(os.path.join(TUS_NODE_DIR, 'node_modules', '@tus', 'server')),
          '@tus/server is not installed in %s (tests/client/run.sh runs npm ci)' % TUS_NODE_DIR)
    return ChildServer([NODE, main, '0', directory], cwd=TUS_NODE_DIR, what='@tus/server')


def plain_http_server(status=200):
    """A tiny HTTP server (not tus) answering every request with `status` and a short body."""
    return ChildServer([sys.executable, os.path.join(HERE, 'plainhttp.py'), str(status)],
                       what='plain HTTP server')


def wait_until(pred, timeout=10.0, what='condition'):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TestFailure('timed out after %.0f s waiting for %s' % (timeout, what))
        time.sleep(0.02)


def file_sha(path):
    return harness.file_sha(path)


def sha_bytes(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------
# requests recorded by a FaultProxy(record=True)
# ---------------------------------------------------------------------------

class Req:
    def __init__(self, method, target, headers, body, complete):
        self.method, self.target, self.headers, self.body, self.complete = \
            method, target, headers, body, complete

    def header(self, name):
        vals = self.header_all(name)
        return vals[-1] if vals else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return '<%s %s %d bytes%s>' % (self.method, self.target, len(self.body),
                                       '' if self.complete else ' (cut)')


def parse_requests(raw):
    """HTTP/1.1 requests in one connection's client->server bytes; a request cut short is
    returned with complete=False."""
    out = []
    pos = 0
    while pos < len(raw):
        end = raw.find(b'\r\n\r\n', pos)
        if end < 0:
            break
        lines = raw[pos:end].decode('latin-1').split('\r\n')
        method, target = lines[0].split(' ')[:2]
        headers = []
        for l in lines[1:]:
            k, _, v = l.partition(':')
            headers.append((k.strip(), v.strip()))
        pos = end + 4
        req = Req(method, target, headers, b'', True)
        te = (req.header('transfer-encoding') or '').lower()
        if 'chunked' in te:
            body = bytearray()
            while True:
                le = raw.find(b'\r\n', pos)
                if le < 0:
                    req.complete = False
                    pos = len(raw)
                    break
                n = int(raw[pos:le].split(b';')[0], 16)
                pos = le + 2
                if n == 0:
                    te_end = raw.find(b'\r\n\r\n', pos - 2)
                    pos = len(raw) if te_end < 0 else te_end + 4
                    break
                body += raw[pos:pos + n]
                if pos + n + 2 > len(raw):
                    req.complete = False
                pos += n + 2
            req.body = bytes(body)
        else:
            n = int(req.header('content-length') or 0)
            req.body = raw[pos:pos + n]
            req.complete = len(req.body) == n
            pos += n
        out.append(req)
    return out


def recorded_requests(proxy):
    """Every request the proxy forwarded (record=True), connection by connection, except the
    test's own (http_req marks them with X-Test-Harness)."""
    out = []
    for raw in proxy.recorded_streams():
        out.extend(r for r in parse_requests(raw) if r.header('X-Test-Harness') is None)
    return out


def upload_files(srv):
    """Data files of the uploads in a resumed server's dir: DIR/uploads/<32 hex key> (not the
    .meta files, nor the server's transient dot files)."""
    d = os.path.join(srv.dir, 'uploads')
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, n) for n in os.listdir(d) if re.fullmatch(r'[0-9a-f]{32}', n))
