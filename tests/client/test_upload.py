"""Uploads that should simply work: tus (default), chunked, IETF draft versions, the article
protocol, many files in parallel, standard input, checksums, metadata and extra headers.
Every stored result is compared by SHA-256 with what was sent."""

import base64
import hashlib
import os
import re
import socket
import struct
import threading
import zlib

from clientlib import (upload_files, FAST, FaultProxy, Server, base_url, check, eq, expect_download,
                       expect_rc, files_url, http_req, make_file, one_url, out_lines,
                       recorded_requests, retry_lines, run_client, Client, sha,
                       state_entries, summary, tmpdir, file_sha, wait_until)


def _ok(c, path, endpoint, data, what='upload'):
    """rc 0, one stdout line, the stored bytes, `uploaded` line, summary 1/0, no state left."""
    expect_rc(c, 0, what)
    url = one_url(c, path, endpoint)
    expect_download(url, data, what)
    check(any(l.startswith('resumed-upload: %s: uploaded' % path) for l in c.err_lines()),
          'no "resumed-upload: %s: uploaded" line\n%s' % (path, c.describe()))
    eq(summary(c), (1, 0), 'summary (uploaded, failed)')
    eq(state_entries(), [], 'state file entries after a finished upload')
    return url


def _data_requests(proxy, methods=('POST', 'PATCH')):
    return [r for r in recorded_requests(proxy) if r.method in methods and r.body]


def _tus_head(url):
    r = http_req(url, 'HEAD', {'Tus-Resumable': '1.0.0'})
    eq(r.status, 200, 'tus HEAD %s status' % url)
    return r


def _metadata(url):
    md = _tus_head(url).header('Upload-Metadata')
    check(md is not None, 'no Upload-Metadata on HEAD %s' % url)
    out = {}
    for pair in md.split(','):
        pair = pair.strip()
        k, _, v = pair.partition(' ')
        check(k not in out, 'metadata key %r twice in %r' % (k, md))
        out[k] = base64.b64decode(v).decode('utf-8') if v else ''
    return out


# ---------------------------------------------------------------------------- tus

def test_tus_default_single_request():
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    path, data = make_file((2 << 20) + 17)
    ep = files_url(p.port)
    c = run_client(FAST + [path, ep])
    url = _ok(c, path, ep, data)
    reqs = recorded_requests(p)
    check(all(r.header('Tus-Resumable') == '1.0.0' for r in reqs),
          'a request without Tus-Resumable: 1.0.0: %r' % reqs)
    # default: the whole file in one request
    body_reqs = _data_requests(p)
    eq([len(r.body) for r in body_reqs], [len(data)], 'body sizes of the requests (no --chunk-size)')
    eq(_tus_head(url).header('Upload-Offset'), str(len(data)), 'Upload-Offset of the finished upload')


def test_tus_chunk_size():
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    path, data = make_file((1 << 20) + 5)
    ep = files_url(p.port)
    c = run_client(FAST + ['--chunk-size', '256K', path, ep])
    _ok(c, path, ep, data, 'tus --chunk-size 256K')
    sizes = [len(r.body) for r in _data_requests(p)]
    check(len(sizes) >= 5 and all(0 < n <= 262144 for n in sizes) and sum(sizes) == len(data),
          'request body sizes with -c 256K for %d bytes: %r' % (len(data), sizes))
    # short option, and a size without suffix
    p2 = FaultProxy(srv.port, record=True)
    path2, data2 = make_file(100000)
    ep2 = files_url(p2.port)
    c = run_client(FAST + ['-c', '30000', path2, ep2])
    _ok(c, path2, ep2, data2, 'tus -c 30000')
    sizes = [len(r.body) for r in _data_requests(p2)]
    check(len(sizes) >= 4 and all(0 < n <= 30000 for n in sizes) and sum(sizes) == len(data2),
          'request body sizes with -c 30000 for 100000 bytes: %r' % sizes)


