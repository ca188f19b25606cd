"""--cors-origin and --behind-proxy at the upload endpoint /files/.

--cors-origin LIST: a request whose Origin is allowed gets Access-Control-Allow-Origin (the
origin echoed), Vary: Origin and Access-Control-Expose-Headers on every answer, errors
included; a preflight (OPTIONS + Access-Control-Request-Method) is answered 204; a disallowed
Origin gets 403 and changes nothing.  Without the flag no Access-Control-* header appears.

--behind-proxy: the Location of a creation is absolute, from Forwarded (first element), else
X-Forwarded-Host/-Proto (first element), else Host with http; odd values fall back to the
relative /files/<id>.  Upload-Concat on HEAD of a final upload uses the same URL form.
"""

import os
import re
import subprocess

from harness import BIN, Server, build_request, check, eq, make_tempdir, sha

TUS_VERSION = '1.0.0'
OCTET = 'application/offset+octet-stream'
ID_RE = r'([0-9a-f]{32})'
REL_RE = re.compile(r'/files/' + ID_RE)
EXPOSE = ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Expires', 'Upload-Metadata', 'Tus-Resumable',
          'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Upload-Complete', 'Upload-Limit']
PREFLIGHT_METHODS = ['POST', 'HEAD', 'PATCH', 'DELETE']
PREFLIGHT_HEADERS = ['Tus-Resumable', 'Upload-Length', 'Upload-Offset', 'Upload-Metadata', 'Upload-Concat',
                     'Content-Type', 'Upload-Complete', 'Upload-Draft-Interop-Version']
ORIGIN_A = 'https://a.example'
ORIGIN_B = 'http://localhost:3000'


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _req(srv, method, path, headers=(), body=b'', tus=True):
    h = [('Tus-Resumable', TUS_VERSION)] if tus is True else ([('Tus-Resumable', tus)] if tus else [])
    with srv.conn() as c:
        c.send(build_request(method, path, h + list(headers), body))
        return c.read_final(method)


def _tokens(v):
    return [t.strip().lower() for t in (v or '').split(',') if t.strip()]


def _keys(srv):
    d = os.path.join(srv.dir, 'uploads')
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _rel_id(r, what):
    loc = r.header('Location')
    m = REL_RE.fullmatch(loc or '')
    check(m is not None, '%s: Location %r is not the relative /files/<id>' % (what, loc))
    return m.group(1)


def _cors_ok(r, origin, what):
    eq(r.header('Access-Control-Allow-Origin'), origin, what + ': Access-Control-Allow-Origin')
    check('origin' in _tokens(', '.join(r.header_all('Vary'))), what + ': Vary %r lacks Origin' % r.header_all('Vary'))
    exposed = _tokens(', '.join(r.header_all('Access-Control-Expose-Headers')))
    for name in EXPOSE:
        check(name.lower() in exposed, '%s: Access-Control-Expose-Headers %r lacks %s' % (what, exposed, name))


def _no_cors(r, what):
    acx = [k for k, _ in r.headers if k.lower().startswith('access-control-')]
    eq(acx, [], what + ': Access-Control-* headers')


def _create(srv, length, extra=(), body=b''):
    h = [('Upload-Length', str(length))] + list(extra)
    if body:
        h.append(('Content-Type', OCTET))
    return _req(srv, 'POST', '/files/', h, body)


def _preflight(srv, origin, path='/files/', method='PATCH', headers='tus-resumable, upload-offset, content-type'):
    h = [('Origin', origin), ('Access-Control-Request-Method', method)]
    if headers:
        h.append(('Access-Control-Request-Headers', headers))
    return _req(srv, 'OPTIONS', path, h, tus=False)


# ---------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------

