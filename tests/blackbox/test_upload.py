"""Article protocol: full upload, cut + resume, wrong start byte, interleaved ids."""

import re
import os
import random
import time

from harness import (Server, build_head, check, eq, expect_success, file_sha, poll_status, rand_id,
                     read_file, send_partial, sha, upload_headers)


def _data(lo=3 << 20, hi=5 << 20):
    return os.urandom(random.randint(lo, hi))


def test_full_upload_article_protocol():
    srv = Server()
    data = _data()
    n = len(data)
    fid = 'holiday photo.jpg-%d-1700000000123' % n
    eq(srv.status(fid), 0, '/status before upload')
    r = srv.upload(fid, data, start=0)
    expect_success(r, n)
    files = srv.data_files()
    eq(len(files), 1, 'number of data files in DIR/uploads (%r)' % files)
    eq(os.path.getsize(files[0]), n, 'stored file length')
    eq(file_sha(files[0]), sha(data), 'stored file sha256')
    eq(srv.status(fid), 0, '/status after completion (article forgets finished uploads)')
    check(not srv.has_article_link(fid), 'DIR/article symlink still present after completion')
    eq(os.listdir(os.path.join(srv.dir, 'article')), [], 'DIR/article entries after completion')


def test_article_link_name():
    # DIR/article/<64 hex> names the key of the unfinished upload for an id
    srv = Server()
    fid = 'photo.jpg-1000-1700000000000'
    r = srv.upload(fid, b'p' * 400, start=0, size=1000)
    eq((r.status, r.body), (200, b''), 'partial upload')
    # the id is hashed (domain-separated SHA-256), never used as a name
    links = os.listdir(os.path.join(srv.dir, 'article'))
    eq(len(links), 1, 'one article link for one unfinished upload')
    eq(os.path.join(srv.dir, 'article', links[0]), srv.article_link(fid), 'link named by the documented hash')
    check(re.fullmatch(r'[0-9a-f]{64}', links[0]) is not None, 'link name %r is 64 lowercase hex' % links[0])
    target = os.readlink(os.path.join(srv.dir, 'article', links[0]))
    check(re.fullmatch(r'[0-9a-f]{32}', target) is not None, 'link target %r is an upload key' % target)
    eq(os.path.getsize(os.path.join(srv.dir, 'uploads', target)), 400, 'linked data file holds the bytes sent')
    # the same id maps to the same upload: a resume finds it
    r = srv.upload(fid, b'p' * 600, start=400, size=1000)
    eq((r.status, r.body), (200, b'Success 1000'), 'resume through the link')
    eq(os.listdir(os.path.join(srv.dir, 'article')), [], 'link removed on completion')


def test_full_upload_with_file_size():
    srv = Server()
    data = _data(1 << 20, 2 << 20)
    n = len(data)
    fid = rand_id('sized')
    r = srv.upload(fid, data, start=0, size=n)
    expect_success(r, n)
    files = srv.data_files()
    eq(len(files), 1, 'number of data files')
    eq(file_sha(files[0]), sha(data), 'stored file sha256')
    eq(srv.status(fid), 0, '/status after completion')
    check(not srv.has_article_link(fid), 'article symlink still present')


def test_empty_file_upload():
    srv = Server()
    fid = rand_id('empty')
    r = srv.upload(fid, b'', start=0, size=0)
    expect_success(r, 0)
    eq(srv.status(fid), 0, '/status after empty upload')


def test_restart_from_zero_discards_unfinished():
    # X-Start-Byte 0 (or absent) starts afresh, discarding what was held.
    srv = Server()
    old = os.urandom(500000)
    data = os.urandom(300000)
    fid = rand_id('afresh')
    r = srv.upload(fid, old[:200000], start=0, size=len(old))
    eq((r.status, r.body), (200, b''), 'partial upload')
    eq(srv.status(fid), 200000, '/status after partial')
    r = srv.upload(fid, data[:1000], start=0, size=len(data))
    eq((r.status, r.body), (200, b''), 'fresh partial upload (start 0)')
    eq(srv.status(fid), 1000, '/status after restart from 0')
    eq(read_file(srv.data_path(fid)), data[:1000], 'data file content after restart from 0')
    # absent X-Start-Byte also starts afresh
    r = srv.upload(fid, data, start=None)
    expect_success(r, len(data), 'upload without X-Start-Byte')
    shas = [file_sha(p) for p in srv.data_files()]
    check(sha(data) in shas, 'no data file with the uploaded content')
    eq(srv.status(fid), 0, '/status after completion')