def test_tus_empty_file_and_relative_name():
    srv = Server()
    ep = files_url(srv.port)
    path, data = make_file(0, name='empty.bin')
    c = run_client(FAST + [path, ep])
    _ok(c, path, ep, data, 'empty file')
    # FILE is printed as given (relative, with a space)
    make_file(4321, name='a file.dat')
    with open(os.path.join(tmpdir(), 'files', 'a file.dat'), 'rb') as f:
        data = f.read()
    c = Client(FAST + ['a file.dat', ep], cwd=os.path.join(tmpdir(), 'files'))
    c.wait()
    _ok(c, 'a file.dat', ep, data, 'relative FILE')


# ---------------------------------------------------------------------------- IETF

def test_ietf_versions():
    srv = Server()
    for v in (3, 5, 6, 8):
        p = FaultProxy(srv.port, record=True)
        ep = files_url(p.port)
        path, data = make_file(300000 + v)
        c = run_client(FAST + ['--protocol', 'ietf', '--ietf-version', str(v), path, ep])
        _ok(c, path, ep, data, 'IETF draft interop version %d' % v)
        reqs = recorded_requests(p)
        check(reqs, 'no requests recorded')
        for r in reqs:
            eq(r.header('Upload-Draft-Interop-Version'), str(v),
               'Upload-Draft-Interop-Version of %r (--ietf-version %d)' % (r, v))
            eq(r.header('Tus-Resumable'), None, 'Tus-Resumable on an IETF request %r' % r)
    # -p short option, default version 6, chunked
    p = FaultProxy(srv.port, record=True)
    ep = files_url(p.port)
    path, data = make_file(200000)
    c = run_client(FAST + ['-p', 'ietf', '-c', '64K', path, ep])
    _ok(c, path, ep, data, 'IETF -c 64K')
    reqs = recorded_requests(p)
    eq(sorted(set(r.header('Upload-Draft-Interop-Version') for r in reqs)), ['6'],
       'default --ietf-version')
    sizes = [len(r.body) for r in _data_requests(p)]
    check(len(sizes) >= 4 and all(n <= 65536 for n in sizes) and sum(sizes) == len(data),
          'IETF body sizes with -c 64K: %r' % sizes)


# ---------------------------------------------------------------------------- article

def _article_check(srv, c, path, data, base):
    expect_rc(c, 0, 'article upload')
    lines = out_lines(c)
    eq(len(lines), 1, 'stdout lines')
    url, f = lines[0]
    eq(f, path, 'FILE column')
    check(url.startswith(base + 'upload#') and len(url) > len(base + 'upload#'),
          'article URL %r is not %supload#<file-id>' % (url, base))
    fid = url[len(base + 'upload#'):]
    r = http_req(base_url(srv.port) + 'status', headers={'X-File-Id': fid})
    eq((r.status, r.body), (200, b'0'), 'GET /status for the finished id %r (forgotten when complete)' % fid)
    files = upload_files(srv)
    eq(len(files), 1, 'data files in the server dir')
    eq((os.path.getsize(files[0]), file_sha(files[0])), (len(data), sha(data)), 'stored (length, sha256)')
    eq(summary(c), (1, 0), 'summary')
    eq(state_entries(), [], 'state entries after a finished upload')
    return fid


def test_article_protocol():
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    base = base_url(p.port)
    path, data = make_file((1 << 20) + 999, name='photo.jpg')
    c = run_client(FAST + ['--protocol', 'article', path, base])
    fid = _article_check(srv, c, path, data, base)
    ups = [r for r in recorded_requests(p) if r.method == 'POST']
    check(ups and all(r.target == '/upload' for r in ups), 'article uploads are POST /upload: %r' % ups)
    for r in ups:
        eq(r.header('X-File-Id'), fid, 'X-File-Id of %r' % r)
        eq(r.header('X-File-Size'), str(len(data)), 'X-File-Size of %r' % r)


def test_article_chunked():
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    base = base_url(p.port)
    path, data = make_file(700000, name='chunks.bin')
    c = run_client(FAST + ['-p', 'article', '-c', '200K', path, base])
    _article_check(srv, c, path, data, base)
    ups = [r for r in recorded_requests(p) if r.method == 'POST' and r.target == '/upload']
    starts = [int(r.header('X-Start-Byte') or 0) for r in ups]
    sizes = [len(r.body) for r in ups]
    check(len(ups) >= 4 and all(n <= 204800 for n in sizes) and sum(sizes) == len(data),
          'article body sizes with -c 200K: %r' % sizes)
    eq(starts, [sum(sizes[:i]) for i in range(len(sizes))], 'X-Start-Byte of the chunks')


