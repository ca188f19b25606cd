#!/usr/bin/env python3
"""Reference server for the conformance suite's self-test (standard library only).

It implements, in memory, what the suite checks: tus 1.0.0 with every extension (creation,
creation-with-upload, creation-defer-length, termination, checksum, checksum-trailer,
expiration, concatenation, concatenation-unfinished; plus GET of an upload's bytes) and the
IETF resumable-upload draft, interop versions 3-8, at one base path.  Each behaviour a row
checks can be broken on purpose with a named fault (`--fault NAME`, repeatable), so the
self-test can prove that every row is able to fail.

This is a test double, not a production server: one request per connection, data in memory.

    python3 refserver.py [--port 0] [--base /files/] [--max-size N] [--expire-after SEC]
                         [--body-timeout SEC] [--fault NAME ...]
prints "refserver: listening on http://127.0.0.1:PORT" on stderr.
"""

import argparse
import base64
import email.utils
import hashlib
import json
import secrets
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import zlib

REASONS = {100: 'Continue', 104: 'Upload Resumption Supported', 200: 'OK', 201: 'Created',
           204: 'No Content', 301: 'Moved Permanently', 400: 'Bad Request', 403: 'Forbidden',
           404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 410: 'Gone',
           412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
           460: 'Checksum Mismatch', 500: 'Internal Server Error'}
ALGOS = ('md5', 'sha1', 'sha256', 'crc32')
PROBLEM = 'https://iana.org/assignments/http-problem-types#'


class Interrupted(Exception):
    """The request body ended early (connection closed, reset or timed out)."""


class BodyTimeout(Interrupted):
    pass


class Upload:
    def __init__(self, uid, kind, version=None):
        self.id = uid
        self.kind = kind                # 'tus' | 'ietf'
        self.version = version
        self.data = bytearray()
        self.length = None              # None = unknown / deferred
        self.metadata = None            # raw Upload-Metadata
        self.concat = None              # None | 'partial' | 'final'
        self.concat_raw = None
        self.parts = []                 # final: list of partial Uploads
        self.complete = False           # IETF completeness
        self.invalid = False
        self.touched = time.time()
        self.active = None              # (socket, threading.Event) of the request writing now
        self.interrupted_at = None      # offset before the last interrupted append (fault)
        self.was_deferred = False
        self.unfinished_at_creation = False


class Config:
    def __init__(self, base='/files/', max_size=1 << 30, expire_after=3600, body_timeout=10.0,
                 faults=()):
        self.base = base
        self.max_size = max_size
        self.expire_after = expire_after
        self.body_timeout = body_timeout
        self.faults = set(faults)


class State:
    def __init__(self, cfg):
        self.cfg = cfg
        self.uploads = {}
        self.lock = threading.Lock()
        self.seq = 0

    def new_id(self):
        with self.lock:
            if 'reuse_ids' in self.cfg.faults:
                n = 1
                while str(n) in self.uploads:
                    n += 1
                return str(n)
            if 'guessable_ids' in self.cfg.faults:
                self.seq += 1
                return str(self.seq)
            return secrets.token_hex(16)


# -- HTTP plumbing --------------------------------------------------------------------------

class Request:
    def __init__(self, handler, method, target, headers):
        self.h = handler
        self.method = method
        self.target = target
        self.path = urllib.parse.urlsplit(target).path
        self.headers = headers          # list of (name, value)
        self.trailers = []
        self.chunked = 'chunked' in (self.get('Transfer-Encoding') or '').lower()
        cl = self.get('Content-Length')
        self.length = int(cl) if cl and cl.strip().isdigit() else (None if self.chunked else 0)
        self.remaining = self.length
        self.chunk_left = 0
        self.body_done = False
        self.sent_continue = False

    def get(self, name, default=None):
        n = name.lower()
        vals = [v for k, v in self.headers if k.lower() == n]
        return ', '.join(vals) if vals else default

    def has(self, name):
        return self.get(name) is not None

    def trailer(self, name):
        for k, v in self.trailers:
            if k.lower() == name.lower():
                return v
        return None

    def maybe_continue(self):
        if self.sent_continue or (self.get('Expect') or '').lower() != '100-continue':
            return
        self.sent_continue = True
        self.h.interim(100, [])

    def read(self, n=65536):
        """Up to n body bytes; b'' at the end; raises Interrupted."""
        if self.body_done:
            return b''
        self.maybe_continue()
        if not self.chunked:
            if self.remaining <= 0:
                self.body_done = True
                return b''
            d = self.h.recv(min(n, self.remaining))
            self.remaining -= len(d)
            return d
        if self.chunk_left == 0:
            line = self.h.readline()
            size = int(line.split(b';')[0].strip() or b'0', 16)
            if size == 0:
                while True:
                    t = self.h.readline()
                    if not t:
                        break
                    k, _, v = t.decode('latin-1').partition(':')
                    self.trailers.append((k.strip(), v.strip()))
                self.body_done = True
                return b''
            self.chunk_left = size
        d = self.h.recv(min(n, self.chunk_left))
        self.chunk_left -= len(d)
        if self.chunk_left == 0:
            if self.h.recv_exact(2) != b'\r\n':
                raise Interrupted('bad chunk framing')
        return d

    def read_all(self, limit=1 << 26):
        out = bytearray()
        while True:
            d = self.read()
            if not d:
                return bytes(out)
            out += d
            if len(out) > limit:
                raise Interrupted('body too large')


