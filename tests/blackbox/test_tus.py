"""tus 1.0.0 at /files/ (creation, creation-with-upload, creation-defer-length, termination,
checksum, checksum-trailer), driven over raw sockets.

Every response of the tus endpoint must carry `Tus-Resumable: 1.0.0` (checked by _treq on
every request made here).  The stored data file of an upload is DIR/uploads/<id>, where
<id> is the last segment of the Location returned by the creation POST.  Every bad request
is followed by a check that the tus upload it aimed at did not change (HEAD offset, data
file) and that an unrelated article upload (Sentinel) is intact.
"""

import base64
import hashlib
import os
import re
import time
import zlib

from harness import (Sentinel, Server, build_head, build_request, check, chunk_encode, eq,
                     expect_success, file_sha, read_file, sha)

TUS_VERSION = '1.0.0'
OCTET = 'application/offset+octet-stream'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})')
KEY_RE = re.compile(r'[0-9a-f]{32}(\.meta)?')
# as listed in README.md ("Extensions: ..."); expiration (--expire-after) is not tested here
EXTENSIONS = {'creation', 'creation-with-upload', 'creation-defer-length', 'termination',
              'checksum', 'checksum-trailer', 'expiration', 'concatenation',
              'concatenation-unfinished'}
ALGOS = {'md5', 'sha1', 'sha256', 'sha512', 'crc32'}
BAD_NUMBERS = ['abc', '-1', '+5', '1e3', '0x10', '', ' ', '1 2', '1.0', '99999999999999999999999999']


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _tus_check(r, what):
    eq(r.header('Tus-Resumable'), TUS_VERSION, '%s: Tus-Resumable on the response (%r)' % (what, r))
    return r


def _treq(srv, method, path, headers=(), body=b'', tus=True, chunked=False, read_as=None):
    """One request on a fresh connection; the Tus-Resumable header is added unless tus=False
    (or a string: that value is sent)."""
    h = []
    if tus is True:
        h.append(('Tus-Resumable', TUS_VERSION))
    elif isinstance(tus, str):
        h.append(('Tus-Resumable', tus))
    h += list(headers)
    with srv.conn() as c:
        c.send(build_request(method, path, h, body, chunked=chunked))
        r = c.read_final(read_as or method)
    return _tus_check(r, '%s %s' % (method, path))


def _create(srv, length=None, defer=False, metadata=None, body=None, ctype=OCTET, extra=(), tus=True):
    h = []
    if length is not None:
        h.append(('Upload-Length', str(length)))
    if defer:
        h.append(('Upload-Defer-Length', '1'))
    if metadata is not None:
        h.append(('Upload-Metadata', metadata))
    if body is not None and ctype is not None:
        h.append(('Content-Type', ctype))
    return _treq(srv, 'POST', '/files/', h + list(extra), body or b'', tus=tus)


def _loc_id(r, what='creation'):
    loc = r.header('Location')
    check(loc is not None, '%s: no Location header (%r)' % (what, r))
    m = LOCATION_RE.fullmatch(loc)
    check(m is not None, '%s: Location %r is not /files/<32 lowercase hex>' % (what, loc))
    return m.group(1)


def _create_ok(srv, length=None, defer=False, metadata=None, body=None, extra=()):
    r = _create(srv, length, defer, metadata, body, extra=extra)
    eq(r.status, 201, 'POST /files/ (Upload-Length %r, defer %r) status' % (length, defer))
    return _loc_id(r)


def _head(srv, uid_or_path):
    path = uid_or_path if uid_or_path.startswith('/') else '/files/' + uid_or_path
    return _treq(srv, 'HEAD', path)


def _dec(v, what):
    check(v is not None and re.fullmatch(r'\d+', v) is not None, '%s: not a decimal: %r' % (what, v))
    return int(v)


def _offset(srv, uid):
    r = _head(srv, uid)
    eq(r.status, 200, 'HEAD /files/%s status' % uid)
    return _dec(r.header('Upload-Offset'), 'HEAD Upload-Offset')


def _poll_offset(srv, uid, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = _offset(srv, uid)
        if v == want or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def _patch(srv, uid, offset, data, extra=(), ctype=OCTET, chunked=False, method='PATCH'):
    h = []
    if ctype is not None:
        h.append(('Content-Type', ctype))
    if offset is not None:
        h.append(('Upload-Offset', str(offset)))
    return _treq(srv, method, '/files/' + uid, h + list(extra), data, chunked=chunked)


def _patch_ok(srv, uid, offset, data, extra=()):
    r = _patch(srv, uid, offset, data, extra)
    eq(r.status, 204, 'PATCH /files/%s at %d with %d bytes: status' % (uid, offset, len(data)))
    eq(r.header('Upload-Offset'), str(offset + len(data)), 'PATCH 204 Upload-Offset')
    return r


def _path(srv, uid):
    return os.path.join(srv.dir, 'uploads', uid)


def _keys(srv):
    """Upload data and metadata files in DIR/uploads (names of 32 hex, optionally .meta)."""
    d = os.path.join(srv.dir, 'uploads')
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if KEY_RE.fullmatch(n))


def _state(srv, uid):
    """(HEAD status, Upload-Offset, Upload-Length, data file length, data file sha256)."""
    r = _head(srv, uid)
    p = _path(srv, uid)
    size = os.path.getsize(p) if os.path.exists(p) else None
    return (r.status, r.header('Upload-Offset'), r.header('Upload-Length'), size,
            file_sha(p) if size is not None else None)


def _digest(algo, data):
    if algo == 'crc32':
        raw = (zlib.crc32(data) & 0xffffffff).to_bytes(4, 'big')
    else:
        raw = hashlib.new(algo, data).digest()
    return base64.b64encode(raw).decode('ascii')


def _checksum(algo, data):
    return ('Upload-Checksum', '%s %s' % (algo, _digest(algo, data)))


def _tokens(v):
    return [t.strip() for t in (v or '').split(',') if t.strip()]


def _partial_patch(srv, uid, offset, data, nsend, extra=()):
    """Send a PATCH announcing len(data) bytes (Content-Length) and only nsend of them;
    returns the open Conn."""
    c = srv.conn()
    h = [('Tus-Resumable', TUS_VERSION), ('Content-Type', OCTET), ('Upload-Offset', str(offset)),
         ('Content-Length', str(len(data)))] + list(extra)
    c.send(build_head('PATCH', '/files/' + uid, h))
    c.send(data[:nsend])
    return c


# ---------------------------------------------------------------------------
# OPTIONS
# ---------------------------------------------------------------------------

def test_options_advertises_tus():
    srv = Server()
    r = _treq(srv, 'OPTIONS', '/files/', tus=False)
    eq(r.status, 204, 'OPTIONS /files/ without Tus-Resumable: status')
    eq(r.header('Tus-Version'), '1.0.0', 'Tus-Version')
    eq(sorted(_tokens(r.header('Tus-Extension'))), sorted(EXTENSIONS), 'Tus-Extension tokens')
    eq(len(r.header_all('Tus-Extension')), 1, 'number of Tus-Extension fields')
    eq(sorted(_tokens(r.header('Tus-Checksum-Algorithm'))), sorted(ALGOS), 'Tus-Checksum-Algorithm tokens')
    eq(r.header('Tus-Max-Size'), None, 'Tus-Max-Size without --max-size')


