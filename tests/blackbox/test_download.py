"""GET /files/<id>: downloads of finished tus uploads (no Tus-Resumable needed).

A finished upload answers 200 with its bytes, Accept-Ranges, a strong ETag of the id,
nosniff and a sandboxing CSP.  Content-Type comes from the metadata (filetype, or Uppy's
type) only for a short list of harmless types; everything else is application/octet-stream
and an attachment.  Content-Disposition carries the metadata's filename (or name) without
any path, as a quoted ASCII fallback and an RFC 8187 filename*.  Single byte ranges,
If-Range and If-None-Match are honoured.  --disable-download answers 405.
"""

import base64
import os
import re
import urllib.parse

from harness import Server, build_request, check, eq, sha

TUS_VERSION = '1.0.0'
OCTET = 'application/offset+octet-stream'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})')
# kind, then optionally the quoted ASCII fallback and the RFC 8187 form (attr-char / pct-encoded)
DISPOSITION_RE = re.compile(r'(inline|attachment)'
                            r'(?:; filename="([A-Za-z0-9._ ()-]*)"; filename\*=UTF-8\'\'((?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-Fa-f]{2})+))?')
HARMLESS = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp',
            'video/mp4', 'video/webm', 'video/ogg', 'audio/mpeg', 'audio/ogg', 'audio/wav',
            'audio/webm', 'audio/flac', 'text/plain', 'application/pdf']


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode('utf-8')).decode()


def _md(**kv):
    return ','.join('%s %s' % (k, _b64(v)) for k, v in kv.items())


def _tus(srv, method, path, headers=(), body=b''):
    with srv.conn() as c:
        c.send(build_request(method, path, [('Tus-Resumable', TUS_VERSION)] + list(headers), body))
        return c.read_final(method)


def _upload(srv, data, metadata=None, length=None):
    """Create a tus upload holding data (creation-with-upload); length: its Upload-Length if not len(data)."""
    h = [('Upload-Length', str(len(data) if length is None else length))]
    if metadata is not None:
        h.append(('Upload-Metadata', metadata))
    if data:
        h.append(('Content-Type', OCTET))
    r = _tus(srv, 'POST', '/files/', h, data)
    eq(r.status, 201, 'creation POST status (%r)' % r)
    m = LOCATION_RE.fullmatch(r.header('Location') or '')
    check(m is not None, 'Location %r' % r.header('Location'))
    eq(r.header('Upload-Offset'), str(len(data)), 'Upload-Offset on the 201')
    return m.group(1)


def _get(srv, path, headers=()):
    if not path.startswith('/'):
        path = '/files/' + path
    with srv.conn() as c:
        return c.request('GET', path, list(headers))


def _disposition(r, what):
    v = r.header('Content-Disposition')
    check(v is not None, '%s: no Content-Disposition' % what)
    m = DISPOSITION_RE.fullmatch(v)
    check(m is not None, '%s: Content-Disposition %r is not kind[; filename="ascii"; filename*=UTF-8\'\'pct]'
          % (what, v))
    return m.group(1), m.group(2), (urllib.parse.unquote(m.group(3), errors='strict') if m.group(3) else None)


def _ok_full(r, data, what):
    eq(r.status, 200, what + ': status')
    eq(r.header('Content-Length'), str(len(data)), what + ': Content-Length')
    eq(r.header('Content-Range'), None, what + ': Content-Range on a 200')
    eq(sha(r.body), sha(data), what + ': sha256 of the body')


def _ok_range(r, data, first, last, what):
    eq(r.status, 206, what + ': status')
    eq(r.header('Content-Range'), 'bytes %d-%d/%d' % (first, last, len(data)), what + ': Content-Range')
    eq(r.header('Content-Length'), str(last - first + 1), what + ': Content-Length')
    eq(r.body, data[first:last + 1], what + ': body')


# ---------------------------------------------------------------------------
# basics
# ---------------------------------------------------------------------------

