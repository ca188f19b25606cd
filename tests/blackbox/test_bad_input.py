"""Bad input on the protocol endpoints; after each, an unrelated upload must be intact."""

import os
import re

from harness import (Sentinel, Server, build_head, build_request, check, eq,
                     expect_success, file_sha, rand_id, read_file, sha, tree, upload_headers)


def _raw(srv, raw, method='POST'):
    with srv.conn() as c:
        c.send(raw)
        return c.read_final(method)


def test_missing_file_id():
    srv = Server()
    s = Sentinel(srv)
    r = _raw(srv, build_request('POST', '/upload', [('X-Start-Byte', '0')], b'hello'))
    eq(r.status, 400, 'POST /upload without X-File-Id')
    s.check('POST without X-File-Id')
    r = _raw(srv, build_request('GET', '/status', []), 'GET')
    eq(r.status, 400, 'GET /status without X-File-Id')
    r = _raw(srv, build_request('POST', '/upload', [('X-File-Id', ''), ('X-Start-Byte', '0')], b'hello'))
    eq(r.status, 400, 'POST /upload with empty X-File-Id')
    r = _raw(srv, build_request('GET', '/status', [('X-File-Id', '')]), 'GET')
    eq(r.status, 400, 'GET /status with empty X-File-Id')
    s.check('missing/empty X-File-Id')


def test_file_id_length_limit():
    srv = Server()
    s = Sentinel(srv)
    long_id = 'L' * 2000
    r = _raw(srv, build_request('POST', '/upload', upload_headers(long_id, 0), b'data'))
    eq(r.status, 431, 'POST /upload with 2000-byte X-File-Id')
    r = _raw(srv, build_request('GET', '/status', [('X-File-Id', long_id)]), 'GET')
    eq(r.status, 431, 'GET /status with 2000-byte X-File-Id')
    r = _raw(srv, build_request('GET', '/status', [('X-File-Id', 'M' * 1025)]), 'GET')
    eq(r.status, 431, 'GET /status with 1025-byte X-File-Id')
    s.check('2000-byte id')
    ok_id = 'K' * 1024
    eq(srv.status(ok_id), 0, '/status of a 1024-byte id')
    r = srv.upload(ok_id, b'abc' * 1000, start=0, size=6000)
    eq((r.status, r.body), (200, b''), 'partial upload with 1024-byte id')
    eq(srv.status(ok_id), 3000, '/status of 1024-byte id')
    s.check('1024-byte id')


WEIRD_IDS = [
    '../../etc/passwd',
    'etc/passwd',
    'passwd',
    '/etc/passwd',
    '..',
    '.',
    '../' * 20 + 'tmp/x',
    'a b  c   d',
    'фото відпустки.jpg-1234-1700000000000',
    '日本語ファイル名.png',
    'x\\..\\..\\y',
    '%2e%2e%2f%2e%2e%2fescape',
    'uploads',
    '.meta',
]


def test_weird_ids_are_plain_ids():
    srv = Server()
    s = Sentinel(srv)
    passwd_before = file_sha('/etc/passwd') if os.path.exists('/etc/passwd') else None
    datas = {}
    for i, fid in enumerate(WEIRD_IDS):
        d = os.urandom(10000 + i)
        k = 100 + i * 7
        r = srv.upload(fid, d[:k], start=0, size=len(d))
        eq((r.status, r.body), (200, b''), 'partial upload for id %r' % fid)
        datas[fid] = (d, k)
    for fid, (d, k) in datas.items():
        eq(srv.status(fid), k, '/status for id %r' % fid)
        eq(read_file(srv.data_path(fid)), d[:k], 'stored bytes for id %r' % fid)
    _check_layout(srv)
    for fid, (d, k) in datas.items():
        r = srv.upload(fid, d[k:], start=k, size=len(d))
        expect_success(r, len(d), 'completion for id %r' % fid)
        eq(srv.status(fid), 0, '/status after completion for id %r' % fid)
    _check_layout(srv)
    shas = set(file_sha(p) for p in srv.data_files())
    for fid, (d, k) in datas.items():
        check(sha(d) in shas, 'no stored file with the content uploaded under id %r' % fid)
    if passwd_before:
        eq(file_sha('/etc/passwd'), passwd_before, '/etc/passwd sha256')
    s.check('weird ids')


