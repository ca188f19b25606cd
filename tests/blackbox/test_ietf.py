"""The IETF draft "Resumable Uploads for HTTP" (interop versions 3..8) at /files/, driven over
raw sockets: creation (104 Upload Resumption Supported with Location, then 201), offset
retrieval (HEAD), append (PATCH with application/partial-upload), cancellation (DELETE),
Upload-Limit, RFC 9457 problems, RFC 9530 digests, hand-over of hung appends, kill -9.

A request is IETF when it has no Tus-Resumable and carries Upload-Draft-Interop-Version or
Upload-Complete / Upload-Incomplete.  Interop 3 says `Upload-Incomplete` (inverse), later
versions `Upload-Complete`.  The stored data of an upload is DIR/uploads/<id>, <id> being the
last segment of the Location.  Bad requests are followed by checks that other uploads are
intact and the server still serves.
"""

import base64
import hashlib
import json
import os
import re
import socket
import time

from harness import (Sentinel, Server, build_head, build_request, check, eq, file_sha, read_file,
                     sha)

V = 8                                   # default interop version of these tests
PARTIAL = 'application/partial-upload'
PROBLEM_JSON = 'application/problem+json'
PROBLEM_BASE = 'https://iana.org/assignments/http-problem-types#'
INCONSISTENT = PROBLEM_BASE + 'inconsistent-upload-length'
MISMATCHING = PROBLEM_BASE + 'mismatching-upload-offset'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})')


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _vh(version):
    return [] if version is None else [('Upload-Draft-Interop-Version', str(version))]


def _ch(version, complete):
    """The completeness field of the given interop version (None: leave it out)."""
    if complete is None:
        return []
    if version == 3:
        return [('Upload-Incomplete', '?0' if complete else '?1')]
    return [('Upload-Complete', '?1' if complete else '?0')]


def _req(srv, method, path, headers=(), body=b'', timeout=None):
    with (srv.conn(timeout) if timeout else srv.conn()) as c:
        c.send(build_request(method, path, list(headers), body))
        return c.read_final(method)


def _create(srv, complete=False, length=None, body=b'', version=V, extra=(), ctype=None):
    h = _vh(version) + _ch(version, complete)
    if length is not None:
        h.append(('Upload-Length', str(length)))
    if ctype is not None:
        h.append(('Content-Type', ctype))
    h += list(extra)
    return _req(srv, 'POST', '/files/', h, body)


def _loc_id(loc, what):
    check(loc is not None, '%s: no Location' % what)
    m = LOCATION_RE.fullmatch(loc)
    check(m is not None, '%s: Location %r is not /files/<32 lowercase hex>' % (what, loc))
    return m.group(1)


def _create_ok(srv, complete=False, length=None, body=b'', version=V, extra=(), ctype=None):
    r = _create(srv, complete, length, body, version, extra, ctype)
    eq(r.status, 201, 'creation (complete=%r, length=%r, %d body bytes, version %r): status; %r'
       % (complete, length, len(body), version, r.body))
    uid = _loc_id(r.header('Location'), 'creation 201')
    eq(r.header('Upload-Offset'), str(len(body)), 'creation 201 Upload-Offset')
    return uid, r


def _head(srv, uid, version=V, timeout=None):
    return _req(srv, 'HEAD', '/files/' + uid, _vh(version) + ([] if version else [('Upload-Complete', '?0')]),
                timeout=timeout)


def _offset(srv, uid, version=V):
    r = _head(srv, uid, version)
    eq(r.status, 204, 'HEAD /files/%s status' % uid)
    v = r.header('Upload-Offset')
    check(v is not None and re.fullmatch(r'\d+', v) is not None, 'HEAD Upload-Offset not a decimal: %r' % v)
    return int(v)


def _patch(srv, uid, offset, data, complete, version=V, ctype=PARTIAL, extra=()):
    h = _vh(version) + _ch(version, complete)
    if offset is not None:
        h.append(('Upload-Offset', str(offset)))
    if ctype is not None:
        h.append(('Content-Type', ctype))
    return _req(srv, 'PATCH', '/files/' + uid, h + list(extra), data)


def _append_status(version, done):
    """Drafts -01 to -03 (interop 3-5) acknowledged an append leaving the upload incomplete with 201."""
    return 201 if version in (3, 4, 5) and not done else 204


def _patch_ok(srv, uid, offset, data, complete, version=V, extra=(), done=None):
    """A PATCH that must succeed; done: the Upload-Complete the answer must carry (default: complete)."""
    r = _patch(srv, uid, offset, data, complete, version, extra=extra)
    eq(r.status, _append_status(version, complete if done is None else done),
       'PATCH %s at %d with %d bytes (complete=%r): status; body %r' % (uid, offset, len(data), complete, r.body))
    eq(r.header('Upload-Offset'), str(offset + len(data)), 'PATCH 204 Upload-Offset')
    _check_complete(r, version, complete if done is None else done, 'PATCH 204')
    return r


def _check_complete(r, version, complete, what):
    if version == 3:
        eq(r.header('Upload-Incomplete'), '?0' if complete else '?1', what + ': Upload-Incomplete')
        eq(r.header('Upload-Complete'), None, what + ': no Upload-Complete for interop 3')
    else:
        eq(r.header('Upload-Complete'), '?1' if complete else '?0', what + ': Upload-Complete')
        eq(r.header('Upload-Incomplete'), None, what + ': no Upload-Incomplete for interop %r' % version)


def _problem(r, status, ptype=None, what='problem'):
    eq(r.status, status, '%s: status (body %r)' % (what, r.body))
    eq((r.header('Content-Type') or '').split(';')[0].strip(), PROBLEM_JSON, what + ': Content-Type')
    try:
        j = json.loads(r.body.decode('utf-8'))
    except ValueError:
        raise AssertionError('%s: body is not JSON: %r' % (what, r.body))
    check(isinstance(j, dict), '%s: problem body is not a JSON object: %r' % (what, j))
    if ptype is not None:
        eq(j.get('type'), ptype, what + ': problem type')
    return j


def _path(srv, uid):
    return os.path.join(srv.dir, 'uploads', uid)


def _keys(srv):
    d = os.path.join(srv.dir, 'uploads')
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _state(srv, uid):
    """(HEAD status, Upload-Offset, Upload-Complete, data file sha256)."""
    r = _head(srv, uid)
    p = _path(srv, uid)
    return (r.status, r.header('Upload-Offset'), r.header('Upload-Complete'),
            file_sha(p) if os.path.exists(p) else None)


def _limit(v):
    """Upload-Limit (an SF dictionary of integers) as a dict."""
    check(v is not None, 'no Upload-Limit')
    out = {}
    for m in v.split(','):
        m = m.strip()
        check(re.fullmatch(r'[a-z][a-z0-9_.*-]*=\d+', m) is not None, 'Upload-Limit member %r of %r' % (m, v))
        k, n = m.split('=')
        out[k] = int(n)
    return out


def _b64(algo, data):
    return base64.b64encode(hashlib.new(algo, data).digest()).decode('ascii')


def _digest(algo, data, name='Content-Digest'):
    return (name, '%s=:%s:' % ({'sha256': 'sha-256', 'sha512': 'sha-512'}[algo], _b64(algo, data)))


def _partial_patch(srv, uid, offset, data, nsend, version=V):
    """A PATCH announcing len(data) bytes of which only nsend are sent; returns the open Conn."""
    c = srv.conn()
    h = _vh(version) + _ch(version, True) + [('Upload-Offset', str(offset)), ('Content-Type', PARTIAL),
                                             ('Content-Length', str(len(data)))]
    c.send(build_head('PATCH', '/files/' + uid, h))
    c.send(data[:nsend])
    return c


