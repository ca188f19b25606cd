"""A small HTTP/1.1 client on raw sockets, for conformance probing (standard library only).

Why not http.client: it hides interim 1xx responses (104 Upload Resumption Supported, 100
Continue), always frames bodies itself, and cannot send a body slowly, partially, or chunked
with trailers.  This client keeps every response head it sees: interim responses (1xx other
than 101) are kept in order in `Response.interim`, separately from the final response.

    conn = Conn(url)                        # connects (http or https)
    conn.send_head('PATCH', target, headers)
    conn.send(b'part of the body')          # raw bytes, as slowly as the caller likes
    conn.poll_interim(1.0)                  # collect 1xx that arrive within 1 s
    conn.close()                            # abort: the server sees the body end early
    resp = conn.read_response('PATCH')      # or: read the final response

    resp = request('HEAD', url, {'Tus-Resumable': '1.0.0'})   # one-shot helper
"""

import socket
import ssl
import time
import urllib.parse

DEFAULT_TIMEOUT = 10.0


class ProtocolError(Exception):
    """The server's bytes are not a well-formed HTTP/1.1 response."""


class NoResponse(Exception):
    """No (complete) final response: timeout, or the connection closed first."""


class Response:
    def __init__(self, status, reason, headers, version='HTTP/1.1'):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value), in order received
        self.version = version
        self.body = b''
        self.trailers = []
        self.interim = []               # 1xx responses that preceded this one
        self.closed = False             # server closed the connection after it
        self.request = None             # RequestInfo of the request that produced it
        self.elapsed = 0.0

    def get(self, name, default=None):
        """Field value; several field lines are joined with ', ' (RFC 9110 §5.3)."""
        vals = self.get_all(name)
        if not vals:
            return default
        return ', '.join(vals)

    def get_all(self, name):
        n = name.lower()
        return [v for (k, v) in self.headers if k.lower() == n]

    def has(self, name):
        return bool(self.get_all(name))

    def summary(self, with_interim=True):
        parts = []
        if with_interim:
            for i in self.interim:
                parts.append(i.summary(False) + ' ;')
        hs = ', '.join('%s: %s' % (k, v) for (k, v) in self.headers if k.lower() != 'date')
        s = '%d %s [%s]' % (self.status, self.reason, hs)
        if self.body and self.status >= 300:
            b = self.body[:160]
            s += ' body=%r%s' % (b, '...' if len(self.body) > 160 else '')
        parts.append(s)
        return ' '.join(parts)


class RequestInfo:
    """What was sent, for failure reports."""

    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.body_sent = 0
        self.chunked = False
        self.trailers = []
        self.note = ''

    def summary(self):
        hs = ', '.join('%s: %s' % (k, v) for (k, v) in self.headers if k.lower() != 'host')
        s = '%s %s [%s]' % (self.method, self.target, hs)
        if self.chunked:
            s += ' chunked body %d B' % self.body_sent
            if self.trailers:
                s += ' trailers [%s]' % ', '.join('%s: %s' % kv for kv in self.trailers)
        elif self.body_sent:
            s += ' body %d B' % self.body_sent
        if self.note:
            s += ' (' + self.note + ')'
        return s


def split_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ('http', 'https'):
        raise ValueError('only http:// and https:// URLs are supported: %r' % url)
    port = u.port or (443 if u.scheme == 'https' else 80)
    target = u.path or '/'
    if u.query:
        target += '?' + u.query
    return u.scheme, u.hostname, port, u.netloc, target


