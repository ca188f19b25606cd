"""--expire-after: Upload-Expires on tus responses, expired uploads answered 410/404
and swept from disk, activity keeping an upload alive, the article protocol forgetting
expired uploads."""
import email.utils
import os
import time

from harness import Server, check, eq, rand_id

TUS = [('Tus-Resumable', '1.0.0')]
OCTETS = [('Content-Type', 'application/offset+octet-stream')]


def _tus(srv, method, path, headers=(), body=b''):
    with srv.conn() as c:
        return c.request(method, path, TUS + list(headers), body)


def _create(srv, length):
    r = _tus(srv, 'POST', '/files/', [('Upload-Length', str(length))])
    eq(r.status, 201, 'creation')
    return r, r.header('location')


def _expires(r):
    v = r.header('upload-expires')
    check(v is not None, 'Upload-Expires missing (headers %r)' % r.headers)
    return email.utils.parsedate_to_datetime(v).timestamp()


def test_upload_expires_header_and_sweep():
    srv = Server('--expire-after', '2')
    before = time.time()
    r, loc = _create(srv, 100)
    exp = _expires(r)
    check(before + 1 <= exp <= time.time() + 3, 'Upload-Expires %s not about now + 2 s' % exp)
    r = _tus(srv, 'PATCH', loc, [('Upload-Offset', '0')] + OCTETS, b'x' * 10)
    eq(r.status, 204, 'PATCH')
    _expires(r)  # MUST be on every PATCH response of an expiring upload
    key = loc.rsplit('/', 1)[1]
    data = os.path.join(srv.dir, 'uploads', key)
    check(os.path.exists(data), 'data file exists before expiry')
    time.sleep(3.5)
    r = _tus(srv, 'HEAD', loc)
    check(r.status in (404, 410), 'HEAD after expiry: %d (want 410 or 404)' % r.status)
    check(r.header('upload-offset') is None, 'no Upload-Offset on a gone upload')
    deadline = time.time() + 5
    while os.path.exists(data) and time.time() < deadline:
        time.sleep(0.2)
    check(not os.path.exists(data) and not os.path.exists(data + '.meta'), 'expired upload swept from disk')
    eq(_tus(srv, 'PATCH', loc, [('Upload-Offset', '10')] + OCTETS, b'y').status in (404, 410), True,
       'PATCH on a swept upload is 404/410')


def test_activity_keeps_upload_alive():
    srv = Server('--expire-after', '2')
    r, loc = _create(srv, 1000)
    off = 0
    for _ in range(6):  # 3 s of activity, longer than the 2 s lifetime
        r = _tus(srv, 'PATCH', loc, [('Upload-Offset', str(off))] + OCTETS, b'z' * 10)
        eq(r.status, 204, 'PATCH while active')
        off += 10
        time.sleep(0.5)
    r = _tus(srv, 'HEAD', loc)
    eq((r.status, r.header('upload-offset')), (200, str(off)), 'HEAD of an upload kept alive by PATCHes')


def test_finished_upload_does_not_expire():
    srv = Server('--expire-after', '1')
    r, loc = _create(srv, 5)
    r = _tus(srv, 'PATCH', loc, [('Upload-Offset', '0')] + OCTETS, b'hello')
    eq(r.status, 204, 'completing PATCH')
    check(r.header('upload-expires') is None, 'a finished upload has no Upload-Expires')
    time.sleep(2.5)
    r = _tus(srv, 'HEAD', loc)
    eq((r.status, r.header('upload-offset')), (200, '5'), 'finished upload still there after the lifetime')


def test_no_expiry_by_default():
    srv = Server()
    r, loc = _create(srv, 5)
    check(r.header('upload-expires') is None, 'no Upload-Expires without --expire-after')
    with srv.conn() as c:
        r = c.request('OPTIONS', '/files/')
    check('expiration' in (r.header('tus-extension') or ''), 'expiration advertised')


def test_article_upload_expires():
    srv = Server('--expire-after', '1')
    fid = rand_id('exp')
    r = srv.upload(fid, b'a' * 100, start=0, size=1000)
    eq((r.status, r.body), (200, b''), 'partial article upload')
    eq(srv.status(fid), 100, '/status before expiry')
    time.sleep(2)
    eq(srv.status(fid), 0, '/status after expiry: forgotten')
    r = srv.upload(fid, b'b' * 50, start=100, size=1000)
    eq(r.status, 400, 'resume of an expired article upload')
    r = srv.upload(fid, b'c' * 1000, start=0, size=1000)
    eq((r.status, r.body), (200, b'Success 1000'), 'fresh start after expiry')