def _check_layout(srv):
    # nothing outside DIR: the temp base holds only what the harness made
    eq(sorted(os.listdir(srv.base)), ['data', 'web'], 'entries of the temp base dir (parent of DIR)')
    eq(sorted(os.listdir(srv.web)), ['app.js', 'index.html'], 'entries of the web dir')
    for rel in tree(srv.dir):
        ok = (rel in ('uploads', 'article')
              or re.fullmatch(r'uploads/[0-9a-f]{32}(\.meta)?', rel)
              or re.fullmatch(r'article/[0-9a-f]{64}', rel))
        check(ok, 'unexpected entry in DIR: %r (tree %r)' % (rel, tree(srv.dir)))


BAD_NUMBERS = ['abc', '-1', '1e3', '+5', '0x10', '', '99999999999999999999999', '1 2', '12a', '1.0',
               '\u0661\u0662', '18446744073709551616']


def test_bad_start_byte_values():
    srv = Server()
    s = Sentinel(srv)
    fid = rand_id('victim')
    data = os.urandom(400000)
    held = 150000
    r = srv.upload(fid, data[:held], start=0, size=len(data))
    eq(r.status, 200, 'setup')
    path = srv.data_path(fid)
    for v in BAD_NUMBERS:
        for size in (None, len(data)):
            h = [('X-File-Id', fid), ('X-Start-Byte', v)]
            if size is not None:
                h.append(('X-File-Size', str(size)))
            r = _raw(srv, build_request('POST', '/upload', h, data[held:held + 1000]))
            eq(r.status, 400, 'X-Start-Byte %r (X-File-Size %r): status' % (v, size))
            eq(srv.status(fid), held, '/status of the existing upload after X-Start-Byte %r' % v)
            eq(os.path.getsize(path), held, 'data file length after X-Start-Byte %r' % v)
    eq(file_sha(path), sha(data[:held]), 'stored prefix sha256')
    # surrounding spaces are allowed
    r = _raw(srv, build_request('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '  %d  ' % held),
                                                    ('X-File-Size', str(len(data)))], data[held:]))
    expect_success(r, len(data), 'X-Start-Byte with surrounding spaces')
    eq(file_sha(path), sha(data), 'stored sha256')
    s.check('bad X-Start-Byte values')


def test_bad_file_size_values():
    srv = Server()
    s = Sentinel(srv)
    fid = rand_id('victim-size')
    data = os.urandom(400000)
    held = 123456
    r = srv.upload(fid, data[:held], start=0, size=len(data))
    eq(r.status, 200, 'setup')
    path = srv.data_path(fid)
    for v in BAD_NUMBERS:
        for start in (0, held):
            h = [('X-File-Id', fid), ('X-Start-Byte', str(start)), ('X-File-Size', v)]
            r = _raw(srv, build_request('POST', '/upload', h, data[start:start + 1000]))
            eq(r.status, 400, 'X-File-Size %r (X-Start-Byte %d): status' % (v, start))
            eq(srv.status(fid), held, '/status after X-File-Size %r start %d' % (v, start))
    eq(os.path.getsize(path), held, 'data file length')
    eq(file_sha(path), sha(data[:held]), 'stored prefix sha256')
    # size different from the one recorded
    for other in (len(data) + 1, len(data) - 1, held + 10):
        r = srv.upload(fid, data[held:held + 10], start=held, size=other)
        eq(r.status, 400, 'X-File-Size %d differs from recorded %d' % (other, len(data)))
        eq(srv.status(fid), held, '/status after mismatching X-File-Size')
    # fresh id with a bad size: nothing created
    fresh = rand_id('fresh-bad-size')
    r = srv.upload(fresh, b'x' * 10, start=None, extra=[('X-File-Size', '1e3')])
    eq(r.status, 400, 'fresh id, X-File-Size 1e3')
    eq(srv.status(fresh), 0, '/status of fresh id')
    check(not srv.has_article_link(fresh), 'article symlink created for a rejected request')
    s.check('bad X-File-Size values')