class Handler(socketserver.BaseRequestHandler):
    state = None

    # socket helpers
    def recv(self, n):
        if self.buf:
            d, self.buf = self.buf[:n], self.buf[n:]
            return d
        self.request.settimeout(self.state.cfg.body_timeout)
        try:
            d = self.request.recv(n)
        except socket.timeout:
            raise BodyTimeout('body timeout')
        except OSError as e:
            raise Interrupted(str(e))
        if not d:
            raise Interrupted('connection closed')
        return d

    def recv_exact(self, n):
        out = b''
        while len(out) < n:
            out += self.recv(n - len(out))
        return out

    def readline(self):
        line = b''
        while not line.endswith(b'\r\n'):
            line += self.recv(1)
        return line[:-2]

    def send_raw(self, b):
        try:
            self.request.sendall(b)
        except OSError:
            pass

    def interim(self, status, headers):
        s = 'HTTP/1.1 %d %s\r\n' % (status, REASONS.get(status, 'Info'))
        s += ''.join('%s: %s\r\n' % kv for kv in headers) + '\r\n'
        self.send_raw(s.encode('latin-1'))

    def respond(self, status, headers=(), body=b''):
        hs = list(headers)
        if status not in (204, 304) and not (self.req and self.req.method == 'HEAD'):
            hs.append(('Content-Length', str(len(body))))
        elif self.req and self.req.method == 'HEAD' and body:
            body = b''
        hs.append(('Connection', 'close'))
        s = 'HTTP/1.1 %d %s\r\n' % (status, REASONS.get(status, 'Status'))
        s += ''.join('%s: %s\r\n' % kv for kv in hs) + '\r\n'
        self.send_raw(s.encode('latin-1') + (body if status not in (204, 304) else b''))
        self.responded = True

    def handle(self):
        self.buf = b''
        self.req = None
        self.responded = False
        try:
            self.request.settimeout(10)
            head = b''
            while b'\r\n\r\n' not in head:
                d = self.request.recv(65536)
                if not d:
                    return
                head += d
            head, self.buf = head.split(b'\r\n\r\n', 1)
            lines = head.decode('latin-1').split('\r\n')
            method, target, _ = lines[0].split(' ', 2)
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(':')
                headers.append((k.strip(), v.strip()))
            self.req = Request(self, method, target, headers)
            Server(self.state, self, self.req).dispatch()
        except BodyTimeout:
            if not self.responded:
                self.respond(400, [], b'body timeout\n')
        except Interrupted:
            pass
        except (OSError, ValueError):
            pass
        finally:
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ThreadedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


# -- protocol logic -------------------------------------------------------------------------

def sf_bool(v):
    v = (v or '').strip()
    return {'?1': True, '?0': False}.get(v)