# ---------------------------------------------------------------------------- many files

def test_parallel_many_files():
    srv = Server()
    p = FaultProxy(srv.port)
    ep = files_url(p.port)
    sizes = [0, 1, 1000, 65536, 65537, 300000, 1 << 20, (1 << 20) + 1, 2 << 20, 777777]
    files = [make_file(n, name='m%02d-%d.bin' % (i, n)) for i, n in enumerate(sizes)]
    # slow every connection down so that the uploads overlap: -j 4 has four bodies in flight at once
    p.throttle(100000)
    c = Client(FAST + ['-j', '4'] + [f for f, _ in files] + [ep])
    check(p.wait_for(lambda q: q.active_uploads() >= 4, 20),
          '-j 4: never four uploads moving at once\n%s' % c.describe())
    p.throttle(None)
    rc = c.wait()
    eq(rc, 0, 'exit status\n' + c.describe())
    lines = out_lines(c)
    eq(sorted(f for _, f in lines), sorted(f for f, _ in files), 'FILE columns of stdout')
    eq(len(set(u for u, _ in lines)), len(files), 'distinct upload URLs')
    byname = dict((f, u) for u, f in lines)
    for f, d in files:
        check(byname[f].startswith(ep), 'URL %r not under %r' % (byname[f], ep))
        expect_download(byname[f], d, f)
    eq(summary(c), (10, 0), 'summary')
    for f, _ in files:
        check(any(l.startswith('resumed-upload: %s: uploaded' % f) for l in c.err_lines()),
              'no uploaded line for %s' % f)
    eq(state_entries(), [], 'state entries')


# ---------------------------------------------------------------------------- standard input

def _stdin_upload(protocol, data, chunk):
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    ep = files_url(p.port)
    c = run_client(FAST + ['--protocol', protocol, '-c', str(chunk), '-', ep], stdin_data=data)
    expect_rc(c, 0, 'stdin via %s' % protocol)
    url = one_url(c, '-', ep)
    expect_download(url, data, 'stdin via %s' % protocol)
    eq(summary(c), (1, 0), 'summary')
    return p, url


def test_stdin_tus():
    data = os.urandom(300011)
    p, url = _stdin_upload('tus', data, 65536)
    reqs = recorded_requests(p)
    creates = [r for r in reqs if r.method == 'POST']
    eq(len(creates), 1, 'creation requests')
    eq(creates[0].header('Upload-Defer-Length'), '1', 'Upload-Defer-Length of the creation')
    eq(creates[0].header('Upload-Length'), None, 'Upload-Length of the creation (length unknown)')
    sizes = [len(r.body) for r in _data_requests(p)]
    check(len(sizes) >= 5 and all(n <= 65536 for n in sizes) and sum(sizes) == len(data),
          'stdin body sizes with -c 64K: %r' % sizes)
    eq(_tus_head(url).header('Upload-Length'), str(len(data)), 'Upload-Length once finished')


def test_stdin_tus_empty():
    _stdin_upload('tus', b'', 65536)


def test_stdin_ietf():
    data = os.urandom(250007)
    p, url = _stdin_upload('ietf', data, 50000)
    sizes = [len(r.body) for r in _data_requests(p)]
    check(len(sizes) >= 5 and all(n <= 50000 for n in sizes) and sum(sizes) == len(data),
          'stdin body sizes with -c 50000: %r' % sizes)


# ---------------------------------------------------------------------------- checksums

_DIGESTS = {
    'sha1': lambda b: hashlib.sha1(b).digest(),
    'sha256': lambda b: hashlib.sha256(b).digest(),
    'sha512': lambda b: hashlib.sha512(b).digest(),
    'md5': lambda b: hashlib.md5(b).digest(),
    'crc32': lambda b: struct.pack('>I', zlib.crc32(b) & 0xffffffff),
}


