"""tus concatenation and concatenation-unfinished at /files/, driven over raw sockets.

A partial upload is created with `Upload-Concat: partial`; a final upload with
`Upload-Concat: final;<url> <url> ...` (relative paths or absolute URLs, space-separated) and
no Upload-Length.  A final whose partials are all finished is built before the 201; one
whose partials are not is built when the last of them completes.  The stored data file of
an upload is DIR/uploads/<id>; a finished upload downloads with GET /files/<id>.  Every
refused request is followed by a check that nothing was created and that the uploads it
named did not change.
"""

import base64
import os
import re
import time

from harness import Sentinel, Server, build_request, check, eq, file_sha, read_file, sha

TUS_VERSION = '1.0.0'
OCTET = 'application/offset+octet-stream'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})')
KEY_RE = re.compile(r'[0-9a-f]{32}(\.meta)?')


# ---------------------------------------------------------------------------
# helpers (small copies of the tus suite's)
# ---------------------------------------------------------------------------

def _req(srv, method, path, headers=(), body=b'', tus=True):
    h = [('Tus-Resumable', TUS_VERSION)] if tus else []
    h += list(headers)
    with srv.conn() as c:
        c.send(build_request(method, path, h, body))
        r = c.read_final(method)
    if tus:
        eq(r.header('Tus-Resumable'), TUS_VERSION, '%s %s: Tus-Resumable on the response (%r)' % (method, path, r))
    return r


def _loc_id(r, what='creation'):
    loc = r.header('Location')
    check(loc is not None, '%s: no Location header (%r)' % (what, r))
    m = LOCATION_RE.fullmatch(loc)
    check(m is not None, '%s: Location %r is not /files/<32 lowercase hex>' % (what, loc))
    return m.group(1)


def _partial(srv, data=None, length=None, defer=False, metadata=None, body=None):
    """Create a partial upload; data given and body None: creation-with-upload of all of it."""
    h = [('Upload-Concat', 'partial')]
    if defer:
        h.append(('Upload-Defer-Length', '1'))
    else:
        h.append(('Upload-Length', str(len(data) if length is None else length)))
    if metadata is not None:
        h.append(('Upload-Metadata', metadata))
    if body is None and data is not None and not defer and length is None:
        body = data
    if body:
        h.append(('Content-Type', OCTET))
    r = _req(srv, 'POST', '/files/', h, body or b'')
    eq(r.status, 201, 'POST partial upload: status (%r)' % r)
    return _loc_id(r, 'partial creation')


def _final(srv, value, extra=(), body=b''):
    return _req(srv, 'POST', '/files/', [('Upload-Concat', value)] + list(extra), body)


def _final_ok(srv, ids, extra=()):
    r = _final(srv, 'final;' + ' '.join('/files/' + i for i in ids), extra)
    eq(r.status, 201, 'POST final upload: status (%r)' % r)
    return _loc_id(r, 'final creation'), r


def _head(srv, uid):
    r = _req(srv, 'HEAD', '/files/' + uid)
    eq(r.status, 200, 'HEAD /files/%s status' % uid)
    return r


def _patch(srv, uid, offset, data, extra=()):
    return _req(srv, 'PATCH', '/files/' + uid,
                [('Content-Type', OCTET), ('Upload-Offset', str(offset))] + list(extra), data)


def _patch_ok(srv, uid, offset, data, extra=()):
    r = _patch(srv, uid, offset, data, extra)
    eq((r.status, r.header('Upload-Offset')), (204, str(offset + len(data))),
       'PATCH /files/%s at %d with %d bytes: (status, Upload-Offset)' % (uid, offset, len(data)))


def _get(srv, uid, headers=()):
    with srv.conn() as c:
        return c.request('GET', '/files/' + uid, list(headers))


def _path(srv, uid):
    return os.path.join(srv.dir, 'uploads', uid)


def _keys(srv):
    d = os.path.join(srv.dir, 'uploads')
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if KEY_RE.fullmatch(n))