def test_download_finished_upload():
    srv = Server()
    data = os.urandom((2 << 20) + 4321)
    uid = _upload(srv, data)
    r = _get(srv, uid)
    _ok_full(r, data, 'GET of a finished upload')
    eq(r.header('Accept-Ranges'), 'bytes', 'Accept-Ranges')
    eq(r.header('ETag'), '"%s"' % uid, 'ETag')
    eq(r.header('X-Content-Type-Options'), 'nosniff', 'X-Content-Type-Options')
    eq(r.header('Content-Security-Policy'), 'sandbox', 'Content-Security-Policy')
    eq(r.header('Content-Type'), 'application/octet-stream', 'Content-Type without metadata')
    eq(_disposition(r, 'no metadata'), ('attachment', None, None), 'Content-Disposition without metadata')
    # twice on one keep-alive connection: the framing holds
    with srv.conn() as c:
        for i in range(2):
            r = c.request('GET', '/files/' + uid)
            _ok_full(r, data, 'GET #%d on one connection' % i)
            if r.conn_close():
                break


def test_download_after_patches_and_restart():
    srv = Server()
    data = os.urandom(300000)
    r = _tus(srv, 'POST', '/files/', [('Upload-Length', str(len(data))), ('Upload-Metadata', _md(filename='p.txt'))])
    eq(r.status, 201, 'creation')
    uid = LOCATION_RE.fullmatch(r.header('Location')).group(1)
    for a, b in ((0, 100000), (100000, 250000), (250000, len(data))):
        p = _tus(srv, 'PATCH', '/files/' + uid, [('Content-Type', OCTET), ('Upload-Offset', str(a))], data[a:b])
        eq(p.status, 204, 'PATCH %d-%d' % (a, b))
        if b < len(data):
            eq(_get(srv, uid).status, 409, 'GET with %d of %d bytes' % (b, len(data)))
    _ok_full(_get(srv, uid), data, 'GET after three PATCHes')
    srv.restart()
    r = _get(srv, uid)
    _ok_full(r, data, 'GET after kill -9 and restart')
    eq(_disposition(r, 'after restart'), ('attachment', 'p.txt', 'p.txt'), 'Content-Disposition after restart')


def test_download_not_found_and_unfinished():
    srv = Server()
    uid = _upload(srv, b'abc', length=10)
    r = _get(srv, uid)
    eq(r.status, 409, 'GET of an unfinished upload (3 of 10 bytes)')
    check(b'abc' not in r.body, 'the 409 carries the upload bytes: %r' % r.body)
    r = _tus(srv, 'POST', '/files/', [('Upload-Defer-Length', '1')])
    eq(r.status, 201, 'deferred creation')
    d = LOCATION_RE.fullmatch(r.header('Location')).group(1)
    eq(_get(srv, d).status, 409, 'GET of an empty deferred-length upload')
    done = _upload(srv, b'xyz')
    for path in ['/files/' + os.urandom(16).hex(), '/files/' + uid.upper(), '/files/' + uid + '/x',
                 '/files/' + uid + '0', '/files/' + uid[:-1], '/files/nothex', '/files/',
                 '/files/../files/' + done, '/files/' + done + '%20', '/files/' + done.upper()]:
        r = _get(srv, path)
        eq(r.status, 404, 'GET %s: status' % path)
        check(b'xyz' not in r.body, 'GET %s: body has the upload bytes' % path)
    # an article-protocol upload is not downloadable through the tus endpoint
    fid = 'dl-article-' + os.urandom(4).hex()
    a = srv.upload(fid, b'q' * 500, start=0, size=1000)
    eq(a.status, 200, 'article upload')
    key = os.path.basename(srv.data_path(fid))
    eq(_get(srv, key).status, 404, 'GET /files/<key of an article upload>')
    eq(_get(srv, done).body, b'xyz', 'GET of a finished upload after the 404s')


def test_download_zero_length():
    srv = Server()
    uid = _upload(srv, b'', metadata=_md(filename='empty.txt', filetype='text/plain'))
    r = _get(srv, uid)
    _ok_full(r, b'', 'GET of a 0-byte upload')
    eq(r.header('ETag'), '"%s"' % uid, 'ETag of a 0-byte upload')
    eq(r.header('Content-Type'), 'text/plain', 'Content-Type')
    r = _get(srv, uid, [('Range', 'bytes=0-')])
    eq((r.status, r.header('Content-Range')), (416, 'bytes */0'), 'Range bytes=0- of a 0-byte upload')


# ---------------------------------------------------------------------------
# Content-Type and Content-Disposition
# ---------------------------------------------------------------------------

