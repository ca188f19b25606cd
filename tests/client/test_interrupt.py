"""Interruptions: the server killed with SIGKILL mid-upload and restarted on the same data dir
(reached through the fault proxy, whose upstream follows the new port), the client killed with
SIGKILL and run again (state file), and --resume URL."""

import os
import re
import signal
import time

from clientlib import (upload_files, FAST, FaultProxy, Server, base_url, check, closed_port, default_state_file,
                       eq, expect_download, expect_rc, file_sha, files_url, http_req, make_file,
                       one_url, out_lines, resume_lines, retry_lines, run_client, Client, sha,
                       state_entries, summary, tmpdir)

MiB = 1 << 20


def _endpoint(proto, port):
    return base_url(port) if proto == 'article' else files_url(port)


def _server_offset(proto, url):
    if proto == 'tus':
        r = http_req(url, 'HEAD', {'Tus-Resumable': '1.0.0'})
        eq(r.status, 200, 'tus HEAD status')
        return int(r.header('Upload-Offset'))
    r = http_req(url, 'HEAD', {'Upload-Draft-Interop-Version': '6'})
    check(r.status in (200, 204), 'IETF HEAD status %d' % r.status)
    return int(r.header('Upload-Offset'))


def _check_stored(srv, proto, c, path, data, ep):
    if proto == 'article':
        lines = out_lines(c)
        eq(len(lines), 1, 'stdout lines')
        check(lines[0][0].startswith(ep + 'upload#'), 'article URL %r' % lines[0][0])
        files = upload_files(srv)
        eq(len(files), 1, 'data files')
        eq((os.path.getsize(files[0]), file_sha(files[0])), (len(data), sha(data)), 'stored (length, sha256)')
        return lines[0][0]
    url = one_url(c, path, ep)
    expect_download(url, data, '%s upload' % proto)
    return url


# ------------------------------------------------------------------ server killed

def _server_killed(proto):
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(3 * MiB)
    ep = _endpoint(proto, p.port)
    size = 6 * MiB
    path, data = make_file(size, name='srvkill-%s.bin' % proto)
    c = Client(FAST + ['-p', proto, '--retries', '30', path, ep])
    check(p.wait_for(lambda q: q.bytes_up > 1536 * 1024, 20), 'upload never got going\n' + c.describe())
    srv.kill9()
    time.sleep(0.3)                 # the client meets a dead server for a moment
    srv.start()                     # same data dir, new port
    p.set_upstream(srv.port)
    p.throttle(None)
    rc = c.wait(45)
    eq(rc, 0, '%s: exit status after the server was killed and restarted\n%s' % (proto, c.describe()))
    check(retry_lines(c, path), '%s: no retry line although the server was killed\n%s'
          % (proto, c.describe()))
    _check_stored(srv, proto, c, path, data, ep)
    eq(summary(c), (1, 0), 'summary')
    eq(state_entries(), [], 'state entries')


def test_server_killed_tus():
    _server_killed('tus')


def test_server_killed_ietf():
    _server_killed('ietf')


def test_server_killed_article():
    _server_killed('article')


# ------------------------------------------------------------------ client killed

def _start_and_kill(proto, args, size, state_file=None, want_state=True):
    """Start an upload through a throttled proxy and SIGKILL the client once >1 MiB reached the
    server.  The proxy stops forwarding first and then cuts the connection, so that what the
    client's socket still buffered never arrives (else the kernel would deliver the rest of the
    file after the client died).  Returns (srv, proxy, endpoint, path, data, argv, state entry)."""
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(2 * MiB)
    ep = _endpoint(proto, p.port)
    path, data = make_file(size, name='clientkill-%s.bin' % proto)
    argv = FAST + ['-p', proto] + list(args) + [path, ep]
    c = Client(argv)
    check(p.wait_for(lambda q: q.bytes_up > MiB, 20), 'upload never got going\n' + c.describe())
    p.stall()
    c.kill9()
    p.cut_now('fin')
    check(p.wait_for(lambda q: q.open_connections() == 0, 10), 'proxy connections still open')
    p.unstall()
    p.throttle(None)
    entries = state_entries(state_file)
    entry = None
    if want_state:
        eq(len(entries), 1, '%s: state file entries while the upload is unfinished (%r)' % (proto, entries))
        entry = entries[0]
        check(entry[1].startswith(ep), 'state URL %r not under %r' % (entry[1], ep))
    return srv, p, ep, path, data, argv, entry