def _state(srv, uid):
    r = _req(srv, 'HEAD', '/files/' + uid)
    p = _path(srv, uid)
    size = os.path.getsize(p) if os.path.exists(p) else None
    return (r.status, r.header('Upload-Offset'), r.header('Upload-Length'), r.header('Upload-Concat'),
            size, file_sha(p) if size is not None else None)


def _check_built(srv, fid, data, parts, what):
    h = _head(srv, fid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (str(len(data)), str(len(data))),
       '%s: HEAD (Upload-Offset, Upload-Length) of the final' % what)
    eq(h.header('Upload-Concat'), 'final;' + ' '.join('/files/' + p for p in parts),
       '%s: HEAD Upload-Concat of the final' % what)
    eq(file_sha(_path(srv, fid)), sha(data), '%s: sha256 of DIR/uploads/<final>' % what)
    g = _get(srv, fid)
    eq(g.status, 200, '%s: GET of the final: status' % what)
    eq(g.header('Content-Length'), str(len(data)), '%s: GET Content-Length' % what)
    eq(sha(g.body), sha(data), '%s: sha256 of the downloaded final' % what)


def _b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()


# ---------------------------------------------------------------------------
# partial uploads
# ---------------------------------------------------------------------------

def test_partial_head_shows_concat():
    srv = Server()
    a = _partial(srv, length=100)
    h = _head(srv, a)
    eq((h.header('Upload-Concat'), h.header('Upload-Offset'), h.header('Upload-Length')),
       ('partial', '0', '100'), 'HEAD of a new partial (Upload-Concat, Upload-Offset, Upload-Length)')
    d = _partial(srv, defer=True)
    h = _head(srv, d)
    eq((h.header('Upload-Concat'), h.header('Upload-Offset'), h.header('Upload-Defer-Length')),
       ('partial', '0', '1'), 'HEAD of a deferred-length partial (Upload-Concat, Upload-Offset, Upload-Defer-Length)')
    _patch_ok(srv, a, 0, b'x' * 100)
    h = _head(srv, a)
    eq((h.header('Upload-Concat'), h.header('Upload-Offset')), ('partial', '100'), 'HEAD of a finished partial')
    # a plain upload has no Upload-Concat
    r = _req(srv, 'POST', '/files/', [('Upload-Length', '5')])
    eq(r.status, 201, 'plain creation')
    eq(_head(srv, _loc_id(r)).header('Upload-Concat'), None, 'Upload-Concat on HEAD of a plain upload')


# ---------------------------------------------------------------------------
# final of finished partials
# ---------------------------------------------------------------------------

def test_final_of_finished_partials():
    srv = Server()
    da, db = os.urandom(70001), os.urandom(123457)
    a = _partial(srv, da)
    b = _partial(srv, length=len(db))
    _patch_ok(srv, b, 0, db[:5000])
    _patch_ok(srv, b, 5000, db[5000:])
    fid, r = _final_ok(srv, [a, b])
    check(fid not in (a, b), 'final got the id of a partial')
    off = r.header('Upload-Offset')
    check(off is None or off == str(len(da) + len(db)),
          'Upload-Offset on the 201 of a final built at once: %r (sum %d)' % (off, len(da) + len(db)))
    _check_built(srv, fid, da + db, [a, b], 'final of two finished partials')
    # the partials are unchanged
    eq(file_sha(_path(srv, a)), sha(da), 'partial a data file')
    eq(file_sha(_path(srv, b)), sha(db), 'partial b data file')
    eq(_get(srv, a).body, da, 'GET of partial a')
    # order matters
    fid2, _ = _final_ok(srv, [b, a])
    _check_built(srv, fid2, db + da, [b, a], 'final b then a')


def test_final_absolute_urls_and_repeats():
    srv = Server()
    da, db = os.urandom(3000), os.urandom(4000)
    a, b = _partial(srv, da), _partial(srv, db)
    value = 'final;http://127.0.0.1:%d/files/%s  https://other.example/files/%s /files/%s' % (srv.port, a, b, a)
    r = _final(srv, value)
    eq(r.status, 201, 'final with absolute URLs, a repeated partial and a double space: status (%r)' % r)
    fid = _loc_id(r)
    _check_built(srv, fid, da + db + da, [a, b, a], 'final a b a')