def test_options_max_size():
    srv = Server('--max-size', '1M')
    r = _treq(srv, 'OPTIONS', '/files/', tus=False)
    eq(r.status, 204, 'OPTIONS /files/ status')
    eq(r.header('Tus-Max-Size'), '1048576', 'Tus-Max-Size with --max-size 1M')


def test_options_on_upload_path_and_any_version():
    srv = Server()
    uid = _create_ok(srv, 10)
    for path in ('/files/' + uid, '/files/' + '0' * 32, '/files/whatever'):
        r = _treq(srv, 'OPTIONS', path, tus=False)
        eq(r.status, 204, 'OPTIONS %s status' % path)
        eq(r.header('Tus-Version'), '1.0.0', 'OPTIONS %s Tus-Version' % path)
    # the server MUST ignore Tus-Resumable on OPTIONS (no 412 for an unknown version)
    r = _treq(srv, 'OPTIONS', '/files/', tus='0.2.2')
    eq(r.status, 204, 'OPTIONS /files/ with Tus-Resumable: 0.2.2')
    eq(r.header('Tus-Version'), '1.0.0', 'Tus-Version')


# ---------------------------------------------------------------------------
# Tus-Resumable: 412
# ---------------------------------------------------------------------------

WRONG_VERSIONS = [False, '0.2.2', '2.0.0', '1.0', '1.0.0.0']


def _expect_412(r, what):
    eq(r.status, 412, what + ': status')
    eq(r.header('Tus-Version'), '1.0.0', what + ': Tus-Version on 412')


def test_412_creation():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    for v in WRONG_VERSIONS:
        r = _create(srv, 100, tus=v)
        _expect_412(r, 'POST /files/ with Tus-Resumable %r' % (v,))
        r = _create(srv, 100, body=b'x' * 50, tus=v)
        _expect_412(r, 'POST /files/ with body, Tus-Resumable %r' % (v,))
    eq(_keys(srv), before, 'files in DIR/uploads after refused creations')
    s.check('POST /files/ without a valid Tus-Resumable')


