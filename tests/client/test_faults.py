"""Connections cut (TCP reset and FIN, at random points, several times per upload), dripped one
byte at a time, and a stalled link: the client retries, resumes from the server's offset, and
the stored bytes are exactly the file."""

import os
import re
import time

from clientlib import (upload_files, FAST, FaultProxy, Server, base_url, check, eq, expect_download,
                       expect_rc, file_sha, files_url, make_file, one_url, out_lines, resume_lines,
                       retry_lines, run_client, Client, sha, state_entries, summary)

MiB = 1 << 20


def _check_cut_run(c, p, path, size, what):
    expect_rc(c, 0, what)
    check(p.cuts >= 3, '%s: only %d cuts were made (%r)' % (what, p.cuts, p.cut_log))
    modes = set(m for _, _, m in p.cut_log)
    eq(modes, {'rst', 'fin'}, '%s: kinds of cuts made' % what)
    # Not one retry line per cut: a cut can hit a connection whose request the server already
    # answered, so the client sees no failure from it.
    rl = retry_lines(c, path)
    res = resume_lines(c, path)
    check(res, '%s: no "resuming at N of M bytes" line after %d cuts\n%s' % (what, p.cuts, c.describe()))
    check(len(rl) >= len(res), '%s: %d resumes but only %d retry lines\n%s'
          % (what, len(res), len(rl), c.describe()))
    for n, m in res:
        check(0 < n < size and m == size, '%s: resuming at %d of %d (file %d bytes)' % (what, n, m, size))
    offs = [n for n, _ in res]
    eq(offs, sorted(offs), '%s: resume offsets never go back' % what)
    eq(summary(c), (1, 0), what + ': summary')
    eq(state_entries(), [], what + ': state entries')


def _cut_upload(protocol, args=(), size=16 * MiB, lo=1 * MiB, hi=4 * MiB):
    # Each connection is cut once it has carried a random count of bytes in [lo, hi]; with
    # size > 3 * hi no run can finish before the third cut, whatever the random draws.
    assert size > 3 * hi
    srv = Server()
    p = FaultProxy(srv.port, seed=None)
    p.cut(lo, hi, mode='alternate')
    ep = base_url(p.port) if protocol == 'article' else files_url(p.port)
    path, data = make_file(size, name='cut-%s.bin' % protocol)
    c = run_client(FAST + ['--retries', '10', '-p', protocol] + list(args) + [path, ep], timeout=50)
    _check_cut_run(c, p, path, size, '%s with cuts %r' % (protocol, p.cut_log))
    return srv, p, c, path, data, ep


def test_cuts_tus():
    srv, p, c, path, data, ep = _cut_upload('tus')
    expect_download(one_url(c, path, ep), data, 'tus after %d cuts' % p.cuts)


def test_cuts_tus_chunked():
    srv, p, c, path, data, ep = _cut_upload('tus', ['-c', '1M'], size=10 * MiB, lo=MiB // 2, hi=3 * MiB)
    expect_download(one_url(c, path, ep), data, 'tus -c 1M after %d cuts' % p.cuts)


def test_cuts_ietf():
    srv, p, c, path, data, ep = _cut_upload('ietf')
    expect_download(one_url(c, path, ep), data, 'IETF after %d cuts' % p.cuts)


def test_cuts_article():
    srv, p, c, path, data, ep = _cut_upload('article')
    lines = out_lines(c)
    eq(len(lines), 1, 'stdout lines')
    check(lines[0][0].startswith(ep + 'upload#'), 'article URL %r' % lines[0][0])
    files = upload_files(srv)
    eq(len(files), 1, 'data files on the server')
    eq((os.path.getsize(files[0]), file_sha(files[0])), (len(data), sha(data)),
       'article upload after %d cuts: stored (length, sha256)' % p.cuts)


def test_cut_request_is_not_sent_again_blindly():
    # After a cut the server may hold part of the body: the same PATCH at the same offset would
    # only earn a 409 and resend bytes for nothing. libcurl re-sends a request by itself when a
    # reused connection dies; the client must refuse that and ask for the offset first, so every
    # connection after the first begins with HEAD.
    srv = Server()
    p = FaultProxy(srv.port, seed=7, record=True)
    p.cut(MiB, 4 * MiB, mode='alternate', limit=6)
    ep = files_url(p.port)
    size = 24 * MiB
    path, data = make_file(size)
    c = run_client(FAST + ['--retries', '10', path, ep], timeout=50)
    expect_rc(c, 0, 'tus with cuts %r' % p.cut_log)
    streams = p.recorded_streams()  # before the download below goes through the proxy too
    expect_download(one_url(c, path, ep), data, 'tus after %d cuts' % p.cuts)
    check(p.cuts >= 3, 'only %d cuts were made' % p.cuts)
    firsts = [s.split(b' ', 1)[0] for s in streams[1:] if s]
    eq([m for m in firsts if m != b'HEAD'], [], 'methods that began a connection after a cut (%d cuts)' % p.cuts)


def test_drip_both_directions():
    # every byte, both ways, in its own segment: the client must not depend on how reads split
    srv = Server()
    for proto in ('tus', 'ietf'):
        p = FaultProxy(srv.port)
        p.drip(0.0002)
        ep = files_url(p.port)
        path, data = make_file(1500)
        c = run_client(FAST + ['-p', proto, path, ep], timeout=40)
        expect_rc(c, 0, 'dripped %s upload' % proto)
        expect_download(one_url(c, path, ep), data, 'dripped %s upload' % proto)
        eq(retry_lines(c, path), [], 'retries of a dripped upload')


def test_stall_then_recover():
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(MiB)
    ep = files_url(p.port)
    size = 3 * MiB
    path, data = make_file(size)
    c = Client(FAST + ['--stall-timeout', '1', '--retries', '6', path, ep])
    check(p.wait_for(lambda q: q.bytes_up > 512 * 1024, 15), 'upload never got going\n' + c.describe())
    p.stall()
    t0 = time.monotonic()
    c.wait_stderr(r'%s: .*retrying in .*\(attempt \d+ of \d+\)' % re.escape(path), timeout=20)
    detected = time.monotonic() - t0
    check(c.alive(), 'client exited during the stall\n' + c.describe())
    # drop the stalled connection (with what the client's socket still buffered), then let go
    p.cut_now('fin')
    p.unstall()
    p.throttle(None)
    rc = c.wait(40)
    eq(rc, 0, 'exit status after the stall ended\n' + c.describe())
    expect_download(one_url(c, path, ep), data, 'upload after a stall')
    res = resume_lines(c, path)
    check(res and all(0 < n < size and m == size for n, m in res),
          'resume lines after a stall with >512 KiB on the server: %r\n%s' % (res, c.describe()))
    # "A request during which no byte moved for this long counts as a failure": with
    # --stall-timeout 1 the stall must be noticed in about a second, not after many (4x margin)
    check(detected < 4.0, '--stall-timeout 1: the stall was reported only %.1f s after it began\n%s'
          % (detected, c.describe()))