class Server:
    def __init__(self, state, h, req):
        self.st = state
        self.cfg = state.cfg
        self.f = state.cfg.faults
        self.h = h
        self.req = req

    def F(self, name):
        return name in self.f

    # ---- dispatch ----
    def dispatch(self):
        req = self.req
        vh = req.get('Upload-Draft-Interop-Version')
        version = int(vh) if vh and vh.strip().isdigit() and int(vh) in (3, 4, 5, 6, 7, 8) else None
        if version is None and req.method == 'POST' and \
                (req.has('Upload-Complete') or req.has('Upload-Incomplete')):
            if self.F('104_without_version') and vh is None:
                version = 8
            if self.F('104_any_version') and vh is not None:
                version = 8
        if req.method == 'OPTIONS':
            return self.options(version)
        if version is not None:
            return self.ietf(version)
        return self.tus()

    def upload_for(self, path):
        if not path.startswith(self.cfg.base):
            return None
        uid = path[len(self.cfg.base):]
        with self.st.lock:
            return self.st.uploads.get(uid)

    def location(self, u):
        return self.cfg.base + u.id

    def expires(self, u):
        return email.utils.formatdate(u.touched + self.cfg.expire_after, usegmt=True)

    def expired(self, u):
        return self.cfg.expire_after and time.time() > u.touched + self.cfg.expire_after

    def remove(self, u):
        with self.st.lock:
            self.st.uploads.pop(u.id, None)

    # ---- OPTIONS ----
    def options(self, version):
        hs = []
        if not self.F('tus_resumable_on_options_missing'):
            hs.append(('Tus-Resumable', '1.0.0'))
        if not self.F('options_no_tus_version'):
            hs.append(('Tus-Version', '1.0.0;x' if self.F('tus_version_malformed') else '1.0.0,0.2.2'))
        exts = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination',
                'checksum', 'checksum-trailer', 'expiration', 'concatenation',
                'concatenation-unfinished']
        drop = {'creation_unadvertised': 'creation', 'cwu_unadvertised': 'creation-with-upload',
                'defer_unadvertised': 'creation-defer-length', 'termination_unadvertised': 'termination',
                'checksum_unadvertised': 'checksum', 'trailer_unadvertised': 'checksum-trailer',
                'expiration_unadvertised': 'expiration', 'concat_unadvertised': 'concatenation',
                'unfinished_unadvertised': 'concatenation-unfinished', 'cwu_without_creation': 'creation'}
        exts = [e for e in exts if not any(self.F(k) and v == e for k, v in drop.items())]
        hs.append(('Tus-Extension', ','.join(exts) + (',' if self.F('tus_extension_malformed') else '')))
        if not self.F('unannounced_limit'):
            hs.append(('Tus-Max-Size', '1G' if self.F('tus_max_size_malformed') else str(self.cfg.max_size)))
        if not self.F('no_checksum_algorithm_header'):
            algos = [a for a in ALGOS if not (self.F('no_sha1') and a == 'sha1')]
            if self.F('uppercase_algo_names'):
                algos = [a.upper() for a in algos]
            hs.append(('Tus-Checksum-Algorithm', ','.join(algos)))
        if version is not None:
            if not self.F('options_no_limit'):
                if self.F('options_empty_limit'):
                    hs.append(('Upload-Limit', ''))
                else:
                    mx = self.cfg.max_size * (2 if self.F('options_looser') else 1)
                    hs.append(('Upload-Limit', 'max-size=%d' % mx))
            if version >= 8 and not self.F('no_accept_patch'):
                hs.append(('Accept-Patch', 'application/partial-upload'))
        if self.req.has('Tus-Resumable') and self.req.get('Tus-Resumable') != '1.0.0' and \
                self.F('options_checks_version'):
            return self.h.respond(412, [('Tus-Version', '1.0.0')])
        self.h.respond(204, hs)

    # ================================ tus =================================================
    def tus(self):
        req = self.req
        method = req.method
        if method == 'POST' and req.has('X-HTTP-Method-Override') and not self.F('no_method_override'):
            method = req.get('X-HTTP-Method-Override').strip().upper()
        base_h = [] if self.F('no_tus_resumable_on_errors') else [('Tus-Resumable', '1.0.0')]
        self.tus_h = [('Tus-Resumable', '0.2.2' if self.F('wrong_tus_resumable_value') else '1.0.0')]
        self.err_h = base_h
        if method == 'GET':
            return self.tus_get()
        if req.get('Tus-Resumable') != '1.0.0' and not self.F('no_412'):
            if self.F('412_after_processing') and method == 'PATCH':
                try:
                    self.tus_patch(dry=True)
                except Interrupted:
                    pass
            hs = list(self.err_h)
            if not self.F('412_without_tus_version'):
                hs.append(('Tus-Version', '1.0.0'))
            return self.h.respond(412, hs, b'unsupported version\n')
        if method == 'POST':
            return self.tus_post()
        if method == 'HEAD':
            return self.tus_head()
        if method == 'PATCH':
            return self.tus_patch()
        if method == 'DELETE':
            return self.tus_delete()
        self.h.respond(405, self.err_h)

    def err(self, status, msg=''):
        self.h.respond(status, self.err_h, (msg + '\n').encode() if msg else b'')

    def final_state(self, u):
        """(offset or None, length or None, data) of a final upload."""
        total = 0
        known = True
        for p in u.parts:
            if p.length is None:
                known = False
            else:
                total += p.length
        length = total if known else None
        if self.F('concat_length_wrong') and length is not None:
            length += 1
        done = known and all(len(p.data) == p.length for p in u.parts)
        if self.F('unfinished_never_completes') and u.unfinished_at_creation:
            done = False
        data = b''.join(bytes(p.data) for p in (reversed(u.parts) if self.F('concat_reversed') else u.parts))
        return (len(data) if done else None), length, data

    def tus_post(self):
        req = self.req
        if req.path != self.cfg.base:
            return self.err(405, 'creation only at the base path')
        concat = req.get('Upload-Concat')
        parts = []
        defer = req.get('Upload-Defer-Length')
        length = None
        unfinished = False
        if concat and concat.startswith('final;'):
            for ref in concat[len('final;'):].split():
                p = self.upload_for(urllib.parse.urlsplit(urllib.parse.urljoin(self.cfg.base, ref)).path)
                if p is None or p.concat != 'partial':
                    return self.err(400, 'bad partial %s' % ref)
                parts.append(p)
                if p.length is None or len(p.data) != p.length:
                    unfinished = True
        else:
            if defer is not None:
                if defer.strip() != '1' and not self.F('defer_bad_value_accepted'):
                    return self.err(400, 'Upload-Defer-Length must be 1')
            elif req.get('Upload-Length', '').strip().isdigit():
                length = int(req.get('Upload-Length').strip())
            else:
                return self.err(400, 'Upload-Length or Upload-Defer-Length required')
            if length is not None and length > self.cfg.max_size and not self.F('no_413') \
                    and not self.F('unannounced_limit'):
                return self.err(413, 'too large')
            if self.F('unannounced_limit') and length is not None and length > (1 << 40):
                return self.err(413, 'too large')
        meta = req.get('Upload-Metadata')
        u = Upload(self.st.new_id(), 'tus')
        u.length = length
        u.metadata = meta
        u.unfinished_at_creation = unfinished
        if concat == 'partial' or (concat and concat.strip() == 'partial'):
            u.concat = 'partial'
            u.concat_raw = 'partial'
        elif parts:
            u.concat = 'final'
            u.concat_raw = concat
            u.parts = parts
            if self.F('concat_inherits_metadata') and parts[0].metadata:
                u.metadata = parts[0].metadata
        with self.st.lock:
            self.st.uploads[u.id] = u
        hs = list(self.tus_h) + [('Location', self.cfg.base + ('wrong-' if self.F('creation_bad_location') else '') + u.id)]
        if not self.F('expires_not_on_post'):
            hs.append(('Upload-Expires', self.expires_value(u)))
        if self.F('metadata_decoded_into_headers') and meta:
            for pair in meta.split(','):
                k, _, v = pair.strip().partition(' ')
                try:
                    hs.append(('X-Meta-' + k, base64.b64decode(v).decode('latin-1')))
                except Exception:
                    pass
        if req.get('Content-Type') == 'application/offset+octet-stream' and u.concat != 'final':
            body_limit = 1000 if self.F('cwu_partial') else None
            try:
                self.append_stream(u, req, body_limit)
            except Interrupted:
                return
            if not self.F('cwu_offset_missing'):
                hs.append(('Upload-Offset', str(len(u.data))))
        self.h.respond(200 if self.F('creation_200') else 201, hs)

    def expires_value(self, u):
        v = self.expires(u)
        if self.F('expires_bad_format'):
            return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(u.touched + self.cfg.expire_after))
        return v

    def append_stream(self, u, req, limit=None):
        """Stream the body into u.data; on interruption keep what arrived (unless faulted)."""
        start = len(u.data)
        got = bytearray()
        try:
            while True:
                d = req.read()
                if not d:
                    break
                got += d
                if limit is not None and len(got) >= limit:
                    got = got[:limit]
                    while req.read():
                        pass
                    break
                if u.length is not None and start + len(got) > u.length:
                    raise Interrupted('beyond length')
        except Interrupted:
            if not self.F('partial_discarded'):
                room = (u.length - start) if u.length is not None else len(got)
                u.data += got[:max(0, room)]
            raise
        u.data += got
        u.touched = time.time()

    def tus_head(self):
        u = self.upload_for(self.req.path)
        if u is None:
            hs = list(self.err_h)
            if self.F('unknown_head_with_offset'):
                hs.append(('Upload-Offset', '0'))
            return self.h.respond(404, hs)
        if self.expired(u):
            return self.h.respond(200 if self.F('expired_still_200') else 410,
                                  list(self.err_h) + ([('Upload-Offset', str(len(u.data)))]
                                                      if self.F('expired_still_200') else []))
        hs = list(self.tus_h)
        if not self.F('head_no_cache_control'):
            hs.append(('Cache-Control', 'no-store'))
        if u.concat == 'final':
            off, length, _ = self.final_state(u)
            if self.F('unfinished_offset_shown') and off is None:
                off = 0
            if off is not None and not self.F('concat_offset_missing_after'):
                hs.append(('Upload-Offset', str(off)))
            if length is not None and not self.F('unfinished_no_length'):
                hs.append(('Upload-Length', str(length)))
        else:
            off = len(u.data)
            show = True
            if self.F('head_no_offset_when_zero') and off == 0:
                show = False
            if self.F('head_no_offset_when_complete') and u.length is not None and off == u.length:
                show = False
            if self.F('partial_head_no_offset') and u.concat == 'partial':
                show = False
            if show:
                hs.append(('Upload-Offset', ('+%d' if self.F('offset_malformed') else '%d') % off))
            if u.length is not None:
                if not self.F('head_no_length'):
                    hs.append(('Upload-Length', str(u.length)))
                if self.F('defer_header_always') or self.F('defer_still_after_declare') and u.was_deferred:
                    hs.append(('Upload-Defer-Length', '1'))
            elif not self.F('defer_head_missing'):
                hs.append(('Upload-Defer-Length', '1'))
        if u.metadata:
            md = u.metadata
            if self.F('metadata_not_echoed'):
                md = ','.join(p for p in md.split(',') if ' ' in p.strip())
            hs.append(('Upload-Metadata', md))
        if u.concat and not self.F('concat_header_missing'):
            hs.append(('Upload-Concat', u.concat_raw))
        self.h.respond(200, hs)

    def tus_patch(self, dry=False):
        req = self.req
        if req.get('Content-Type') != 'application/offset+octet-stream' and not self.F('no_415'):
            return self.err(415)
        u = self.upload_for(req.path)
        if u is None:
            return self.err(400 if self.F('patch_unknown_400') else 404)
        if self.expired(u) and not self.F('expired_still_200'):
            return self.err(410)
        if self.F('patch_403_always'):
            return self.err(403)
        if u.concat == 'final':
            if self.F('concat_patch_modifies') and u.parts:
                u.parts[0].data += b'!'
            if self.F('concat_patch_409'):
                return self.err(409)
            return self.err(403)
        off = req.get('Upload-Offset', '')
        if not off.strip().isdigit():
            return self.err(400)
        off = int(off)
        if off != len(u.data) and not self.F('patch_offset_ignored'):
            if self.F('409_but_modifies'):
                u.data += req.read_all()
            return self.err(409, 'offset mismatch')
        if req.has('Upload-Length'):
            ln = req.get('Upload-Length').strip()
            if not ln.isdigit():
                return self.err(400)
            if u.length is None:
                u.length = int(ln)
                u.was_deferred = True
            elif int(ln) != u.length:
                if self.F('defer_length_mutable'):
                    u.length = int(ln)
                else:
                    return self.err(400, 'length already set')
        algo_hdr = req.get('Upload-Checksum')
        announced_trailer = 'upload-checksum' in (req.get('Trailer') or '').lower()
        if algo_hdr is not None or announced_trailer:
            if announced_trailer and self.F('trailer_rejected'):
                return self.err(400)
            body = req.read_all()
            if announced_trailer and algo_hdr is None:
                algo_hdr = req.trailer('Upload-Checksum') or ''
                if self.F('trailer_not_verified'):
                    algo_hdr = None
            if algo_hdr is not None:
                algo, _, want = algo_hdr.strip().partition(' ')
                ok_algos = [a for a in ALGOS if not (self.F('no_sha1') and a == 'sha1')]
                if self.F('uppercase_algo_names'):
                    algo = algo.lower()
                if algo not in ok_algos and not self.F('unknown_algo_accepted'):
                    return self.err(400, 'unsupported checksum algorithm')
                if algo in ok_algos and not (self.F('checksum_not_verified_md5') and algo == 'md5'):
                    if digest(algo, body) != want.strip():
                        if self.F('checksum_mismatch_stored'):
                            u.data += body
                        return self.err(460, 'checksum mismatch')
            if u.length is not None and off + len(body) > u.length:
                return self.err(413, 'beyond length')
            u.data += body
            u.touched = time.time()
        else:
            if u.length is not None and req.length is not None and off + req.length > u.length:
                return self.err(413, 'beyond length')
            try:
                self.append_stream(u, req)
            except BodyTimeout:
                raise
            except Interrupted:
                return
        if dry:
            return
        new = len(u.data)
        if self.F('patch_offset_header_wrong'):
            new += 1
        hs = list(self.tus_h) + [('Upload-Offset', ('+%d' if self.F('offset_malformed') else '%d') % new)]
        if not self.F('expires_not_on_patch'):
            hs.append(('Upload-Expires', self.expires_value(u)))
        self.h.respond(200 if self.F('patch_200') else 204, hs)

    def tus_delete(self):
        u = self.upload_for(self.req.path)
        if u is None:
            return self.err(404)
        if self.F('delete_completed_403') and u.length is not None and len(u.data) == u.length:
            return self.err(403)
        if not self.F('deleted_still_there'):
            self.remove(u)
        self.h.respond(200 if self.F('delete_200') else 204, self.tus_h)

    def tus_get(self):
        u = self.upload_for(self.req.path)
        if u is None:
            return self.err(404)
        data = self.final_state(u)[2] if u.concat == 'final' else bytes(u.data)
        self.h.respond(200, [('Content-Type', 'application/octet-stream')], data)

    # ================================ IETF ================================================
    def ietf(self, v):
        self.v = v
        req = self.req
        self.vh = [('Upload-Draft-Interop-Version', str(v))]
        if req.method == 'POST' and req.path == self.cfg.base:
            return self.ietf_create()
        u = self.upload_for(req.path)
        if req.method == 'HEAD':
            return self.ietf_head(u)
        if req.method == 'PATCH':
            return self.ietf_append(u)
        if req.method == 'DELETE':
            return self.ietf_delete(u)
        self.h.respond(405, [])

    def cname(self):
        return 'Upload-Incomplete' if self.v == 3 else 'Upload-Complete'

    def comp_hdr(self, complete):
        if self.F('bad_sf'):
            return (self.cname(), 'true' if complete != (self.v == 3) else 'false')
        if self.v == 3:
            return ('Upload-Incomplete', '?0' if complete else '?1')
        return ('Upload-Complete', '?1' if complete else '?0')

    def req_complete(self):
        raw = self.req.get(self.cname())
        b = sf_bool(raw)
        if b is None:
            return None
        return (not b) if self.v == 3 else b

    def limit_value(self, u=None, for_head=False):
        if self.F('limit_bad_syntax'):
            return 'max-size=1G'
        mx = self.cfg.max_size
        if for_head and self.F('limits_change'):
            mx += 1
        if for_head and self.F('limits_tighten'):
            mx -= 1
        parts = ['max-size=%d' % mx]
        if self.cfg.expire_after and not (for_head and self.F('no_max_age')):
            left = self.cfg.expire_after
            if u is not None:
                left = int(u.touched + self.cfg.expire_after - time.time())
            if for_head and self.F('lifetime_shrinks'):
                left = max(0, left - 60)
            parts.append('max-age=%d' % max(0, left))
        return ', '.join(parts)

    def terminate_active(self, u):
        act = u.active
        if act is None:
            return
        if self.F('no_terminate') or self.F('delete_no_terminate') and self.req.method == 'DELETE':
            act[1].wait(30)
            return
        try:
            act[0].shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        act[1].wait(5)

    def progress_stream(self, u):
        """Read the body into u.data, sending 104 progress (interop 4+) every 0.4 s.
        Returns 'ok' or 'overflow' (interop 6+: more bytes than the known length).
        On interruption what arrived is kept (unless faulted) and Interrupted is raised."""
        req = self.req
        is_append = req.method == 'PATCH'
        hold = self.F('append_partial_discarded') if is_append else self.F('creation_partial_discarded')
        held = bytearray()
        last = time.monotonic()
        lo = None
        try:
            while True:
                d = req.read()
                if not d:
                    u.data += held
                    return 'ok'
                if self.v >= 6 and u.length is not None and len(u.data) + len(held) + len(d) > u.length \
                        and not self.F('no_length_enforcement_chunked'):
                    if not hold:
                        u.data += d[:u.length - len(u.data)]
                    return 'overflow'
                (held if hold else u.data).extend(d)
                now = time.monotonic()
                if self.v < 4 or now - last < 0.4 or (is_append and self.F('no_append_progress')):
                    continue
                last = now
                off = len(u.data) + len(held)
                if not is_append and self.F('creation_progress_decreasing'):
                    lo = off if lo is None else lo - 1
                    off = lo
                hs = self.ietf_104_headers() + [('Upload-Offset', str(off))]
                if (is_append and self.F('append_104_location')) or \
                        (not is_append and self.F('creation_progress_with_location')):
                    hs.append(('Location', self.location(u)))
                self.h.interim(104, hs)
        finally:
            u.touched = time.time()

    def claimed(self, u, fn):
        """Run fn() as the request writing to u: a HEAD/PATCH/DELETE arriving meanwhile
        terminates this request (its connection) and waits until it has stored its bytes."""
        done = threading.Event()
        u.active = (self.h.request, done)
        try:
            return fn()
        finally:
            if u.active is not None and u.active[1] is done:
                u.active = None
            done.set()

    def ietf_104_headers(self):
        v = 99 if self.F('104_wrong_version') else self.v
        return [('Upload-Draft-Interop-Version', str(v))]

    def ietf_create(self):
        req = self.req
        complete = self.req_complete()
        if complete is None:
            return self.h.respond(400, [], b'completeness field required\n')
        length = None
        if self.v >= 6 and req.has('Upload-Length'):
            length = int(req.get('Upload-Length'))
            if length > self.cfg.max_size:
                hs = [] if self.F('413_no_limit') else [('Upload-Limit', self.limit_value())]
                return self.h.respond(413, hs)
        if complete and req.length is not None and not req.chunked and not self.F('no_length_from_cl'):
            if not (self.F('no_recorded_length') and self.v in (4, 5)):
                length = req.length
        u = Upload(self.st.new_id(), 'ietf', self.v)
        u.length = length
        return self.claimed(u, lambda: self.ietf_create_body(u, complete))

    def ietf_create_body(self, u, complete):
        req = self.req
        with self.st.lock:
            self.st.uploads[u.id] = u
        loc = self.location(u)
        if not self.F('no_104'):
            hs = self.ietf_104_headers()
            if not self.F('104_no_location'):
                hs.append(('Location', loc))
            if self.v >= 8 and not self.F('104_no_limit'):
                hs.append(('Upload-Limit', self.limit_value(u)))
            self.h.interim(104, hs)
        if self.F('no_100_with_104') and (req.get('Expect') or '').lower() == '100-continue':
            req.sent_continue = True
        try:
            self.progress_stream(u)
        except Interrupted:
            if self.F('interrupted_creation_complete'):
                u.complete = True
            return
        u.complete = complete
        if self.F('forget_completed') and complete:
            self.remove(u)
        hs = []
        if not self.F('creation_no_location'):
            hs.append(('Location', '/elsewhere/' + u.id if self.F('location_mismatch') else loc))
        if not self.F('creation_no_offset'):
            hs.append(('Upload-Offset', str(len(u.data))))
        if complete:
            hs.append(self.comp_hdr(not self.F('creation_complete_flagged_incomplete')))
        elif not self.F('creation_incomplete_no_flag'):
            hs.append(self.comp_hdr(False))
        if self.v >= 6 and not self.F('creation_no_limit'):
            hs.append(('Upload-Limit', self.limit_value(u)))
        self.h.respond(200 if self.F('creation_200') else 201, hs)

    def ietf_gone(self, u):
        return u is None or (self.cfg.expire_after and time.time() > u.touched + self.cfg.expire_after)

    def ietf_head(self, u):
        req = self.req
        if self.v <= 5 and (req.has('Upload-Offset') or req.has(self.cname())) and not self.F('head_accepts_offset'):
            return self.h.respond(400, [])
        if self.ietf_gone(u):
            if self.F('head_unknown_301'):
                return self.h.respond(301, [('Location', '/')])
            return self.h.respond(410 if self.F('head_unknown_410') or self.F('deleted_410') else 404, [])
        if u.invalid and not self.F('overflow_not_invalidated'):
            return self.h.respond(400, [], b'invalid upload\n')
        self.terminate_active(u)
        off = len(u.data)
        if self.F('stale_offset') and u.interrupted_at is not None:
            off = u.interrupted_at
        if self.F('head_wrong_offset'):
            off += 1
        hs = [('Upload-Offset', str(off))]
        if not self.F('head_no_complete_field'):
            hs.append(self.comp_hdr(u.complete and not self.F('head_complete_wrong')))
        if self.v >= 6 and u.length is not None and not self.F('head_no_length'):
            hs.append(('Upload-Length', str(u.length)))
        if self.v >= 6 and not self.F('head_no_limit'):
            hs.append(('Upload-Limit', self.limit_value(u, for_head=True)))
        if not self.F('head_no_cache'):
            hs.append(('Cache-Control', 'no-store'))
        status = 204
        if self.F('head_200') or self.F('head_202'):
            status = 200 if self.F('head_200') else 202
        self.h.respond(status, hs)

    def problem(self, kind, **members):
        doc = {'type': PROBLEM + kind, 'title': kind}
        doc.update(members)
        return json.dumps(doc).encode()

    def ietf_append(self, u):
        req = self.req
        if self.ietf_gone(u):
            return self.h.respond(410 if self.F('deleted_410') else 404, [])
        if u.invalid and not self.F('overflow_not_invalidated'):
            return self.h.respond(400, [], b'invalid upload\n')
        self.terminate_active(u)
        return self.claimed(u, lambda: self.ietf_append_body(u))

    def ietf_append_body(self, u):
        req = self.req
        complete = self.req_complete()
        if complete is None:
            return self.h.respond(400, [], b'completeness field required\n')
        off = req.get('Upload-Offset', '')
        if not off.strip().isdigit():
            return self.h.respond(400, [])
        off = int(off)
        if u.complete and not self.F('completed_accepts_append'):
            return self.h.respond(400, [('Content-Type', 'application/problem+json')],
                                  self.problem('inconsistent-upload-length'))
        cur = len(u.data)
        if off != cur and not self.F('no_409'):
            if self.F('409_modifies'):
                u.data += req.read_all()
            hs = []
            if not self.F('409_no_offset'):
                hs.append(('Upload-Offset', str(cur - 1 if self.F('offset_decreases') else cur)))
            if not (self.F('append_409_no_complete') and self.v in (6, 7)):
                hs.append(self.comp_hdr(False))
            body = b''
            if self.v >= 6:
                hs.append(('Content-Type', 'application/problem+json'))
                members = {'expected-offset': cur, 'provided-offset': off}
                if self.F('problem_wrong_members'):
                    members = {'expected': cur}
                body = self.problem('mismatching-upload-offset', **members)
            return self.h.respond(409, hs, body)
        if self.F('completed_accepts_append') and u.complete:
            u.length = None
        if complete and req.length is not None and not req.chunked:
            final = off + req.length
            if u.length is not None and u.length != final and self.v >= 4 and \
                    not (self.F('no_recorded_length') and self.v in (4, 5)):
                return self.h.respond(400, [('Content-Type', 'application/problem+json')],
                                      self.problem('inconsistent-upload-length'))
            u.length = final
        if self.v >= 6 and u.length is not None and req.length is not None and not req.chunked and \
                off + req.length > u.length and not self.F('no_length_enforcement_cl'):
            return self.h.respond(400, [self.comp_hdr(False)], b'beyond length\n')
        if self.v >= 6 and self.F('no_length_enforcement_cl') and not req.chunked:
            u.length = None
        before = len(u.data)
        try:
            result = self.progress_stream(u)
        except Interrupted:
            u.interrupted_at = before
            if self.F('interrupted_append_complete') and complete:
                u.complete = True
            return
        if result == 'overflow':
            u.invalid = True
            while True:
                try:
                    if not req.read():
                        break
                except Interrupted:
                    return
            return self.h.respond(400, [self.comp_hdr(False)], b'beyond length\n')
        u.interrupted_at = None
        if complete and not self.F('empty_complete_ignored') or (complete and req.length):
            u.complete = True
        if complete and self.F('forget_completed'):
            self.remove(u)
        hs = []
        if not self.F('append_no_offset'):
            hs.append(('Upload-Offset', str(len(u.data))))
        if complete:
            if not self.F('append_complete_no_true'):
                hs.append(self.comp_hdr(not self.F('append_complete_flagged_incomplete')))
            status = 201 if self.v <= 5 else 200
        else:
            # -02/-03 say "Upload-Complete field value set to true" here, an evident typo: omitted
            if not (self.F('append_no_complete_field') and self.v >= 8) and self.v not in (4, 5):
                hs.append(self.comp_hdr(False))
            status = 201 if self.v <= 5 else 204
            if self.F('append_204') and self.v <= 5:
                status = 204
        self.h.respond(status, hs)

    def ietf_delete(self, u):
        req = self.req
        if self.v <= 5 and (req.has('Upload-Offset') or req.has(self.cname())) and not self.F('delete_accepts_offset'):
            return self.h.respond(400, [])
        if self.ietf_gone(u):
            if self.F('head_unknown_301'):
                return self.h.respond(301, [('Location', '/')])
            return self.h.respond(410 if self.F('delete_unknown_410') or self.F('deleted_410') else 404, [])
        self.terminate_active(u)
        if not self.F('delete_keeps'):
            self.remove(u)
        self.h.respond(200 if self.F('delete_200') else 204, [])


def digest(algo, body):
    if algo == 'crc32':
        return base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, 'big')).decode()
    return base64.b64encode(hashlib.new(algo, body).digest()).decode()


def start(cfg, port=0):
    """Start in a background thread; returns (server, base URL)."""
    handler = type('H', (Handler,), {'state': State(cfg)})
    srv = ThreadedServer(('127.0.0.1', port), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv, 'http://127.0.0.1:%d%s' % (srv.server_address[1], cfg.base)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--base', default='/files/')
    p.add_argument('--max-size', type=int, default=1 << 30)
    p.add_argument('--expire-after', type=float, default=3600)
    p.add_argument('--body-timeout', type=float, default=10.0)
    p.add_argument('--fault', action='append', default=[])
    a = p.parse_args(argv)
    srv, url = start(Config(a.base, a.max_size, a.expire_after, a.body_timeout, a.fault), a.port)
    sys.stderr.write('refserver: listening on %s\n' % url.rsplit(a.base, 1)[0])
    sys.stderr.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.shutdown()


if __name__ == '__main__':
    main(sys.argv[1:])