class Other:
    """An unrelated partial IETF upload; check() verifies it is untouched and still appendable."""

    def __init__(self, srv, total=50000, held=12345):
        self.srv = srv
        self.data = os.urandom(total)
        self.held = held
        self.uid, _ = _create_ok(srv, False, total, self.data[:held])

    def check(self, after):
        check(self.srv.alive(), 'server died (%s); stderr tail %r' % (after, self.srv.lines[-10:]))
        eq(_state(self.srv, self.uid), (204, str(self.held), '?0', sha(self.data[:self.held])),
           'other upload after %s (HEAD status, Upload-Offset, Upload-Complete, stored sha256)' % after)


# ---------------------------------------------------------------------------
# protocol selection, versions
# ---------------------------------------------------------------------------

def test_unsupported_versions_400():
    srv = Server()
    other = Other(srv)
    before = _keys(srv)
    for v in ('2', '9', 'abc', '0', '-3', '8.0', '"8"', '99999999999999999'):
        for method, path in (('POST', '/files/'), ('HEAD', '/files/' + other.uid), ('PATCH', '/files/' + other.uid)):
            h = [('Upload-Draft-Interop-Version', v), ('Upload-Complete', '?0'), ('Upload-Offset', str(other.held)),
                 ('Content-Type', PARTIAL)]
            r = _req(srv, method, path, h, b'x' * 10 if method != 'HEAD' else b'')
            if method == 'HEAD':
                eq(r.status, 400, 'HEAD with Upload-Draft-Interop-Version %r: status' % v)
                eq((r.header('Content-Type') or '').split(';')[0], PROBLEM_JSON, 'HEAD 400 Content-Type')
            else:
                _problem(r, 400, what='%s with Upload-Draft-Interop-Version %r' % (method, v))
            eq([i.status for i in r.interim], [], 'interim responses before the 400')
    eq(_keys(srv), before, 'files in DIR/uploads after requests with unsupported versions')
    other.check('unsupported versions')


def test_create_all_versions_104_then_201():
    srv = Server()
    for v in range(3, 9):
        uid, r = _create_ok(srv, False, 1000, version=v)
        loc = '/files/' + uid
        eq([i.status for i in r.interim], [104], 'interim responses of a creation with interop %d' % v)
        i = r.interim[0]
        eq(i.header('Location'), loc, 'interop %d: 104 Location (same as the 201)' % v)
        eq(i.header('Upload-Draft-Interop-Version'), str(v), 'interop %d: 104 Upload-Draft-Interop-Version' % v)
        eq(_limit(i.header('Upload-Limit')), {'min-size': 0}, 'interop %d: 104 Upload-Limit' % v)
        _check_complete(r, v, False, 'interop %d: 201' % v)
        eq(_limit(r.header('Upload-Limit')), {'min-size': 0}, 'interop %d: 201 Upload-Limit' % v)
        eq(r.header('Cache-Control'), 'no-store', 'interop %d: 201 Cache-Control' % v)
        h = _head(srv, uid, version=v)
        eq((h.status, h.header('Upload-Offset'), h.header('Upload-Length'), h.header('Cache-Control')),
           (204, '0', '1000', 'no-store'), 'interop %d: HEAD (status, Upload-Offset, Upload-Length, Cache-Control)' % v)
        _check_complete(h, v, False, 'interop %d: HEAD' % v)
        eq(_limit(h.header('Upload-Limit')), {'min-size': 0}, 'interop %d: HEAD Upload-Limit' % v)


def test_create_without_version_no_104():
    srv = Server()
    data = os.urandom(3000)
    uid, r = _create_ok(srv, False, None, data[:1000], version=None)
    eq([i.status for i in r.interim], [], 'interim responses without Upload-Draft-Interop-Version')
    _check_complete(r, None, False, '201')
    eq(r.header('Cache-Control'), 'no-store', '201 Cache-Control')
    check(r.header('Upload-Limit') is not None, '201 without Upload-Limit')
    _patch_ok(srv, uid, 1000, data[1000:], True, version=None)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_interop3_upload_incomplete():
    srv = Server()
    data = os.urandom(5000)
    uid, r = _create_ok(srv, False, None, data[:2000], version=3)
    eq(r.header('Upload-Incomplete'), '?1', '201 Upload-Incomplete (interop 3)')
    # interop 3 does not know Upload-Complete: a request with only that field lacks Upload-Incomplete
    r = _req(srv, 'PATCH', '/files/' + uid, _vh(3) + [('Upload-Complete', '?1'), ('Upload-Offset', '2000'),
                                                       ('Content-Type', PARTIAL)], data[2000:])
    _problem(r, 400, what='interop-3 PATCH with Upload-Complete instead of Upload-Incomplete')
    # 3..5 accept any content type on an append
    _patch_ok(srv, uid, 2000, data[2000:3000], False, version=3, extra=[])
    r = _req(srv, 'PATCH', '/files/' + uid, _vh(3) + [('Upload-Incomplete', '?0'), ('Upload-Offset', '3000'),
                                                       ('Content-Type', 'application/offset+octet-stream')],
             data[3000:])
    eq(r.status, 204, 'interop-3 PATCH with Upload-Incomplete ?0 (complete): status; %r' % r.body)
    _check_complete(r, 3, True, 'interop-3 completing PATCH')
    h = _head(srv, uid, version=3)
    _check_complete(h, 3, True, 'interop-3 HEAD of a complete upload')
    eq(h.header('Upload-Offset'), '5000', 'HEAD Upload-Offset')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_upload_complete_alone_selects_ietf_tus_wins():
    srv = Server()
    # Upload-Complete alone (no version) is an IETF request: no 104, 201
    uid, r = _create_ok(srv, False, None, b'abc', version=None)
    eq(r.header('Tus-Resumable'), None, 'IETF answer must not carry Tus-Resumable')
    # Upload-Incomplete alone selects IETF too, but without a version the field is Upload-Complete
    r = _req(srv, 'POST', '/files/', [('Upload-Incomplete', '?1')])
    _problem(r, 400, what='POST with only Upload-Incomplete')
    eq(r.header('Tus-Resumable'), None, 'the 400 is an IETF answer, not tus')
    # Tus-Resumable wins over IETF fields
    r = _req(srv, 'POST', '/files/', [('Tus-Resumable', '1.0.0'), ('Upload-Length', '10'),
                                      ('Upload-Complete', '?0'), ('Upload-Draft-Interop-Version', '8')])
    eq((r.status, r.header('Tus-Resumable')), (201, '1.0.0'), 'POST with Tus-Resumable and IETF fields (status, Tus-Resumable)')
    eq([i.status for i in r.interim], [], 'no 104 for a tus creation')
    # a request with neither is plain tus: 412 without Tus-Resumable
    r = _req(srv, 'POST', '/files/', [('Upload-Length', '10')])
    eq(r.status, 412, 'POST with neither protocol header')


# ---------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------

def test_create_requires_upload_complete():
    srv = Server()
    other = Other(srv)
    before = _keys(srv)
    for v, h in ((8, []), (4, []), (3, []), (3, [('Upload-Complete', '?0')]), (8, [('Upload-Incomplete', '?1')]),
                 (8, [('Upload-Complete', 'true')]), (8, [('Upload-Complete', '?2')]), (8, [('Upload-Complete', '1')]),
                 (8, [('Upload-Complete', '?0'), ('Upload-Complete', '?1')])):
        r = _req(srv, 'POST', '/files/', _vh(v) + h, b'abc')
        _problem(r, 400, what='creation interop %d with %r' % (v, h))
        eq([i.status for i in r.interim], [], 'interim responses before the 400 (%r)' % (h,))
    eq(_keys(srv), before, 'files in DIR/uploads after rejected creations')
    other.check('creations without Upload-Complete')