def test_cors_allowed_origin_every_answer():
    srv = Server('--cors-origin', '%s,%s' % (ORIGIN_A, ORIGIN_B))
    data = os.urandom(3000)
    for origin in (ORIGIN_A, ORIGIN_B):
        o = [('Origin', origin)]
        r = _create(srv, len(data), o)
        eq(r.status, 201, 'POST from %s' % origin)
        _cors_ok(r, origin, 'POST 201 from %s' % origin)
        uid = _rel_id(r, 'POST from %s' % origin)
        r = _req(srv, 'PATCH', '/files/' + uid, o + [('Content-Type', OCTET), ('Upload-Offset', '0')], data[:1000])
        eq(r.status, 204, 'PATCH from %s' % origin)
        _cors_ok(r, origin, 'PATCH 204')
        r = _req(srv, 'PATCH', '/files/' + uid, o + [('Content-Type', OCTET), ('Upload-Offset', '0')], data[:10])
        eq(r.status, 409, 'PATCH at a wrong offset')
        _cors_ok(r, origin, 'PATCH 409')
        r = _req(srv, 'HEAD', '/files/' + uid, o)
        eq((r.status, r.header('Upload-Offset')), (200, '1000'), 'HEAD from %s' % origin)
        _cors_ok(r, origin, 'HEAD 200')
        r = _req(srv, 'GET', '/files/' + uid, o, tus=False)
        eq(r.status, 409, 'GET of an unfinished upload')
        _cors_ok(r, origin, 'GET 409')
        r = _req(srv, 'PATCH', '/files/' + uid, o + [('Content-Type', OCTET), ('Upload-Offset', '1000')], data[1000:])
        eq(r.status, 204, 'last PATCH')
        r = _req(srv, 'GET', '/files/' + uid, o, tus=False)
        eq((r.status, sha(r.body)), (200, sha(data)), 'GET of the finished upload from %s' % origin)
        _cors_ok(r, origin, 'GET 200')
        r = _req(srv, 'GET', '/files/' + uid, o + [('Range', 'bytes=0-9')], tus=False)
        eq(r.status, 206, 'GET with Range')
        _cors_ok(r, origin, 'GET 206')
        r = _req(srv, 'HEAD', '/files/' + os.urandom(16).hex(), o)
        eq(r.status, 404, 'HEAD of an unknown id')
        _cors_ok(r, origin, 'HEAD 404')
        r = _req(srv, 'HEAD', '/files/' + uid, o, tus='0.2.2')
        eq(r.status, 412, 'HEAD with Tus-Resumable 0.2.2')
        _cors_ok(r, origin, 'HEAD 412')
        r = _req(srv, 'POST', '/files/', o)
        eq(r.status, 400, 'POST without Upload-Length')
        _cors_ok(r, origin, 'POST 400')
        r = _req(srv, 'OPTIONS', '/files/', o, tus=False)
        eq(r.status, 204, 'OPTIONS without Access-Control-Request-Method')
        eq(r.header('Tus-Version'), '1.0.0', 'Tus-Version on a plain OPTIONS from an allowed origin')
        _cors_ok(r, origin, 'OPTIONS 204')
        r = _req(srv, 'DELETE', '/files/' + uid, o)
        eq(r.status, 204, 'DELETE')
        _cors_ok(r, origin, 'DELETE 204')


def test_cors_preflight():
    srv = Server('--cors-origin', ORIGIN_A)
    before = _keys(srv)
    for path in ('/files/', '/files/' + os.urandom(16).hex()):
        for method in ('POST', 'PATCH', 'HEAD', 'DELETE'):
            r = _preflight(srv, ORIGIN_A, path, method)
            what = 'preflight %s %s' % (method, path)
            eq(r.status, 204, what + ': status')
            eq(r.body, b'', what + ': body')
            eq(r.header('Access-Control-Allow-Origin'), ORIGIN_A, what + ': Access-Control-Allow-Origin')
            methods = [m.upper() for m in _tokens(r.header('Access-Control-Allow-Methods'))]
            for m in PREFLIGHT_METHODS:
                check(m in methods, '%s: Access-Control-Allow-Methods %r lacks %s' % (what, methods, m))
            allowed = _tokens(r.header('Access-Control-Allow-Headers'))
            for h in PREFLIGHT_HEADERS:
                check(h.lower() in allowed, '%s: Access-Control-Allow-Headers %r lacks %s' % (what, allowed, h))
            check(re.fullmatch(r'\d+', r.header('Access-Control-Max-Age') or '') is not None,
                  what + ': Access-Control-Max-Age %r' % r.header('Access-Control-Max-Age'))
    r = _preflight(srv, ORIGIN_A, headers=None)
    eq((r.status, r.header('Access-Control-Allow-Origin')), (204, ORIGIN_A), 'preflight without request headers')
    eq(_keys(srv), before, 'files in DIR/uploads after preflights')