def test_download_harmless_types_inline():
    srv = Server()
    for t in HARMLESS:
        uid = _upload(srv, b'data', metadata=_md(filename='f.bin', filetype=t))
        r = _get(srv, uid)
        eq(r.status, 200, 'GET (filetype %s): status' % t)
        eq(r.header('Content-Type'), t, 'Content-Type for filetype %s' % t)
        eq(_disposition(r, t), ('inline', 'f.bin', 'f.bin'), 'Content-Disposition for filetype %s' % t)
        eq(r.header('X-Content-Type-Options'), 'nosniff', 'nosniff for %s' % t)
        eq(r.header('Content-Security-Policy'), 'sandbox', 'CSP for %s' % t)
    for given, want in (('IMAGE/PNG', 'image/png'), ('text/plain; charset=utf-8', 'text/plain'),
                        ('Application/PDF;x=y', 'application/pdf'), ('video/MP4 ; codecs="avc1"', 'video/mp4')):
        uid = _upload(srv, b'data', metadata=_md(filetype=given))
        r = _get(srv, uid)
        eq(r.header('Content-Type').lower(), want, 'Content-Type for filetype %r' % given)
        eq(_disposition(r, given)[0], 'inline', 'disposition kind for filetype %r' % given)
    # Uppy's "type" and "name"
    uid = _upload(srv, b'data', metadata=_md(name='photo.jpg', type='image/jpeg'))
    r = _get(srv, uid)
    eq(r.header('Content-Type'), 'image/jpeg', 'Content-Type from Uppy metadata "type"')
    eq(_disposition(r, 'Uppy'), ('inline', 'photo.jpg', 'photo.jpg'), 'Content-Disposition from Uppy "name"')


def test_download_risky_types_attachment():
    srv = Server()
    for t in ['text/html', 'image/svg+xml', 'application/javascript', 'text/javascript', 'application/xhtml+xml',
              'text/xml', 'application/octet-stream', 'text/plainx', 'image/png2', 'text', '', 'multipart/x-mixed-replace',
              'text/html; x=image/png', 'application/x-shockwave-flash']:
        uid = _upload(srv, b'<script>alert(1)</script>', metadata=_md(filename='x.html', filetype=t))
        r = _get(srv, uid)
        eq(r.status, 200, 'GET (filetype %r): status' % t)
        eq(r.header('Content-Type'), 'application/octet-stream', 'Content-Type for filetype %r' % t)
        eq(_disposition(r, t), ('attachment', 'x.html', 'x.html'), 'Content-Disposition for filetype %r' % t)
        eq(r.header('X-Content-Type-Options'), 'nosniff', 'nosniff for %r' % t)
    # filetype wins over Uppy's type
    uid = _upload(srv, b'x', metadata=_md(filetype='text/html', type='image/png'))
    eq(_get(srv, uid).header('Content-Type'), 'application/octet-stream', 'filetype text/html with type image/png')
    # metadata with neither
    uid = _upload(srv, b'x', metadata=_md(other='image/png'))
    r = _get(srv, uid)
    eq((r.header('Content-Type'), r.header('Content-Disposition')), ('application/octet-stream', 'attachment'),
       'unrelated metadata')


def test_download_filename_sanitised():
    srv = Server()
    cases = [
        ('report 2024 (final).pdf', 'report 2024 (final).pdf'),
        ('../../etc/passwd', 'passwd'),
        ('/abs/path/x.txt', 'x.txt'),
        ('a\\b.txt', 'b.txt'),
        ('dir/sub\\c.txt', 'c.txt'),
        ('a"b;c.txt', 'a"b;c.txt'),
        ('100%.txt', '100%.txt'),
        ('x"; filename="evil.html', 'x"; filename="evil.html'),
        ("it's=ok,really.txt", "it's=ok,really.txt"),
        ('résumé 日本.txt', 'résumé 日本.txt'),
        ('emoji \U0001F600.png', 'emoji \U0001F600.png'),
    ]
    for name, want in cases:
        uid = _upload(srv, b'z', metadata=_md(filename=name, filetype='text/plain'))
        r = _get(srv, uid)
        eq(r.status, 200, 'GET (filename %r)' % name)
        kind, ascii_name, utf8_name = _disposition(r, 'filename %r' % name)
        eq((kind, utf8_name), ('inline', want), 'Content-Disposition (kind, filename*) for filename %r' % name)
        if want.isascii():
            eq(ascii_name, re.sub(r'[^A-Za-z0-9._ ()-]', '_', want), 'ASCII fallback for %r' % name)
        else:
            # each non-ASCII character becomes '_' (one per character or one per UTF-8 byte)
            safe = re.compile(r'[A-Za-z0-9._ ()-]')
            per_char = ''.join(ch if safe.fullmatch(ch) else '_' for ch in want)
            per_byte = ''.join(ch if safe.fullmatch(ch) else '_' * len(ch.encode('utf-8')) for ch in want)
            check(ascii_name in (per_char, per_byte), 'ASCII fallback for %r: %r (expected %r or %r)'
                  % (name, ascii_name, per_char, per_byte))
    # names that give no filename at all
    for name in ['', 'dir/', 'a\\', b'\xff\xfe.txt', b'bad\xc3(.txt', b'nul\x00.txt']:
        uid = _upload(srv, b'z', metadata=_md(filename=name))
        r = _get(srv, uid)
        eq(r.status, 200, 'GET (filename %r)' % (name,))
        eq(r.header('Content-Disposition'), 'attachment', 'Content-Disposition for filename %r' % (name,))


