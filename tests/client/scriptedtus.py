#!/usr/bin/env python3
"""An in-memory tus 1.0.0 server whose answers a fault script can override (standard library only).

    python3 scriptedtus.py --log LOG [--script JSON | --script @FILE] [--port 0]

The tus core plus creation, creation-defer-length and checksum: OPTIONS; POST creates /files/<n>
(Upload-Length or Upload-Defer-Length: 1); HEAD answers Upload-Offset, Upload-Length when known
(else Upload-Defer-Length: 1) and Cache-Control: no-store; PATCH checks Content-Type
application/offset+octet-stream (415), Upload-Offset against the stored offset (409), the length
(413), an Upload-Checksum (460), appends and answers 204 with Upload-Offset.  GET /files/<n>
returns the stored bytes, for the tests.  Every answer has a correct Content-Length and, unless a
rule says otherwise, Tus-Resumable: 1.0.0; connections are kept alive (HTTP/1.1).

The script is a JSON list of rules; the first rule that matches a request answers it instead of
the protocol:

    {"method": "PATCH",        the request's method (required)
     "nth": 2,                 its 2nd request of that method (1-based); a list of such numbers;
                               omitted: every one
     "status": 503,            the answer's status (required)
     "headers": {"Retry-After": "2"},      extra answer headers
     "body": "text\\n",         the answer's body (default "scripted <status>\\n", text/plain)
     "tus": true,              whether the answer carries Tus-Resumable (default true)
     "consume": true,          PATCH/POST body: true (default) read and discard it; false: store it
                               first as an ordinary PATCH would (when its Upload-Offset matches)
     "keep": 1000,             with consume false: store only the first 1000 bytes of the body
     "retry_after_date": 2}    add Retry-After as an HTTP-date at least 2 s (at most 3 s) after
                               the answer

Every request is logged to LOG as one JSON line, written before the answer is sent:
    {"t": <time.monotonic() when its headers were read>, "t_answer": <just before answering>,
     "method": "PATCH", "path": "/files/1", "offset": <Upload-Offset header as int, or null>,
     "len": <body bytes read>, "status": 204, "scripted": <whether a rule answered>,
     "stored": <the upload's offset after the request, or null>,
     "checksum": <the Upload-Checksum header, or null>}
On start it prints `scriptedtus: listening on http://127.0.0.1:PORT` on stderr.
"""

import argparse
import base64
import email.utils
import hashlib
import http.server
import json
import math
import sys
import threading
import time

TUS = '1.0.0'
ALGOS = ('sha1', 'sha256', 'sha512', 'md5')


class Upload:
    def __init__(self, length):
        self.length = length   # None: deferred
        self.data = bytearray()


class State:
    def __init__(self, rules, log_path):
        self.rules = rules
        self.log = open(log_path, 'a', encoding='utf-8')
        self.lock = threading.Lock()
        self.counts = {}
        self.uploads = {}
        self.next_id = 1

    def match(self, method):
        """The rule answering this request (counted here), or None."""
        with self.lock:
            n = self.counts[method] = self.counts.get(method, 0) + 1
        for r in self.rules:
            if r['method'].upper() != method:
                continue
            nth = r.get('nth')
            if nth is None or nth == n or (isinstance(nth, list) and n in nth):
                return r
        return None

    def write_log(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry) + '\n')
            self.log.flush()