def test_412_patch():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(5000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    for v in WRONG_VERSIONS:
        r = _treq(srv, 'PATCH', '/files/' + uid, [('Content-Type', OCTET), ('Upload-Offset', '1000')],
                  data[1000:2000], tus=v)
        _expect_412(r, 'PATCH with Tus-Resumable %r' % (v,))
    eq(_state(srv, uid), before, 'upload state after refused PATCHes')
    s.check('PATCH without a valid Tus-Resumable')
    _patch_ok(srv, uid, 1000, data[1000:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_412_head_and_delete():
    srv = Server()
    s = Sentinel(srv)
    uid = _create_ok(srv, 100)
    _patch_ok(srv, uid, 0, b'a' * 40)
    before = _state(srv, uid)
    for v in WRONG_VERSIONS:
        r = _treq(srv, 'HEAD', '/files/' + uid, tus=v)
        _expect_412(r, 'HEAD with Tus-Resumable %r' % (v,))
        eq(r.header('Upload-Offset'), None, 'Upload-Offset on a 412 to HEAD')
        r = _treq(srv, 'DELETE', '/files/' + uid, tus=v)
        _expect_412(r, 'DELETE with Tus-Resumable %r' % (v,))
    eq(_state(srv, uid), before, 'upload state after refused HEAD/DELETE')
    eq(_keys(srv).count(uid), 1, 'data file still present')
    s.check('HEAD/DELETE without a valid Tus-Resumable')


# ---------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------

def test_create_location_and_head():
    srv = Server()
    r = _create(srv, 1000)
    eq(r.status, 201, 'POST /files/ Upload-Length 1000: status')
    uid = _loc_id(r)
    h = _head(srv, uid)
    eq(h.status, 200, 'HEAD status')
    eq(h.header('Upload-Offset'), '0', 'HEAD Upload-Offset')
    eq(h.header('Upload-Length'), '1000', 'HEAD Upload-Length')
    eq(h.header('Upload-Defer-Length'), None, 'HEAD Upload-Defer-Length on a known length')
    eq(h.header('Cache-Control'), 'no-store', 'HEAD Cache-Control')
    eq(h.header('Upload-Metadata'), None, 'HEAD Upload-Metadata when none was given')
    check(os.path.isfile(_path(srv, uid)), 'data file DIR/uploads/%s missing' % uid)
    eq(os.path.getsize(_path(srv, uid)), 0, 'data file length')
    uid2 = _create_ok(srv, 1000)
    check(uid2 != uid, 'two creations returned the same id %s' % uid)


def test_head_has_no_body_keepalive():
    srv = Server()
    uid = _create_ok(srv, 1000, metadata='name YQ==')
    with srv.conn() as c:
        c.send(build_request('HEAD', '/files/' + uid, [('Tus-Resumable', TUS_VERSION)]))
        r = _tus_check(c.read_final('HEAD'), 'HEAD')
        eq(r.status, 200, 'HEAD status')
        if r.conn_close():
            return
        # the next response on the connection must parse: HEAD sent no body
        c.send(build_request('HEAD', '/files/' + uid, [('Tus-Resumable', TUS_VERSION)]))
        r2 = _tus_check(c.read_final('HEAD'), 'second HEAD')
        eq(r2.status, 200, 'second HEAD on the same connection')
        eq(r2.header('Upload-Offset'), '0', 'second HEAD Upload-Offset')
        c.send(build_request('OPTIONS', '/files/', []))
        r3 = c.read_final('OPTIONS')
        eq(r3.status, 204, 'OPTIONS after two HEADs on the same connection')


def test_create_zero_length_is_complete():
    srv = Server()
    uid = _create_ok(srv, 0)
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Length')), (200, '0', '0'),
       'HEAD (status, Upload-Offset, Upload-Length) of a 0-byte upload')
    eq(os.path.getsize(_path(srv, uid)), 0, 'data file length')
    r = _patch(srv, uid, 0, b'x')
    eq(r.status, 413, 'PATCH 1 byte onto a complete 0-byte upload')
    eq(_state(srv, uid)[:4], (200, '0', '0', 0), 'state after the refused PATCH')


def test_create_length_validation():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    cases = [
        ('neither Upload-Length nor Upload-Defer-Length', []),
        ('both', [('Upload-Length', '10'), ('Upload-Defer-Length', '1')]),
        ('Upload-Defer-Length: 0', [('Upload-Defer-Length', '0')]),
        ('Upload-Defer-Length: 2', [('Upload-Defer-Length', '2')]),
        ('Upload-Defer-Length: yes', [('Upload-Defer-Length', 'yes')]),
    ] + [('Upload-Length: %r' % v, [('Upload-Length', v)]) for v in BAD_NUMBERS]
    for what, h in cases:
        r = _treq(srv, 'POST', '/files/', h)
        eq(r.status, 400, 'POST /files/ with %s: status' % what)
        eq(r.header('Location'), None, 'POST /files/ with %s: Location' % what)
    eq(_keys(srv), before, 'files in DIR/uploads after refused creations')
    s.check('bad creation headers')


def test_create_over_max_size_413():
    srv = Server('--max-size', '1000')
    s = Sentinel(srv, total=900, held=450)
    before = _keys(srv)
    r = _create(srv, 1001)
    eq(r.status, 413, 'POST /files/ Upload-Length 1001 with --max-size 1000')
    eq(r.header('Location'), None, 'Location on 413')
    eq(_keys(srv), before, 'files in DIR/uploads after the 413')
    s.check('creation over --max-size')
    uid = _create_ok(srv, 1000)
    data = os.urandom(1000)
    _patch_ok(srv, uid, 0, data)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256 of an upload of exactly --max-size')


# ---------------------------------------------------------------------------
# Upload-Metadata
# ---------------------------------------------------------------------------

def test_metadata_echoed_exactly():
    srv = Server()
    md = ('filename %s,filetype %s,flag,empty ,utf8 %s' % (
        base64.b64encode(b'my file.txt').decode(), base64.b64encode(b'text/plain').decode(),
        base64.b64encode('é ü 日本'.encode()).decode()))
    uid = _create_ok(srv, 10, metadata=md)
    h = _head(srv, uid)
    eq(h.status, 200, 'HEAD status')
    eq(h.header('Upload-Metadata'), md, 'HEAD Upload-Metadata')
    uid2 = _create_ok(srv, defer=True, metadata='a YQ==')
    eq(_head(srv, uid2).header('Upload-Metadata'), 'a YQ==', 'HEAD Upload-Metadata (deferred length)')


def test_metadata_invalid_400():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    for md in ['a YQ==,a Yg==',          # duplicate key
               'name !!!!',              # not base64
               'name YQ',                # missing padding
               'name YWJjZ',             # impossible length
               'name YQ== Yg==',         # value with a space
               'name Y Q==',
               'name YQ=x']:
        r = _create(srv, 10, metadata=md)
        eq(r.status, 400, 'POST /files/ with Upload-Metadata %r: status' % md)
        eq(r.header('Location'), None, 'Location on 400 (Upload-Metadata %r)' % md)
    eq(_keys(srv), before, 'files in DIR/uploads after refused creations')
    s.check('bad Upload-Metadata')


# ---------------------------------------------------------------------------
# creation-with-upload
# ---------------------------------------------------------------------------

def test_creation_with_upload_partial_then_patch():
    srv = Server()
    data = os.urandom((2 << 20) + 333)
    first = 700001
    r = _create(srv, len(data), body=data[:first])
    eq(r.status, 201, 'creation-with-upload status')
    uid = _loc_id(r)
    eq(r.header('Upload-Offset'), str(first), 'Upload-Offset on the 201')
    eq(_offset(srv, uid), first, 'HEAD Upload-Offset after creation-with-upload')
    eq(file_sha(_path(srv, uid)), sha(data[:first]), 'stored prefix')
    _patch_ok(srv, uid, first, data[first:])
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (str(len(data)), str(len(data))),
       'HEAD (Upload-Offset, Upload-Length) when complete')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_creation_with_upload_whole_file():
    srv = Server()
    data = os.urandom(1234567)
    r = _create(srv, len(data), body=data, metadata='filename YS5iaW4=')
    eq(r.status, 201, 'creation-with-upload status')
    uid = _loc_id(r)
    eq(r.header('Upload-Offset'), str(len(data)), 'Upload-Offset on the 201')
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length'), h.header('Upload-Metadata')),
       (str(len(data)), str(len(data)), 'filename YS5iaW4='), 'HEAD after a whole-file creation-with-upload')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_creation_with_upload_expect_100_continue():
    srv = Server()
    data = os.urandom(300000)
    with srv.conn() as c:
        c.send(build_head('POST', '/files/', [
            ('Tus-Resumable', TUS_VERSION), ('Upload-Length', str(len(data))), ('Content-Type', OCTET),
            ('Content-Length', str(len(data))), ('Expect', '100-continue')]))
        r = c.read_response('POST')
        eq(r.status, 100, 'interim response to Expect: 100-continue')
        c.send(data)
        r = _tus_check(c.read_final('POST'), 'creation-with-upload after 100')
    eq(r.status, 201, 'creation-with-upload status')
    uid = _loc_id(r)
    eq(r.header('Upload-Offset'), str(len(data)), 'Upload-Offset on the 201')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_creation_with_upload_wrong_content_type_415():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    for ct in ('application/octet-stream', 'text/plain', 'application/offset+octet-streamx'):
        r = _create(srv, 1000, body=b'z' * 500, ctype=ct)
        eq(r.status, 415, 'creation POST with a body of Content-Type %r: status' % ct)
        eq(r.header('Location'), None, 'Location on 415')
    eq(_keys(srv), before, 'files in DIR/uploads after 415s')
    s.check('creation with a wrong Content-Type')


def test_creation_with_upload_beyond_length_413():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    r = _create(srv, 1000, body=os.urandom(1001))
    eq(r.status, 413, 'creation POST with 1001 body bytes and Upload-Length 1000: status')
    eq(r.header('Location'), None, 'Location on 413')
    eq(_keys(srv), before, 'files in DIR/uploads after the 413')
    s.check('creation-with-upload beyond Upload-Length')


# ---------------------------------------------------------------------------
# PATCH
# ---------------------------------------------------------------------------

def test_patch_whole_file_in_one_request():
    srv = Server()
    data = os.urandom((3 << 20) + 17)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data)
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Length')),
       (200, str(len(data)), str(len(data))), 'HEAD after the upload')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_several_on_one_connection():
    srv = Server()
    data = os.urandom((2 << 20) + 5)
    uid = _create_ok(srv, len(data))
    cuts = [0, 1, 65536, 65537, 1 << 20, (1 << 20) + 999, len(data)]
    with srv.conn() as c:
        for a, b in zip(cuts, cuts[1:]):
            c.send(build_request('PATCH', '/files/' + uid, [
                ('Tus-Resumable', TUS_VERSION), ('Content-Type', OCTET), ('Upload-Offset', str(a)),
                ('Content-Length', str(b - a))], data[a:b]))
            r = _tus_check(c.read_final('PATCH'), 'PATCH [%d,%d)' % (a, b))
            eq((r.status, r.header('Upload-Offset')), (204, str(b)), 'PATCH [%d,%d) (status, Upload-Offset)' % (a, b))
            check(not r.conn_close(), 'server closed the connection after a successful PATCH')
    eq(_offset(srv, uid), len(data), 'HEAD Upload-Offset')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_pipelined():
    srv = Server()
    data = os.urandom(600000)
    uid = _create_ok(srv, len(data))
    cuts = [0, 200000, 400000, len(data)]
    with srv.conn() as c:
        c.send(b''.join(build_request('PATCH', '/files/' + uid, [
            ('Tus-Resumable', TUS_VERSION), ('Content-Type', OCTET), ('Upload-Offset', str(a)),
            ('Content-Length', str(b - a))], data[a:b]) for a, b in zip(cuts, cuts[1:])))
        for a, b in zip(cuts, cuts[1:]):
            r = _tus_check(c.read_final('PATCH'), 'pipelined PATCH [%d,%d)' % (a, b))
            eq((r.status, r.header('Upload-Offset')), (204, str(b)), 'pipelined PATCH [%d,%d)' % (a, b))
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_empty_body():
    srv = Server()
    uid = _create_ok(srv, 100)
    _patch_ok(srv, uid, 0, b'abc')
    _patch_ok(srv, uid, 3, b'')
    eq(_offset(srv, uid), 3, 'HEAD Upload-Offset after an empty PATCH')