def test_download_filename_cannot_inject_headers():
    srv = Server()
    for name in ['evil\r\nSet-Cookie: a=b.txt', 'evil\nX-Injected: 1', 'a\rb.txt', 'tab\there.txt',
                 'x"\r\nContent-Type: text/html\r\n\r\n<script>.txt', 'del\x7f.txt']:
        uid = _upload(srv, b'body', metadata=_md(filename=name, filetype='text/html'))
        r = _get(srv, uid)
        eq(r.status, 200, 'GET (filename %r)' % name)
        kind, ascii_name, utf8_name = _disposition(r, 'filename %r' % name)
        eq(kind, 'attachment', 'disposition kind for %r' % name)
        check(utf8_name is None or '\r' not in utf8_name and '\n' not in utf8_name,
              'filename* for %r decodes to %r' % (name, utf8_name))
        names = [k.lower() for k, _ in r.headers]
        check('set-cookie' not in names and 'x-injected' not in names, 'injected header for %r: %r' % (name, r.headers))
        eq(r.header('Content-Type'), 'application/octet-stream', 'Content-Type for %r' % name)
        eq(r.body, b'body', 'body for %r' % name)
    # a very long name
    long_name = 'n' * 400 + '.txt'
    uid = _upload(srv, b'L', metadata=_md(filename=long_name))
    r = _get(srv, uid)
    eq(r.status, 200, 'GET with a 404-byte filename')
    _disposition(r, 'a 404-byte filename')
    long_utf8 = '日' * 200
    uid = _upload(srv, b'L', metadata=_md(filename=long_utf8))
    r = _get(srv, uid)
    eq(r.status, 200, 'GET with a 600-byte UTF-8 filename')
    _, _, u = _disposition(r, 'a 600-byte UTF-8 filename')
    check(u is None or long_utf8.startswith(u), 'filename* of a long UTF-8 name: %r' % u)


# ---------------------------------------------------------------------------
# Range, If-Range, If-None-Match
# ---------------------------------------------------------------------------

def test_download_ranges():
    srv = Server()
    data = os.urandom(1000)
    uid = _upload(srv, data, metadata=_md(filename='r.bin', filetype='image/png'))
    for rng, first, last in [('bytes=0-99', 0, 99), ('bytes=100-199', 100, 199), ('bytes=990-2000', 990, 999),
                             ('bytes=500-', 500, 999), ('bytes=-100', 900, 999), ('bytes=-5000', 0, 999),
                             ('bytes=999-999', 999, 999), ('bytes=0-0', 0, 0), ('bytes=0-', 0, 999),
                             ('bytes=-1', 999, 999), ('bytes=998-9223372036854775807', 998, 999)]:
        r = _get(srv, uid, [('Range', rng)])
        _ok_range(r, data, first, last, 'Range %s' % rng)
        eq(r.header('ETag'), '"%s"' % uid, 'ETag on a 206 (%s)' % rng)
        eq(r.header('Content-Type'), 'image/png', 'Content-Type on a 206 (%s)' % rng)
        eq(r.header('X-Content-Type-Options'), 'nosniff', 'nosniff on a 206 (%s)' % rng)
    for rng in ['bytes=1000-', 'bytes=1000-1005', 'bytes=5000-6000', 'bytes=-0']:
        r = _get(srv, uid, [('Range', rng)])
        eq(r.status, 416, 'Range %s of 1000 bytes: status' % rng)
        eq(r.header('Content-Range'), 'bytes */1000', 'Range %s: Content-Range' % rng)
        check(data[:16] not in r.body, 'Range %s: the 416 carries upload bytes' % rng)
    for rng in ['bytes=0-1,5-6', 'bytes=0-1, 3-4', 'bytes=abc', 'bytes=5-2', 'items=0-5', 'bytes=', 'bytes=-',
                '0-5', 'bytes=1-2-3', 'bytes=+1-2', 'bytes=0x10-']:
        r = _get(srv, uid, [('Range', rng)])
        _ok_full(r, data, 'Range %r (ignored)' % rng)
    # ranges on one keep-alive connection
    with srv.conn() as c:
        for first, last in ((0, 9), (10, 19), (995, 999)):
            r = c.request('GET', '/files/' + uid, [('Range', 'bytes=%d-%d' % (first, last))])
            _ok_range(r, data, first, last, 'Range %d-%d on one connection' % (first, last))
            if r.conn_close():
                break