def _server_upload_url(srv, ep):
    """The upload URL of the one upload in the server's dir (DIR/uploads/<key>, URL <ep><key>)."""
    files = upload_files(srv)
    check(len(files) == 1, 'uploads in the server dir: %r' % [(os.path.basename(f), os.path.getsize(f))
                                                             for f in files])
    return ep + os.path.basename(files[0])


def _stable_offset(proto, url):
    """The server's offset once it stopped moving (the cut body may still be draining)."""
    last = None
    deadline = time.monotonic() + 5
    while True:
        cur = _server_offset(proto, url)
        if cur == last or time.monotonic() > deadline:
            return cur
        last = cur
        time.sleep(0.2)


def _client_killed(proto, args=()):
    size = 5 * MiB
    # article: the file id is derived from the file, so the client needs no state entry
    srv, p, ep, path, data, argv, entry = _start_and_kill(proto, args, size, want_state=proto != 'article')
    url = entry[1] if entry else None
    held = _stable_offset(proto, url) if url else None
    if held is not None:
        check(0 < held < size, 'server offset %d after the client was killed' % held)
    c = run_client(argv, timeout=40)
    expect_rc(c, 0, '%s: the same command again' % proto)
    res = resume_lines(c, path)
    check(res, '%s: no "resuming at" line on the second run\n%s' % (proto, c.describe()))
    n, m = res[0]
    check(n > 0 and m == size, '%s: resuming at %d of %d' % (proto, n, m))
    if held is not None:
        eq(n, held, '%s: resume offset vs the server offset before the second run' % proto)
    got = _check_stored(srv, proto, c, path, data, ep)
    if url:
        eq(got, url, '%s: URL of the second run (the same upload)' % proto)
    eq(summary(c), (1, 0), 'summary')
    eq(state_entries(), [], '%s: state entries after the upload finished' % proto)


def test_client_killed_tus():
    _client_killed('tus')


def test_client_killed_ietf():
    # one creation request carrying the whole file: its URL comes in the 104 interim response
    _client_killed('ietf')


def test_client_killed_ietf_chunked():
    _client_killed('ietf', ['-c', '512K'])


def test_client_killed_tus_chunked():
    _client_killed('tus', ['-c', '512K'])


def test_client_killed_article():
    _client_killed('article')


def test_state_file_option():
    # --state-file PATH instead of $XDG_STATE_HOME/resumed-upload/uploads
    sf = os.path.join(tmpdir(), 'my-state')
    size = 4 * MiB
    srv, p, ep, path, data, argv, (key, url) = _start_and_kill('tus', ['--state-file', sf], size,
                                                               state_file=sf)
    check(0 < _stable_offset('tus', url) < size, 'server offset after the kill')
    check(not os.path.exists(default_state_file()) or state_entries() == [],
          'default state file used although --state-file was given')
    c = run_client(argv, timeout=40)
    expect_rc(c, 0, 'second run with --state-file')
    res = resume_lines(c, path)
    check(res and res[0][0] > 0, 'no resume from the --state-file entry\n' + c.describe())
    eq(one_url(c, path, ep), url, 'URL of the second run')
    expect_download(url, data)
    eq(state_entries(sf), [], 'entries left in --state-file')


def test_no_state_starts_afresh():
    # --no-state neither writes nor reads the state file: a killed run is not resumed
    size = 4 * MiB
    srv, p, ep, path, data, argv, (key, url) = _start_and_kill('tus', [], size)
    c = run_client(['--no-state'] + argv, timeout=40)
    expect_rc(c, 0, 'run with --no-state')
    eq(resume_lines(c, path), [], 'resume lines with --no-state')
    url2 = one_url(c, path, ep)
    check(url2 != url, '--no-state continued the upload of the state file')
    expect_download(url2, data)
    eq(len(state_entries()), 1, 'the old entry is left alone by --no-state')
    # and a --no-state run writes nothing
    os.remove(default_state_file())
    p.throttle(2 * MiB)
    before = p.bytes_up
    c = Client(['--no-state'] + argv)
    check(p.wait_for(lambda q: q.bytes_up > before + MiB, 20), 'upload never got going\n' + c.describe())
    c.kill9()
    check(not os.path.exists(default_state_file()) or state_entries() == [],
          '--no-state wrote the state file: %r' % state_entries())