def test_body_longer_than_file_size():
    srv = Server()
    s = Sentinel(srv)
    fresh = rand_id('over-fresh')
    r = srv.upload(fresh, os.urandom(2000), start=0, size=1000)
    eq(r.status, 413, 'fresh id, X-File-Size 1000, Content-Length 2000')
    eq(srv.status(fresh), 0, '/status of the fresh id after 413')
    fid = rand_id('over')
    data = os.urandom(300000)
    held = 100000
    r = srv.upload(fid, data[:held], start=0, size=len(data))
    eq(r.status, 200, 'setup')
    path = srv.data_path(fid)
    r = srv.upload(fid, data[held:] + b'EXTRA' * 20, start=held, size=len(data))
    eq(r.status, 413, 'resume with body 100 bytes past X-File-Size')
    eq(srv.status(fid), held, '/status after 413 (Content-Length known: nothing written)')
    eq(os.path.getsize(path), held, 'data file length after 413')
    eq(file_sha(path), sha(data[:held]), 'data file sha256 after 413')
    s.check('body longer than X-File-Size')


def _connection_sane_after(c, r, what):
    """After an early final response the server either says Connection: close and
    closes, or (when it had already read the whole message) keeps the connection
    usable: a following request on it must get a correct answer."""
    if (r.header('connection') or '').lower() == 'close':
        closed, _ = c.wait_closed(3)
        check(closed, 'connection not closed within 3 s after %s with Connection: close' % what)
        return
    c.send(build_head('GET', '/status', [('X-File-Id', 'no-such-id-after-413')]))
    r2 = c.read_final('GET')
    eq((r2.status, r2.body), (200, b'0'), 'request on the kept-alive connection after %s' % what)


def test_chunked_body_overflowing_file_size():
    srv = Server()
    s = Sentinel(srv)
    fid = rand_id('over-chunked')
    data = os.urandom(8000)
    limit = 5000
    body = b''.join(b'%x\r\n' % 1000 + data[i:i + 1000] + b'\r\n' for i in range(0, 8000, 1000)) + b'0\r\n\r\n'
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 0, limit) + [('Transfer-Encoding', 'chunked')]))
        try:
            c.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_final('POST')
        eq(r.status, 413, 'chunked body overflowing X-File-Size')
        _connection_sane_after(c, r, 'chunked 413')
    st = srv.status(fid)
    check(st <= limit, '/status %d > X-File-Size %d' % (st, limit))
    for p in srv.data_files():
        if p == s.path:
            continue
        d = read_file(p)
        check(len(d) <= limit, 'a data file holds %d bytes > X-File-Size %d' % (len(d), limit))
        eq(d, data[:len(d)], 'kept bytes are a prefix of what was sent')
    s.check('chunked overflow')


