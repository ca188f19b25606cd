#!/usr/bin/env python3
"""A plain HTTP server that does not speak tus: python3 plainhttp.py STATUS

Answers every request (any method, any path) with STATUS and a short text body, reading and
discarding a request body.  Prints `plainhttp: listening on http://127.0.0.1:PORT` on stderr.
"""

import http.server
import sys

STATUS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def _answer(self):
        n = int(self.headers.get('Content-Length') or 0)
        while n > 0:
            d = self.rfile.read(min(n, 65536))
            if not d:
                break
            n -= len(d)
        body = b'' if self.command == 'HEAD' else b'just a web server\n'
        self.send_response(STATUS)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body) if self.command != 'HEAD' else 18))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _answer

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
sys.stderr.write('plainhttp: listening on http://127.0.0.1:%d\n' % srv.server_address[1])
sys.stderr.flush()
srv.serve_forever()