def test_cors_disallowed_origin_403():
    srv = Server('--cors-origin', '%s,%s' % (ORIGIN_A, ORIGIN_B))
    data = os.urandom(2000)
    r = _create(srv, len(data), body=data[:500])
    eq(r.status, 201, 'POST without Origin')
    uid = _rel_id(r, 'POST without Origin')
    before = _keys(srv)
    for origin in ['https://evil.example', 'http://a.example', 'https://a.example.evil', 'https://a.exampl',
                   'https://a.example:8443', 'http://localhost:3001', 'null', '*', ORIGIN_A + ', ' + ORIGIN_B]:
        o = [('Origin', origin)]
        what = 'Origin %r' % origin
        r = _create(srv, 100, o)
        eq(r.status, 403, what + ': POST status')
        eq(r.header('Tus-Resumable'), '1.0.0', what + ': Tus-Resumable on the tus 403')
        eq(r.body, b'origin not allowed\n', what + ': body of the 403')
        eq(r.header('Location'), None, what + ': Location on the 403')
        check(r.header('Access-Control-Allow-Origin') in (None, ''),
              what + ': Access-Control-Allow-Origin %r on the 403' % r.header('Access-Control-Allow-Origin'))
        r = _create(srv, 100, o, body=b'x' * 100)
        eq(r.status, 403, what + ': creation-with-upload status')
        r = _req(srv, 'PATCH', '/files/' + uid, o + [('Content-Type', OCTET), ('Upload-Offset', '500')],
                 data[500:1000])
        eq(r.status, 403, what + ': PATCH status')
        r = _req(srv, 'DELETE', '/files/' + uid, o)
        eq(r.status, 403, what + ': DELETE status')
        r = _req(srv, 'GET', '/files/' + uid, o, tus=False)
        eq(r.status, 403, what + ': GET status')
        r = _preflight(srv, origin)
        eq(r.status, 403, what + ': preflight status')
        check(r.header('Access-Control-Allow-Origin') in (None, ''), what + ': Access-Control-Allow-Origin on a preflight')
    eq(_keys(srv), before, 'files in DIR/uploads after disallowed origins')
    r = _req(srv, 'HEAD', '/files/' + uid)
    eq((r.status, r.header('Upload-Offset')), (200, '500'), 'HEAD after disallowed origins')
    # a refused request with a body: the connection stays usable or is closed, never misframed
    with srv.conn() as c:
        c.send(build_request('PATCH', '/files/' + uid, [('Tus-Resumable', TUS_VERSION), ('Origin', 'https://evil.example'),
                                                        ('Content-Type', OCTET), ('Upload-Offset', '500')],
                             b'HEAD /files/' + uid.encode() + b' HTTP/1.1\r\n\r\n' + b'z' * 300))
        r = c.read_final('PATCH')
        eq(r.status, 403, 'PATCH with a body from a disallowed origin')
        if not r.conn_close():
            c.send(build_request('OPTIONS', '/files/', []))
            r2 = c.read_final('OPTIONS')
            eq((r2.status, r2.header('Tus-Version')), (204, '1.0.0'),
               'next request on the connection after a refused PATCH with a body')
    r = _req(srv, 'HEAD', '/files/' + uid)
    eq((r.status, r.header('Upload-Offset')), (200, '500'), 'HEAD after the refused PATCH with a body')
    r = _req(srv, 'PATCH', '/files/' + uid, [('Origin', ORIGIN_B), ('Content-Type', OCTET), ('Upload-Offset', '500')],
             data[500:])
    eq(r.status, 204, 'PATCH from an allowed origin after the refusals')
    with open(os.path.join(srv.dir, 'uploads', uid), 'rb') as f:
        eq(sha(f.read()), sha(data), 'stored data')


def test_cors_star():
    srv = Server('--cors-origin', '*')
    for origin in ('https://anything.example', 'http://localhost:1234', 'null'):
        r = _create(srv, 10, [('Origin', origin)])
        eq(r.status, 201, 'POST from %r with --cors-origin *' % origin)
        _cors_ok(r, origin, 'POST from %r' % origin)
        r = _preflight(srv, origin, method='POST')
        eq((r.status, r.header('Access-Control-Allow-Origin')), (204, origin), 'preflight from %r' % origin)
    r = _req(srv, 'HEAD', '/files/' + os.urandom(16).hex(), [('Origin', 'https://x.example')])
    eq(r.status, 404, 'HEAD of an unknown id')
    _cors_ok(r, 'https://x.example', 'HEAD 404 with *')