def test_max_size():
    srv = Server('--max-size', '1M')
    s = Sentinel(srv)
    lim = 1 << 20
    fid = rand_id('max')
    r = srv.upload(fid, os.urandom(1000), start=0, size=lim + 1)
    eq(r.status, 413, 'X-File-Size over --max-size')
    eq(srv.status(fid), 0, '/status after 413')
    r = srv.upload(fid, os.urandom(lim + 1), start=0)
    eq(r.status, 413, 'Content-Length over --max-size (no X-File-Size)')
    eq(srv.status(fid), 0, '/status after 413')
    # resume that would cross the limit
    data = os.urandom(lim)
    r = srv.upload(fid, data[:600000], start=0)
    # no X-File-Size: the body was received in full -> complete
    expect_success(r, 600000, 'small upload')
    r = srv.upload(fid, data[:600000], start=0, size=lim)
    eq((r.status, r.body), (200, b''), 'partial with X-File-Size = max')
    r = srv.upload(fid, data[600000:] + b'z', start=600000)
    eq(r.status, 413, 'resume whose end crosses --max-size (no X-File-Size)')
    eq(srv.status(fid), 600000, '/status after 413 on resume')
    # chunked over the limit: bytes up to the limit kept at most, connection closed
    fc = rand_id('max-chunked')
    big = os.urandom(lim + 100000)
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fc, 0) + [('Transfer-Encoding', 'chunked')]))
        try:
            c.send(b''.join(b'%x\r\n' % 65536 + big[i:i + 65536] + b'\r\n' for i in range(0, lim, 65536)))
            c.send(b'%x\r\n' % 100000 + big[lim:] + b'\r\n0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_final('POST')
        eq(r.status, 413, 'chunked body over --max-size')
        _connection_sane_after(c, r, 'chunked 413 over --max-size')
    st = srv.status(fc)
    check(st <= lim, '/status %d > --max-size' % st)
    for p in srv.data_files():
        check(os.path.getsize(p) <= lim, 'a data file is larger than --max-size: %d' % os.path.getsize(p))
    # exactly the limit completes
    r = srv.upload(fid, data[600000:], start=600000, size=lim)
    expect_success(r, lim, 'resume to exactly --max-size')
    s.check('max-size')


def test_duplicate_protocol_headers():
    srv = Server()
    s = Sentinel(srv)
    fid = rand_id('dup')
    data = os.urandom(50000)
    r = srv.upload(fid, data[:20000], start=0, size=len(data))
    eq(r.status, 200, 'setup')
    cases = [
        [('X-File-Id', fid), ('X-Start-Byte', '20000'), ('X-Start-Byte', '20000'), ('X-File-Size', '50000')],
        [('X-File-Id', fid), ('X-Start-Byte', '20000'), ('X-Start-Byte', '0'), ('X-File-Size', '50000')],
        [('X-File-Id', fid), ('X-Start-Byte', '0'), ('X-Start-Byte', '0')],
        [('X-File-Id', fid), ('X-File-Id', fid), ('X-Start-Byte', '20000'), ('X-File-Size', '50000')],
        [('X-File-Id', fid), ('X-File-Id', 'other'), ('X-Start-Byte', '0')],
        [('X-File-Id', fid), ('X-Start-Byte', '20000'), ('X-File-Size', '50000'), ('X-File-Size', '50000')],
        [('X-File-Id', fid), ('x-start-byte', '0'), ('X-START-BYTE', '0')],
    ]
    for h in cases:
        r = _raw(srv, build_request('POST', '/upload', h, data[20000:21000]))
        eq(r.status, 400, 'duplicate headers %r' % h)
        eq(srv.status(fid), 20000, '/status after duplicate headers %r' % h)
    r = _raw(srv, build_request('GET', '/status', [('X-File-Id', fid), ('X-File-Id', fid)]), 'GET')
    eq(r.status, 400, 'GET /status with duplicate X-File-Id')
    eq(file_sha(srv.data_path(fid)), sha(data[:20000]), 'stored prefix')
    s.check('duplicate headers')


def test_wrong_methods_and_paths():
    srv = Server()
    s = Sentinel(srv)
    fid = s.fid
    for method, path, body in (('GET', '/upload', b''), ('PUT', '/upload', b'abc'), ('DELETE', '/upload', b''),
                               ('POST', '/status', b''), ('PUT', '/status', b'x'), ('DELETE', '/status', b'')):
        h = upload_headers(fid, 0)
        if body or method in ('POST', 'PUT'):
            h = h + [('Content-Length', str(len(body)))]
        r = _raw(srv, build_head(method, path, h) + body, method)
        eq(r.status, 405, '%s %s' % (method, path))
        s.check('%s %s' % (method, path))
    for path in ('/nope', '/status/x', '/upload/x', '/uploads', '/statusx'):
        r = _raw(srv, build_request('GET', path, [('X-File-Id', fid)]), 'GET')
        eq(r.status, 404, 'GET %s' % path)
    s.check('unknown paths')