def _resume_url(proto):
    # the first run keeps no state; the upload URL is taken from the server's dir
    size = 4 * MiB
    srv, p, ep, path, data, argv, _ = _start_and_kill(proto, ['--no-state'], size, want_state=False)
    eq(state_entries(), [], 'state entries after a --no-state run')
    url = _server_upload_url(srv, ep)
    held = _stable_offset(proto, url)
    check(0 < held < size, 'server offset %d' % held)
    c = run_client(FAST + ['-p', proto, '--resume', url, path, ep], timeout=40)
    expect_rc(c, 0, '%s --resume URL' % proto)
    res = resume_lines(c, path)
    check(res, 'no "resuming at" line with --resume\n' + c.describe())
    eq(res[0], (held, size), '%s --resume: (offset, size) of the first resume line' % proto)
    eq(one_url(c, path, ep), url, '--resume: URL on stdout')
    expect_download(url, data, '%s --resume' % proto)
    eq(summary(c), (1, 0), 'summary')
    eq(state_entries(), [], 'state entries after the --resume run finished')


def test_resume_url_tus():
    _resume_url('tus')


def test_resume_url_ietf():
    _resume_url('ietf')


def _interrupted_lines(c):
    """{file: (bytes as printed, URL, hint)} of `FILE: interrupted with at least N stored at URL; HINT`."""
    rx = re.compile(r'^resumed-upload: (.+): interrupted with at least (.+?) stored(?: at (\S+?))?(?:; (.*))?$')
    return dict((m.group(1), m.groups()[1:]) for m in (rx.match(l) for l in c.err_lines()) if m)


def _interrupted_summary(c):
    m = re.match(r'resumed-upload: (\d+) uploaded, (\d+) failed, (\d+) interrupted, ', c.err_lines()[-1])
    check(m is not None, 'last stderr line is not a summary with interruptions\n' + c.describe())
    return tuple(int(x) for x in m.groups())


def test_sigint_keeps_state_and_rerun_resumes():
    # Ctrl-C: the request in flight ends, the client says what is stored and how to go on,
    # exits 130 (128 + SIGINT), the state entry stays, and the same command continues
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(2 * MiB)
    ep = files_url(p.port)
    size = 5 * MiB
    path, data = make_file(size)
    argv = FAST + [path, ep]
    c = Client(argv)
    check(p.wait_for(lambda q: q.bytes_up > MiB, 20), 'upload never got going\n' + c.describe())
    os.kill(c.pid, signal.SIGINT)
    try:
        c.wait(10)
    except AssertionError:
        raise AssertionError('the client did not stop within 10 s of SIGINT\n' + c.describe())
    eq(c.proc.returncode, 130, 'exit status after SIGINT mid-upload\n' + c.describe())
    eq(out_lines(c), [], 'stdout after SIGINT')
    p.cut_now('fin')
    p.throttle(None)
    entries = state_entries()
    eq(len(entries), 1, 'state entries after SIGINT')
    held = _stable_offset('tus', entries[0][1])
    check(0 < held < size, 'server offset %d after SIGINT' % held)
    told = _interrupted_lines(c)
    eq(sorted(told), [path], 'files reported interrupted\n' + c.describe())
    eq(told[path][1:], (entries[0][1], 'the same command continues it'), 'URL and hint of the interruption')
    eq(_interrupted_summary(c), (0, 0, 1), 'summary (uploaded, failed, interrupted)')
    c = run_client(argv, timeout=40)
    expect_rc(c, 0, 'rerun after SIGINT')
    res = resume_lines(c, path)
    check(res and res[0] == (held, size), 'resume lines %r (server held %d)\n%s' % (res, held, c.describe()))
    eq(one_url(c, path, ep), entries[0][1], 'URL of the rerun')
    expect_download(entries[0][1], data)
    eq(state_entries(), [], 'state entries after the rerun')


def test_changed_file_is_a_new_upload():
    # the state key includes the modification time: a touched file is not resumed
    size = 4 * MiB
    srv, p, ep, path, data, argv, (key, url) = _start_and_kill('tus', [], size)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    c = run_client(argv, timeout=40)
    expect_rc(c, 0, 'run after the file was touched')
    eq(resume_lines(c, path), [], 'resume lines for a file with a new mtime')
    url2 = one_url(c, path, ep)
    check(url2 != url, 'the touched file continued the old upload %s' % url)
    expect_download(url2, data)


