"""HTTP layer: keep-alive, pipelining, Expect: 100-continue, chunked request bodies."""

import os
import random
import time

from harness import (Server, build_head, build_request, check, chunk_encode, eq,
                     expect_success, file_sha, poll_status, rand_id, read_file, sha, upload_headers)


def test_keepalive_several_requests():
    srv = Server()
    data = os.urandom(600000)
    n = len(data)
    fid = rand_id('ka')
    with srv.conn() as c:
        rs = []
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'0'), 'status #1')
        rs.append(r)
        r = c.request('POST', '/upload', upload_headers(fid, 0, n), data[:250000])
        eq((r.status, r.body), (200, b''), 'partial upload #2')
        rs.append(r)
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'250000'), 'status #3')
        rs.append(r)
        r = c.request('POST', '/upload', upload_headers(fid, 250000, n), data[250000:])
        expect_success(r, n, 'final upload #4')
        rs.append(r)
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'0'), 'status #5')
        rs.append(r)
        for i, r in enumerate(rs):
            eq(r.version, 'HTTP/1.1', 'response #%d version' % (i + 1))
            check(not r.conn_close(), 'response #%d has Connection: close' % (i + 1))
    eq(file_sha(srv.data_files()[0]), sha(data), 'stored sha256')


def test_pipelining_in_order():
    srv = Server()
    fa, fb = rand_id('pipe-a'), rand_id('pipe-b')
    da = os.urandom(100000)
    r = srv.upload(fa, da[:31337], start=0, size=len(da))
    eq((r.status, r.body), (200, b''), 'setup partial A')
    db = os.urandom(5000)
    fc = rand_id('pipe-c')
    dc = os.urandom(777)
    reqs = (build_request('GET', '/status', [('X-File-Id', fa)])
            + build_request('POST', '/upload', upload_headers(fb, 0, 100000), db)
            + build_request('GET', '/status', [('X-File-Id', fb)])
            + build_request('POST', '/upload', upload_headers(fc, 0), dc)
            + build_request('GET', '/status', [('X-File-Id', fa)]))
    with srv.conn() as c:
        c.send(reqs)
        r1 = c.read_final()
        r2 = c.read_final('POST')
        r3 = c.read_final()
        r4 = c.read_final('POST')
        r5 = c.read_final()
    eq((r1.status, r1.body), (200, b'31337'), 'pipelined response 1 (GET /status A)')
    eq((r2.status, r2.body), (200, b''), 'pipelined response 2 (POST /upload B partial)')
    eq((r3.status, r3.body), (200, b'5000'), 'pipelined response 3 (GET /status B)')
    eq((r4.status, r4.body), (200, b'Success 777'), 'pipelined response 4 (POST /upload C complete)')
    eq((r5.status, r5.body), (200, b'31337'), 'pipelined response 5 (GET /status A)')
    eq(read_file(srv.data_path(fb)), db, 'stored B')


def test_pipelining_three_requests_one_send():
    srv = Server()
    f1, f2 = rand_id('p3a'), rand_id('p3b')
    r = srv.upload(f1, b'a' * 1234, start=0, size=10000)
    eq(r.status, 200, 'setup')
    body = os.urandom(4321)
    reqs = (build_request('GET', '/status', [('X-File-Id', f1)])
            + build_request('POST', '/upload', upload_headers(f2, 0, 9999), body)
            + build_request('GET', '/status', [('X-File-Id', f2)]))
    with srv.conn() as c:
        c.send(reqs)
        rs = [c.read_final(), c.read_final('POST'), c.read_final()]
    eq([(r.status, r.body) for r in rs], [(200, b'1234'), (200, b''), (200, b'4321')], 'pipelined responses')


def test_expect_100_continue():
    srv = Server()
    data = os.urandom(1 << 20)
    n = len(data)
    fid = rand_id('expect')
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 0, n)
                          + [('Content-Length', str(n)), ('Expect', '100-continue')]))
        r = c.read_response()
        eq(r.status, 100, 'interim response status')
        check(r.raw_head.startswith(b'HTTP/1.1 100 Continue'), 'interim status line %r' % r.raw_head[:40])
        c.send(data)
        r = c.read_final('POST')
        expect_success(r, n, 'upload after 100 Continue')
        # connection stays usable
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'0'), 'status on same connection')
    eq(file_sha(srv.data_files()[0]), sha(data), 'stored sha256')


def test_expect_refused_wrong_start_byte():
    srv = Server()
    fid = rand_id('expect-wsb')
    data = os.urandom(200000)
    r = srv.upload(fid, data[:5000], start=0, size=len(data))
    eq(r.status, 200, 'setup')
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 6000, len(data))
                          + [('Content-Length', str(len(data) - 6000)), ('Expect', '100-continue')]))
        r = c.read_response('POST')
        eq(r.status, 400, 'first response to refused Expect request (no 100 Continue expected)')
        eq((r.reason, r.body), ('Wrong start byte', b'5000'), 'refusal reason/body')
        check(r.conn_close(), 'refusal lacks Connection: close (headers %r)' % r.headers)
        closed, extra = c.wait_closed(3)
        check(closed, 'connection not closed after early refusal (extra %r)' % extra[:100])
    eq(srv.status(fid), 5000, '/status unchanged')