def test_tus_checksums():
    srv = Server()
    for alg in ('sha1', 'sha256', 'md5', 'crc32', 'sha512'):
        p = FaultProxy(srv.port, record=True)
        ep = files_url(p.port)
        path, data = make_file(200000 + len(alg))
        c = run_client(FAST + ['--retries', '3', '--checksum', alg, '-c', '64K', path, ep])
        _ok(c, path, ep, data, '--checksum %s' % alg)
        body_reqs = _data_requests(p)
        check(len(body_reqs) >= 4, '--checksum %s: %d requests with a body' % (alg, len(body_reqs)))
        for r in body_reqs:
            want = '%s %s' % (alg, base64.b64encode(_DIGESTS[alg](r.body)).decode())
            eq(r.header('Upload-Checksum'), want, '--checksum %s: Upload-Checksum of %r' % (alg, r))
        eq(retry_lines(c, path), [], '--checksum %s: retries (a 460 means a wrong checksum)' % alg)


def test_ietf_checksum_sha256():
    srv = Server()
    p = FaultProxy(srv.port, record=True)
    ep = files_url(p.port)
    path, data = make_file(150000)
    c = run_client(FAST + ['--retries', '3', '-p', 'ietf', '--checksum', 'sha256', '-c', '50000', path, ep])
    _ok(c, path, ep, data, 'IETF --checksum sha256')
    body_reqs = _data_requests(p)
    check(len(body_reqs) >= 3, 'requests with a body: %r' % body_reqs)
    for r in body_reqs:
        want = 'sha-256=:%s:' % base64.b64encode(hashlib.sha256(r.body).digest()).decode()
        eq(r.header('Content-Digest'), want, 'Content-Digest of %r' % r)
    eq(retry_lines(c, path), [], 'retries')


# ---------------------------------------------------------------------------- metadata, headers

def test_metadata_and_default_filename():
    srv = Server()
    ep = files_url(srv.port)
    path, data = make_file(5000, name='report.txt')
    c = run_client(FAST + ['-m', 'author=alice', '--metadata', 'note=h\u00e9llo w\u00f6rld',
                           '-m', 'eq=a=b', path, ep])
    url = _ok(c, path, ep, data, 'metadata')
    md = _metadata(url)
    eq(md.get('filename'), 'report.txt', 'default filename metadata')
    eq(md.get('author'), 'alice', 'author metadata')
    eq(md.get('note'), 'h\u00e9llo w\u00f6rld', 'note metadata (UTF-8)')
    eq(md.get('eq'), 'a=b', 'metadata value containing "="')
    check((md.get('filetype') or '').startswith('text/'),
          'filetype guessed for .txt: %r (metadata %r)' % (md.get('filetype'), md))
    # the default filename is replaced, not duplicated, by -m filename=
    path2, data2 = make_file(100, name='x.bin')
    c = run_client(FAST + ['-m', 'filename=other name.bin', '-m', 'filetype=application/x-test', path2, ep])
    url2 = _ok(c, path2, ep, data2, 'metadata override')
    md2 = _metadata(url2)
    eq((md2.get('filename'), md2.get('filetype')), ('other name.bin', 'application/x-test'),
       '(filename, filetype) given with -m')


def test_extra_headers():
    srv = Server()
    for proto, ep_of in (('tus', files_url), ('ietf', files_url), ('article', base_url)):
        p = FaultProxy(srv.port, record=True)
        ep = ep_of(p.port)
        path, data = make_file(100000, name='h-%s.bin' % proto)
        c = run_client(FAST + ['-p', proto, '-c', '40000', '-H', 'X-Custom: hello there',
                               '--header', 'Authorization: Bearer t0k3n', path, ep])
        expect_rc(c, 0, '-H with %s' % proto)
        reqs = recorded_requests(p)
        check(len(reqs) >= 3, 'requests recorded: %r' % reqs)
        for r in reqs:
            eq((r.header('X-Custom'), r.header('Authorization')), ('hello there', 'Bearer t0k3n'),
               '%s: extra headers on %r' % (proto, r))