def test_create_complete_in_one_request():
    srv = Server()
    data = os.urandom(70000)
    uid, r = _create_ok(srv, True, None, data)
    _check_complete(r, V, True, '201 of a complete creation')
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Complete'), h.header('Upload-Length')),
       (204, str(len(data)), '?1', str(len(data))), 'HEAD (status, Upload-Offset, Upload-Complete, Upload-Length)')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    # with a matching Upload-Length too; and an empty complete upload
    uid2, r = _create_ok(srv, True, len(data), data)
    eq(file_sha(_path(srv, uid2)), sha(data), 'stored sha256 (with Upload-Length)')
    # a chunked complete creation: the length is where the body ends
    with srv.conn() as c:
        c.send(build_request('POST', '/files/', _vh(V) + [('Upload-Complete', '?1')], data, chunked=True))
        r = c.read_final('POST')
    eq(r.status, 201, 'chunked complete creation: status')
    _check_complete(r, V, True, '201 of a chunked complete creation')
    uid4 = _loc_id(r.header('Location'), 'chunked creation')
    h = _head(srv, uid4)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), (str(len(data)),) * 2, 'HEAD of the chunked creation')
    eq(file_sha(_path(srv, uid4)), sha(data), 'stored sha256 (chunked)')
    uid3, r = _create_ok(srv, True, None, b'')
    _check_complete(r, V, True, '201 of an empty complete creation')
    eq(_head(srv, uid3).header('Upload-Length'), '0', 'Upload-Length of an empty complete upload')


def test_create_inconsistent_length_400():
    srv = Server()
    other = Other(srv)
    before = _keys(srv)
    cases = [(True, 99, b'x' * 100, 'complete, Upload-Length < Content-Length'),
             (True, 101, b'x' * 100, 'complete, Upload-Length > Content-Length'),
             (False, 50, b'x' * 100, 'incomplete, body longer than Upload-Length')]
    for complete, length, body, what in cases:
        r = _create(srv, complete, length, body)
        _problem(r, 400, INCONSISTENT, what)
    for bad in ('-1', '1.5', 'abc', '1234567890123456', '10, 20', '?1'):
        r = _req(srv, 'POST', '/files/', _vh(V) + [('Upload-Complete', '?0'), ('Upload-Length', bad)])
        _problem(r, 400, what='creation with Upload-Length %r' % bad)
    eq(_keys(srv), before, 'files in DIR/uploads after rejected creations')
    other.check('inconsistent creations')
    # RFC 9651 integers: leading zeros are allowed
    uid, _ = _create_ok(srv, False, '0012', b'abc')
    eq(_head(srv, uid).header('Upload-Length'), '12', 'Upload-Length: 0012')