class Conn:
    """One connection, one request (the caller may reuse it if the server keeps it open)."""

    insecure = False            # set by the CLI (--insecure): do not verify TLS certificates
    log = None                  # callable(str) for --verbose

    def __init__(self, url, timeout=DEFAULT_TIMEOUT):
        scheme, host, port, netloc, _ = split_url(url)
        self.netloc = netloc
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == 'https':
            ctx = ssl.create_default_context()
            if Conn.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        self.buf = b''
        self.eof = False
        self.interim = []
        self.req = None
        self.chunked = False
        self.t0 = time.monotonic()
        self.send_error = None

    # -- sending -------------------------------------------------------------------------

    def send_head(self, method, target, headers=(), chunked=False):
        hs = [('Host', self.netloc)]
        hs += [(k, str(v)) for (k, v) in headers]
        if chunked and not any(k.lower() == 'transfer-encoding' for k, _ in hs):
            hs.append(('Transfer-Encoding', 'chunked'))
        self.chunked = chunked
        self.req = RequestInfo(method, target, hs)
        self.req.chunked = chunked
        data = '%s %s HTTP/1.1\r\n' % (method, target)
        data += ''.join('%s: %s\r\n' % (k, v) for (k, v) in hs) + '\r\n'
        if Conn.log:
            Conn.log('>> ' + data.rstrip('\r\n').replace('\r\n', '\n>> '))
        self.t0 = time.monotonic()
        self.send(data.encode('latin-1'), _count=False)

    def send(self, data, _count=True):
        """Raw bytes.  Errors (server already closed) are remembered, not raised: the
        response the server sent before closing is what matters."""
        if _count and self.req:
            self.req.body_sent += len(data)
        if self.send_error:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError as e:
            self.send_error = e
            return False

    def send_body(self, data):
        if Conn.log and data:
            Conn.log('>> [%d body bytes%s]' % (len(data), ', chunked' if self.chunked else ''))
        if self.chunked:
            if data:
                self.req.body_sent += len(data)
                return self.send(b'%x\r\n' % len(data) + data + b'\r\n', _count=False)
            return True
        return self.send(data)

    def end_chunked(self, trailers=()):
        t = ''.join('%s: %s\r\n' % (k, v) for (k, v) in trailers)
        if self.req:
            self.req.trailers = list(trailers)
        if Conn.log and trailers:
            Conn.log('>> [last chunk; trailers: %s]' % ', '.join('%s: %s' % kv for kv in trailers))
        return self.send(b'0\r\n' + t.encode('latin-1') + b'\r\n', _count=False)

    # -- receiving -----------------------------------------------------------------------

    def _fill(self, deadline):
        """Read more bytes; False on EOF or when the deadline passed."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ssl.SSLWantReadError:
            return False
        except OSError:
            self.eof = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _parse_head(self):
        """Parse a response head at the start of buf without consuming it.
        Returns (Response, head_length) or None if incomplete."""
        i = self.buf.find(b'\r\n\r\n')
        if i < 0:
            if len(self.buf) > 65536:
                raise ProtocolError('response head larger than 64 KiB')
            return None
        head = self.buf[:i].decode('latin-1')
        lines = head.split('\r\n')
        sl = lines[0].split(' ', 2)
        if len(sl) < 2 or not sl[0].startswith('HTTP/') or not sl[1].isdigit() or len(sl[1]) != 3:
            raise ProtocolError('bad status line %r' % lines[0])
        headers = []
        for ln in lines[1:]:
            if ':' not in ln or ln[0] in ' \t':
                raise ProtocolError('bad header line %r' % ln)
            k, v = ln.split(':', 1)
            if k != k.strip() or not k:
                raise ProtocolError('bad header name %r' % k)
            headers.append((k, v.strip(' \t')))
        r = Response(int(sl[1]), sl[2] if len(sl) > 2 else '', headers, sl[0])
        return r, i + 4

    def poll_interim(self, timeout, stop=None):
        """Collect interim (1xx) responses arriving within `timeout` seconds.  Stops early
        when a final response head is at the front of the buffer (left unconsumed), the
        connection closed, or stop(interim_response) returns true.  Returns the list of
        interim responses collected so far (on this connection)."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse_head()
            if p:
                r, n = p
                if 100 <= r.status < 200 and r.status != 101:
                    self.buf = self.buf[n:]
                    r.elapsed = time.monotonic() - self.t0
                    self.interim.append(r)
                    if Conn.log:
                        Conn.log('<< ' + r.summary(False))
                    if stop and stop(r):
                        return self.interim
                    continue
                return self.interim          # a final response is waiting
            if not self._fill(deadline):
                return self.interim

    def final_pending(self):
        p = self._parse_head()
        return bool(p) and not (100 <= p[0].status < 200 and p[0].status != 101)

    def read_response(self, method, timeout=None):
        """Read interim responses and the final one with its body.  Raises NoResponse."""
        limit = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + limit
        while True:
            p = self._parse_head()
            if p is None:
                if not self._fill(deadline):
                    seen = ''
                    if self.interim:
                        seen = ' (after interim %s)' % ', '.join(str(i.status) for i in self.interim)
                    if self.eof:
                        raise NoResponse('connection closed by the server without a %s%s'
                                         % ('complete response' if self.buf else 'final response', seen))
                    raise NoResponse('no final response within %.1f s%s' % (limit, seen))
                continue
            r, n = p
            self.buf = self.buf[n:]
            r.elapsed = time.monotonic() - self.t0
            if 100 <= r.status < 200 and r.status != 101:
                self.interim.append(r)
                if Conn.log:
                    Conn.log('<< ' + r.summary(False))
                continue
            break
        r.interim = self.interim
        r.request = self.req
        self._read_body(r, method, deadline)
        if self.eof or (r.get('Connection') or '').lower() == 'close':
            r.closed = True
        if Conn.log:
            Conn.log('<< ' + r.summary(False) + (' (connection closed)' if r.closed else ''))
        return r

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise NoResponse('response body incomplete: connection %s'
                                 % ('closed' if self.eof else 'timed out'))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def _read_line(self, deadline):
        while True:
            i = self.buf.find(b'\r\n')
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            if not self._fill(deadline):
                raise NoResponse('chunked response body incomplete')

    def _read_body(self, r, method, deadline):
        if method == 'HEAD' or r.status in (204, 304):
            return
        te = (r.get('Transfer-Encoding') or '').lower()
        if te:
            if te.split(',')[-1].strip() != 'chunked':
                raise ProtocolError('unsupported Transfer-Encoding %r' % te)
            body = b''
            while True:
                ln = self._read_line(deadline).split(b';')[0].strip()
                try:
                    size = int(ln, 16)
                except ValueError:
                    raise ProtocolError('bad chunk size line %r' % ln)
                if size == 0:
                    break
                body += self._read_exact(size, deadline)
                if self._read_exact(2, deadline) != b'\r\n':
                    raise ProtocolError('missing CRLF after chunk data')
            while True:
                ln = self._read_line(deadline)
                if not ln:
                    break
                k, _, v = ln.decode('latin-1').partition(':')
                r.trailers.append((k.strip(), v.strip()))
            r.body = body
            return
        cl = r.get_all('Content-Length')
        if cl:
            vals = {c.strip() for v in cl for c in v.split(',')}
            if len(vals) != 1 or not next(iter(vals)).isdigit():
                raise ProtocolError('bad Content-Length %r' % cl)
            r.body = self._read_exact(int(next(iter(vals))), deadline)
            return
        # close-delimited
        while self._fill(deadline):
            pass
        if not self.eof:
            raise NoResponse('close-delimited response body: connection not closed in time')
        r.body, self.buf = self.buf, b''

    def wait_closed(self, timeout):
        """True if the server closes the connection (EOF/reset) within `timeout`; any bytes
        that arrive meanwhile are kept in buf (e.g. a final error response)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                if self.eof:
                    break
                if time.monotonic() >= deadline:
                    return False
        return True

    def close(self, reset=False):
        try:
            if reset:
                import struct
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.sock.close()
        except OSError:
            pass


def request(method, url, headers=(), body=None, *, chunks=None, trailers=(), timeout=None,
            expect_body_pause=0.0):
    """Send one complete request on a new connection and return the final Response (with
    .interim).  `body` (bytes) is sent with Content-Length unless a Content-Length or
    Transfer-Encoding is already in headers; `chunks` (list of bytes) is sent chunked with
    `trailers`.  Closes the connection afterwards."""
    _, _, _, _, target = split_url(url)
    headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {k.lower() for k, _ in headers}
    c = Conn(url, timeout or DEFAULT_TIMEOUT)
    try:
        if chunks is not None:
            c.send_head(method, target, headers, chunked=True)
            for ch in chunks:
                c.send_body(ch)
            c.end_chunked(trailers)
        else:
            if body is None and method in ('POST', 'PATCH', 'PUT'):
                body = b''
            if body is not None and 'content-length' not in names and 'transfer-encoding' not in names:
                headers.append(('Content-Length', str(len(body))))
            c.send_head(method, target, headers)
            if body:
                if expect_body_pause:
                    c.poll_interim(expect_body_pause)
                c.send_body(body)
        return c.read_response(method, timeout)
    finally:
        c.close()


# -- Structured Field Values (RFC 9651), the parts the draft uses -------------------------

class SFError(ValueError):
    pass


class Token(str):
    pass


def _skip_sp(s, i):
    while i < len(s) and s[i] == ' ':
        i += 1
    return i


def _skip_ows(s, i):
    while i < len(s) and s[i] in ' \t':
        i += 1
    return i


def _parse_bare(s, i):
    if i >= len(s):
        raise SFError('empty value')
    c = s[i]
    if c == '-' or c.isdigit():
        j = i + 1 if c == '-' else i
        k = j
        while k < len(s) and (s[k].isdigit() or s[k] == '.'):
            k += 1
        num = s[j:k]
        if not num or not num[0].isdigit():
            raise SFError('bad number at %d' % i)
        if '.' in num:
            a, _, b = num.partition('.')
            if num.count('.') > 1 or len(a) > 12 or not b or len(b) > 3:
                raise SFError('bad decimal %r' % num)
            v = float(num)
        else:
            if len(num) > 15:
                raise SFError('integer too long %r' % num)
            v = int(num)
        return (-v if c == '-' else v), k
    if c == '"':
        k = i + 1
        out = ''
        while k < len(s):
            ch = s[k]
            if ch == '\\':
                if k + 1 >= len(s) or s[k + 1] not in '"\\':
                    raise SFError('bad escape in string')
                out += s[k + 1]
                k += 2
                continue
            if ch == '"':
                return out, k + 1
            if not (0x20 <= ord(ch) <= 0x7e):
                raise SFError('bad character in string')
            out += ch
            k += 1
        raise SFError('unterminated string')
    if c == '?':
        if i + 1 < len(s) and s[i + 1] in '01':
            return s[i + 1] == '1', i + 2
        raise SFError('bad boolean')
    if c == ':':
        k = s.find(':', i + 1)
        if k < 0:
            raise SFError('unterminated byte sequence')
        import base64
        try:
            return base64.b64decode(s[i + 1:k], validate=True), k + 1
        except Exception:
            raise SFError('bad byte sequence')
    if c.isalpha() or c == '*':
        k = i + 1
        while k < len(s) and (s[k].isalnum() or s[k] in "!#$%&'*+-.^_`|~:/"):
            k += 1
        return Token(s[i:k]), k
    if c == '@':
        raise SFError('dates are not used by this protocol')
    raise SFError('unexpected character %r' % c)


def _parse_key(s, i):
    if i >= len(s) or not (s[i].islower() or s[i] == '*'):
        raise SFError('bad key at %d in %r' % (i, s))
    k = i + 1
    while k < len(s) and (s[k].islower() or s[k].isdigit() or s[k] in '_-.*'):
        k += 1
    return s[i:k], k


def _parse_params(s, i):
    params = {}
    while i < len(s) and s[i] == ';':
        i = _skip_sp(s, i + 1)
        k, i = _parse_key(s, i)
        v = True
        if i < len(s) and s[i] == '=':
            v, i = _parse_bare(s, i + 1)
        params[k] = v
    return params, i


def _parse_item_or_inner(s, i):
    if i < len(s) and s[i] == '(':
        i += 1
        items = []
        while True:
            i = _skip_sp(s, i)
            if i < len(s) and s[i] == ')':
                i += 1
                break
            v, i = _parse_bare(s, i)
            p, i = _parse_params(s, i)
            items.append((v, p))
            if i < len(s) and s[i] not in ' )':
                raise SFError('bad inner list')
        p, i = _parse_params(s, i)
        return (items, p), i
    v, i = _parse_bare(s, i)
    p, i = _parse_params(s, i)
    return (v, p), i


def sf_item(s):
    """Parse an Item; returns (bare_value, params).  Raises SFError."""
    s = s.strip(' ')
    (v, p), i = _parse_item_or_inner(s, 0)
    if isinstance(v, list):
        raise SFError('inner list where an item was expected')
    if _skip_sp(s, i) != len(s):
        raise SFError('trailing characters in %r' % s)
    return v, p


def sf_dict(s):
    """Parse a Dictionary; returns {key: (value, params)} in order.  Raises SFError."""
    s = s.strip(' ')
    out = {}
    i = 0
    if not s:
        return out
    while True:
        k, i = _parse_key(s, i)
        if i < len(s) and s[i] == '=':
            (v, p), i = _parse_item_or_inner(s, i + 1)
        else:
            v = True
            p, i = _parse_params(s, i)
        out[k] = (v, p)
        i = _skip_ows(s, i)
        if i >= len(s):
            return out
        if s[i] != ',':
            raise SFError('expected "," at %d in %r' % (i, s))
        i = _skip_ows(s, i + 1)
        if i >= len(s):
            raise SFError('trailing comma in %r' % s)


def is_sf_int(v):
    return isinstance(v, int) and not isinstance(v, bool)