def test_patch_chunked_body():
    srv = Server()
    data = os.urandom(1 << 20)
    uid = _create_ok(srv, len(data))
    r = _patch(srv, uid, 0, data, chunked=True)
    eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'chunked PATCH (status, Upload-Offset)')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_wrong_content_type_415():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(4000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    for ct in ('application/octet-stream', 'text/plain', None):
        r = _patch(srv, uid, 1000, data[1000:2000], ctype=ct)
        eq(r.status, 415, 'PATCH with Content-Type %r: status' % ct)
        eq(_state(srv, uid), before, 'upload state after PATCH with Content-Type %r' % ct)
    s.check('PATCH with a wrong Content-Type')
    _patch_ok(srv, uid, 1000, data[1000:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_bad_offset_400():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(4000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    r = _patch(srv, uid, None, data[1000:2000])
    eq(r.status, 400, 'PATCH without Upload-Offset: status')
    eq(_state(srv, uid), before, 'upload state after PATCH without Upload-Offset')
    for v in BAD_NUMBERS + ['1000abc', '01000x']:
        r = _patch(srv, uid, v, data[1000:2000])
        eq(r.status, 400, 'PATCH with Upload-Offset %r: status' % v)
        eq(_state(srv, uid), before, 'upload state after PATCH with Upload-Offset %r' % v)
    s.check('PATCH with a bad Upload-Offset')
    _patch_ok(srv, uid, 1000, data[1000:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_offset_mismatch_409():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(4000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    for off in (0, 999, 1001, 2000, 4000):
        r = _patch(srv, uid, off, data[off:off + 500])
        eq(r.status, 409, 'PATCH at %d while the offset is 1000: status' % off)
        eq(r.header('Upload-Offset'), '1000', 'Upload-Offset on the 409')
        eq(_state(srv, uid), before, 'upload state after PATCH at %d' % off)
    s.check('PATCH at a wrong offset')
    _patch_ok(srv, uid, 1000, data[1000:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_beyond_length_413():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(1000)
    uid = _create_ok(srv, len(data))
    r = _patch(srv, uid, 0, data + b'X')
    eq(r.status, 413, 'PATCH 1001 bytes onto a 1000-byte upload')
    eq(_state(srv, uid), (200, '0', '1000', 0, sha(b'')), 'state after the 413 at offset 0')
    _patch_ok(srv, uid, 0, data[:600])
    before = _state(srv, uid)
    r = _patch(srv, uid, 600, data[600:] + b'X')
    eq(r.status, 413, 'PATCH 401 bytes at 600 onto a 1000-byte upload')
    eq(_state(srv, uid), before, 'state after the 413 at offset 600')
    s.check('PATCH beyond Upload-Length')
    _patch_ok(srv, uid, 600, data[600:])
    r = _patch(srv, uid, 1000, b'Y')
    eq(r.status, 413, 'PATCH 1 byte onto a complete upload')
    eq(_state(srv, uid)[1:], ('1000', '1000', 1000, sha(data)), 'state after the 413 on a complete upload')


def test_patch_chunked_beyond_length_413():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(200000)
    uid = _create_ok(srv, 150000)
    r = _patch(srv, uid, 0, data, chunked=True)
    eq(r.status, 413, 'chunked PATCH of 200000 bytes onto a 150000-byte upload')
    off = _offset(srv, uid)
    check(off <= 150000, 'offset %d beyond Upload-Length after a chunked 413' % off)
    eq(os.path.getsize(_path(srv, uid)), off, 'data file length vs HEAD offset')
    eq(file_sha(_path(srv, uid)), sha(data[:off]), 'stored bytes are a prefix of the body')
    s.check('chunked PATCH beyond Upload-Length')
    if off < 150000:
        _patch_ok(srv, uid, off, data[off:150000])
    eq(file_sha(_path(srv, uid)), sha(data[:150000]), 'stored sha256 after completing')


def test_patch_unknown_upload_404():
    srv = Server()
    s = Sentinel(srv)
    before = _keys(srv)
    r = _patch(srv, os.urandom(16).hex(), 0, b'hello')
    eq(r.status, 404, 'PATCH on an unknown id')
    eq(r.header('Upload-Offset'), None, 'Upload-Offset on the 404')
    eq(_keys(srv), before, 'files in DIR/uploads after PATCH on an unknown id')
    s.check('PATCH on an unknown id')


# ---------------------------------------------------------------------------
# HEAD / paths / methods
# ---------------------------------------------------------------------------

def test_head_unknown_or_malformed_404():
    srv = Server()
    uid = _create_ok(srv, 100)
    for path in ['/files/' + os.urandom(16).hex(),
                 '/files/' + os.urandom(16).hex().upper(),
                 '/files/' + uid[:31],
                 '/files/' + uid + '0',
                 '/files/' + uid + '.meta',
                 '/files/zz',
                 '/files/%2e%2e%2fetc%2fpasswd',
                 '/files/' + 'g' * 32]:
        r = _head(srv, path)
        eq(r.status, 404, 'HEAD %s: status' % path)
        eq(r.header('Upload-Offset'), None, 'HEAD %s: Upload-Offset on the 404' % path)


def test_extra_segments_404():
    srv = Server()
    s = Sentinel(srv)
    uid = _create_ok(srv, 100)
    _patch_ok(srv, uid, 0, b'q' * 10)
    before = _state(srv, uid)
    meta_before = read_file(_path(srv, uid) + '.meta')
    for path in ['/files/%s/x' % uid, '/files/%s/%s' % (uid, uid), '/files/a/b', '/files/%s/x/y' % uid]:
        r = _head(srv, path)
        eq(r.status, 404, 'HEAD %s: status' % path)
        eq(r.header('Upload-Offset'), None, 'HEAD %s: Upload-Offset on the 404' % path)
        r = _patch(srv, path[len('/files/'):], 10, b'w' * 10)
        eq(r.status, 404, 'PATCH %s: status' % path)
        r = _treq(srv, 'DELETE', path)
        eq(r.status, 404, 'DELETE %s: status' % path)
    r = _patch(srv, uid + '.meta', 0, b'w' * 10)
    eq(r.status, 404, 'PATCH /files/<id>.meta: status')
    eq(_state(srv, uid), before, 'upload state after requests on sub-paths')
    eq(read_file(_path(srv, uid) + '.meta'), meta_before, 'meta file after requests on sub-paths')
    s.check('requests on sub-paths')


def test_wrong_method_405():
    srv = Server()
    s = Sentinel(srv)
    uid = _create_ok(srv, 100)
    _patch_ok(srv, uid, 0, b'q' * 10)
    before = _state(srv, uid)
    for method in ('PUT', 'POST'):
        r = _treq(srv, method, '/files/' + uid,
                  [('Content-Type', OCTET), ('Upload-Offset', '10')], b'w' * 10)
        eq(r.status, 405, '%s /files/<id>: status' % method)
        allow = r.header('Allow')
        check(allow is not None, '%s /files/<id>: no Allow header on the 405' % method)
        for m in ('HEAD', 'PATCH', 'DELETE'):
            check(m in _tokens(allow), '%s /files/<id>: Allow %r lacks %s' % (method, allow, m))
    eq(_state(srv, uid), before, 'upload state after wrong methods')
    s.check('wrong methods')


# ---------------------------------------------------------------------------
# deferred length
# ---------------------------------------------------------------------------

def test_deferred_length_set_by_last_patch():
    srv = Server()
    data = os.urandom(700000)
    uid = _create_ok(srv, defer=True)
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Defer-Length'), h.header('Upload-Length')),
       (200, '0', '1', None), 'HEAD of a deferred-length upload')
    _patch_ok(srv, uid, 0, data[:300000])
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Defer-Length'), h.header('Upload-Length')),
       ('300000', '1', None), 'HEAD after the first PATCH')
    _patch_ok(srv, uid, 300000, data[300000:], extra=[('Upload-Length', str(len(data)))])
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Defer-Length'), h.header('Upload-Length')),
       (str(len(data)), None, str(len(data))), 'HEAD once the length is known')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_deferred_length_declared_early_then_enforced():
    srv = Server()
    data = os.urandom(5000)
    uid = _create_ok(srv, defer=True)
    _patch_ok(srv, uid, 0, data[:1000], extra=[('Upload-Length', '5000')])
    h = _head(srv, uid)
    eq((h.header('Upload-Length'), h.header('Upload-Defer-Length')), ('5000', None), 'HEAD after the length was set')
    r = _patch(srv, uid, 1000, data[1000:] + b'X')
    eq(r.status, 413, 'PATCH beyond the length declared in an earlier PATCH')
    eq(_offset(srv, uid), 1000, 'offset after the 413')
    _patch_ok(srv, uid, 1000, data[1000:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_deferred_length_empty_final_patch():
    srv = Server()
    data = os.urandom(4096)
    uid = _create_ok(srv, defer=True)
    _patch_ok(srv, uid, 0, data)
    _patch_ok(srv, uid, len(data), b'', extra=[('Upload-Length', str(len(data)))])
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length'), h.header('Upload-Defer-Length')),
       (str(len(data)), str(len(data)), None), 'HEAD after an empty PATCH that sets the length')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_deferred_length_too_small_400():
    srv = Server()
    s = Sentinel(srv)
    uid = _create_ok(srv, defer=True)
    _patch_ok(srv, uid, 0, b'a' * 100)
    before = _state(srv, uid)
    for n in ('150', '99', '0'):
        r = _patch(srv, uid, 100, b'b' * 100, extra=[('Upload-Length', n)])
        eq(r.status, 400, 'PATCH of 100 bytes at 100 with Upload-Length %s: status' % n)
        eq(_state(srv, uid), before, 'state after Upload-Length %s' % n)
    for v in BAD_NUMBERS:
        r = _patch(srv, uid, 100, b'b' * 100, extra=[('Upload-Length', v)])
        eq(r.status, 400, 'PATCH with Upload-Length %r: status' % v)
        eq(_state(srv, uid), before, 'state after Upload-Length %r' % v)
    eq(_head(srv, uid).header('Upload-Defer-Length'), '1', 'HEAD Upload-Defer-Length after refused lengths')
    s.check('PATCH with a bad Upload-Length')
    _patch_ok(srv, uid, 100, b'b' * 100, extra=[('Upload-Length', '200')])
    eq(file_sha(_path(srv, uid)), sha(b'a' * 100 + b'b' * 100), 'stored sha256')


def test_upload_length_cannot_change_400():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(1000)
    uid = _create_ok(srv, 1000)
    _patch_ok(srv, uid, 0, data[:100])
    before = _state(srv, uid)
    for n in ('2000', '999', '500'):
        r = _patch(srv, uid, 100, data[100:200], extra=[('Upload-Length', n)])
        eq(r.status, 400, 'PATCH with Upload-Length %s on a 1000-byte upload: status' % n)
        eq(_state(srv, uid), before, 'state after Upload-Length %s' % n)
    s.check('PATCH changing Upload-Length')
    _patch_ok(srv, uid, 100, data[100:200], extra=[('Upload-Length', '1000')])   # same value: fine
    # a length set by a PATCH (deferred) is final as well
    uid2 = _create_ok(srv, defer=True)
    _patch_ok(srv, uid2, 0, b'c' * 10, extra=[('Upload-Length', '50')])
    r = _patch(srv, uid2, 10, b'c' * 10, extra=[('Upload-Length', '60')])
    eq(r.status, 400, 'PATCH with another Upload-Length after the deferred length was set')
    eq(_head(srv, uid2).header('Upload-Length'), '50', 'Upload-Length after the refused change')
    eq(_offset(srv, uid2), 10, 'offset after the refused change')


def test_deferred_length_over_max_size_413():
    srv = Server('--max-size', '1000')
    s = Sentinel(srv, total=900, held=450)
    uid = _create_ok(srv, defer=True)
    _patch_ok(srv, uid, 0, b'a' * 100)
    before = _state(srv, uid)
    r = _patch(srv, uid, 100, b'b' * 901)
    eq(r.status, 413, 'PATCH taking a deferred-length upload past --max-size 1000')
    eq(_state(srv, uid), before, 'state after the 413 (Content-Length known: nothing written)')
    r = _patch(srv, uid, 100, b'b' * 10, extra=[('Upload-Length', '1001')])
    eq(r.status, 413, 'PATCH declaring Upload-Length 1001 with --max-size 1000')
    eq(_state(srv, uid), before, 'state after declaring a length over --max-size')
    s.check('deferred-length upload over --max-size')
    _patch_ok(srv, uid, 100, b'b' * 900, extra=[('Upload-Length', '1000')])
    eq(file_sha(_path(srv, uid)), sha(b'a' * 100 + b'b' * 900), 'stored sha256')


# ---------------------------------------------------------------------------
# checksum
# ---------------------------------------------------------------------------

def _checksum_match(algo):
    srv = Server()
    data = os.urandom((1 << 20) + 500000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    _patch_ok(srv, uid, 1000, data[1000:], extra=[_checksum(algo, data[1000:])])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256 (%s checksum of the second PATCH)' % algo)


def _checksum_mismatch(algo):
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(800000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    r = _patch(srv, uid, 1000, data[1000:], extra=[_checksum(algo, data[1000:-1] + b'\0')])
    eq(r.status, 460, 'PATCH with a wrong %s checksum: status' % algo)
    eq(_state(srv, uid), before, 'state after the %s mismatch' % algo)
    s.check('%s checksum mismatch' % algo)
    _patch_ok(srv, uid, 1000, data[1000:], extra=[_checksum(algo, data[1000:])])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_checksum_match_md5():
    _checksum_match('md5')


def test_checksum_match_sha1():
    _checksum_match('sha1')


def test_checksum_match_sha256():
    _checksum_match('sha256')


def test_checksum_match_crc32():
    _checksum_match('crc32')


def test_checksum_mismatch_md5():
    _checksum_mismatch('md5')


def test_checksum_mismatch_sha1():
    _checksum_mismatch('sha1')


def test_checksum_mismatch_sha256():
    _checksum_mismatch('sha256')


def test_checksum_mismatch_crc32():
    _checksum_mismatch('crc32')


def test_checksum_crc32_known_vector():
    # CRC-32 (IEEE) of "123456789" is 0xCBF43926
    srv = Server()
    uid = _create_ok(srv, 9)
    _patch_ok(srv, uid, 0, b'123456789', extra=[('Upload-Checksum', 'crc32 ' + base64.b64encode(
        bytes.fromhex('cbf43926')).decode())])
    eq(read_file(_path(srv, uid)), b'123456789', 'stored data')


def test_checksum_unknown_or_malformed_400():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(5000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    body = data[1000:]
    good_sha1 = _digest('sha1', body)
    for v in ['sha384 ' + base64.b64encode(hashlib.sha384(body).digest()).decode(),
              'md4 ' + good_sha1,
              'sha1',
              'sha1 ',
              good_sha1,
              'sha1 !!!!not-base64!!!!',
              'sha1 ' + good_sha1.rstrip('=') + '=x',
              '']:
        r = _patch(srv, uid, 1000, body, extra=[('Upload-Checksum', v)])
        eq(r.status, 400, 'PATCH with Upload-Checksum %r: status' % v)
        eq(_state(srv, uid), before, 'state after Upload-Checksum %r' % v)
    s.check('bad Upload-Checksum')
    _patch_ok(srv, uid, 1000, body, extra=[('Upload-Checksum', 'sha1 ' + good_sha1)])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def _trailer_patch(srv, uid, offset, data, trailer_value):
    body = chunk_encode(data, [65536, 1000, 7])
    check(body.endswith(b'0\r\n\r\n'), 'chunk_encode terminator')
    body = body[:-2] + b'Upload-Checksum: ' + trailer_value.encode() + b'\r\n\r\n'
    head = build_head('PATCH', '/files/' + uid, [
        ('Tus-Resumable', TUS_VERSION), ('Content-Type', OCTET), ('Upload-Offset', str(offset)),
        ('Transfer-Encoding', 'chunked'), ('Trailer', 'Upload-Checksum')])
    with srv.conn() as c:
        c.send(head + body)
        return _tus_check(c.read_final('PATCH'), 'PATCH with a checksum trailer')


def test_checksum_trailer_match():
    srv = Server()
    data = os.urandom(600000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    r = _trailer_patch(srv, uid, 1000, data[1000:], 'sha1 ' + _digest('sha1', data[1000:]))
    eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'PATCH with a matching sha1 trailer')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    # another algorithm via trailer
    uid2 = _create_ok(srv, len(data))
    r = _trailer_patch(srv, uid2, 0, data, 'crc32 ' + _digest('crc32', data))
    eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'PATCH with a matching crc32 trailer')
    eq(file_sha(_path(srv, uid2)), sha(data), 'stored sha256 (crc32 trailer)')


def test_checksum_trailer_mismatch_460():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(600000)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    before = _state(srv, uid)
    r = _trailer_patch(srv, uid, 1000, data[1000:], 'sha256 ' + _digest('sha256', data[1000:] + b'!'))
    eq(r.status, 460, 'PATCH with a wrong sha256 trailer')
    eq(_state(srv, uid), before, 'state after the trailer mismatch')
    s.check('checksum trailer mismatch')
    r = _trailer_patch(srv, uid, 1000, data[1000:], 'sha256 ' + _digest('sha256', data[1000:]))
    eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'PATCH with the right trailer')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_checksum_trailer_unknown_algo_400():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(100000)
    uid = _create_ok(srv, len(data))
    before = _state(srv, uid)
    r = _trailer_patch(srv, uid, 0, data, 'sha384 ' + base64.b64encode(hashlib.sha384(data).digest()).decode())
    eq(r.status, 400, 'PATCH with a sha384 trailer (unsupported)')
    eq(_state(srv, uid), before, 'state after the refused trailer')
    s.check('checksum trailer with an unknown algorithm')


def test_checksum_cut_mid_body_keeps_nothing():
    srv = Server()
    s = Sentinel(srv)
    data = os.urandom(2 << 20)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    body = data[1000:]
    c = _partial_patch(srv, uid, 1000, body, 700000, extra=[_checksum('sha256', body)])
    time.sleep(0.5)
    c.close()
    time.sleep(0.3)
    eq(_offset(srv, uid), 1000, 'HEAD Upload-Offset after a checksummed PATCH was cut')
    eq(os.path.getsize(_path(srv, uid)), 1000, 'data file length after the cut checksummed PATCH')
    eq(file_sha(_path(srv, uid)), sha(data[:1000]), 'stored prefix')
    s.check('cut checksummed PATCH')
    _patch_ok(srv, uid, 1000, body, extra=[_checksum('sha256', body)])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_checksum_trailer_cut_keeps_nothing():
    # a chunked PATCH that announces `Trailer: Upload-Checksum` cannot be verified when cut
    srv = Server()
    data = os.urandom(2 << 20)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:1000])
    c = srv.conn()
    c.send(build_head('PATCH', '/files/' + uid, [
        ('Tus-Resumable', TUS_VERSION), ('Content-Type', OCTET), ('Upload-Offset', '1000'),
        ('Transfer-Encoding', 'chunked'), ('Trailer', 'Upload-Checksum')]))
    c.send(chunk_encode(data[1000:], [65536])[:700000])
    time.sleep(0.5)
    c.close()
    time.sleep(0.3)
    eq(_offset(srv, uid), 1000, 'HEAD Upload-Offset after a cut PATCH that announced a checksum trailer')
    eq(os.path.getsize(_path(srv, uid)), 1000, 'data file length')
    eq(file_sha(_path(srv, uid)), sha(data[:1000]), 'stored prefix')


def test_hung_checksum_patch_handover_keeps_nothing():
    srv = Server()
    data = os.urandom(2 << 20)
    uid = _create_ok(srv, len(data))
    _patch_ok(srv, uid, 0, data[:5000])
    body = data[5000:]
    hung = _partial_patch(srv, uid, 5000, body, 900000, extra=[_checksum('sha1', body)])
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        h = _head(srv, uid)
        dt = time.monotonic() - t0
        check(dt < 2.0, 'HEAD took %.2f s while a checksummed PATCH hangs' % dt)
        eq((h.status, h.header('Upload-Offset')), (200, '5000'),
           'HEAD (status, Upload-Offset) ending a hung checksummed PATCH')
        eq(os.path.getsize(_path(srv, uid)), 5000, 'data file length')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
        _patch_ok(srv, uid, 5000, body, extra=[_checksum('sha1', body)])
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    finally:
        hung.close()


def test_kill9_mid_checksum_patch_keeps_nothing():
    # bytes of a checksummed PATCH that never completed were never verified: after kill -9
    # and a restart they must not count, even if periodic syncs made them durable
    srv = Server('--sync-interval', '256K')
    data = os.urandom(4 << 20)
    uid = _create_ok(srv, len(data))
    s1 = 300001
    _patch_ok(srv, uid, 0, data[:s1])
    body = data[s1:]
    c = _partial_patch(srv, uid, s1, body, 2 << 20, extra=[_checksum('sha256', body)])
    time.sleep(0.6)
    srv.kill9()
    c.close()
    srv.start()
    eq(_offset(srv, uid), s1, 'HEAD Upload-Offset after kill -9 during a checksummed PATCH')
    eq(os.path.getsize(_path(srv, uid)), s1, 'data file length after recovery')
    eq(file_sha(_path(srv, uid)), sha(data[:s1]), 'stored prefix after recovery')
    _patch_ok(srv, uid, s1, body, extra=[_checksum('sha256', body)])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


# ---------------------------------------------------------------------------
# cuts, crashes, hand-over
# ---------------------------------------------------------------------------

def _cut_then_resume(mode):
    srv = Server()
    data = os.urandom(3 << 20)
    uid = _create_ok(srv, len(data))
    sent = (1 << 20) + 4321
    c = _partial_patch(srv, uid, 0, data, sent)
    time.sleep(0.5)
    if mode == 'rst':
        c.abort()
    else:
        c.close()
    time.sleep(0.2)
    eq(_poll_offset(srv, uid, sent), sent, 'HEAD Upload-Offset after a PATCH cut (%s) after %d bytes' % (mode, sent))
    eq(file_sha(_path(srv, uid)), sha(data[:sent]), 'stored prefix after the cut')
    r = _patch(srv, uid, 0, data)
    eq((r.status, r.header('Upload-Offset')), (409, str(sent)), 'PATCH at 0 after the cut (status, Upload-Offset)')
    _patch_ok(srv, uid, sent, data[sent:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256 after resume')


def test_cut_mid_patch_fin_then_resume():
    _cut_then_resume('close')


def test_cut_mid_patch_rst_then_resume():
    _cut_then_resume('rst')


def test_kill9_mid_patch_then_resume():
    srv = Server('--sync-interval', '256K')
    data = os.urandom(5 << 20)
    n = len(data)
    md = 'filename ' + base64.b64encode(b'crash.bin').decode()
    uid = _create_ok(srv, n, metadata=md)
    s1 = (1 << 20) + 12345
    _patch_ok(srv, uid, 0, data[:s1])            # acknowledged: s1
    more = 2 << 20
    c = _partial_patch(srv, uid, s1, data[s1:], more)
    time.sleep(0.5)
    srv.kill9()
    c.close()
    srv.start()
    h = _head(srv, uid)
    eq(h.status, 200, 'HEAD after kill -9 and restart')
    s2 = _dec(h.header('Upload-Offset'), 'HEAD Upload-Offset after restart')
    check(s1 <= s2 <= s1 + more, 'HEAD Upload-Offset after kill -9 = %d, expected between %d (acknowledged) '
          'and %d (sent)' % (s2, s1, s1 + more))
    eq(h.header('Upload-Length'), str(n), 'Upload-Length after restart')
    eq(h.header('Upload-Metadata'), md, 'Upload-Metadata after restart')
    stored = read_file(_path(srv, uid))
    check(len(stored) >= s2, 'data file (%d bytes) shorter than the offset %d' % (len(stored), s2))
    eq(sha(stored[:s2]), sha(data[:s2]), 'sha256 of the stored prefix [0,%d)' % s2)
    _patch_ok(srv, uid, s2, data[s2:])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256 after resume')


def test_restart_keeps_tus_state():
    srv = Server()
    a = os.urandom(3000)
    ua = _create_ok(srv, len(a), metadata='k dg==,flag')
    _patch_ok(srv, ua, 0, a[:1200])
    ub = _create_ok(srv, defer=True, metadata='n Yg==')
    _patch_ok(srv, ub, 0, b'b' * 77)
    uc = _create_ok(srv, 0)
    ud = _create_ok(srv, 5)
    _patch_ok(srv, ud, 0, b'12345')
    for how in ('kill9', 'term'):
        if how == 'kill9':
            srv.kill9()
            srv.start()
        else:
            srv.restart(hard=False)
        ha, hb, hc, hd = (_head(srv, u) for u in (ua, ub, uc, ud))
        eq((ha.status, ha.header('Upload-Offset'), ha.header('Upload-Length'), ha.header('Upload-Metadata')),
           (200, '1200', '3000', 'k dg==,flag'), 'HEAD of a partial upload after %s' % how)
        eq((hb.status, hb.header('Upload-Offset'), hb.header('Upload-Defer-Length'), hb.header('Upload-Length'),
            hb.header('Upload-Metadata')), (200, '77', '1', None, 'n Yg=='),
           'HEAD of a deferred-length upload after %s' % how)
        eq((hc.status, hc.header('Upload-Offset'), hc.header('Upload-Length')), (200, '0', '0'),
           'HEAD of a 0-byte upload after %s' % how)
        eq((hd.status, hd.header('Upload-Offset'), hd.header('Upload-Length')), (200, '5', '5'),
           'HEAD of a complete upload after %s' % how)
    _patch_ok(srv, ua, 1200, a[1200:])
    eq(file_sha(_path(srv, ua)), sha(a), 'stored sha256 after resuming past restarts')
    _patch_ok(srv, ub, 77, b'', extra=[('Upload-Length', '77')])
    eq(read_file(_path(srv, ud)), b'12345', 'complete upload kept')


def test_hung_patch_head_handover():
    srv = Server()
    data = os.urandom(3 << 20)
    uid = _create_ok(srv, len(data))
    sent = (1 << 20) + 4321
    hung = _partial_patch(srv, uid, 0, data, sent)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        h = _head(srv, uid)
        dt = time.monotonic() - t0
        check(dt < 2.0, 'HEAD took %.2f s while a PATCH of the upload hangs' % dt)
        eq((h.status, h.header('Upload-Offset')), (200, str(sent)), 'HEAD (status, Upload-Offset) during a hung PATCH')
        eq(file_sha(_path(srv, uid)), sha(data[:sent]), 'stored prefix')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
        try:
            hung.send(data[sent:sent + 100000])   # late bytes from the old connection
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)
        eq(_offset(srv, uid), sent, 'offset after late bytes from the old connection')
        _patch_ok(srv, uid, sent, data[sent:])
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    finally:
        hung.close()


def test_hung_patch_patch_handover():
    srv = Server()
    data = os.urandom(2 << 20)
    uid = _create_ok(srv, len(data))
    sent = 777777
    hung = _partial_patch(srv, uid, 0, data, sent)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        _patch_ok(srv, uid, sent, data[sent:])
        dt = time.monotonic() - t0
        check(dt < 3.0, 'resuming PATCH took %.2f s while the old PATCH hangs' % dt)
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
    finally:
        hung.close()


def test_hung_patch_delete_handover():
    srv = Server()
    data = os.urandom(2 << 20)
    uid = _create_ok(srv, len(data))
    hung = _partial_patch(srv, uid, 0, data, 500000)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        r = _treq(srv, 'DELETE', '/files/' + uid)
        dt = time.monotonic() - t0
        eq(r.status, 204, 'DELETE during a hung PATCH')
        check(dt < 2.0, 'DELETE took %.2f s while a PATCH hangs' % dt)
        eq(_head(srv, uid).status, 404, 'HEAD after DELETE')
        check(not os.path.exists(_path(srv, uid)), 'data file still present after DELETE')
        check(not os.path.exists(_path(srv, uid) + '.meta'), 'meta file still present after DELETE')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
    finally:
        hung.close()


# ---------------------------------------------------------------------------
# termination
# ---------------------------------------------------------------------------

def test_delete_terminates():
    srv = Server()
    s = Sentinel(srv)
    uid = _create_ok(srv, 10000, metadata='a YQ==')
    _patch_ok(srv, uid, 0, os.urandom(4000))
    other = _create_ok(srv, 10)
    r = _treq(srv, 'DELETE', '/files/' + uid)
    eq(r.status, 204, 'DELETE status')
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Offset')), (404, None), 'HEAD after DELETE (status, Upload-Offset)')
    r = _patch(srv, uid, 4000, b'x' * 10)
    eq(r.status, 404, 'PATCH after DELETE')
    r = _treq(srv, 'DELETE', '/files/' + uid)
    eq(r.status, 404, 'second DELETE')
    check(not os.path.exists(_path(srv, uid)), 'data file still present after DELETE')
    check(not os.path.exists(_path(srv, uid) + '.meta'), 'meta file still present after DELETE')
    eq([k for k in _keys(srv) if k.startswith(uid)], [], 'files of the deleted upload')
    eq(_offset(srv, other), 0, 'another tus upload after DELETE')
    s.check('DELETE')
    srv.restart()
    eq(_head(srv, uid).status, 404, 'HEAD of a deleted upload after restart')


def test_delete_complete_and_unknown():
    srv = Server()
    uid = _create_ok(srv, 3)
    _patch_ok(srv, uid, 0, b'abc')
    eq(_treq(srv, 'DELETE', '/files/' + uid).status, 204, 'DELETE of a complete upload')
    check(not os.path.exists(_path(srv, uid)), 'data file of a complete upload still present after DELETE')
    eq(_treq(srv, 'DELETE', '/files/' + os.urandom(16).hex()).status, 404, 'DELETE of an unknown id')


# ---------------------------------------------------------------------------
# X-HTTP-Method-Override
# ---------------------------------------------------------------------------

def test_method_override_patch():
    srv = Server()
    data = os.urandom(300000)
    uid = _create_ok(srv, len(data))
    r = _patch(srv, uid, 0, data[:100000], method='POST', extra=[('X-HTTP-Method-Override', 'PATCH')])
    eq((r.status, r.header('Upload-Offset')), (204, '100000'), 'POST + X-HTTP-Method-Override: PATCH')
    r = _patch(srv, uid, 100000, data[100000:], method='POST', extra=[('X-HTTP-Method-Override', 'patch')])
    eq((r.status, r.header('Upload-Offset')), (204, str(len(data))), 'POST + X-HTTP-Method-Override: patch')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    r = _patch(srv, uid, 0, b'x', method='POST', extra=[('X-HTTP-Method-Override', 'PATCH')])
    eq((r.status, r.header('Upload-Offset')), (409, str(len(data))), 'overridden PATCH at a wrong offset')


def test_method_override_delete():
    srv = Server()
    uid = _create_ok(srv, 100)
    _patch_ok(srv, uid, 0, b'z' * 10)
    r = _treq(srv, 'POST', '/files/' + uid, [('X-HTTP-Method-Override', 'Delete')])
    eq(r.status, 204, 'POST + X-HTTP-Method-Override: Delete')
    eq(_head(srv, uid).status, 404, 'HEAD after the overridden DELETE')
    check(not os.path.exists(_path(srv, uid)), 'data file still present')


def test_method_override_head():
    srv = Server()
    uid = _create_ok(srv, 100, metadata='m bQ==')
    _patch_ok(srv, uid, 0, b'z' * 10)
    with srv.conn() as c:
        c.send(build_request('POST', '/files/' + uid, [('Tus-Resumable', TUS_VERSION),
                                                      ('X-HTTP-Method-Override', 'HEAD')]))
        r = _tus_check(c.read_final('HEAD'), 'POST + X-HTTP-Method-Override: HEAD')
        eq((r.status, r.header('Upload-Offset'), r.header('Upload-Length'), r.header('Upload-Metadata'),
            r.header('Cache-Control')), (200, '10', '100', 'm bQ==', 'no-store'),
           'POST + X-HTTP-Method-Override: HEAD')
        if not r.conn_close():
            c.send(build_request('OPTIONS', '/files/', []))
            r2 = c.read_final('OPTIONS')
            eq(r2.status, 204, 'OPTIONS after an overridden HEAD on the same connection (no body expected)')


# ---------------------------------------------------------------------------
# side by side with the article protocol
# ---------------------------------------------------------------------------

def test_article_protocol_side_by_side():
    srv = Server()
    tdata = os.urandom(2 << 20)
    adata = os.urandom(1 << 20)
    uid = _create_ok(srv, len(tdata))
    c = _partial_patch(srv, uid, 0, tdata, 1 << 20)
    try:
        time.sleep(0.2)
        fid = 'article-' + os.urandom(4).hex()
        expect_success(srv.upload(fid, adata, start=0), len(adata), 'article upload during a tus PATCH')
        c.send(tdata[1 << 20:])
        r = _tus_check(c.read_final('PATCH'), 'PATCH')
        eq((r.status, r.header('Upload-Offset')), (204, str(len(tdata))), 'tus PATCH (status, Upload-Offset)')
    finally:
        c.close()
    eq(file_sha(_path(srv, uid)), sha(tdata), 'tus stored sha256')
    check(sha(adata) in [file_sha(p) for p in srv.data_files()], 'article upload not stored')
    eq(srv.status(fid), 0, 'article /status after completion')
    eq(_head(srv, uid).header('Upload-Offset'), str(len(tdata)), 'tus HEAD')
