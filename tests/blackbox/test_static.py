"""Static web files (--web points at a temp dir made by the harness)."""

import os

from harness import APP_JS, INDEX_HTML, Server, build_head, build_request, check, eq

SECRET = b'TOP-SECRET-' + os.urandom(8).hex().encode()


def _server():
    srv = Server()
    with open(os.path.join(srv.base, 'secret.txt'), 'wb') as f:
        f.write(SECRET)
    extra = {'style.css': (b'body{color:red}\n', 'text/css'),
             'data.json': (b'{"a": 1}\n', 'application/json'),
             'mod.mjs': (b'export const x = 1;\n', ('text/javascript', 'application/javascript')),
             'pic.svg': (b'<svg xmlns="http://www.w3.org/2000/svg"/>\n', 'image/svg+xml'),
             'notes.txt': (b'hello\n', 'text/plain')}
    for name, (body, _) in extra.items():
        with open(os.path.join(srv.web, name), 'wb') as f:
            f.write(body)
    return srv, extra


def _get(srv, path, method='GET', headers=()):
    with srv.conn() as c:
        c.send(build_head(method, path, list(headers)))
        return c.read_final(method)


def _ctype(r):
    return (r.header('content-type') or '').split(';')[0].strip().lower()


def test_index_and_js():
    srv, extra = _server()
    r = _get(srv, '/')
    eq(r.status, 200, 'GET /')
    eq(_ctype(r), 'text/html', 'GET / Content-Type')
    eq(r.body, INDEX_HTML, 'GET / body')
    r = _get(srv, '/index.html')
    eq((r.status, r.body), (200, INDEX_HTML), 'GET /index.html')
    r = _get(srv, '/app.js')
    eq(r.status, 200, 'GET /app.js')
    check(_ctype(r) in ('text/javascript', 'application/javascript'), 'GET /app.js Content-Type %r' % _ctype(r))
    eq(r.body, APP_JS, 'GET /app.js body')
    for name, (body, ct) in extra.items():
        r = _get(srv, '/' + name)
        eq((r.status, r.body), (200, body), 'GET /%s' % name)
        cts = ct if isinstance(ct, tuple) else (ct,)
        check(_ctype(r) in cts, 'GET /%s Content-Type %r, expected %r' % (name, _ctype(r), cts))


def test_head_has_no_body():
    srv, _ = _server()
    with srv.conn() as c:
        c.send(build_head('HEAD', '/'))
        r = c.read_final('HEAD')
        eq(r.status, 200, 'HEAD /')
        eq(_ctype(r), 'text/html', 'HEAD / Content-Type')
        cl = r.header('content-length')
        check(cl is None or cl == str(len(INDEX_HTML)), 'HEAD / Content-Length %r' % cl)
        # the next response on the same connection must start right away (no body after HEAD)
        c.send(build_head('GET', '/app.js'))
        r = c.read_final('GET')
        eq((r.status, r.body), (200, APP_JS), 'GET /app.js after HEAD on same connection')


def test_not_found():
    srv, _ = _server()
    for p in ('/does-not-exist', '/does-not-exist.js', '/app.js/x', '/sub/dir/'):
        r = _get(srv, p)
        eq(r.status, 404, 'GET %s' % p)


def test_traversal():
    srv, _ = _server()
    paths = ['/../secret.txt', '/../../etc/passwd', '/../../../../../../etc/passwd', '/%2e%2e/secret.txt',
             '/%2e%2e%2fsecret.txt', '/..%2fsecret.txt', '/%2E%2E/secret.txt', '/web/../../secret.txt',
             '/./index.html', '/.%2e/secret.txt', '/..\\secret.txt', '//etc/passwd', '/%2fetc%2fpasswd']
    for p in paths:
        r = _get(srv, p)
        check(r.status in (400, 404), 'GET %s: status %d, expected 404 or 400' % (p, r.status))
        check(SECRET not in r.body and b'root:' not in r.body, 'GET %s leaked file content' % p)
    # absolute-form / asterisk request targets are not file paths either
    r = _get(srv, 'http://127.0.0.1/../secret.txt')
    check(SECRET not in r.body, 'absolute-form target leaked file content')


def test_post_to_static_is_405():
    srv, _ = _server()
    for method, path in (('POST', '/'), ('PUT', '/app.js'), ('DELETE', '/index.html'), ('POST', '/app.js')):
        with srv.conn() as c:
            c.send(build_request(method, path, [], b'x' if method != 'DELETE' else b''))
            r = c.read_final(method)
        eq(r.status, 405, '%s %s' % (method, path))
        allow = r.header('allow')
        check(allow is not None and 'GET' in allow, '%s %s: Allow header %r' % (method, path, allow))