def test_cors_without_origin_unaffected():
    srv = Server('--cors-origin', ORIGIN_A)
    r = _create(srv, 5, body=b'hello')
    eq(r.status, 201, 'POST without Origin')
    uid = _rel_id(r, 'POST without Origin')
    _no_cors(r, 'POST without Origin')
    r = _req(srv, 'GET', '/files/' + uid, tus=False)
    eq((r.status, r.body), (200, b'hello'), 'GET without Origin')
    _no_cors(r, 'GET without Origin')
    r = _req(srv, 'OPTIONS', '/files/', tus=False)
    eq((r.status, r.header('Tus-Version')), (204, '1.0.0'), 'OPTIONS without Origin')
    _no_cors(r, 'OPTIONS without Origin')
    # a preflight-looking OPTIONS without Origin is a plain OPTIONS
    r = _req(srv, 'OPTIONS', '/files/', [('Access-Control-Request-Method', 'POST')], tus=False)
    eq((r.status, r.header('Tus-Version')), (204, '1.0.0'), 'OPTIONS with Access-Control-Request-Method, no Origin')
    _no_cors(r, 'OPTIONS with Access-Control-Request-Method, no Origin')


def test_no_cors_flag_no_cors_headers():
    srv = Server()
    o = [('Origin', ORIGIN_A)]
    r = _create(srv, 5, o, body=b'hello')
    eq(r.status, 201, 'POST with Origin, no --cors-origin')
    _no_cors(r, 'POST with Origin, no --cors-origin')
    uid = _rel_id(r, 'POST')
    for method, path, extra, tus in [('HEAD', '/files/' + uid, [], True), ('GET', '/files/' + uid, [], False),
                                     ('HEAD', '/files/' + os.urandom(16).hex(), [], True),
                                     ('HEAD', '/files/' + uid, [], '0.2.2'),
                                     ('OPTIONS', '/files/', [('Access-Control-Request-Method', 'PATCH'),
                                                             ('Access-Control-Request-Headers', 'tus-resumable')], False)]:
        r = _req(srv, method, path, o + extra, tus=tus)
        check(r.status < 500, '%s %s: status %d' % (method, path, r.status))
        _no_cors(r, '%s %s with Origin, no --cors-origin' % (method, path))
    eq(_req(srv, 'GET', '/files/' + uid, o, tus=False).body, b'hello', 'GET with Origin, no --cors-origin')