def _cut_and_resume(mode, with_size):
    srv = Server()
    data = _data(3 << 20, 4 << 20)
    n = len(data)
    fid = rand_id('cut-%s' % mode)
    cut = random.randint(1 << 20, n - (1 << 20))
    size = n if with_size else None
    send_partial(srv, fid, data, cut, size=size, mode=mode)
    time.sleep(0.3)
    got = poll_status(srv, fid, cut, 5.0)
    eq(got, cut, '/status after cut at %d (%s)' % (cut, mode))
    path = srv.data_path(fid)
    eq(os.path.getsize(path), cut, 'data file length after cut')
    eq(file_sha(path), sha(data[:cut]), 'data file sha256 after cut (prefix)')
    r = srv.upload(fid, data[cut:], start=cut, size=size)
    expect_success(r, n, 'resume from %d' % cut)
    eq(file_sha(path), sha(data), 'stored file sha256 after resume')
    eq(srv.status(fid), 0, '/status after completion')
    check(not srv.has_article_link(fid), 'article symlink still present after completion')


def test_cut_fin_resume():
    _cut_and_resume('close', False)


def test_cut_rst_resume():
    _cut_and_resume('rst', False)


def test_cut_fin_resume_with_file_size():
    _cut_and_resume('close', True)


def test_cut_rst_resume_with_file_size():
    _cut_and_resume('rst', True)


def test_partial_requests_with_file_size():
    srv = Server()
    data = _data(2 << 20, 3 << 20)
    n = len(data)
    fid = rand_id('pieces')
    a, b = 700001, 1500007
    r = srv.upload(fid, data[:a], start=0, size=n)
    eq((r.status, r.body), (200, b''), 'first partial request (X-File-Size not reached)')
    eq(srv.status(fid), a, '/status after first piece')
    r = srv.upload(fid, data[a:b], start=a, size=n)
    eq((r.status, r.body), (200, b''), 'second partial request')
    eq(srv.status(fid), b, '/status after second piece')
    path = srv.data_path(fid)
    r = srv.upload(fid, data[b:], start=b, size=n)
    expect_success(r, n, 'final piece')
    eq(file_sha(path), sha(data), 'stored sha256')
    eq(srv.status(fid), 0, '/status after completion')


def test_wrong_start_byte():
    srv = Server()
    data = os.urandom(1 << 20)
    n = len(data)
    fid = rand_id('wsb')
    held = 400000
    r = srv.upload(fid, data[:held], start=0, size=n)
    eq((r.status, r.body), (200, b''), 'partial upload')
    path = srv.data_path(fid)
    for bad in (held + 1, held - 1, held + 100000, 1, n):
        r = srv.upload(fid, data[bad:bad + 5000], start=bad, size=n)
        eq(r.status, 400, 'X-Start-Byte %d (held %d): status' % (bad, held))
        eq(r.reason, 'Wrong start byte', 'X-Start-Byte %d: reason phrase' % bad)
        eq(r.body, str(held).encode(), 'X-Start-Byte %d: body' % bad)
        eq(srv.status(fid), held, '/status after wrong start byte %d' % bad)
        eq(os.path.getsize(path), held, 'data file length after wrong start byte %d' % bad)
        eq(file_sha(path), sha(data[:held]), 'data file sha256 after wrong start byte %d' % bad)
    # article client (no X-File-Size)
    r = srv.upload(fid, data[held + 7:], start=held + 7)
    eq((r.status, r.reason, r.body), (400, 'Wrong start byte', str(held).encode()),
       'wrong start byte without X-File-Size')
    eq(srv.status(fid), held, '/status')
    # unknown id with non-zero start byte
    other = rand_id('unknown')
    r = srv.upload(other, b'x' * 100, start=5)
    eq((r.status, r.reason, r.body), (400, 'Wrong start byte', b'0'), 'unknown id, X-Start-Byte 5')
    eq(srv.status(other), 0, '/status of unknown id')
    # the correct start byte still works
    r = srv.upload(fid, data[held:], start=held, size=n)
    expect_success(r, n, 'resume with right start byte')
    eq(file_sha(path), sha(data), 'stored sha256')


def test_two_ids_interleaved():
    srv = Server()
    da = os.urandom(random.randint(2 << 20, 3 << 20))
    db = os.urandom(random.randint(2 << 20, 3 << 20))
    fa, fb = rand_id('inter-a'), rand_id('inter-b')
    ca, cb = srv.conn(), srv.conn()
    try:
        ca.send(build_head('POST', '/upload', upload_headers(fa, 0) + [('Content-Length', str(len(da)))]))
        cb.send(build_head('POST', '/upload', upload_headers(fb, 0, len(db)) + [('Content-Length', str(len(db)))]))
        pa = pb = 0
        rnd = random.Random(7)
        while pa < len(da) or pb < len(db):
            if pa < len(da):
                k = rnd.randint(1, 256 << 10)
                ca.send(da[pa:pa + k])
                pa += k
            if pb < len(db):
                k = rnd.randint(1, 256 << 10)
                cb.send(db[pb:pb + k])
                pb += k
        ra = ca.read_final('POST')
        rb = cb.read_final('POST')
    finally:
        ca.close()
        cb.close()
    expect_success(ra, len(da), 'id A')
    expect_success(rb, len(db), 'id B')
    shas = sorted(file_sha(p) for p in srv.data_files())
    eq(shas, sorted([sha(da), sha(db)]), 'sha256 of the two stored files')
    eq(srv.status(fa), 0, '/status A after completion')
    eq(srv.status(fb), 0, '/status B after completion')


