"""Shared pieces of the conformance suite: the row table type, outcomes, the per-run context
(exchange log, created uploads, cleanup) and small assertion helpers."""

import os
import re
import time
import urllib.parse

import httpclient
from httpclient import Conn, NoResponse, ProtocolError, request  # noqa: F401 (re-exported)

MUST_LEVELS = ('MUST', 'MUST NOT', 'SHALL NOT')


class Fail(Exception):
    """The requirement is violated.  `resp` (optional) is the exchange that shows it."""

    def __init__(self, msg, resp=None, extra=None):
        super().__init__(msg)
        self.msg = msg
        self.resp = resp
        self.extra = extra or []


class Skip(Exception):
    """The row cannot be evaluated against this server (with the reason)."""


class Row:
    """One MUST/SHOULD.  `fn(ctx)` for tus rows, `fn(ctx, v)` for IETF rows.
    `needs`: tus extensions that must be in Tus-Extension (else SKIP).
    `versions`: interop versions the row applies to (IETF only); ANY = once, version-independent."""

    def __init__(self, rid, spec, ref, level, desc, fn, needs=(), versions=None):
        assert level in ('MUST', 'MUST NOT', 'SHALL NOT', 'SHOULD', 'SHOULD NOT'), level
        self.id = rid
        self.spec = spec
        self.ref = ref
        self.level = level
        self.desc = desc
        self.fn = fn
        self.needs = tuple(needs)
        self.versions = versions

    @property
    def is_must(self):
        return self.level in MUST_LEVELS


ANY = 'any'


def fmt_exchange(resp):
    lines = []
    if resp is None:
        return lines
    if resp.request is not None:
        lines.append('sent: ' + resp.request.summary())
    lines.append('got:  ' + resp.summary())
    return lines


class TusInfo:
    """What the server's tus OPTIONS answer says."""

    def __init__(self):
        self.options = None
        self.error = None
        self.extensions = set()
        self.max_size = None
        self.algorithms = []
        self.expires_seen = None      # an Upload-Expires value seen on a tus upload

    def has(self, ext):
        return ext in self.extensions


class Context:
    def __init__(self, base, opts):
        self.base = base
        self.opts = opts
        self.timeout = opts.timeout
        self.tus = TusInfo()
        self.created = []              # [url, proto, version, deleted]
        self.responses = []            # every final response of the current row
        self.vstate = None             # ietf_rows.VState during an IETF version run
        self.leftover = []             # uploads that could not be deleted
        self.deleted_count = 0
        self.note = ''                 # detail a passing row may report

    # -- requests ------------------------------------------------------------------------

    def req(self, method, url, headers=(), body=None, **kw):
        kw.setdefault('timeout', self.timeout)
        try:
            r = request(method, url, headers, body, **kw)
        except (NoResponse, ProtocolError, OSError) as e:
            hs = list(headers.items()) if isinstance(headers, dict) else list(headers)
            info = httpclient.RequestInfo(method, urllib.parse.urlsplit(url).path or '/', hs)
            if body:
                info.body_sent = len(body)
            raise Fail('%s %s: %s: %s' % (method, url, type(e).__name__, e),
                       extra=['sent: ' + info.summary()])
        self.record(r)
        return r

    def conn(self, url):
        try:
            return Conn(url, self.timeout)
        except OSError as e:
            raise Fail('cannot connect to %s: %s' % (url, e))

    def record(self, r):
        self.responses.append(r)
        if self.vstate is not None:
            self.vstate.responses.append(r)
        return r

    def read(self, c, method, timeout=None):
        """Final response on a manual connection (recorded); Fail if none."""
        try:
            r = c.read_response(method, timeout if timeout is not None else self.timeout)
        except (NoResponse, ProtocolError) as e:
            raise Fail('%s: %s' % (type(e).__name__, e),
                       extra=['sent: ' + c.req.summary()] if c.req else [])
        return self.record(r)

    # -- uploads created by the suite ----------------------------------------------------

    def url(self, location):
        return urllib.parse.urljoin(self.base, location)

    def register(self, url, proto, version=None):
        for e in self.created:
            if e[0] == url:
                return
        self.created.append([url, proto, version, False])

    def mark_deleted(self, url):
        for e in self.created:
            if e[0] == url:
                e[3] = True

    def cleanup(self):
        """DELETE what the row created (tus: only where termination is advertised)."""
        for e in self.created:
            url, proto, version, deleted = e
            if deleted:
                continue
            if proto == 'tus' and not self.tus.has('termination'):
                self.leftover.append(url + ' (tus)')
                continue
            if proto == 'tus':
                attempts = [[('Tus-Resumable', '1.0.0')]]
            else:
                # an upload created without (or with an unknown) interop version may only be
                # reachable with a draft version header: try those too
                attempts = [[] if version is None else [('Upload-Draft-Interop-Version', str(version))]]
                attempts += [[('Upload-Draft-Interop-Version', str(n))] for n in (8, 7, 6, 5, 4, 3)
                             if str(n) != str(version)]
            ok = gone = False
            for hs in attempts:
                try:
                    r = request('DELETE', url, hs, timeout=self.timeout)
                    ok = 200 <= r.status < 300
                    gone = gone or r.status in (404, 410)
                except Exception:
                    ok = False
                if ok:
                    break
            if ok:
                self.deleted_count += 1
            elif not gone:
                self.leftover.append(url if proto == 'tus' else '%s (interop %s)' % (url, version))
        self.created = []
        self.responses = []

    def unknown_url(self):
        return urllib.parse.urljoin(self.base, 'no-such-upload-' + os.urandom(12).hex())


# -- helpers --------------------------------------------------------------------------------

def expect(cond, msg, resp=None):
    if not cond:
        raise Fail(msg, resp)


def status_in(resp, codes, what):
    if resp.status not in codes:
        raise Fail('%s: expected %s, got %d' % (what, '/'.join(map(str, sorted(codes))), resp.status),
                   resp)


def is_2xx(resp):
    return 200 <= resp.status < 300


def int_header(resp, name, what=None):
    v = resp.get(name)
    if v is None:
        raise Fail('%s: no %s header' % (what or 'response', name), resp)
    if not re.fullmatch(r'[0-9]+', v.strip()):
        raise Fail('%s: %s is not a non-negative integer: %r' % (what or 'response', name, v), resp)
    return int(v.strip())


def cache_no_store(resp):
    v = resp.get('Cache-Control') or ''
    return any(d.strip().lower().split('=')[0] == 'no-store' for d in v.split(','))


def poll(fn, timeout=3.0, interval=0.1):
    """Call fn() until it returns a truthy value or `timeout` passes; returns last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def data(n, seed=0):
    """n deterministic, non-repeating-looking bytes."""
    out = bytearray()
    x = 0x9E3779B9 ^ (seed * 0x85EBCA6B)
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)