def test_expect_refused_over_max_size():
    srv = Server('--max-size', '1M')
    fid = rand_id('expect-max')
    for hdrs in ([('X-File-Size', str(2 << 20)), ('Content-Length', str(2 << 20))],
                 [('Content-Length', str((1 << 20) + 1))]):
        with srv.conn() as c:
            c.send(build_head('POST', '/upload', [('X-File-Id', fid), ('X-Start-Byte', '0')] + hdrs
                              + [('Expect', '100-continue')]))
            r = c.read_response('POST')
            eq(r.status, 413, 'first response to over-size Expect request %r' % hdrs)
            check(r.conn_close(), '413 lacks Connection: close')
            closed, extra = c.wait_closed(3)
            check(closed, 'connection not closed after 413 (extra %r)' % extra[:100])
        eq(srv.status(fid), 0, '/status after refused upload')
    # and exactly the limit is fine
    data = os.urandom(1 << 20)
    r = srv.upload(fid, data, start=0, size=len(data))
    expect_success(r, len(data), 'upload of exactly --max-size')


def _chunk_sizes(rnd, total):
    sizes = []
    s = 0
    pool = [1, 1, 1, 2, 3, 7, 15, 16, 255, 256, 1000, 4096, 8191, 65536, 100000, 300000]
    while s < total:
        k = rnd.choice(pool)
        sizes.append(k)
        s += k
    return sizes


def _encode_varied(data, rnd):
    """Chunked encoding with varying sizes, 1-byte chunks, extensions, upper-case hex, leading zeros."""
    out = []
    pos = 0
    i = 0
    for k in _chunk_sizes(rnd, len(data)):
        k = min(k, len(data) - pos)
        if k <= 0:
            break
        i += 1
        if i % 5 == 0:
            size = b'%X' % k
        elif i % 7 == 0:
            size = b'00%x' % k
        else:
            size = b'%x' % k
        ext = b''
        if i % 3 == 0:
            ext = b';name=value'
        elif i % 4 == 0:
            ext = b';foo;bar="q s"'
        out.append(size + ext + b'\r\n' + data[pos:pos + k] + b'\r\n')
        pos += k
    out.append(b'0\r\n\r\n')
    return b''.join(out)


def _send_sliced(c, payload, rnd):
    pos = 0
    while pos < len(payload):
        k = rnd.randint(1, 200000)
        c.send(payload[pos:pos + k])
        pos += k


def test_chunked_upload():
    srv = Server()
    rnd = random.Random(11)
    data = os.urandom(rnd.randint(3 << 20, 4 << 20))
    n = len(data)
    fid = rand_id('chunked')
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 0) + [('Transfer-Encoding', 'chunked')]))
        _send_sliced(c, _encode_varied(data, rnd), rnd)
        r = c.read_final('POST')
        expect_success(r, n, 'chunked upload')
        # connection still usable after the chunked body
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'0'), '/status after chunked upload (same connection)')
    files = srv.data_files()
    eq(len(files), 1, 'data files')
    eq(file_sha(files[0]), sha(data), 'stored sha256')


def test_chunked_with_file_size_and_resume():
    srv = Server()
    rnd = random.Random(12)
    data = os.urandom(2 << 20)
    n = len(data)
    fid = rand_id('chunked-resume')
    # first request: complete chunks, then the client drops the connection
    cut = 0
    sizes = [1, 1000, 65536, 3, 70000, 1, 500000]
    enc = b''
    for k in sizes:
        enc += b'%x\r\n' % k + data[cut:cut + k] + b'\r\n'
        cut += k
    c = srv.conn()
    c.send(build_head('POST', '/upload', upload_headers(fid, 0, n) + [('Transfer-Encoding', 'chunked')]))
    c.send(enc)
    c.close()
    time.sleep(0.3)
    eq(poll_status(srv, fid, cut), cut, '/status after chunked body cut after %d bytes' % cut)
    path = srv.data_path(fid)
    eq(file_sha(path), sha(data[:cut]), 'stored prefix')
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, cut, n) + [('Transfer-Encoding', 'chunked')]))
        _send_sliced(c, _encode_varied(data[cut:], rnd), rnd)
        r = c.read_final('POST')
    expect_success(r, n, 'chunked resume')
    eq(file_sha(path), sha(data), 'stored sha256')


def test_chunked_with_trailer():
    srv = Server()
    data = os.urandom(100000)
    fid = rand_id('trailer')
    body = chunk_encode(data, [4096, 1, 30000])[:-2] + b'X-Checksum: abc\r\n\r\n'
    with srv.conn() as c:
        c.send(build_head('POST', '/upload', upload_headers(fid, 0) + [('Transfer-Encoding', 'chunked')]) + body)
        r = c.read_final('POST')
        expect_success(r, len(data), 'chunked upload with trailer field')
        r = c.request('GET', '/status', [('X-File-Id', fid)])
        eq((r.status, r.body), (200, b'0'), 'status after trailer (same connection)')
    eq(file_sha(srv.data_files()[0]), sha(data), 'stored sha256')