def test_small_sync_interval():
    # --sync-interval makes the server fdatasync (and record the synced offset) during long bodies;
    # uploads must still succeed, whatever the interplay of periodic and final flushes.
    srv = Server('--sync-interval', '64K')
    failures = []
    for i in range(12):
        data = os.urandom(2 << 20)
        n = len(data)
        fid = rand_id('sync%d' % i)
        cut = 100000 if i % 2 == 0 else 1500000
        r = srv.upload(fid, data[:cut], start=0, size=n)
        if (r.status, r.body) != (200, b''):
            failures.append('iteration %d: first request (%d of %d bytes, X-File-Size %d) -> %d %r'
                            % (i, cut, n, n, r.status, r.body))
            continue
        eq(srv.status(fid), cut, 'iteration %d: /status after first request' % i)
        path = srv.data_path(fid)
        r = srv.upload(fid, data[cut:], start=cut, size=n)
        if (r.status, r.body) != (200, b'Success %d' % n):
            failures.append('iteration %d: resume from %d -> %d %r' % (i, cut, r.status, r.body))
            continue
        eq(file_sha(path), sha(data), 'iteration %d: stored sha256' % i)
        r = srv.upload(rand_id('single%d' % i), data, start=0)
        if (r.status, r.body) != (200, b'Success %d' % n):
            failures.append('iteration %d: single 2 MiB upload -> %d %r' % (i, r.status, r.body))
    warn = [l for l in srv.lines if 'warning' in l][:3]
    check(not failures, '%d of 36 requests failed with --sync-interval 64K: %s; server warnings: %r'
          % (len(failures), '; '.join(failures[:4]), warn))


def test_parallel_uploads():
    # 8 clients at once, each: partial request, cut, /status, resume -> every file intact
    import threading
    srv = Server()
    results = {}

    def client(i):
        try:
            data = os.urandom(random.randint(1 << 20, 2 << 20))
            fid = rand_id('par%d' % i)
            cut = random.randint(1, len(data) - 1)
            send_partial(srv, fid, data, cut, mode='close')
            time.sleep(0.3)
            st = poll_status(srv, fid, cut)
            if st != cut:
                results[i] = '/status %d after cut at %d' % (st, cut)
                return
            path = srv.data_path(fid)
            r = srv.upload(fid, data[cut:], start=cut)
            if (r.status, r.body) != (200, b'Success %d' % len(data)):
                results[i] = 'resume -> %d %r' % (r.status, r.body)
                return
            results[i] = 'ok' if file_sha(path) == sha(data) else 'sha256 mismatch'
        except Exception as e:  # reported below
            results[i] = '%s: %s' % (type(e).__name__, e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = {i: v for i, v in results.items() if v != 'ok'}
    eq(len(results), 8, 'clients finished')
    check(not bad, 'parallel clients failed: %r' % bad)


def test_more_bodies_than_delivery_slots():
    # 48 uploads interleave their bodies piece by piece on open connections, more
    # than the server hands to the disk at once (it makes the rest wait in the
    # kernel); every one must still complete intact, none may time out or stall.
    srv = Server('--body-timeout', '5')
    n = 48
    datas = [os.urandom(random.randint(100000, 300000)) for _ in range(n)]
    fids = [rand_id('slot%d' % i) for i in range(n)]
    conns = []
    for fid, data in zip(fids, datas):
        c = srv.conn()
        c.send(build_head('POST', '/upload', upload_headers(fid, 0, len(data)) +
                          [('Content-Length', str(len(data)))]))
        conns.append(c)
    piece = 16384
    for off in range(0, max(len(d) for d in datas), piece):
        for c, data in zip(conns, datas):
            if off < len(data):
                c.send(data[off:off + piece])
    for i, (c, data) in enumerate(zip(conns, datas)):
        r = c.read_final('POST')
        eq((r.status, r.body), (200, b'Success %d' % len(data)), 'upload %d' % i)
        c.close()
    for fid in fids:
        eq(srv.status(fid), 0, '/status after completion')
    stored = sorted(file_sha(p) for p in srv.data_files())
    eq(stored, sorted(sha(d) for d in datas), 'stored files are exactly the uploads')