def _run_bin(args, timeout=5):
    d = make_tempdir()
    p = subprocess.Popen([BIN, '--listen', '127.0.0.1:0', '--dir', os.path.join(d, 'data')] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()   # by PID
        p.communicate()
        return None, ''
    return p.returncode, err.decode('utf-8', 'replace')


def test_cors_bad_values_refuse_start():
    for v in ['notanorigin', 'http://a.example/path', 'http://a.example/', '', 'https://', '://a.example',
              'https://a.example,notanorigin', 'https://a b.example', 'https://a.example,,https://b.example',
              'https://a"b.example']:
        rc, err = _run_bin(['--cors-origin', v])
        check(rc is not None, '--cors-origin %r: the server started (still running after 5 s)' % v)
        check(rc != 0, '--cors-origin %r: exit code 0' % v)
        check(err.strip() != '', '--cors-origin %r: nothing on stderr' % v)
    # good values start
    for v in ['*', ORIGIN_A, ' %s , %s ' % (ORIGIN_A, ORIGIN_B), 'http://[::1]:8080']:
        srv = Server('--cors-origin', v)
        check(srv.alive(), '--cors-origin %r: server not running' % v)


# ---------------------------------------------------------------------------
# --behind-proxy
# ---------------------------------------------------------------------------

def _abs_id(r, prefix, what):
    loc = r.header('Location')
    m = re.fullmatch(re.escape(prefix) + '/files/' + ID_RE, loc or '')
    check(m is not None, '%s: Location %r is not %s/files/<id>' % (what, loc, prefix))
    return m.group(1)


def test_proxy_forwarded():
    srv = Server('--behind-proxy')
    cases = [
        ([('Forwarded', 'for=1.2.3.4;host=up.example;proto=https')], 'https://up.example'),
        ([('Forwarded', 'for="[2001:db8::1]:4711";host="up.example:8443";proto="https"')], 'https://up.example:8443'),
        ([('Forwarded', 'proto=http;host=plain.example')], 'http://plain.example'),
        ([('Forwarded', 'for=1.1.1.1; host=sp.example; proto=https')], 'https://sp.example'),
        ([('Forwarded', 'host=first.example;proto=https, host=second.example;proto=http')], 'https://first.example'),
        ([('Forwarded', 'host=f.example;proto=https'), ('X-Forwarded-Host', 'x.example'),
          ('X-Forwarded-Proto', 'http')], 'https://f.example'),
        ([('Forwarded', 'host=[::1]:9000;proto=https')], 'https://[::1]:9000'),
    ]
    for headers, prefix in cases:
        r = _create(srv, 10, headers)
        eq(r.status, 201, 'POST with %r' % headers)
        uid = _abs_id(r, prefix, 'POST with %r' % headers)
        h = _req(srv, 'HEAD', '/files/' + uid)
        eq((h.status, h.header('Upload-Length')), (200, '10'), 'HEAD of the upload created with %r' % headers)


def test_proxy_x_forwarded_and_host():
    srv = Server('--behind-proxy')
    cases = [
        ([('X-Forwarded-Host', 'x.example'), ('X-Forwarded-Proto', 'https')], 'https://x.example'),
        ([('X-Forwarded-Host', 'x.example:8080, inner.local'), ('X-Forwarded-Proto', 'https, http')],
         'https://x.example:8080'),
        ([('X-Forwarded-Host', 'only-host.example')], 'http://only-host.example'),
        ([('X-Forwarded-Proto', 'https')], 'https://127.0.0.1'),
        ([], 'http://127.0.0.1'),
        ([('Host', 'up.local:9000')], 'http://up.local:9000'),
        ([('Forwarded', 'for=1.2.3.4'), ('X-Forwarded-Host', 'xf.example'), ('X-Forwarded-Proto', 'https')],
         'https://xf.example'),
    ]
    for headers, prefix in cases:
        r = _create(srv, 10, headers)
        eq(r.status, 201, 'POST with %r' % headers)
        _abs_id(r, prefix, 'POST with %r' % headers)
    # creation-with-upload too
    r = _create(srv, 4, [('X-Forwarded-Host', 'x.example'), ('X-Forwarded-Proto', 'https')], body=b'abcd')
    eq((r.status, r.header('Upload-Offset')), (201, '4'), 'creation-with-upload behind a proxy')
    uid = _abs_id(r, 'https://x.example', 'creation-with-upload behind a proxy')
    eq(_req(srv, 'GET', '/files/' + uid, tus=False).body, b'abcd', 'GET of the upload')


def test_proxy_invalid_values_relative():
    srv = Server('--behind-proxy')
    cases = [
        [('Forwarded', 'host="a b.example";proto=https')],
        [('Forwarded', 'host="a\\"b.example";proto=https')],
        [('Forwarded', 'host=a/b.example;proto=https')],
        [('Forwarded', 'host=user@evil.example;proto=https')],
        [('Forwarded', 'host=ok.example;proto=ftp')],
        [('Forwarded', 'host=ok.example;proto=javascript')],
        [('Forwarded', 'host=;proto=https')],
        [('Forwarded', 'host="";proto=https')],
        [('X-Forwarded-Host', 'a b.example'), ('X-Forwarded-Proto', 'https')],
        [('X-Forwarded-Host', 'evil.example/path'), ('X-Forwarded-Proto', 'https')],
        [('X-Forwarded-Host', 'u@evil.example'), ('X-Forwarded-Proto', 'https')],
        [('X-Forwarded-Host', '"quoted.example"'), ('X-Forwarded-Proto', 'https')],
        [('X-Forwarded-Host', 'ok.example'), ('X-Forwarded-Proto', 'gopher')],
        [('X-Forwarded-Host', 'ok.example'), ('X-Forwarded-Proto', 'https:')],
        [('X-Forwarded-Host', 'ok.example'), ('X-Forwarded-Proto', 'httpsx')],
        [('X-Forwarded-Host', 'h' * 300), ('X-Forwarded-Proto', 'https')],
        [('X-Forwarded-Host', 'ok.example<script>'), ('X-Forwarded-Proto', 'https')],
    ]
    for headers in cases:
        r = _create(srv, 10, headers)
        eq(r.status, 201, 'POST with %r' % headers)
        uid = _rel_id(r, 'POST with %r' % headers)
        eq(_req(srv, 'HEAD', '/files/' + uid).status, 200, 'HEAD of the upload created with %r' % headers)


def test_no_proxy_flag_relative():
    srv = Server()
    for headers in ([('Forwarded', 'for=1.2.3.4;host=up.example;proto=https')],
                    [('X-Forwarded-Host', 'x.example'), ('X-Forwarded-Proto', 'https')],
                    [('Host', 'up.local:9000')], []):
        r = _create(srv, 10, headers)
        eq(r.status, 201, 'POST with %r' % headers)
        _rel_id(r, 'POST with %r and no --behind-proxy' % headers)


def test_proxy_concat_urls():
    srv = Server('--behind-proxy')
    fw = [('Forwarded', 'host=up.example;proto=https')]
    da, db = os.urandom(1000), os.urandom(2000)
    ids = []
    for d in (da, db):
        r = _create(srv, len(d), fw + [('Upload-Concat', 'partial')], body=d)
        eq(r.status, 201, 'partial creation behind a proxy')
        ids.append(_abs_id(r, 'https://up.example', 'partial creation'))
    a, b = ids
    # the Locations as given, absolute, name the partials
    r = _req(srv, 'POST', '/files/', fw + [('Upload-Concat', 'final;https://up.example/files/%s https://up.example/files/%s'
                                                              % (a, b))])
    eq(r.status, 201, 'final from absolute URLs behind a proxy')
    fid = _abs_id(r, 'https://up.example', 'final creation')
    h = _req(srv, 'HEAD', '/files/' + fid, fw)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Length')), (200, '3000', '3000'), 'HEAD of the final')
    eq(h.header('Upload-Concat'), 'final;https://up.example/files/%s https://up.example/files/%s' % (a, b),
       'Upload-Concat on HEAD with Forwarded')
    h = _req(srv, 'HEAD', '/files/' + fid, [('X-Forwarded-Host', 'other.example:81')])
    eq(h.header('Upload-Concat'), 'final;http://other.example:81/files/%s http://other.example:81/files/%s' % (a, b),
       'Upload-Concat on HEAD with X-Forwarded-Host')
    h = _req(srv, 'HEAD', '/files/' + fid)
    eq(h.header('Upload-Concat'), 'final;http://127.0.0.1/files/%s http://127.0.0.1/files/%s' % (a, b),
       'Upload-Concat on HEAD with only Host')
    h = _req(srv, 'HEAD', '/files/' + fid, [('Forwarded', 'host="bad host";proto=https')])
    eq(h.header('Upload-Concat'), 'final;/files/%s /files/%s' % (a, b), 'Upload-Concat on HEAD with a bad host')
    eq(_req(srv, 'HEAD', '/files/' + a, fw).header('Upload-Concat'), 'partial', 'Upload-Concat on HEAD of a partial')
    g = _req(srv, 'GET', '/files/' + fid, tus=False)
    eq((g.status, sha(g.body)), (200, sha(da + db)), 'GET of the final')


def test_cors_same_origin_page_never_refused():
    # Browsers send Origin on same-origin POSTs too: resumed's own page (Origin
    # equal to the Host it was reached by) uploads even when --cors-origin
    # lists only other sites, and needs no CORS headers.
    srv = Server('--cors-origin', 'http://other.example')
    host = '127.0.0.1:%d' % srv.port
    r = _create(srv, 5, [('Host', host), ('Origin', 'http://' + host)])
    eq(r.status, 201, 'same-origin POST with --cors-origin naming another site')
    _no_cors(r, 'same-origin POST')
    r = _create(srv, 5, [('Host', host), ('Origin', 'http://127.0.0.1:1')])
    eq(r.status, 403, 'POST from another port of the same host (another origin)')
