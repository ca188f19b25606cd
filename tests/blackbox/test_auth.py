"""Access control: --auth-tokens (bearer tokens) and --auth-secret (signed upload URLs).

--auth-tokens FILE: every request to the upload endpoint (tus and IETF: POST, HEAD, PATCH,
DELETE, GET download) and to the article's /status and /upload needs `Authorization: Bearer
<listed token>`. None: 401 with `WWW-Authenticate: Bearer realm="resumed"`; an unlisted one:
401 with `, error="invalid_token"` added. OPTIONS and the web page need none. A token may touch
only the uploads it created: another token gets 403. SIGHUP re-reads the file; a broken file
keeps the previous list. The article's ids are the token's own.

--auth-secret FILE: a created upload's URL ends in "<key>-<sig>"; a missing, altered or
borrowed signature is 403, in the URL of a request or in a tus Upload-Concat list. SIGHUP with
a new secret voids the old URLs. Creation stays open without --auth-tokens.

Every refused request is followed by the owner's view of the upload: its offset (HEAD) and
its bytes (download once finished) are what they were.
"""

import os
import re
import signal
import time

from harness import Server, build_request, check, eq, file_sha, make_tempdir, sha

TUS = '1.0.0'
OCTET = 'application/offset+octet-stream'
PARTIAL = 'application/partial-upload'
IETF_V = '8'
REALM = 'Bearer realm="resumed"'
INVALID = 'Bearer realm="resumed", error="invalid_token"'
PLAIN_RE = re.compile(r'/files/([0-9a-f]{32})')
SIGNED_RE = re.compile(r'/files/([0-9a-f]{32})-([0-9a-f]{32})')

ALICE = 'alice-0123456789abcdef'
BOB = 'bob.0123456789-ABCDEF~'
CAROL = 'carol+0123456789/abcdef=='
NOBODY = 'nobody-0123456789abcdef'
SECRET = b'the-first-secret-of-this-test-0123456789\n'
SECRET2 = b'a-second-secret-for-the-rotation-0123456789\n'
FID = 'holiday.mov-5000-1700000000000'   # the article client's id: name-size-mtime


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def _tokens_file(*lines):
    p = os.path.join(make_tempdir('resumed-auth-'), 'tokens')
    _write(p, '\n'.join(lines) + '\n')
    return p


def _secret_file(data=SECRET):
    p = os.path.join(make_tempdir('resumed-auth-'), 'secret')
    _write(p, data)
    return p


def _auth(token):
    """token: a token (str), None (no header) or a list of raw Authorization values."""
    if token is None:
        return []
    if isinstance(token, list):
        return [('Authorization', v) for v in token]
    return [('Authorization', 'Bearer ' + token)]


def _send(srv, method, path, headers, body=b''):
    with srv.conn() as c:
        c.send(build_request(method, path, headers, body))
        return c.read_final(method)


def _tus(srv, method, path, token, headers=(), body=b''):
    r = _send(srv, method, path, [('Tus-Resumable', TUS)] + _auth(token) + list(headers), body)
    eq(r.header('Tus-Resumable'), TUS, 'tus %s %s: Tus-Resumable on the %d' % (method, path, r.status))
    return r


def _ietf(srv, method, path, token, headers=(), body=b''):
    return _send(srv, method, path, [('Upload-Draft-Interop-Version', IETF_V)] + _auth(token) + list(headers),
                 body)


def _location(r, signed, what):
    loc = r.header('Location')
    m = (SIGNED_RE if signed else PLAIN_RE).fullmatch(loc or '')
    check(m is not None, '%s: Location %r is not /files/<32 hex>%s' % (what, loc, '-<32 hex>' if signed else ''))
    return loc


def tus_create(srv, token, length, body=b'', signed=False, extra=()):
    h = [('Upload-Length', str(length))] + list(extra)
    if body:
        h.append(('Content-Type', OCTET))
    r = _tus(srv, 'POST', '/files/', token, h, body)
    eq(r.status, 201, 'tus creation by %r: status (%r)' % (token, r.body))
    return _location(r, signed, 'tus creation')