def test_final_with_empty_partials():
    srv = Server()
    z1 = _partial(srv, length=0)
    eq(_head(srv, z1).header('Upload-Offset'), '0', 'HEAD Upload-Offset of a 0-byte partial')
    z2 = _partial(srv, length=0)
    fid, _ = _final_ok(srv, [z1, z2])
    _check_built(srv, fid, b'', [z1, z2], 'final of two 0-byte partials')
    da = os.urandom(999)
    a = _partial(srv, da)
    fid2, _ = _final_ok(srv, [z1, a, z2])
    _check_built(srv, fid2, da, [z1, a, z2], 'final of 0-byte + 999-byte + 0-byte partials')


def test_final_metadata_is_its_own():
    srv = Server()
    da, db = b'hello ', b'world'
    a = _partial(srv, da, metadata='filename ' + _b64('a.txt') + ',pa ' + _b64('1'))
    b = _partial(srv, db, metadata='filename ' + _b64('b.txt'))
    fid, _ = _final_ok(srv, [a, b])
    h = _head(srv, fid)
    eq(h.header('Upload-Metadata'), None, 'HEAD Upload-Metadata of a final created without metadata')
    md = 'filename ' + _b64('whole.txt') + ',filetype ' + _b64('text/plain')
    fid2, _ = _final_ok(srv, [a, b], extra=[('Upload-Metadata', md)])
    eq(_head(srv, fid2).header('Upload-Metadata'), md, 'HEAD Upload-Metadata of a final with its own')
    g = _get(srv, fid2)
    eq((g.status, g.body), (200, da + db), 'GET of the final')
    cd = g.header('Content-Disposition') or ''
    check('whole.txt' in cd and 'a.txt' not in cd, 'Content-Disposition of the final %r: not its own filename' % cd)
    eq(_head(srv, a).header('Upload-Metadata'), 'filename ' + _b64('a.txt') + ',pa ' + _b64('1'),
       'partial a metadata after the finals')


def test_final_survives_restart():
    srv = Server()
    da, db = os.urandom(10000), os.urandom(20000)
    a, b = _partial(srv, da), _partial(srv, db)
    fid, _ = _final_ok(srv, [a, b], extra=[('Upload-Metadata', 'k dg==')])
    srv.restart()
    _check_built(srv, fid, da + db, [a, b], 'final after kill -9 and restart')
    eq(_head(srv, fid).header('Upload-Metadata'), 'k dg==', 'final metadata after restart')
    eq(_head(srv, a).header('Upload-Concat'), 'partial', 'partial Upload-Concat after restart')


# ---------------------------------------------------------------------------
# concatenation-unfinished
# ---------------------------------------------------------------------------