def test_parallel_kill_and_rerun():
    # three files at once (-j 3), client killed, the same command continues each of them
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(MiB)
    ep = files_url(p.port)
    files = [make_file(3 * MiB + i, name='par%d.bin' % i) for i in range(3)]
    argv = FAST + ['-j', '3'] + [f for f, _ in files] + [ep]
    c = Client(argv)
    check(p.wait_for(lambda q: q.active_uploads() >= 3 and q.bytes_up > 2 * MiB, 20),
          'three uploads never moved at once\n' + c.describe())
    p.stall()
    c.kill9()
    p.cut_now('fin')
    check(p.wait_for(lambda q: q.open_connections() == 0, 10), 'proxy connections still open')
    p.unstall()
    p.throttle(None)
    entries = state_entries()
    eq(len(entries), 3, 'state entries for three unfinished uploads')
    c = run_client(argv, timeout=40)
    expect_rc(c, 0, 'rerun of -j 3')
    urls = dict((f, u) for u, f in out_lines(c))
    eq(sorted(urls.values()), sorted(u for _, u in entries), 'the rerun continued the same uploads')
    for f, d in files:
        n = resume_lines(c, f)
        check(n and n[0][0] > 0, '%s: resume lines %r\n%s' % (f, n, c.describe()))
        expect_download(urls[f], d, f)
    eq(summary(c), (3, 0), 'summary')
    eq(state_entries(), [], 'state entries after the rerun')


def test_remembered_upload_gone_starts_again():
    # the server no longer has the upload of the state entry (deleted, expired): upload afresh
    for proto in ('tus', 'ietf'):
        size = 3 * MiB
        srv, p, ep, path, data, argv, (key, url) = _start_and_kill(proto, [], size)
        h = {'Tus-Resumable': '1.0.0'} if proto == 'tus' else {'Upload-Draft-Interop-Version': '6'}
        eq(http_req(url, 'DELETE', h).status, 204, '%s: DELETE of the unfinished upload' % proto)
        c = run_client(argv, timeout=40)
        expect_rc(c, 0, '%s: run after the remembered upload was deleted' % proto)
        eq(resume_lines(c, path), [], '%s: resume lines' % proto)
        url2 = one_url(c, path, ep)
        check(url2 != url, '%s: stdout names the deleted upload' % proto)
        expect_download(url2, data, proto)
        eq(state_entries(), [], '%s: state entries' % proto)
        os.remove(path)


def test_sigterm_during_backoff_and_queued_files():
    # SIGTERM while the only worker waits out a long backoff: it stops at once rather than after
    # the pause; the file never started is counted as interrupted, not failed; exit 143
    ep = files_url(closed_port())
    first, _ = make_file(3 * MiB, name='first.bin')
    second, _ = make_file(1000, name='second.bin')
    c = Client(['--retry-delay', '60', '--retry-max-delay', '60', first, second, ep])
    c.wait_stderr(r'first\.bin: .*retrying in')
    t0 = time.monotonic()
    os.kill(c.pid, signal.SIGTERM)
    c.wait(20)
    check(time.monotonic() - t0 < 15, 'the client waited out its 30-60 s backoff after SIGTERM\n' + c.describe())
    eq(c.proc.returncode, 143, 'exit status after SIGTERM\n' + c.describe())
    told = _interrupted_lines(c)
    eq(sorted(told), [first], 'files reported interrupted\n' + c.describe())
    eq(told[first][1], None, 'no URL for an upload never created')
    eq(_interrupted_summary(c), (0, 0, 2), 'summary (uploaded, failed, interrupted)')
    eq(state_entries(), [], 'state entries (nothing was created)')


def test_no_state_interruption_names_resume_url():
    # without a state file the interruption tells the URL to give --resume, and --resume finishes it
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(2 * MiB)
    ep = files_url(p.port)
    path, data = make_file(4 * MiB)
    c = Client(FAST + ['--no-state', path, ep])
    check(p.wait_for(lambda q: q.bytes_up > MiB, 20), 'upload never got going\n' + c.describe())
    os.kill(c.pid, signal.SIGINT)
    c.wait(10)
    eq(c.proc.returncode, 130, 'exit status after SIGINT\n' + c.describe())
    p.throttle(None)
    told = _interrupted_lines(c)
    eq(sorted(told), [path], 'files reported interrupted\n' + c.describe())
    url, hint = told[path][1:]
    eq(hint, '--resume with this URL continues it', 'hint without a state file')
    c = run_client(FAST + ['--no-state', '--resume', url, path, ep], timeout=40)
    expect_rc(c, 0, '--resume of the interrupted upload')
    eq(one_url(c, path, ep), url, 'URL of the resumed upload')
    expect_download(url, data)