def tus_offset(srv, path, token):
    r = _tus(srv, 'HEAD', path, token)
    eq(r.status, 200, 'owner HEAD %s: status' % path)
    return int(r.header('Upload-Offset'))


def tus_patch(srv, path, token, offset, data):
    return _tus(srv, 'PATCH', path, token, [('Upload-Offset', str(offset)), ('Content-Type', OCTET)], data)


def tus_patch_ok(srv, path, token, offset, data):
    r = tus_patch(srv, path, token, offset, data)
    eq((r.status, r.header('Upload-Offset')), (204, str(offset + len(data))), 'owner PATCH %s at %d' % (path, offset))


def ietf_create(srv, token, body, complete, signed=False):
    h = [('Upload-Complete', '?1' if complete else '?0')]
    r = _ietf(srv, 'POST', '/files/', token, h, body)
    eq(r.status, 201, 'IETF creation by %r: status (%r)' % (token, r.body))
    loc = _location(r, signed, 'IETF creation')
    for i in r.interim:
        if i.status == 104:
            eq(i.header('Location'), loc, 'IETF creation: the 104 Location is the 201 one')
    return loc


def ietf_offset(srv, path, token):
    r = _ietf(srv, 'HEAD', path, token)
    eq(r.status, 204, 'owner IETF HEAD %s: status' % path)
    return int(r.header('Upload-Offset'))


def ietf_patch(srv, path, token, offset, data, complete):
    h = [('Upload-Offset', str(offset)), ('Content-Type', PARTIAL), ('Upload-Complete', '?1' if complete else '?0')]
    return _ietf(srv, 'PATCH', path, token, h, data)


def download(srv, path, token):
    return _send(srv, 'GET', path, _auth(token))


def download_ok(srv, path, token, data, what):
    r = download(srv, path, token)
    eq(r.status, 200, what + ': download status')
    eq(sha(r.body), sha(data), what + ': downloaded bytes')


def art_status(srv, fid, token):
    return _send(srv, 'GET', '/status', [('X-File-Id', fid)] + _auth(token))


def art_upload(srv, fid, token, data, start, size):
    h = [('X-File-Id', fid), ('X-Start-Byte', str(start)), ('X-File-Size', str(size))]
    return _send(srv, 'POST', '/upload', h + _auth(token), data)


def refused(r, status, what, challenge=None):
    eq(r.status, status, '%s: status (body %r)' % (what, r.body))
    if status == 401:
        eq(r.header('WWW-Authenticate'), challenge, what + ': WWW-Authenticate')


def _keys(srv):
    d = os.path.join(srv.dir, 'uploads')
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def hup(srv):
    os.kill(srv.proc.pid, signal.SIGHUP)