def test_quiet():
    srv = Server()
    ep = files_url(srv.port)
    path, data = make_file(70000)
    c = run_client(FAST + ['--quiet', path, ep])
    expect_rc(c, 0, '--quiet')
    eq(c.err, '', 'stderr with --quiet on success')
    expect_download(one_url(c, path, ep), data)
    path2, data2 = make_file(80000)
    c = run_client(FAST + ['-q', '-j', '2', path, path2, ep])
    expect_rc(c, 0, '-q')
    eq(c.err, '', 'stderr with -q on success')
    eq(len(out_lines(c)), 2, 'stdout lines with -q')


def test_progress_lines_when_not_a_terminal():
    # stderr is a pipe: a plain progress line per file every --progress-interval seconds
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(1 << 20)
    ep = files_url(p.port)
    path, data = make_file(2 << 20)
    c = run_client(FAST + ['--progress-interval', '0.2', path, ep], timeout=30)
    _ok(c, path, ep, data, 'throttled upload with --progress-interval 0.2')
    # (a progress line may shorten the path; it names at least the file's base name)
    name = os.path.basename(path)
    other = [l for l in c.err_lines() if name in l and '%' in l and ': uploaded' not in l
             and 'retrying' not in l and 'resuming at' not in l]
    check(len(other) >= 3, 'progress lines in a 2 s upload with --progress-interval 0.2: %r'
          % c.err_lines())
    check(all('\r' not in l and '\x1b' not in l for l in c.err_lines()),
          'terminal control characters on a non-terminal stderr: %r' % c.err_lines())
    # --quiet: none
    p2 = FaultProxy(srv.port)
    p2.throttle(1 << 20)
    ep2 = files_url(p2.port)
    c = run_client(FAST + ['-q', '--progress-interval', '0.2', path, ep2], timeout=30)
    expect_rc(c, 0, '-q with --progress-interval')
    eq(c.err, '', 'stderr with -q')


def _frozen_tus_server(received):
    """A tus server whose PATCH reader stops after the request head: the body piles up in the
    client's socket. Its receive buffer is a few KiB, so almost nothing leaves the client."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # inherited by accepted sockets
    ls.bind(('127.0.0.1', 0))
    ls.listen(4)

    def head(conn):
        buf = b''
        while b'\r\n\r\n' not in buf:
            d = conn.recv(4096)
            if not d:
                return None, b''
            buf += d
        h, _, rest = buf.partition(b'\r\n\r\n')
        return h.decode('latin-1'), rest

    def serve():
        while True:
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            received.append(conn)
            while True:
                h, _ = head(conn)
                if h is None or h.startswith('PATCH'):
                    break  # read no more: the body stays where it is
                conn.sendall(b'HTTP/1.1 201 Created\r\nTus-Resumable: 1.0.0\r\nLocation: /files/1\r\n'
                             b'Content-Length: 0\r\n\r\n')
    threading.Thread(target=serve, daemon=True).start()
    return ls


def test_progress_counts_what_left_the_machine():
    # The socket takes megabytes before a byte reaches the server; the progress must not count
    # what still waits in the client's send queue (8 MiB file, the server reads none of it).
    received = []
    ls = _frozen_tus_server(received)
    try:
        path, _ = make_file(8 << 20)
        c = Client(FAST + ['--progress-interval', '0.2', '--stall-timeout', '30', path,
                           'http://127.0.0.1:%d/files/' % ls.getsockname()[1]])
        def progress_lines():
            return [l for l in c.err_lines() if ' / 8.0 MiB' in l]
        # 5 lines at 0.2 s: a second after the body started, long enough to fill the send queue
        wait_until(lambda: len(progress_lines()) >= 5, 15, 'five progress lines')
        lines = progress_lines()
        shown = []
        for l in lines:
            m = re.search(r'  ([\d.]+) (B|KiB|MiB) / 8\.0 MiB', l)
            check(m is not None, 'unparsable progress line %r' % l)
            shown.append(float(m.group(1)) * {'B': 1, 'KiB': 1 << 10, 'MiB': 1 << 20}[m.group(2)])
        check(max(shown) < 512 << 10, 'progress shows %d bytes sent while the server read almost none: %r'
              % (max(shown), lines))
    finally:
        ls.close()
        for s in received:
            s.close()