def int_header(h, name):
    v = h.get(name)
    if v is None:
        return None
    v = v.strip()
    return int(v) if v.isdigit() else -1


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    state = None   # set in main

    def log_message(self, *a):
        pass

    def read_body(self):
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n > 0 else b''

    def upload(self):
        parts = self.path.split('?')[0].split('/')
        if len(parts) == 3 and parts[1] == 'files' and parts[2].isdigit():
            return self.state.uploads.get(int(parts[2]))
        return None

    def handle_one(self):
        t = time.monotonic()
        st = self.state
        method = self.command
        rule = st.match(method)
        body = self.read_body() if method in ('POST', 'PATCH', 'PUT') else b''
        up = self.upload()
        if rule is not None:
            if method == 'PATCH' and not rule.get('consume', True) and up is not None:
                keep = body[:rule['keep']] if 'keep' in rule else body
                with st.lock:
                    if int_header(self.headers, 'Upload-Offset') == len(up.data):
                        up.data += keep
            status = rule['status']
            text = rule.get('body', 'scripted %d\n' % status).encode()
            headers = [('Content-Type', 'text/plain')] + list(rule.get('headers', {}).items())
            if 'retry_after_date' in rule:
                at = math.floor(time.time()) + 1 + rule['retry_after_date']
                headers.append(('Retry-After', email.utils.formatdate(at, usegmt=True)))
            if rule.get('tus', True):
                headers.append(('Tus-Resumable', TUS))
        else:
            status, headers, text = self.protocol(method, up, body)
            headers.append(('Tus-Resumable', TUS))
        # logged before any byte of the answer goes out: once the client has its answer, the
        # log holds the request
        st.write_log({'t': t, 't_answer': time.monotonic(), 'method': method, 'path': self.path,
                      'offset': int_header(self.headers, 'Upload-Offset'), 'len': len(body),
                      'status': status, 'scripted': rule is not None,
                      'stored': len(up.data) if up is not None else None,
                      'checksum': self.headers.get('Upload-Checksum')})
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(text)))
        self.end_headers()
        if method != 'HEAD':
            self.wfile.write(text)
        self.wfile.flush()

    def protocol(self, method, up, body):
        st = self.state
        h = self.headers
        if method == 'OPTIONS':
            return 204, [('Tus-Version', TUS), ('Tus-Extension', 'creation,creation-defer-length,checksum'),
                         ('Tus-Checksum-Algorithm', ','.join(ALGOS))], b''
        if method == 'POST':
            length = int_header(h, 'Upload-Length')
            defer = (h.get('Upload-Defer-Length') or '').strip() == '1'
            if (length is None) == (not defer) or (length is not None and length < 0):
                return 400, [], b'need Upload-Length or Upload-Defer-Length: 1\n'
            with st.lock:
                n = st.next_id
                st.next_id += 1
                st.uploads[n] = Upload(length)
            return 201, [('Location', '/files/%d' % n), ('Upload-Offset', '0')], b''
        if up is None:
            return 404, [], b'no such upload\n'
        if method == 'HEAD':
            with st.lock:
                hs = [('Upload-Offset', str(len(up.data))), ('Cache-Control', 'no-store')]
                hs.append(('Upload-Length', str(up.length)) if up.length is not None
                          else ('Upload-Defer-Length', '1'))
            return 200, hs, b''
        if method == 'GET':
            with st.lock:
                return 200, [('Content-Type', 'application/octet-stream')], bytes(up.data)
        if method != 'PATCH':
            return 405, [], b'method not allowed\n'
        if (h.get('Content-Type') or '').split(';')[0].strip().lower() != 'application/offset+octet-stream':
            return 415, [], b'Content-Type must be application/offset+octet-stream\n'
        cs = h.get('Upload-Checksum')
        if cs:
            algo, _, digest = cs.strip().partition(' ')
            if algo not in ALGOS:
                return 400, [], b'unsupported checksum algorithm\n'
            if base64.b64decode(digest) != hashlib.new(algo, body).digest():
                return 460, [], b'checksum mismatch\n'
        with st.lock:
            off = int_header(h, 'Upload-Offset')
            if off != len(up.data):
                return 409, [('Upload-Offset', str(len(up.data)))], b'Upload-Offset mismatch\n'
            length = int_header(h, 'Upload-Length')
            if length is not None:
                if up.length is not None and length != up.length or length < 0:
                    return 400, [], b'Upload-Length cannot change\n'
                up.length = length
            if up.length is not None and len(up.data) + len(body) > up.length:
                return 413, [], b'more bytes than Upload-Length\n'
            up.data += body
            return 204, [('Upload-Offset', str(len(up.data)))], b''

    do_OPTIONS = do_POST = do_HEAD = do_PATCH = do_GET = do_PUT = do_DELETE = handle_one


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--log', required=True)
    ap.add_argument('--script', default='[]', help='JSON text, or @FILE')
    ap.add_argument('--port', type=int, default=0)
    a = ap.parse_args()
    text = a.script
    if text.startswith('@'):
        with open(text[1:], encoding='utf-8') as f:
            text = f.read()
    rules = json.loads(text)
    Handler.state = State(rules, a.log)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    srv.daemon_threads = True
    sys.stderr.write('scriptedtus: listening on http://127.0.0.1:%d\n' % srv.server_address[1])
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == '__main__':
    main()