def wait_until(fn, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not fn():
        check(time.monotonic() < deadline, 'not within %.0f s: %s' % (timeout, what))
        time.sleep(0.05)


def _new_lines(srv, n, text):
    return any(text in line for line in srv.lines[n:])


def _flip(sig):
    return sig[:-1] + ('0' if sig[-1] != '0' else '1')


# ---------------------------------------------------------------------------
# --auth-tokens
# ---------------------------------------------------------------------------

def test_tokens_required_on_every_upload_request():
    srv = Server('--auth-tokens', _tokens_file('# users', ALICE, BOB))
    data = os.urandom(2000)
    t = tus_create(srv, ALICE, len(data), data[:700])
    done = tus_create(srv, ALICE, 5, b'hello')
    i = ietf_create(srv, ALICE, data[:300], False)
    keys = _keys(srv)
    nfiles = len(srv.data_files())

    def requests(tok):
        return [
            ('tus POST', lambda: _tus(srv, 'POST', '/files/', tok, [('Upload-Length', '5'),
                                                                   ('Content-Type', OCTET)], b'abcde')),
            ('tus HEAD', lambda: _tus(srv, 'HEAD', t, tok)),
            ('tus PATCH', lambda: tus_patch(srv, t, tok, 700, data[700:900])),
            ('tus DELETE', lambda: _tus(srv, 'DELETE', t, tok)),
            ('GET download', lambda: download(srv, done, tok)),
            ('IETF POST', lambda: _ietf(srv, 'POST', '/files/', tok, [('Upload-Complete', '?1')], b'abc')),
            ('IETF HEAD', lambda: _ietf(srv, 'HEAD', i, tok)),
            ('IETF PATCH', lambda: ietf_patch(srv, i, tok, 300, data[300:400], False)),
            ('IETF DELETE', lambda: _ietf(srv, 'DELETE', i, tok)),
            ('article GET /status', lambda: art_status(srv, FID, tok)),
            ('article POST /upload', lambda: art_upload(srv, FID, tok, b'x' * 100, 0, 5000)),
        ]

    cases = [(None, REALM, 'no Authorization'),
             (['Basic YWxpY2U6c2VjcmV0'], REALM, 'Basic credentials'),
             (NOBODY, INVALID, 'an unlisted token'),
             (ALICE[:-1], INVALID, "a prefix of alice's token"),
             (ALICE.upper(), INVALID, "alice's token in upper case"),
             (['Bearer ' + ALICE, 'Bearer ' + ALICE], INVALID, 'two Authorization headers'),
             (['Bearer ' + ALICE + ' extra'], INVALID, 'a malformed bearer value')]
    for tok, challenge, how in cases:
        for what, fn in requests(tok):
            refused(fn(), 401, '%s with %s' % (what, how), challenge)
    # nothing was created, changed or removed
    eq(_keys(srv), keys, 'DIR/uploads after the refused requests')
    eq(len(srv.data_files()), nfiles, 'data files after the refused requests')
    eq(tus_offset(srv, t, ALICE), 700, "alice's tus offset")
    eq(ietf_offset(srv, i, ALICE), 300, "alice's IETF offset")
    eq(art_status(srv, FID, ALICE).body, b'0', "alice's article /status")
    download_ok(srv, done, ALICE, b'hello', 'finished tus upload')
    tus_patch_ok(srv, t, ALICE, 700, data[700:])
    download_ok(srv, t, ALICE, data, 'tus upload finished by alice')
    r = ietf_patch(srv, i, ALICE, 300, data[300:], True)
    eq(r.status, 204, 'IETF PATCH by alice')
    download_ok(srv, i, ALICE, data, 'IETF upload finished by alice')
    # the case-insensitive scheme and several spaces are fine
    eq(_tus(srv, 'HEAD', t, ['bearer   ' + BOB]).status, 403, "bob (lower-case scheme) on alice's upload")


def test_tokens_not_needed_for_options_and_the_page():
    srv = Server('--auth-tokens', _tokens_file(ALICE), '--cors-origin', 'https://a.example')
    r = _send(srv, 'OPTIONS', '/files/', [('Tus-Resumable', TUS)])
    eq((r.status, r.header('Tus-Version')), (204, '1.0.0'), 'tus discovery OPTIONS without a token')
    r = _send(srv, 'OPTIONS', '/files/' + os.urandom(16).hex(),
              [('Origin', 'https://a.example'), ('Access-Control-Request-Method', 'PATCH'),
               ('Access-Control-Request-Headers', 'authorization, tus-resumable, upload-offset, content-type')])
    eq((r.status, r.header('Access-Control-Allow-Origin')), (204, 'https://a.example'),
       'CORS preflight without a token')
    r = _send(srv, 'GET', '/', [])
    eq(r.status, 200, 'the web page without a token')
    check(b'blackbox index' in r.body, 'the web page body: %r' % r.body[:80])
    # the endpoint itself does ask
    refused(_send(srv, 'POST', '/files/', [('Tus-Resumable', TUS), ('Upload-Length', '1')]), 401,
            'tus POST without a token', REALM)


def test_preflight_allows_the_authorization_header():
    """A browser sends Authorization only if the preflight allows it."""
    srv = Server('--auth-tokens', _tokens_file(ALICE), '--cors-origin', 'https://a.example')
    r = _send(srv, 'OPTIONS', '/files/', [('Origin', 'https://a.example'), ('Access-Control-Request-Method', 'POST'),
                                          ('Access-Control-Request-Headers', 'authorization, tus-resumable')])
    eq(r.status, 204, 'preflight status')
    allowed = [v.strip().lower() for v in (r.header('Access-Control-Allow-Headers') or '').split(',')]
    check('authorization' in allowed, 'Access-Control-Allow-Headers %r lacks Authorization' % allowed)


def test_other_token_gets_403_and_changes_nothing():
    srv = Server('--auth-tokens', _tokens_file(ALICE, BOB))
    data = os.urandom(3000)
    t = tus_create(srv, ALICE, len(data), data[:1000])
    i = ietf_create(srv, ALICE, data[:1200], False)
    # bob, listed, on alice's uploads: at the right offsets, with well-formed requests
    refused(_tus(srv, 'HEAD', t, BOB), 403, "bob's tus HEAD")
    refused(tus_patch(srv, t, BOB, 1000, b'B' * 500), 403, "bob's tus PATCH")
    refused(_tus(srv, 'DELETE', t, BOB), 403, "bob's tus DELETE")
    refused(_ietf(srv, 'HEAD', i, BOB), 403, "bob's IETF HEAD")
    refused(ietf_patch(srv, i, BOB, 1200, b'B' * 500, True), 403, "bob's IETF PATCH")
    refused(_ietf(srv, 'DELETE', i, BOB), 403, "bob's IETF DELETE")
    eq(tus_offset(srv, t, ALICE), 1000, 'tus offset after bob')
    eq(ietf_offset(srv, i, ALICE), 1200, 'IETF offset after bob')
    # alice finishes both; bob cannot download them, alice gets her bytes
    tus_patch_ok(srv, t, ALICE, 1000, data[1000:])
    eq(ietf_patch(srv, i, ALICE, 1200, data[1200:], True).status, 204, 'IETF PATCH by alice')
    refused(download(srv, t, BOB), 403, "bob's download of alice's tus upload")
    refused(download(srv, i, BOB), 403, "bob's download of alice's IETF upload")
    refused(_tus(srv, 'DELETE', t, BOB), 403, "bob's tus DELETE of the finished upload")
    download_ok(srv, t, ALICE, data, "alice's tus upload")
    download_ok(srv, i, ALICE, data, "alice's IETF upload")
    # bob's own upload is his
    b = tus_create(srv, BOB, 3, b'bob')
    download_ok(srv, b, BOB, b'bob', "bob's upload")
    refused(download(srv, b, ALICE), 403, "alice's download of bob's upload")


def test_other_token_cannot_concatenate_foreign_partials():
    """A final upload over someone else's partial would hand its bytes to the final's owner."""
    srv = Server('--auth-tokens', _tokens_file(ALICE, BOB))
    a = tus_create(srv, ALICE, 6, b'secret', extra=[('Upload-Concat', 'partial')])
    a2 = tus_create(srv, ALICE, 4, b'data', extra=[('Upload-Concat', 'partial')])
    b = tus_create(srv, BOB, 3, b'bob', extra=[('Upload-Concat', 'partial')])
    keys = _keys(srv)
    r = _tus(srv, 'POST', '/files/', BOB, [('Upload-Concat', 'final;%s %s' % (b, a))])
    refused(r, 403, "bob's final over alice's partial")
    eq(_keys(srv), keys, 'DIR/uploads after the refused final')
    r = _tus(srv, 'POST', '/files/', ALICE, [('Upload-Concat', 'final;%s %s' % (a, a2))])
    eq(r.status, 201, "alice's final over her own partials")
    f = _location(r, False, 'final')
    download_ok(srv, f, ALICE, b'secretdata', "alice's final")
    refused(download(srv, f, BOB), 403, "bob's download of alice's final")


def test_tokens_reload_on_sighup():
    path = _tokens_file(ALICE, BOB)
    srv = Server('--auth-tokens', path)
    data = os.urandom(4000)
    t = tus_create(srv, ALICE, len(data), data[:1000])
    tus_create(srv, BOB, 1)   # bob can create before the reload
    refused(_tus(srv, 'POST', '/files/', CAROL, [('Upload-Length', '1')]), 401, 'carol before the reload', INVALID)

    # bob removed, carol added
    _write(path, '%s\n%s\n' % (ALICE, CAROL))
    hup(srv)
    wait_until(lambda: _tus(srv, 'HEAD', t, BOB).status == 401, 'bob refused after SIGHUP')
    refused(_tus(srv, 'POST', '/files/', BOB, [('Upload-Length', '1')]), 401, 'bob after the reload', INVALID)
    c = tus_create(srv, CAROL, 2, b'ok')
    download_ok(srv, c, CAROL, b'ok', "carol's upload")
    eq(tus_offset(srv, t, ALICE), 1000, 'alice after the reload')

    # a broken file: a warning naming the line (not the token), the previous list stays
    n = len(srv.lines)
    _write(path, '# next\n%s\nshort-0123\n%s\n' % (BOB, ALICE))
    hup(srv)
    wait_until(lambda: _new_lines(srv, n, 'line 3'), 'a warning naming line 3 on stderr')
    check(not any('short-0123' in line for line in srv.lines), 'the log echoes the rejected token')
    check(srv.alive(), 'server alive after a broken tokens file')
    refused(_tus(srv, 'HEAD', t, BOB), 401, 'bob after the broken reload', INVALID)
    eq(tus_offset(srv, c, CAROL), 2, 'carol after the broken reload')
    tus_patch_ok(srv, t, ALICE, 1000, data[1000:])
    download_ok(srv, t, ALICE, data, "alice's upload after the reloads")

    # an emptied list refuses everyone; a fixed one lets them back
    _write(path, '# nobody\n')
    hup(srv)
    wait_until(lambda: _tus(srv, 'HEAD', c, CAROL).status == 401, 'carol refused with an empty list')
    refused(download(srv, t, ALICE), 401, 'alice with an empty list', INVALID)
    _write(path, ALICE + '\n')
    hup(srv)
    wait_until(lambda: download(srv, t, ALICE).status == 200, 'alice back after SIGHUP')


def test_article_ids_are_per_token():
    srv = Server('--auth-tokens', _tokens_file(ALICE, BOB))
    a, b = os.urandom(5000), os.urandom(5000)
    eq(art_upload(srv, FID, ALICE, a[:1000], 0, 5000).status, 200, 'alice part 1')
    eq(art_upload(srv, FID, BOB, b[:3000], 0, 5000).status, 200, 'bob part 1')
    eq(art_status(srv, FID, ALICE).body, b'1000', "alice's /status")
    eq(art_status(srv, FID, BOB).body, b'3000', "bob's /status")
    # bob at alice's offset is at the wrong offset of his own upload: nothing lands in hers
    r = art_upload(srv, FID, BOB, b'B' * 4000, 1000, 5000)
    eq((r.status, r.reason), (400, 'Wrong start byte'), "bob sending at alice's offset")
    eq(art_status(srv, FID, ALICE).body, b'1000', "alice's /status after bob's attempt")
    # restarting from 0 is bob's own restart, not alice's
    eq(art_upload(srv, FID, BOB, b[:2000], 0, 5000).status, 200, 'bob restarts')
    eq(art_status(srv, FID, ALICE).body, b'1000', "alice's /status after bob's restart")
    r = art_upload(srv, FID, ALICE, a[1000:], 1000, 5000)
    eq((r.status, r.body), (200, b'Success 5000'), 'alice finishes')
    r = art_upload(srv, FID, BOB, b[2000:], 2000, 5000)
    eq((r.status, r.body), (200, b'Success 5000'), 'bob finishes')
    eq(sorted(file_sha(f) for f in srv.data_files()), sorted([sha(a), sha(b)]), 'two stored files, each intact')


# ---------------------------------------------------------------------------
# --auth-secret
# ---------------------------------------------------------------------------

def _sig(path):
    return SIGNED_RE.fullmatch(path).group(2)


def _key_path(path):
    return '/files/' + SIGNED_RE.fullmatch(path).group(1)


def _bad_urls(path, other):
    """The URL of path unsigned, with one digit changed, and with other's signature."""
    key = _key_path(path)
    return [(key, 'no signature'), (key + '-' + _flip(_sig(path)), 'one digit changed'),
            (key + '-' + _sig(other), "another upload's signature"),
            (key + '-' + _sig(path).upper(), 'the signature in upper case')]


def test_signed_urls_tus():
    srv = Server('--auth-secret', _secret_file())
    data = os.urandom(3000)
    t = tus_create(srv, None, len(data), data[:1000], signed=True)   # creation is open
    other = tus_create(srv, None, 10, signed=True)
    check(_sig(t) != _sig(other), 'two uploads, two signatures')
    eq(tus_offset(srv, t, None), 1000, 'HEAD of the signed URL')
    keys = _keys(srv)
    for bad, how in _bad_urls(t, other):
        refused(_tus(srv, 'HEAD', bad, None), 403, 'tus HEAD with %s' % how)
        refused(tus_patch(srv, bad, None, 1000, b'X' * 500), 403, 'tus PATCH with %s' % how)
        refused(_tus(srv, 'DELETE', bad, None), 403, 'tus DELETE with %s' % how)
    eq(_keys(srv), keys, 'DIR/uploads after the refused requests')
    eq(tus_offset(srv, t, None), 1000, 'offset after the refused requests')
    tus_patch_ok(srv, t, None, 1000, data[1000:])
    for bad, how in _bad_urls(t, other):
        refused(download(srv, bad, None), 403, 'download with %s' % how)
    download_ok(srv, t, None, data, 'download of the signed URL')
    eq(_tus(srv, 'DELETE', t, None).status, 204, 'DELETE of the signed URL')
    eq(_tus(srv, 'HEAD', t, None).status, 404, 'HEAD after DELETE')


def test_signed_urls_ietf():
    srv = Server('--auth-secret', _secret_file())
    data = os.urandom(3000)
    i = ietf_create(srv, None, data[:1000], False, signed=True)
    other = ietf_create(srv, None, b'x', False, signed=True)
    keys = _keys(srv)
    for bad, how in _bad_urls(i, other):
        refused(_ietf(srv, 'HEAD', bad, None), 403, 'IETF HEAD with %s' % how)
        refused(ietf_patch(srv, bad, None, 1000, data[1000:], True), 403, 'IETF PATCH with %s' % how)
        refused(_ietf(srv, 'DELETE', bad, None), 403, 'IETF DELETE with %s' % how)
    eq(_keys(srv), keys, 'DIR/uploads after the refused requests')
    eq(ietf_offset(srv, i, None), 1000, 'IETF offset after the refused requests')
    eq(ietf_patch(srv, i, None, 1000, data[1000:], True).status, 204, 'IETF PATCH of the signed URL')
    for bad, how in _bad_urls(i, other):
        refused(download(srv, bad, None), 403, 'download with %s' % how)
    download_ok(srv, i, None, data, 'IETF download of the signed URL')


def test_signed_urls_concat():
    srv = Server('--auth-secret', _secret_file())
    a = tus_create(srv, None, 3, b'abc', signed=True, extra=[('Upload-Concat', 'partial')])
    b = tus_create(srv, None, 3, b'def', signed=True, extra=[('Upload-Concat', 'partial')])
    keys = _keys(srv)
    for bad, how in _bad_urls(b, a):
        r = _tus(srv, 'POST', '/files/', None, [('Upload-Concat', 'final;%s %s' % (a, bad))])
        refused(r, 403, 'final listing a partial with %s' % how)
        r = _tus(srv, 'POST', '/files/', None, [('Upload-Concat', 'final;http://127.0.0.1%s %s' % (bad, a))])
        refused(r, 403, 'final listing an absolute partial URL with %s' % how)
    eq(_keys(srv), keys, 'DIR/uploads after the refused finals')
    r = _tus(srv, 'POST', '/files/', None, [('Upload-Concat', 'final;%s %s' % (a, b))])
    eq(r.status, 201, 'final over the signed partials')
    f = _location(r, True, 'final creation')
    download_ok(srv, f, None, b'abcdef', 'the final upload')
    refused(download(srv, _key_path(f), None), 403, 'the final unsigned')


def test_secret_rotation_on_sighup():
    path = _secret_file()
    srv = Server('--auth-secret', path)
    old = tus_create(srv, None, 4, b'done', signed=True)
    part = tus_create(srv, None, 10, b'12345', signed=True)
    download_ok(srv, old, None, b'done', 'before the rotation')
    # a secret too short: refused, the old one stays
    n = len(srv.lines)
    _write(path, b'too-short\n')
    hup(srv)
    wait_until(lambda: _new_lines(srv, n, 'shorter than'), 'a warning on stderr after SIGHUP with a short secret')
    download_ok(srv, old, None, b'done', 'after a refused rotation')
    # a new secret: the old URLs die, new ones work
    _write(path, SECRET2)
    hup(srv)
    wait_until(lambda: download(srv, old, None).status == 403, 'old URL refused after the rotation')
    refused(_tus(srv, 'HEAD', part, None), 403, 'HEAD of an old URL')
    refused(tus_patch(srv, part, None, 5, b'67890'), 403, 'PATCH of an old URL')
    new = tus_create(srv, None, 3, b'new', signed=True)
    download_ok(srv, new, None, b'new', 'a URL signed with the new secret')
    # the same secret again: the old URLs are good again and nothing changed meanwhile
    _write(path, SECRET)
    hup(srv)
    wait_until(lambda: download(srv, old, None).status == 200, 'old URL good with the old secret back')
    eq(tus_offset(srv, part, None), 5, 'the partial upload untouched')


# ---------------------------------------------------------------------------
# both
# ---------------------------------------------------------------------------

def test_tokens_and_secret_together():
    srv = Server('--auth-tokens', _tokens_file(ALICE, BOB), '--auth-secret', _secret_file())
    refused(_tus(srv, 'POST', '/files/', None, [('Upload-Length', '1')]), 401, 'creation without a token', REALM)
    data = os.urandom(2000)
    t = tus_create(srv, ALICE, len(data), data[:500], signed=True)
    i = ietf_create(srv, ALICE, data[:600], False, signed=True)
    eq(tus_offset(srv, t, ALICE), 500, "alice's signed tus URL")
    eq(ietf_offset(srv, i, ALICE), 600, "alice's signed IETF URL")
    # the URL without the token, the token without the URL, the URL with another token
    refused(_tus(srv, 'HEAD', t, None), 401, 'signed URL, no token', REALM)
    refused(_tus(srv, 'HEAD', t, NOBODY), 401, 'signed URL, unlisted token', INVALID)
    refused(_tus(srv, 'HEAD', _key_path(t), ALICE), 403, 'alice, unsigned URL')
    refused(tus_patch(srv, _key_path(t), ALICE, 500, data[500:]), 403, 'alice PATCH, unsigned URL')
    refused(tus_patch(srv, t, BOB, 500, data[500:]), 403, 'bob PATCH, signed URL')
    refused(_tus(srv, 'DELETE', t, BOB), 403, 'bob DELETE, signed URL')
    refused(ietf_patch(srv, i, BOB, 600, data[600:], True), 403, 'bob IETF PATCH, signed URL')
    refused(ietf_patch(srv, _key_path(i), ALICE, 600, data[600:], True), 403, 'alice IETF PATCH, unsigned URL')
    eq(tus_offset(srv, t, ALICE), 500, 'tus offset after the refused requests')
    eq(ietf_offset(srv, i, ALICE), 600, 'IETF offset after the refused requests')
    tus_patch_ok(srv, t, ALICE, 500, data[500:])
    refused(download(srv, t, BOB), 403, 'bob download, signed URL')
    refused(download(srv, _key_path(t), ALICE), 403, 'alice download, unsigned URL')
    refused(download(srv, t, None), 401, 'download, no token', REALM)
    download_ok(srv, t, ALICE, data, "alice's signed download")