def _poll_get(srv, fid, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        g = _get(srv, fid)
        if g.status == 200 or time.monotonic() > deadline:
            return g
        time.sleep(0.05)


def test_final_unfinished_then_built():
    srv = Server()
    da, db, dc = os.urandom(5000), os.urandom(300001), os.urandom(7)
    a = _partial(srv, da)
    b = _partial(srv, length=len(db))
    _patch_ok(srv, b, 0, db[:100000])
    c = _partial(srv, dc)
    total = len(da) + len(db) + len(dc)
    fid, r = _final_ok(srv, [a, b, c])
    eq(r.header('Upload-Offset'), None, 'Upload-Offset on the 201 of a final whose partials are unfinished')
    for i in range(2):
        h = _head(srv, fid)
        eq((h.header('Upload-Offset'), h.header('Upload-Length')), (None, str(total)),
           'HEAD #%d of an unfinished final (Upload-Offset, Upload-Length)' % i)
        eq(h.header('Upload-Concat'), 'final;/files/%s /files/%s /files/%s' % (a, b, c),
           'HEAD Upload-Concat of an unfinished final')
    eq(_get(srv, fid).status, 409, 'GET of an unfinished final')
    r = _patch(srv, fid, 0, b'x' * 10)
    eq(r.status, 403, 'PATCH on an unfinished final')
    eq(_head(srv, fid).header('Upload-Offset'), None, 'HEAD Upload-Offset after the refused PATCH')
    _patch_ok(srv, b, 100000, db[100000:200000])
    eq(_head(srv, fid).header('Upload-Offset'), None, 'HEAD Upload-Offset after a PATCH that leaves b unfinished')
    _patch_ok(srv, b, 200000, db[200000:])
    # built without anyone asking (GET does not build a final): poll GET only
    g = _poll_get(srv, fid)
    eq(g.status, 200, 'GET of the final after its last partial completed (no HEAD in between)')
    eq(sha(g.body), sha(da + db + dc), 'sha256 of the downloaded final')
    _check_built(srv, fid, da + db + dc, [a, b, c], 'final built after the last partial completed')


def test_final_unfinished_two_finals_wait_on_one_partial():
    srv = Server()
    da, db = os.urandom(4096), os.urandom(8192)
    a = _partial(srv, da)
    b = _partial(srv, length=len(db))
    f1, _ = _final_ok(srv, [a, b])
    f2, _ = _final_ok(srv, [b, b, a])
    _patch_ok(srv, b, 0, db)
    g1, g2 = _poll_get(srv, f1), _poll_get(srv, f2)
    eq((g1.status, sha(g1.body)), (200, sha(da + db)), 'GET of final 1 (a b)')
    eq((g2.status, sha(g2.body)), (200, sha(db + db + da)), 'GET of final 2 (b b a)')
    _check_built(srv, f1, da + db, [a, b], 'final 1')
    _check_built(srv, f2, db + db + da, [b, b, a], 'final 2')


def test_final_unfinished_deferred_length_partial():
    srv = Server()
    da, db = os.urandom(1500), os.urandom(2500)
    a = _partial(srv, da)
    b = _partial(srv, defer=True)
    fid, r = _final_ok(srv, [a, b])
    eq(r.header('Upload-Offset'), None, 'Upload-Offset on the 201 of a final waiting for a deferred partial')
    h = _head(srv, fid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (None, None),
       'HEAD of a final with a deferred-length partial (Upload-Offset, Upload-Length)')
    _patch_ok(srv, b, 0, db[:1000])
    h = _head(srv, fid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (None, None),
       'HEAD of the final while the deferred partial has 1000 bytes')
    _patch_ok(srv, b, 1000, db[1000:], extra=[('Upload-Length', str(len(db)))])
    eq(_head(srv, b).header('Upload-Length'), str(len(db)), 'partial b Upload-Length after it was declared')
    g = _poll_get(srv, fid)
    eq((g.status, sha(g.body)), (200, sha(da + db)), 'GET of the final after the deferred partial completed')
    _check_built(srv, fid, da + db, [a, b], 'final with a once-deferred partial')


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

def test_final_errors_400():
    srv = Server()
    s = Sentinel(srv, total=5000, held=1234)
    article_key = os.path.basename(s.path)
    da = os.urandom(2000)
    a = _partial(srv, da)
    b = _partial(srv, length=3000)
    _patch_ok(srv, b, 0, b'y' * 1000)
    r = _req(srv, 'POST', '/files/', [('Upload-Length', '10')], b'')
    eq(r.status, 201, 'plain creation')
    plain = _loc_id(r)
    fin, _ = _final_ok(srv, [a])
    unknown = os.urandom(16).hex()
    before = _keys(srv)
    states = {u: _state(srv, u) for u in (a, b, plain, fin)}
    cases = [
        ('final with Upload-Length', 'final;/files/%s' % a, [('Upload-Length', str(len(da)))]),
        ('final with Upload-Defer-Length', 'final;/files/%s' % a, [('Upload-Defer-Length', '1')]),
        ('unknown id', 'final;/files/%s' % unknown, []),
        ('unknown id among good ones', 'final;/files/%s /files/%s' % (a, unknown), []),
        ('a plain (non-partial) upload', 'final;/files/%s' % plain, []),
        ('a final upload as a partial', 'final;/files/%s' % fin, []),
        ('an article upload key', 'final;/files/%s' % article_key, []),
        ('final; with nothing', 'final;', []),
        ('final; with spaces only', 'final;   ', []),
        ('another path', 'final;/other/path/%s' % a, []),
        ('absolute URL with another path', 'final;http://127.0.0.1/other/%s' % a, []),
        ('absolute URL without a path', 'final;http://127.0.0.1', []),
        ('not an id', 'final;/files/nothex', []),
        ('uppercase id', 'final;/files/%s' % a.upper(), []),
        ('id with a trailing slash', 'final;/files/%s/' % a, []),
        ('bogus', 'bogus', []),
        ('final without ;', 'final /files/%s' % a, []),
        ('comma-separated', 'final;/files/%s,/files/%s' % (a, a), []),
    ]
    for what, value, extra in cases:
        r = _final(srv, value, extra)
        eq(r.status, 400, 'POST Upload-Concat %r (%s): status' % (value, what))
        eq(r.header('Location'), None, 'POST Upload-Concat %r (%s): Location' % (value, what))
    r = _req(srv, 'POST', '/files/', [('Upload-Concat', 'final;/files/' + a), ('Upload-Concat', 'final;/files/' + a)])
    eq(r.status, 400, 'POST with two Upload-Concat fields')
    eq(_keys(srv), before, 'files in DIR/uploads after refused finals')
    for u, st in states.items():
        eq(_state(srv, u), st, 'state of upload %s after refused finals' % u)
    eq(_get(srv, a).body, da, 'GET of the finished partial after refused finals')
    _patch_ok(srv, b, 1000, b'z' * 2000)
    s.check('refused finals')


def test_final_with_body_403():
    srv = Server()
    da = os.urandom(1000)
    a = _partial(srv, da)
    before = _keys(srv)
    r = _final(srv, 'final;/files/' + a, [('Content-Type', OCTET)], body=b'q' * 100)
    eq(r.status, 403, 'final with a 100-byte body: status')
    eq(r.header('Location'), None, 'Location on the 403')
    eq(_keys(srv), before, 'files in DIR/uploads after the 403')
    eq(_state(srv, a)[:3], (200, '1000', '1000'), 'partial after the refused final')
    # the server is still fine (on a new connection): a correct final works
    fid, _ = _final_ok(srv, [a])
    _check_built(srv, fid, da, [a], 'final after the 403')


def test_patch_on_final_403():
    srv = Server()
    da = os.urandom(5000)
    a = _partial(srv, da)
    fid, _ = _final_ok(srv, [a])
    before = _state(srv, fid)
    for off, body in ((5000, b'more'), (0, b'x' * 10), (5000, b'')):
        r = _patch(srv, fid, off, body)
        eq(r.status, 403, 'PATCH on a built final at %d with %d bytes: status' % (off, len(body)))
    r = _patch(srv, fid, 5000, b'', extra=[('Upload-Length', '6000')])
    eq(r.status, 403, 'PATCH with Upload-Length on a built final')
    eq(_state(srv, fid), before, 'final after refused PATCHes')
    _check_built(srv, fid, da, [a], 'final after refused PATCHes')


def test_final_over_max_size_413():
    srv = Server('--max-size', '1000')
    a = _partial(srv, os.urandom(600))
    b = _partial(srv, length=400)
    c = _partial(srv, length=401)
    before = _keys(srv)
    for ids in ([a, a], [a, c], [b, c, a]):
        r = _final(srv, 'final;' + ' '.join('/files/' + i for i in ids))
        eq(r.status, 413, 'final of partials summing over --max-size 1000 (%r): status' % ids)
        eq(r.header('Location'), None, 'Location on the 413')
    eq(_keys(srv), before, 'files in DIR/uploads after the 413s')
    eq(_state(srv, a)[:3], (200, '600', '600'), 'partial a after the 413s')
    # exactly the limit is fine (and waits for b)
    fid, _ = _final_ok(srv, [a, b])
    eq(_head(srv, fid).header('Upload-Length'), '1000', 'Upload-Length of a final of exactly --max-size')


# ---------------------------------------------------------------------------
# interactions
# ---------------------------------------------------------------------------

def test_delete_partial_after_final_built():
    srv = Server()
    da, db = os.urandom(40000), os.urandom(50000)
    a, b = _partial(srv, da), _partial(srv, db)
    fid, _ = _final_ok(srv, [a, b])
    _check_built(srv, fid, da + db, [a, b], 'final before DELETE')
    eq(_req(srv, 'DELETE', '/files/' + a).status, 204, 'DELETE of partial a')
    eq(_req(srv, 'HEAD', '/files/' + a).status, 404, 'HEAD of the deleted partial')
    h = _head(srv, fid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (str(len(da) + len(db)),) * 2,
       'HEAD of the final after a partial was deleted')
    eq(file_sha(_path(srv, fid)), sha(da + db), 'final data file after a partial was deleted')
    g = _get(srv, fid)
    eq((g.status, sha(g.body)), (200, sha(da + db)), 'GET of the final after a partial was deleted')
    eq(_get(srv, b).body, db, 'GET of partial b')
    # a new final naming the deleted partial is refused
    r = _final(srv, 'final;/files/%s /files/%s' % (b, a))
    eq(r.status, 400, 'final naming a deleted partial')


def test_delete_final_keeps_partials():
    srv = Server()
    da, db = os.urandom(1000), os.urandom(2000)
    a, b = _partial(srv, da), _partial(srv, db)
    fid, _ = _final_ok(srv, [a, b])
    eq(_req(srv, 'DELETE', '/files/' + fid).status, 204, 'DELETE of the final')
    eq(_req(srv, 'HEAD', '/files/' + fid).status, 404, 'HEAD of the deleted final')
    check(not os.path.exists(_path(srv, fid)), 'final data file still present after DELETE')
    eq((_get(srv, a).body, _get(srv, b).body), (da, db), 'partials after the final was deleted')
    fid2, _ = _final_ok(srv, [a, b])
    _check_built(srv, fid2, da + db, [a, b], 'a second final of the same partials')
    check(read_file(_path(srv, a)) == da, 'partial a data file')


def test_final_over_max_size_once_deferred_length_known_413():
    # The sum is unknown at creation when a partial defers its length; the
    # limit still holds when the final would be built.
    srv = Server('--max-size', '1000')
    a = _partial(srv, os.urandom(600))
    b = _partial(srv, defer=True)
    fid, _ = _final_ok(srv, [a, b])
    _patch_ok(srv, b, 0, os.urandom(600), extra=[('Upload-Length', '600')])
    r = _req(srv, 'HEAD', '/files/' + fid)
    eq(r.status, 413, 'HEAD of a final whose partials add up to 1200 > --max-size 1000')
    eq(r.header('Upload-Offset'), None, 'Upload-Offset of a final that cannot be built')
    g = _get(srv, fid)
    eq(g.status, 409, 'GET of the final that cannot be built')
    eq(os.path.getsize(_path(srv, fid)), 0, 'bytes in the final that cannot be built')


def test_final_whose_partial_is_deleted_410():
    srv = Server()
    a = _partial(srv, os.urandom(100))
    c = _partial(srv, length=50)
    fid, _ = _final_ok(srv, [a, c])
    r = _req(srv, 'DELETE', '/files/' + c)
    eq(r.status, 204, 'DELETE of the unfinished partial')
    r = _req(srv, 'HEAD', '/files/' + fid)
    eq(r.status, 410, 'HEAD of a final one of whose partials is gone')
    eq(_state(srv, a)[:3], (200, '100', '100'), 'the other partial after that')