def test_download_range_large():
    srv = Server()
    data = os.urandom((3 << 20) + 77)
    uid = _upload(srv, data)
    a, b = (1 << 20) - 5, (2 << 20) + 5
    _ok_range(_get(srv, uid, [('Range', 'bytes=%d-%d' % (a, b))]), data, a, b, 'a 1 MiB range in the middle')
    _ok_range(_get(srv, uid, [('Range', 'bytes=-70000')]), data, len(data) - 70000, len(data) - 1, 'suffix range')


def test_download_if_range_and_if_none_match():
    srv = Server()
    data = os.urandom(5000)
    uid = _upload(srv, data)
    etag = '"%s"' % uid
    _ok_range(_get(srv, uid, [('Range', 'bytes=10-19'), ('If-Range', etag)]), data, 10, 19,
              'Range with If-Range of the ETag')
    for other in ['"%s"' % os.urandom(16).hex(), 'W/' + etag, 'Wed, 21 Oct 2015 07:28:00 GMT', '"x"', uid]:
        _ok_full(_get(srv, uid, [('Range', 'bytes=10-19'), ('If-Range', other)]), data,
                 'Range with If-Range %r' % other)
    for inm in [etag, '*', '"abc", ' + etag, 'W/' + etag]:
        with srv.conn() as c:
            r = c.request('GET', '/files/' + uid, [('If-None-Match', inm)])
            eq(r.status, 304, 'If-None-Match %r: status' % inm)
            eq(r.header('ETag'), etag, 'If-None-Match %r: ETag on the 304' % inm)
            if not r.conn_close():
                # a 304 has no body: the next response on the connection must parse
                r2 = c.request('GET', '/files/' + uid, [('Range', 'bytes=0-3')])
                _ok_range(r2, data, 0, 3, 'GET after a 304 on the same connection')
    for inm in ['"other"', '"%s"' % os.urandom(16).hex()]:
        _ok_full(_get(srv, uid, [('If-None-Match', inm)]), data, 'If-None-Match %r' % inm)


# ---------------------------------------------------------------------------
# --disable-download
# ---------------------------------------------------------------------------

def test_disable_download():
    srv = Server('--disable-download')
    data = os.urandom(20000)
    uid = _upload(srv, data[:5000], length=len(data))
    p = _tus(srv, 'PATCH', '/files/' + uid, [('Content-Type', OCTET), ('Upload-Offset', '5000')], data[5000:])
    eq((p.status, p.header('Upload-Offset')), (204, str(len(data))), 'PATCH with --disable-download')
    h = _tus(srv, 'HEAD', '/files/' + uid)
    eq((h.status, h.header('Upload-Offset')), (200, str(len(data))), 'HEAD with --disable-download')
    with open(os.path.join(srv.dir, 'uploads', uid), 'rb') as f:
        eq(sha(f.read()), sha(data), 'stored data with --disable-download')
    for hdrs in ([], [('Range', 'bytes=0-9')], [('Tus-Resumable', TUS_VERSION)]):
        r = _get(srv, uid, hdrs)
        eq(r.status, 405, 'GET of a finished upload with --disable-download (%r)' % hdrs)
        allow = r.header('Allow')
        check(allow, 'no Allow header on the 405')
        methods = [m.strip().upper() for m in allow.split(',')]
        check('GET' not in methods and 'PATCH' in methods, 'Allow on the 405: %r' % allow)
        check(data[:16] not in r.body, 'the 405 carries upload bytes')
    o = _tus(srv, 'OPTIONS', '/files/')
    eq(o.status, 204, 'OPTIONS with --disable-download')
    d = _tus(srv, 'DELETE', '/files/' + uid)
    eq(d.status, 204, 'DELETE with --disable-download')