def test_create_partial_body_then_append():
    srv = Server()
    data = os.urandom(100000)
    uid, r = _create_ok(srv, False, len(data), data[:40000], ctype='application/octet-stream')
    _check_complete(r, V, False, '201')
    eq(r.header('Upload-Length'), str(len(data)), '201 Upload-Length')
    eq(_offset(srv, uid), 40000, 'HEAD Upload-Offset')
    eq(file_sha(_path(srv, uid)), sha(data[:40000]), 'stored prefix')
    _patch_ok(srv, uid, 40000, data[40000:70000], False)
    _patch_ok(srv, uid, 70000, data[70000:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_create_expect_100_continue():
    srv = Server()
    data = os.urandom(20000)
    with srv.conn() as c:
        c.send(build_head('POST', '/files/', _vh(V) + [('Upload-Complete', '?1'), ('Content-Length', str(len(data))),
                                                       ('Expect', '100-continue')]))
        r1 = c.read_response('POST')
        r2 = c.read_response('POST')
        eq((r1.status, r2.status), (104, 100), 'interim responses before the body (104 first, then 100)')
        uid = _loc_id(r1.header('Location'), '104')
        c.send(data)
        r = c.read_final('POST')
    eq(r.status, 201, 'final answer after Expect: 100-continue')
    eq(r.header('Location'), '/files/' + uid, '201 Location = 104 Location')
    _check_complete(r, V, True, '201')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_hung_creation_resumes_via_104_location():
    srv = Server()
    data = os.urandom(1 << 20)
    sent = 300001
    c = srv.conn()
    try:
        c.send(build_head('POST', '/files/', _vh(V) + [('Upload-Complete', '?1'), ('Content-Length', str(len(data)))]))
        c.send(data[:sent])
        i = c.read_response('POST')
        eq(i.status, 104, 'first response while the creation body is incomplete')
        uid = _loc_id(i.header('Location'), '104')
        time.sleep(0.3)
        t0 = time.monotonic()
        h = _head(srv, uid, timeout=3)
        check(time.monotonic() - t0 < 2.0, 'HEAD took too long while the creation hangs')
        eq((h.status, h.header('Upload-Offset'), h.header('Upload-Complete')), (204, str(sent), '?0'),
           'HEAD during the hung creation (status, Upload-Offset, Upload-Complete)')
        # the creation said complete with its Content-Length: the length is known
        eq(h.header('Upload-Length'), str(len(data)), 'HEAD Upload-Length (from the creation)')
        _patch_ok(srv, uid, sent, data[sent:], True)
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
        closed, _ = c.wait_closed(2)
        check(closed, 'the hung creation connection was not closed')
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Upload-Limit, OPTIONS
# ---------------------------------------------------------------------------

def test_options_upload_limit():
    srv = Server()
    r = _req(srv, 'OPTIONS', '/files/')
    eq(r.status, 204, 'OPTIONS status')
    eq(_limit(r.header('Upload-Limit')), {'min-size': 0}, 'OPTIONS Upload-Limit without limits')
    eq(r.header('Tus-Version'), '1.0.0', 'OPTIONS Tus-Version')
    srv2 = Server('--max-size', '1M', '--expire-after', '600')
    r = _req(srv2, 'OPTIONS', '/files/')
    eq(_limit(r.header('Upload-Limit')), {'max-size': 1 << 20, 'max-age': 600}, 'OPTIONS Upload-Limit with limits')


def test_max_size_limit_and_413():
    srv = Server('--max-size', '1000')
    other = Other(srv, total=1000, held=100)
    before = _keys(srv)
    r = _create(srv, False, 1001)
    eq(r.status, 413, 'creation with Upload-Length over --max-size')
    eq(_limit(r.header('Upload-Limit')), {'max-size': 1000}, '413 Upload-Limit')
    r = _create(srv, True, None, b'x' * 1001)
    eq(r.status, 413, 'complete creation of 1001 bytes over --max-size 1000')
    eq(_keys(srv), before, 'files in DIR/uploads after 413s')
    uid, r = _create_ok(srv, False, 1000)
    eq(_limit(r.header('Upload-Limit')), {'max-size': 1000}, '201 Upload-Limit')
    eq(_limit(r.interim[0].header('Upload-Limit')), {'max-size': 1000}, '104 Upload-Limit')
    eq(_limit(_head(srv, uid).header('Upload-Limit')), {'max-size': 1000}, 'HEAD Upload-Limit')
    # unknown length: an append that would pass --max-size
    uid2, _ = _create_ok(srv, False, None, b'y' * 600)
    r = _patch(srv, uid2, 600, b'z' * 401, False)
    eq(r.status, 413, 'PATCH passing --max-size (unknown length); %r' % r.body)
    eq(_limit(r.header('Upload-Limit')), {'max-size': 1000}, 'Upload-Limit of the 413 PATCH')
    eq(_state(srv, uid2)[:3], (204, '600', '?0'), 'upload after the 413 PATCH')
    _patch_ok(srv, uid2, 600, b'z' * 400, True)
    other.check('413s')


def test_expire_after_limit_max_age_and_interop6_expires():
    srv = Server('--expire-after', '3600')
    uid, r = _create_ok(srv, False, 10)
    for what, v in (('104', r.interim[0].header('Upload-Limit')), ('201', r.header('Upload-Limit')),
                    ('HEAD', _head(srv, uid).header('Upload-Limit'))):
        lim = _limit(v)
        eq(sorted(lim), ['max-age'], '%s Upload-Limit keys (%r)' % (what, v))
        check(3590 <= lim['max-age'] <= 3600, '%s Upload-Limit max-age %d not within [3590, 3600]' % (what, lim['max-age']))
    uid6, r = _create_ok(srv, False, 10, version=6)
    for what, v in (('104', r.interim[0].header('Upload-Limit')), ('201', r.header('Upload-Limit')),
                    ('HEAD', _head(srv, uid6, version=6).header('Upload-Limit'))):
        lim = _limit(v)
        eq(sorted(lim), ['expires'], 'interop 6: %s Upload-Limit keys (%r)' % (what, v))
        check(3590 <= lim['expires'] <= 3600, 'interop 6: %s expires %d' % (what, lim['expires']))


# ---------------------------------------------------------------------------
# offset retrieval, append
# ---------------------------------------------------------------------------

def test_head_unknown_and_malformed_404():
    srv = Server()
    uid, _ = _create_ok(srv, False, 10)
    for p in ('0' * 32, uid[:-1] + ('0' if uid[-1] != '0' else '1'), uid.upper(), uid + 'a', 'abc', uid + '/x'):
        r = _req(srv, 'HEAD', '/files/' + p, _vh(V))
        eq(r.status, 404, 'HEAD /files/%s status' % p)
        r = _patch(srv, p, 0, b'abc', False)
        eq(r.status, 404, 'PATCH /files/%s status' % p)
    eq(_state(srv, uid)[:3], (204, '0', '?0'), 'the real upload after 404s')


def test_patch_offset_required_and_valid():
    srv = Server()
    data = os.urandom(5000)
    uid, _ = _create_ok(srv, False, 5000, data[:1000])
    st = _state(srv, uid)
    for bad in (None, '-1', '1.5', 'abc', '', '1000, 1000', '0x3e8', '1234567890123456', '?1'):
        h = _vh(V) + [('Upload-Complete', '?0'), ('Content-Type', PARTIAL)]
        if bad is not None:
            h.append(('Upload-Offset', bad))
        r = _req(srv, 'PATCH', '/files/' + uid, h, data[1000:2000])
        _problem(r, 400, what='PATCH with Upload-Offset %r' % bad)
        eq(_state(srv, uid), st, 'upload after PATCH with Upload-Offset %r' % bad)
    _patch_ok(srv, uid, 1000, data[1000:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_patch_upload_complete_required():
    srv = Server()
    uid, _ = _create_ok(srv, False, None, b'a' * 100)
    st = _state(srv, uid)
    for v, h in ((8, []), (5, []), (None, [('Upload-Draft-Interop-Version', '4')]), (3, [('Upload-Complete', '?0')]),
                 (8, [('Upload-Complete', 'yes')]), (8, [('Upload-Complete', '?0, ?1')])):
        r = _req(srv, 'PATCH', '/files/' + uid, _vh(v) + h + [('Upload-Offset', '100'), ('Content-Type', PARTIAL)], b'b' * 50)
        _problem(r, 400, what='PATCH (interop %r) with %r' % (v, h))
        eq(_state(srv, uid), st, 'upload after PATCH with %r' % (h,))
    _patch_ok(srv, uid, 100, b'b' * 50, True)


def test_patch_content_type_415_from_interop6():
    srv = Server()
    uid, _ = _create_ok(srv, False, None, b'')
    off = 0
    for v in (6, 7, 8, None):
        for ct in (None, 'application/offset+octet-stream', 'application/octet-stream', 'application/partial-uploadx'):
            r = _patch(srv, uid, off, b'q' * 10, False, version=v, ctype=ct)
            _problem(r, 415, what='PATCH interop %r with Content-Type %r' % (v, ct))
            eq(_state(srv, uid)[:3], (204, str(off), '?0'), 'upload after 415')
        _patch_ok(srv, uid, off, b'q' * 10, False, version=v)
        off += 10
        r = _patch(srv, uid, off, b'p' * 10, False, version=v, ctype='Application/Partial-Upload; x=1')
        eq(r.status, 204, 'interop %r: Content-Type with other case and a parameter' % v)
        off += 10
    for v in (3, 4, 5):
        for ct in (None, 'application/offset+octet-stream', 'text/plain'):
            r = _patch(srv, uid, off, b'r' * 10, False, version=v, ctype=ct)
            eq((r.status, r.header('Upload-Offset')), (201, str(off + 10)),
               'PATCH interop %d with Content-Type %r (status, Upload-Offset)' % (v, ct))
            off += 10
    eq(os.path.getsize(_path(srv, uid)), off, 'data file length')


def test_patch_offset_mismatch_409():
    srv = Server()
    data = os.urandom(3000)
    uid, _ = _create_ok(srv, False, 3000, data[:1000])
    st = _state(srv, uid)
    for v, provided in ((8, 0), (8, 999), (5, 1001), (3, 2999), (None, 5000)):
        r = _patch(srv, uid, provided, data[provided:provided + 100] or b'x', False, version=v)
        j = _problem(r, 409, MISMATCHING, 'PATCH (interop %r) at %d, offset 1000' % (v, provided))
        eq(r.header('Upload-Offset'), '1000', '409 Upload-Offset')
        _check_complete(r, v, False, '409')
        eq((j.get('expected-offset'), j.get('provided-offset')), (1000, provided),
           '409 body (expected-offset, provided-offset)')
        check(all(type(j.get(k)) is int for k in ('expected-offset', 'provided-offset')),
              '409 offsets must be JSON numbers: %r' % r.body)
        eq(_state(srv, uid), st, 'upload after a 409')
    _patch_ok(srv, uid, 1000, data[1000:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_unknown_length_set_by_completing_patch():
    srv = Server()
    data = os.urandom(30000)
    uid, r = _create_ok(srv, False, None, data[:5000])
    eq(r.header('Upload-Length'), None, '201 Upload-Length of an upload of unknown length')
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Length')), ('5000', None), 'HEAD (Upload-Offset, Upload-Length)')
    _patch_ok(srv, uid, 5000, data[5000:12000], False)
    _patch_ok(srv, uid, 12000, b'', False)               # an empty append
    r = _patch_ok(srv, uid, 12000, data[12000:], True)
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Complete'), h.header('Upload-Length')),
       (str(len(data)), '?1', str(len(data))), 'HEAD of the completed upload')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_complete_short_of_known_length_400():
    srv = Server()
    data = os.urandom(10000)
    uid, _ = _create_ok(srv, False, len(data), data[:2000])
    st = _state(srv, uid)
    # Content-Length tells before the body that it ends short: rejected up front, nothing stored
    r = _patch(srv, uid, 2000, data[2000:6000], True)
    _problem(r, 400, INCONSISTENT, 'completing PATCH (Content-Length) ending before Upload-Length')
    eq(_state(srv, uid), st, 'upload after the rejected short completion')
    # a chunked body only shows at its end that it is short: the bytes it carried are kept
    h = _vh(V) + [('Upload-Complete', '?1'), ('Upload-Offset', '2000'), ('Content-Type', PARTIAL)]
    with srv.conn() as c:
        c.send(build_request('PATCH', '/files/' + uid, h, data[2000:6000], chunked=True))
        r = c.read_final('PATCH')
    _problem(r, 400, INCONSISTENT, 'completing chunked PATCH ending before Upload-Length')
    eq((r.header('Upload-Offset'), r.header('Upload-Complete')), ('6000', '?0'), '400 (Upload-Offset, Upload-Complete)')
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Complete'), h.header('Upload-Length')),
       ('6000', '?0', '10000'), 'HEAD after the short chunked completion (bytes it carried are kept)')
    eq(file_sha(_path(srv, uid)), sha(data[:6000]), 'stored prefix')
    _patch_ok(srv, uid, 6000, data[6000:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_reaching_known_length_with_incomplete_completes():
    srv = Server()
    data = os.urandom(8000)
    uid, _ = _create_ok(srv, False, len(data))
    _patch_ok(srv, uid, 0, data[:3000], False)
    _patch_ok(srv, uid, 3000, data[3000:], False, done=True)   # ?0 but the length is reached
    h = _head(srv, uid)
    eq((h.header('Upload-Offset'), h.header('Upload-Complete')), ('8000', '?1'), 'HEAD after reaching the length')
    r = _req(srv, 'GET', '/files/' + uid)
    eq((r.status, sha(r.body)), (200, sha(data)), 'GET of the completed upload (status, body sha256)')
    # the same in the creation itself
    uid2, r = _create_ok(srv, False, 500, data[:500])
    _check_complete(r, V, True, '201 of a creation that reached its Upload-Length')


def test_content_beyond_known_length_400():
    srv = Server()
    data = os.urandom(4000)
    uid, _ = _create_ok(srv, False, 4000, data[:1000])
    st = _state(srv, uid)
    r = _patch(srv, uid, 1000, data[1000:] + b'extra', False)
    _problem(r, 400, INCONSISTENT, 'PATCH beyond Upload-Length')
    eq(_state(srv, uid), st, 'upload after a PATCH beyond its length')
    r = _patch(srv, uid, 1000, data[1000:2000], False, extra=[('Upload-Length', '5000')])
    _problem(r, 400, INCONSISTENT, 'PATCH with an Upload-Length different from the upload\'s')
    eq(_state(srv, uid), st, 'upload after a PATCH with a different Upload-Length')
    _patch_ok(srv, uid, 1000, data[1000:], True, extra=[('Upload-Length', '4000')])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_complete_upload_replay_and_no_more_bytes():
    srv = Server()
    data = os.urandom(2000)
    uid, _ = _create_ok(srv, True, None, data)
    r = _patch(srv, uid, 2000, b'', True)
    eq(r.status, 204, 'empty ?1 PATCH at the end of a complete upload (replay): %r' % r.body)
    _check_complete(r, V, True, 'replay')
    eq(r.header('Upload-Offset'), '2000', 'replay Upload-Offset')
    r = _patch(srv, uid, 2000, b'more', True)
    _problem(r, 400, what='non-empty PATCH to a complete upload')
    r = _patch(srv, uid, 2000, b'more', False)
    _problem(r, 400, what='non-empty ?0 PATCH to a complete upload')
    r = _patch(srv, uid, 0, data, True)
    _problem(r, 409, MISMATCHING, 'PATCH at 0 of a complete upload')
    eq(r.header('Upload-Complete'), '?1', '409 Upload-Complete of a complete upload')
    eq(_state(srv, uid), (204, '2000', '?1', sha(data)), 'complete upload unchanged')


def test_progress_104_during_long_append():
    srv = Server('--sync-interval', '1M')
    data = os.urandom(6 << 20)
    uid, _ = _create_ok(srv, False, len(data))
    # Half the body, then wait: the periodic sync after 1 MiB must be
    # reported by a 104 while the body is still incomplete.
    h = _vh(V) + _ch(V, False) + [('Upload-Offset', '0'), ('Content-Type', PARTIAL)]
    with srv.conn() as c:
        c.send(build_head('PATCH', '/files/' + uid, h + [('Content-Length', str(4 << 20))]) + data[:2 << 20])
        i = c.read_response('PATCH')
        eq(i.status, 104, 'interim response while the body is half sent')
        eq(i.header('Location'), None, 'progress 104 must not carry Location')
        eq(i.header('Upload-Draft-Interop-Version'), str(V), 'progress 104 Upload-Draft-Interop-Version')
        v = i.header('Upload-Offset')
        check(v is not None and v.isdigit() and (1 << 20) <= int(v) <= (2 << 20),
              'progress 104 Upload-Offset %r: a durable offset within the bytes sent' % v)
        c.send(data[2 << 20:4 << 20])
        r = c.read_final('PATCH')
        eq(r.status, 204, 'long PATCH status')
        last = int(v)
        for i in r.interim:
            eq(i.status, 104, 'interim status')
            eq(i.header('Location'), None, 'progress 104 must not carry Location')
            check(last <= int(i.header('Upload-Offset')) <= 4 << 20, 'progress 104 offsets not increasing')
            last = int(i.header('Upload-Offset'))
    # without a version header the client announced no support for interim responses
    r = _patch(srv, uid, 4 << 20, data[4 << 20:], True, version=None)
    eq(r.status, 204, 'second long PATCH (no version header)')
    eq([i.status for i in r.interim], [], 'interim responses without Upload-Draft-Interop-Version')
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_rejected_append_keeps_connection_usable():
    srv = Server()
    data = os.urandom(10000)
    uid, _ = _create_ok(srv, False, len(data), data[:1000])
    h = _vh(V) + [('Upload-Complete', '?0'), ('Content-Type', PARTIAL)]
    with srv.conn() as c:
        # a 409 whose body was never wanted, pipelined with a HEAD and a right PATCH
        c.send(build_request('PATCH', '/files/' + uid, h + [('Upload-Offset', '0')], data[:3000]) +
               build_request('HEAD', '/files/' + uid, _vh(V)) +
               build_request('PATCH', '/files/' + uid, h + [('Upload-Offset', '1000')], data[1000:3000]))
        r = c.read_final('PATCH')
        _problem(r, 409, MISMATCHING, 'pipelined PATCH at a wrong offset')
        r = c.read_final('HEAD')
        eq((r.status, r.header('Upload-Offset')), (204, '1000'), 'pipelined HEAD after the 409')
        r = c.read_final('PATCH')
        eq((r.status, r.header('Upload-Offset')), (204, '3000'), 'pipelined PATCH after the 409 and HEAD')
    # Expect: 100-continue at a wrong offset: the answer comes without a 100 and without the body
    with srv.conn() as c:
        c.send(build_head('PATCH', '/files/' + uid, h + [('Upload-Offset', '5'), ('Content-Length', '3000'),
                                                         ('Expect', '100-continue')]))
        r = c.read_final('PATCH')
        _problem(r, 409, MISMATCHING, 'PATCH with Expect: 100-continue at a wrong offset')
        eq([i.status for i in r.interim], [], 'interim responses before the 409')
        eq(r.header('Upload-Offset'), '3000', '409 Upload-Offset')
    eq(_state(srv, uid), (204, '3000', '?0', sha(data[:3000])), 'upload afterwards')


def test_state_survives_restart():
    srv = Server()
    data = os.urandom(20000)
    a, _ = _create_ok(srv, False, 20000, data[:7000], version=3)
    b, _ = _create_ok(srv, False, None, data[:5000], extra=[_digest('sha256', b'wrong', 'Repr-Digest')])
    c, _ = _create_ok(srv, True, None, data[:3000])
    for how in ('kill9', 'term'):
        if how == 'kill9':
            srv.kill9()
            srv.start()
        else:
            srv.restart(hard=False)
        ha = _head(srv, a, version=3)
        eq((ha.status, ha.header('Upload-Offset'), ha.header('Upload-Incomplete'), ha.header('Upload-Length')),
           (204, '7000', '?1', '20000'), 'interop-3 HEAD of a partial upload after %s' % how)
        eq(_state(srv, b), (204, '5000', '?0', sha(data[:5000])), 'upload of unknown length after %s' % how)
        hb = _head(srv, b)
        eq(hb.header('Upload-Length'), None, 'Upload-Length of the unknown-length upload after %s' % how)
        eq(_state(srv, c), (204, '3000', '?1', sha(data[:3000])), 'complete upload after %s' % how)
    _patch_ok(srv, a, 7000, data[7000:], True, version=3)
    eq(file_sha(_path(srv, a)), sha(data), 'stored sha256 of the interop-3 upload')
    # the Repr-Digest of the creation is still remembered, and still wrong
    r = _patch(srv, b, 5000, data[5000:], True)
    _problem(r, 400, what='completing PATCH after restarts, wrong Repr-Digest from the creation')
    eq(_state(srv, b), (204, '5000', '?0', sha(data[:5000])), 'upload after the Repr-Digest mismatch')
    _patch_ok(srv, b, 5000, data[5000:], True, extra=[_digest('sha256', data, 'Repr-Digest')])


# ---------------------------------------------------------------------------
# cancellation, download, protocol separation
# ---------------------------------------------------------------------------

def test_delete_cancels():
    srv = Server()
    other = Other(srv)
    uid, _ = _create_ok(srv, False, 10000, os.urandom(3000))
    check(os.path.exists(_path(srv, uid)), 'data file missing')
    r = _req(srv, 'DELETE', '/files/' + uid, _vh(V))
    eq(r.status, 204, 'DELETE status')
    eq(_head(srv, uid).status, 404, 'HEAD after DELETE')
    eq(_patch(srv, uid, 3000, b'abc', False).status, 404, 'PATCH after DELETE')
    eq(_req(srv, 'DELETE', '/files/' + uid, _vh(V)).status, 404, 'second DELETE')
    check(not os.path.exists(_path(srv, uid)), 'data file still present after DELETE')
    # a complete upload can be deleted too
    uid2, _ = _create_ok(srv, True, None, b'done')
    eq(_req(srv, 'DELETE', '/files/' + uid2, [('Upload-Complete', '?1')]).status, 204, 'DELETE of a complete upload')
    eq(_req(srv, 'GET', '/files/' + uid2).status, 404, 'GET after DELETE')
    other.check('DELETE')


def test_get_downloads_complete_upload():
    srv = Server()
    data = b'hello ietf\n' * 500
    uid, _ = _create_ok(srv, True, None, data, ctype='text/plain; charset=utf-8',
                        extra=[('Content-Disposition', 'attachment; filename="notes.txt"')])
    r = _req(srv, 'GET', '/files/' + uid)
    eq((r.status, r.body), (200, data), 'GET (status, body)')
    eq(r.header('Content-Type'), 'text/plain', 'GET Content-Type (from the creation)')
    check('filename="notes.txt"' in (r.header('Content-Disposition') or ''),
          'GET Content-Disposition %r lacks filename="notes.txt"' % r.header('Content-Disposition'))
    # built up by appends, with a token filename; an unsafe type is served as a download
    uid2, _ = _create_ok(srv, False, None, data[:100], ctype='text/html',
                         extra=[('Content-Disposition', 'inline; filename=page.html')])
    _patch_ok(srv, uid2, 100, data[100:], True)
    r = _req(srv, 'GET', '/files/' + uid2)
    eq((r.status, r.body), (200, data), 'GET of the appended upload (status, body)')
    eq(r.header('Content-Type'), 'application/octet-stream', 'GET Content-Type of text/html')
    check('filename="page.html"' in (r.header('Content-Disposition') or ''),
          'GET Content-Disposition %r lacks filename="page.html"' % r.header('Content-Disposition'))


def test_protocols_keep_uploads_apart():
    srv = Server()
    data = os.urandom(2000)
    iu, _ = _create_ok(srv, False, 2000, data[:500])
    r = _req(srv, 'POST', '/files/', [('Tus-Resumable', '1.0.0'), ('Upload-Length', '2000')])
    eq(r.status, 201, 'tus creation')
    tu = _loc_id(r.header('Location'), 'tus creation')
    tus = [('Tus-Resumable', '1.0.0')]
    # tus requests to the IETF upload
    eq(_req(srv, 'HEAD', '/files/' + iu, tus).status, 404, 'tus HEAD of an IETF upload')
    r = _req(srv, 'PATCH', '/files/' + iu, tus + [('Upload-Offset', '500'), ('Content-Type', 'application/offset+octet-stream')],
             data[500:])
    eq(r.status, 404, 'tus PATCH of an IETF upload')
    eq(_req(srv, 'DELETE', '/files/' + iu, tus).status, 404, 'tus DELETE of an IETF upload')
    # IETF requests to the tus upload
    eq(_head(srv, tu).status, 404, 'IETF HEAD of a tus upload')
    eq(_patch(srv, tu, 0, data, True).status, 404, 'IETF PATCH of a tus upload')
    eq(_req(srv, 'DELETE', '/files/' + tu, _vh(V)).status, 404, 'IETF DELETE of a tus upload')
    eq(_state(srv, iu), (204, '500', '?0', sha(data[:500])), 'IETF upload afterwards')
    r = _req(srv, 'HEAD', '/files/' + tu, tus)
    eq((r.status, r.header('Upload-Offset'), r.header('Upload-Length')), (200, '0', '2000'), 'tus upload afterwards')
    _patch_ok(srv, iu, 500, data[500:], True)
    eq(file_sha(_path(srv, iu)), sha(data), 'stored sha256')


# ---------------------------------------------------------------------------
# digests
# ---------------------------------------------------------------------------

def test_content_digest_match():
    srv = Server()
    data = os.urandom(50000)
    uid, _ = _create_ok(srv, False, None, data[:10000], extra=[_digest('sha256', data[:10000])])
    _patch_ok(srv, uid, 10000, data[10000:30000], False, extra=[_digest('sha512', data[10000:30000])])
    both = ('Content-Digest', '%s, %s' % (_digest('sha256', data[30000:])[1], _digest('sha512', data[30000:])[1]))
    _patch_ok(srv, uid, 30000, data[30000:], True, extra=[both])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    uid2, _ = _create_ok(srv, True, None, data, extra=[_digest('sha512', data)])
    eq(file_sha(_path(srv, uid2)), sha(data), 'stored sha256 of a complete creation with Content-Digest')


def test_content_digest_mismatch_not_appended():
    srv = Server()
    other = Other(srv)
    data = os.urandom(20000)
    uid, _ = _create_ok(srv, False, None, data[:5000])
    st = _state(srv, uid)
    for algo in ('sha256', 'sha512'):
        for complete in (False, True):
            r = _patch(srv, uid, 5000, data[5000:], complete, extra=[_digest(algo, data[5000:-1])])
            _problem(r, 400, what='PATCH with a wrong %s Content-Digest (complete=%r)' % (algo, complete))
            eq(_state(srv, uid), st, 'upload after a digest mismatch')
            eq(os.path.getsize(_path(srv, uid)), 5000, 'data file length after a digest mismatch')
    # sha-512 wins when both are given: a wrong sha-512 with a right sha-256 fails
    v = '%s, %s' % (_digest('sha256', data[5000:])[1], _digest('sha512', b'nope')[1])
    r = _patch(srv, uid, 5000, data[5000:], True, extra=[('Content-Digest', v)])
    _problem(r, 400, what='PATCH with a right sha-256 and a wrong sha-512')
    eq(_state(srv, uid), st, 'upload after the sha-512 mismatch')
    # a creation whose body does not match: created (104 said where) but nothing appended
    r = _create(srv, True, None, data, extra=[_digest('sha256', b'other')])
    _problem(r, 400, what='complete creation with a wrong Content-Digest')
    check(r.header('Upload-Complete') != '?1', 'a creation with a wrong digest says complete')
    check(len(r.interim) >= 1 and r.interim[0].status == 104, 'no 104 before the 400 of the creation: %r' % r.interim)
    cu = _loc_id(r.interim[0].header('Location'), '104')
    h = _head(srv, cu)
    eq((h.status, h.header('Upload-Offset'), h.header('Upload-Complete')), (204, '0', '?0'),
       'the upload created by a creation with a wrong digest')
    eq(os.path.getsize(_path(srv, cu)), 0, 'data file of the creation with a wrong digest')
    _patch_ok(srv, uid, 5000, data[5000:], True, extra=[_digest('sha256', data[5000:])])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    other.check('digest mismatches')


def test_content_digest_malformed_400_unknown_ignored():
    srv = Server()
    data = os.urandom(4000)
    uid, _ = _create_ok(srv, False, None, data[:1000])
    st = _state(srv, uid)
    body = data[1000:2000]
    short = base64.b64encode(hashlib.sha256(body).digest()[:31]).decode()
    bad = ['sha-256=abc', 'sha-256=:%s:' % short, 'sha-256=:AAAA:', 'sha-512=:%s:' % _b64('sha256', body),
           'sha-256=:not base64!:', 'sha-256', ';;;', 'sha-256=:%s' % _b64('sha256', body), '=:AAAA:',
           'sha-256=%s' % _b64('sha256', body)]
    for v in bad:
        r = _patch(srv, uid, 1000, body, False, extra=[('Content-Digest', v)])
        _problem(r, 400, what='PATCH with Content-Digest %r' % v)
        eq(_state(srv, uid), st, 'upload after Content-Digest %r' % v)
    for v in bad[:3]:
        r = _create(srv, True, None, body, extra=[('Content-Digest', v)])
        _problem(r, 400, what='creation with Content-Digest %r' % v)
        r = _patch(srv, uid, 1000, body, True, extra=[('Repr-Digest', v)])
        _problem(r, 400, what='PATCH with Repr-Digest %r' % v)
        eq(_state(srv, uid), st, 'upload after Repr-Digest %r' % v)
    # only algorithms it does not know: ignored, even with a wrong value
    _patch_ok(srv, uid, 1000, body, False, extra=[('Content-Digest', 'md5=:%s:' % _b64('md5', b'wrong'))])
    _patch_ok(srv, uid, 2000, data[2000:], True,
              extra=[('Content-Digest', 'md5=:AAAA:, crc32=:AAAAAA==:, sha-256=:%s:' % _b64('sha256', data[2000:]))])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')


def test_repr_digest_from_creation_checked_at_completion():
    srv = Server()
    data = os.urandom(30000)
    # right digest at creation; the completing PATCH does not repeat it
    uid, _ = _create_ok(srv, False, None, data[:10000], extra=[_digest('sha256', data, 'Repr-Digest')])
    _patch_ok(srv, uid, 10000, data[10000:20000], False)   # not complete: not checked yet
    _patch_ok(srv, uid, 20000, data[20000:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    # wrong digest at creation: the completing request's bytes are dropped
    uid2, _ = _create_ok(srv, False, None, data[:10000], extra=[_digest('sha512', b'something else', 'Repr-Digest')])
    r = _patch(srv, uid2, 10000, data[10000:], True)
    _problem(r, 400, what='completing PATCH, Repr-Digest from the creation does not match')
    eq(_state(srv, uid2), (204, '10000', '?0', sha(data[:10000])), 'upload after the Repr-Digest mismatch')
    # a completing request with its own (right) Repr-Digest replaces the remembered one
    _patch_ok(srv, uid2, 10000, data[10000:], True, extra=[_digest('sha256', data, 'Repr-Digest')])
    eq(file_sha(_path(srv, uid2)), sha(data), 'stored sha256 (own Repr-Digest)')


def test_repr_digest_mismatch_on_completing_patch():
    srv = Server()
    data = os.urandom(20000)
    uid, _ = _create_ok(srv, False, len(data), data[:8000])
    st = _state(srv, uid)
    # only the part of this request would match: Repr-Digest is of the whole upload
    r = _patch(srv, uid, 8000, data[8000:], True, extra=[_digest('sha256', data[8000:], 'Repr-Digest')])
    _problem(r, 400, what='completing PATCH with a Repr-Digest of its own part only')
    eq(_state(srv, uid), st, 'upload after the Repr-Digest mismatch')
    eq(os.path.getsize(_path(srv, uid)), 8000, 'data file length after the mismatch')
    # a Repr-Digest on a request that does not complete is not checked yet
    _patch_ok(srv, uid, 8000, data[8000:9000], False, extra=[_digest('sha256', data, 'Repr-Digest')])
    _patch_ok(srv, uid, 9000, data[9000:], True, extra=[_digest('sha512', data, 'Repr-Digest')])
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    # a complete creation with a wrong Repr-Digest
    r = _create(srv, True, None, data, extra=[_digest('sha256', data[1:], 'Repr-Digest')])
    _problem(r, 400, what='complete creation with a wrong Repr-Digest')


def test_want_repr_digest():
    srv = Server()
    data = os.urandom(40000)
    uid, r = _create_ok(srv, False, None, data[:15000], extra=[('Want-Repr-Digest', 'sha-256=1')])
    eq(r.header('Repr-Digest'), None, 'Repr-Digest on a creation that does not complete')
    r = _patch_ok(srv, uid, 15000, data[15000:], True, extra=[('Want-Repr-Digest', 'sha-256=1')])
    eq(r.header('Repr-Digest'), 'sha-256=:%s:' % _b64('sha256', data), 'Repr-Digest (sha-256) of the whole upload')
    uid2, r = _create_ok(srv, True, None, data, extra=[('Want-Repr-Digest', 'sha-512=3, sha-256=1')])
    eq(r.header('Repr-Digest'), 'sha-512=:%s:' % _b64('sha512', data), 'Repr-Digest (sha-512) of a complete creation')
    # the length is reached with ?0: that completes too
    uid3, _ = _create_ok(srv, False, len(data), data[:100])
    r = _patch_ok(srv, uid3, 100, data[100:], False, done=True, extra=[('Want-Repr-Digest', 'sha-256=5')])
    eq(r.header('Repr-Digest'), 'sha-256=:%s:' % _b64('sha256', data), 'Repr-Digest when the length is reached')


# ---------------------------------------------------------------------------
# hand-over, crash
# ---------------------------------------------------------------------------

def test_hung_patch_head_handover():
    srv = Server()
    data = os.urandom(3 << 20)
    uid, _ = _create_ok(srv, False, len(data), data[:1000])
    sent = (1 << 20) + 4321
    hung = _partial_patch(srv, uid, 1000, data[1000:], sent)
    try:
        time.sleep(0.5)
        try:
            h = _head(srv, uid, timeout=2.0)
        except (AssertionError, socket.timeout) as e:
            raise AssertionError('HEAD did not answer within 2 s while a PATCH of the upload hangs: %s' % e)
        eq((h.status, h.header('Upload-Offset'), h.header('Upload-Complete')), (204, str(1000 + sent), '?0'),
           'HEAD during a hung PATCH (status, Upload-Offset, Upload-Complete)')
        eq(file_sha(_path(srv, uid)), sha(data[:1000 + sent]), 'stored prefix')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
        try:
            hung.send(data[1000 + sent:1000 + sent + 100000])    # late bytes from the old connection
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)
        eq(_offset(srv, uid), 1000 + sent, 'offset after late bytes from the old connection')
        _patch_ok(srv, uid, 1000 + sent, data[1000 + sent:], True)
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
    finally:
        hung.close()


def test_hung_patch_patch_handover():
    srv = Server()
    data = os.urandom(2 << 20)
    uid, _ = _create_ok(srv, False, None)
    sent = 777777
    hung = _partial_patch(srv, uid, 0, data, sent)
    try:
        time.sleep(0.5)
        c = srv.conn(timeout=3.0)
        try:
            h = _vh(V) + [('Upload-Complete', '?1'), ('Upload-Offset', str(sent)), ('Content-Type', PARTIAL)]
            c.send(build_request('PATCH', '/files/' + uid, h, data[sent:]))
            r = c.read_final('PATCH')
        finally:
            c.close()
        eq((r.status, r.header('Upload-Offset'), r.header('Upload-Complete')), (204, str(len(data)), '?1'),
           'PATCH resuming at the hung PATCH\'s count (status, Upload-Offset, Upload-Complete)')
        eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
    finally:
        hung.close()


def test_hung_patch_delete_handover():
    srv = Server()
    other = Other(srv)
    data = os.urandom(2 << 20)
    uid, _ = _create_ok(srv, False, len(data))
    hung = _partial_patch(srv, uid, 0, data, 500000)
    try:
        time.sleep(0.5)
        r = _req(srv, 'DELETE', '/files/' + uid, _vh(V), timeout=2.0)
        eq(r.status, 204, 'DELETE during a hung PATCH')
        eq(_head(srv, uid).status, 404, 'HEAD after DELETE')
        check(not os.path.exists(_path(srv, uid)), 'data file still present after DELETE')
        closed, _ = hung.wait_closed(2)
        check(closed, 'the hung PATCH connection was not closed by the server')
        other.check('DELETE during a hung PATCH')
    finally:
        hung.close()


def test_kill9_mid_patch_then_resume():
    srv = Server('--sync-interval', '256K')
    data = os.urandom(5 << 20)
    n = len(data)
    uid, _ = _create_ok(srv, False, n, ctype='image/png', extra=[('Content-Disposition', 'attachment; filename="k.png"')])
    s1 = (1 << 20) + 12345
    _patch_ok(srv, uid, 0, data[:s1], False)          # acknowledged: s1
    more = 2 << 20
    c = _partial_patch(srv, uid, s1, data[s1:], more)
    time.sleep(0.5)
    srv.kill9()
    c.close()
    srv.start()
    h = _head(srv, uid)
    eq((h.status, h.header('Upload-Complete'), h.header('Upload-Length')), (204, '?0', str(n)),
       'HEAD after kill -9 and restart (status, Upload-Complete, Upload-Length)')
    s2 = int(h.header('Upload-Offset'))
    check(s1 <= s2 <= s1 + more, 'HEAD Upload-Offset after kill -9 = %d, expected between %d (acknowledged) and %d (sent)'
          % (s2, s1, s1 + more))
    stored = read_file(_path(srv, uid))
    check(len(stored) >= s2, 'data file (%d bytes) shorter than the offset %d' % (len(stored), s2))
    eq(sha(stored[:s2]), sha(data[:s2]), 'sha256 of the stored prefix [0,%d)' % s2)
    r = _patch(srv, uid, 0, b'x', False)
    eq((r.status, r.header('Upload-Offset')), (409, str(s2)), 'PATCH at a wrong offset after restart')
    _patch_ok(srv, uid, s2, data[s2:], True)
    eq(file_sha(_path(srv, uid)), sha(data), 'stored sha256 after resume')
    r = _req(srv, 'GET', '/files/' + uid)
    eq((r.status, r.header('Content-Type'), sha(r.body)), (200, 'image/png', sha(data)),
       'GET after the restart (status, Content-Type, body sha256)')


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------

def test_bad_inputs_leave_others_intact():
    srv = Server()
    art = Sentinel(srv)
    other = Other(srv)
    done_data = os.urandom(3000)
    done, _ = _create_ok(srv, True, None, done_data)
    uid, _ = _create_ok(srv, False, 9000, b'z' * 3000)
    st = _state(srv, uid)
    bad = [
        ('PATCH', uid, [('Upload-Complete', '?0'), ('Upload-Offset', '3000')], b'x'),   # no Content-Type (415)
        ('PATCH', uid, [('Upload-Complete', '?0'), ('Upload-Offset', '3000'), ('Content-Type', PARTIAL),
                        ('Upload-Length', 'abc')], b'x'),
        ('PATCH', uid, [('Upload-Complete', '?0'), ('Upload-Offset', '3000'), ('Content-Type', PARTIAL),
                        ('Upload-Length', '2999')], b'x'),
        ('PATCH', uid, [('Upload-Complete', '?0'), ('Upload-Offset', '18446744073709551615'), ('Content-Type', PARTIAL)], b'x'),
        ('PATCH', uid, [('Upload-Complete', '?0'), ('Upload-Offset', '999999999999999'), ('Content-Type', PARTIAL)], b'x'),
        ('PATCH', uid, [('Upload-Complete', '?1'), ('Upload-Offset', '3000'), ('Content-Type', PARTIAL),
                        ('Upload-Length', '999999999999999')], b'x'),
        ('PUT', uid, [('Upload-Complete', '?1')], b'x'),
        ('POST', uid, [('Upload-Complete', '?1')], b'x'),
        ('PATCH', '', [('Upload-Complete', '?1'), ('Upload-Offset', '0'), ('Content-Type', PARTIAL)], b'x'),
        ('HEAD', '../' + uid, [], b''),
        ('PATCH', done, [('Upload-Complete', '?1'), ('Upload-Offset', '3000'), ('Content-Type', PARTIAL)], b'tail'),
        ('POST', '', [('Upload-Complete', '?0'), ('Upload-Length', '100'), ('Upload-Metadata', 'bad key here')], b''),
    ]
    for method, target, h, body in bad:
        r = _req(srv, method, '/files/' + target, _vh(V) + h, body)
        check(400 <= r.status < 500, '%s /files/%s with %r: expected a 4xx, got %d %r' % (method, target, h, r.status, r.body))
    eq(_state(srv, uid), st, 'upload after bad requests')
    eq(_state(srv, done), (204, '3000', '?1', sha(done_data)), 'complete upload after bad requests')
    other.check('bad requests')
    art.check('bad IETF requests')
    _patch_ok(srv, uid, 3000, b'y' * 6000, True)


def test_unversioned_client_can_resume_and_cancel():
    # A client of the final protocol sends no version and nothing on HEAD or
    # DELETE that names the protocol: the upload itself says it is a draft one.
    srv = Server()
    uid, _ = _create_ok(srv, False, 100, b'x' * 40, version=None)
    r = _req(srv, 'HEAD', '/files/' + uid)
    eq((r.status, r.header('Upload-Offset'), r.header('Upload-Complete')), (204, '40', '?0'),
       'HEAD without any protocol field on a draft upload')
    r = _req(srv, 'DELETE', '/files/' + uid)
    eq(r.status, 204, 'DELETE without any protocol field on a draft upload')
    r = _req(srv, 'HEAD', '/files/' + uid, _vh(V))
    eq(r.status, 404, 'HEAD after that DELETE')


def test_overflowing_append_invalidates_upload():
    # Content past a known length: the draft has the resource invalidated and
    # every further request refused.
    srv = Server()
    uid, _ = _create_ok(srv, False, 10, b'abcd')
    h = _vh(V) + _ch(V, False) + [('Upload-Offset', '4'), ('Content-Type', PARTIAL)]
    with srv.conn() as c:
        c.send(build_request('PATCH', '/files/' + uid, h, b'0123456789ab', chunked=True))
        r = c.read_final('PATCH')
    _problem(r, 400, INCONSISTENT, 'chunked append past Upload-Length')
    r = _req(srv, 'HEAD', '/files/' + uid, _vh(V))
    eq(r.status, 404, 'HEAD after the overflowing append')
    r = _patch(srv, uid, 10, b'', True)
    eq(r.status, 404, 'completing PATCH after the overflowing append')
