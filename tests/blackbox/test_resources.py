"""Resource exhaustion and shutdown: a full disk, failing writes and syncs, no free file
descriptors, and a graceful SIGTERM.

- Disk full: the store lives on an 8 MiB tmpfs (mounted directly when we are root, else the server
  runs in its own user + mount namespace via `unshare -Urm` with the tmpfs mounted there, and the
  test reads the store through /proc/PID/root).  Space is freed through the server (tus DELETE of
  a filler upload), which works in both cases.  BB_TMPFS_MODE=mount|unshare forces one method.
- EIO / ENOSPC / failing fdatasync: build/tools/faultfs.so (tests/tools/faultfs.c), LD_PRELOADed
  into the normal build; its control file switches faults on and off while the server runs, and
  its `.hits` file proves each fault really happened.  In the ASan run (RESUMED_BIN is an ASan
  build, which cannot be preloaded) these tests use build/resumed next to it.
- Out of file descriptors: the server runs with RLIMIT_NOFILE 64/64 (set by a python exec wrapper,
  the equivalent of preexec_fn: the harness's Server has no hook for it) under a flood of
  connections.
- SIGTERM (--shutdown-timeout): durability is checked across a simulated reboot (--boot-id-file
  with a new id before the restart), so only what the server synced and recorded before exiting
  counts, not what was left in the page cache.
"""

import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

from harness import (BIN, REPO, Server, TestFailure, build_head, build_request, check, eq,
                     expect_success, make_tempdir, rand_id, sha, upload_headers)

MiB = 1 << 20
KiB = 1 << 10
TUS = [('Tus-Resumable', '1.0.0')]
OCTET = 'application/offset+octet-stream'
IETF_V = 8
IETF = [('Upload-Draft-Interop-Version', str(IETF_V))]
PARTIAL = 'application/partial-upload'
LOCATION_RE = re.compile(r'/files/([0-9a-f]{32})$')
FAULTFS_SRC = os.path.join(REPO, 'tests', 'tools', 'faultfs.c')
FAULTFS_SO = os.path.join(REPO, 'build', 'tools', 'faultfs.so')
FAULT_SETTLE = 0.15       # the shim rereads its control file at most every 50 ms


# ---------------------------------------------------------------------------
# a server whose command line is prefixed (env, unshare, rlimit wrapper), all exec'ing, so the
# PID the harness kills is the server's
# ---------------------------------------------------------------------------

class WrappedServer(Server):
    def __init__(self, *extra, prefix=(), binary=None, **kw):
        self.prefix = list(prefix)
        self.binary = binary
        super().__init__(*extra, **kw)

    def argv(self):
        a = super().argv()
        if self.binary:
            a[0] = self.binary
        return self.prefix + a


def _req(srv, method, path, headers=(), body=b'', timeout=None):
    with (srv.conn(timeout) if timeout else srv.conn()) as c:
        c.send(build_request(method, path, list(headers), body))
        return c.read_final(method)


def _send_and_read(c, payload, method):
    """Sends payload on c from a thread (the server may answer before it has read all of it, and
    stop reading) and returns the final response read meanwhile."""
    def run():
        try:
            c.sock.sendall(payload)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        return c.read_final(method)
    finally:
        t.join(c.timeout + 1)


# --- tus ---

def _tus_create(srv, length):
    r = _req(srv, 'POST', '/files/', TUS + [('Upload-Length', str(length))])
    eq(r.status, 201, 'tus creation (Upload-Length %d): status; body %r' % (length, r.body))
    m = LOCATION_RE.search(r.header('Location') or '')
    check(m is not None, 'tus creation: Location %r' % r.header('Location'))
    return m.group(1)


def _tus_patch_head(key, offset, length):
    return build_head('PATCH', '/files/' + key, TUS + [('Upload-Offset', str(offset)), ('Content-Type', OCTET),
                                                       ('Content-Length', str(length))])


def _tus_patch(srv, key, offset, data):
    with srv.conn() as c:
        c.send(_tus_patch_head(key, offset, len(data)))
        return _send_and_read(c, data, 'PATCH')


def _tus_patch_ok(srv, key, offset, data, what):
    r = _tus_patch(srv, key, offset, data)
    eq((r.status, r.header('Upload-Offset')), (204, str(offset + len(data))),
       '%s: PATCH of %d bytes at %d (status, Upload-Offset); body %r' % (what, len(data), offset, r.body))


def _tus_offset(srv, key, what='HEAD'):
    r = _req(srv, 'HEAD', '/files/' + key, TUS)
    eq(r.status, 200, '%s: tus HEAD status' % what)
    v = r.header('Upload-Offset')
    check(v is not None and v.isdigit(), '%s: tus HEAD Upload-Offset %r' % (what, v))
    return int(v)


def _tus_delete(srv, key):
    r = _req(srv, 'DELETE', '/files/' + key, TUS)
    eq(r.status, 204, 'tus DELETE status; body %r' % r.body)


def _download_sha(srv, key, what):
    r = _req(srv, 'GET', '/files/' + key)
    eq(r.status, 200, '%s: GET /files/%s status; body %r' % (what, key, r.body[:200]))
    return sha(r.body)


# --- IETF draft ---

def _ietf_create(srv, length):
    r = _req(srv, 'POST', '/files/', IETF + [('Upload-Complete', '?0'), ('Upload-Length', str(length))])
    eq(r.status, 201, 'IETF creation (Upload-Length %d): status; body %r' % (length, r.body))
    m = LOCATION_RE.search(r.header('Location') or '')
    check(m is not None, 'IETF creation: Location %r' % r.header('Location'))
    return m.group(1)


def _ietf_patch_head(key, offset, length, complete):
    return build_head('PATCH', '/files/' + key, IETF + [('Upload-Offset', str(offset)),
                                                        ('Upload-Complete', '?1' if complete else '?0'),
                                                        ('Content-Type', PARTIAL),
                                                        ('Content-Length', str(length))])


def _ietf_patch(srv, key, offset, data, complete):
    with srv.conn() as c:
        c.send(_ietf_patch_head(key, offset, len(data), complete))
        return _send_and_read(c, data, 'PATCH')


def _ietf_patch_ok(srv, key, offset, data, complete, what):
    r = _ietf_patch(srv, key, offset, data, complete)
    eq((r.status, r.header('Upload-Offset')), (204, str(offset + len(data))),
       '%s: IETF PATCH of %d bytes at %d (status, Upload-Offset); body %r' % (what, len(data), offset, r.body))


def _ietf_offset(srv, key, what='HEAD'):
    r = _req(srv, 'HEAD', '/files/' + key, IETF)
    eq(r.status, 204, '%s: IETF HEAD status' % what)
    v = r.header('Upload-Offset')
    check(v is not None and v.isdigit(), '%s: IETF HEAD Upload-Offset %r' % (what, v))
    return int(v)


def _problem_json(r, status, what):
    eq(r.status, status, '%s: status; body %r' % (what, r.body))
    eq((r.header('Content-Type') or '').split(';')[0].strip(), 'application/problem+json', what + ': Content-Type')
    try:
        j = json.loads(r.body.decode('utf-8'))
    except ValueError:
        raise TestFailure('%s: problem body is not JSON: %r' % (what, r.body))
    check(isinstance(j, dict), '%s: problem body is not a JSON object: %r' % (what, j))


# --- article ---

def _article_post(srv, fid, data, start, size, total=None):
    """POST /upload with data (a Content-Length of total, default len(data))."""
    with srv.conn() as c:
        h = upload_headers(fid, start, size) + [('Content-Length', str(len(data) if total is None else total))]
        c.send(build_head('POST', '/upload', h))
        return _send_and_read(c, data, 'POST')


# --- the store seen from here ---

def _root(srv, ns):
    """Prefix of the server's view of the filesystem: its own mount namespace in unshare mode."""
    return '/proc/%d/root' % srv.proc.pid if ns else ''


def _stored(srv, key, ns=False):
    with open(_root(srv, ns) + os.path.join(srv.dir, 'uploads', key), 'rb') as f:
        return f.read()


def _article_key(srv, fid, ns=False):
    link = _root(srv, ns) + srv.article_link(fid)
    check(os.path.islink(link), 'no DIR/article link for id %r' % fid)
    key = os.path.basename(os.readlink(link).rstrip('/'))
    check(re.fullmatch(r'[0-9a-f]{32}', key) is not None, 'article link target %r' % key)
    return key


def _check_prefix(srv, key, data, n, what, ns=False):
    stored = _stored(srv, key, ns)
    check(len(stored) >= n, '%s: data file holds %d bytes, fewer than the offset %d reported'
          % (what, len(stored), n))
    eq(sha(stored[:n]), sha(data[:n]), '%s: sha256 of the stored bytes [0,%d)' % (what, n))


# ---------------------------------------------------------------------------
# disk full (tmpfs)
# ---------------------------------------------------------------------------

class Tmpfs:
    """A small tmpfs as the store (BASE/data) of one server."""

    def __init__(self, size_kib):
        self.size_kib = size_kib
        self.base = make_tempdir()
        self.dir = os.path.join(self.base, 'data')
        os.makedirs(self.dir)
        self.mounted = False
        self.ns = False
        force = os.environ.get('BB_TMPFS_MODE', '')
        errors = []
        if force != 'unshare':
            if os.geteuid() == 0:
                r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dk' % size_kib, 'tmpfs', self.dir],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                if r.returncode == 0:
                    self.mounted = True
                    return
                errors.append('mount (as root): %s' % r.stderr.decode(errors='replace').strip())
            else:
                errors.append('mount: not root')
        if force != 'mount':
            probe = os.path.join(self.base, 'probe')
            os.makedirs(probe)
            try:
                r = subprocess.run(['unshare', '-Urm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1"', 'sh', probe],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                if r.returncode == 0:
                    self.ns = True
                    return
                errors.append('unshare -Urm: %s' % r.stderr.decode(errors='replace').strip())
            except OSError as e:
                errors.append('unshare -Urm: %s' % e)
        raise TestFailure('cannot give the store a small tmpfs: neither mount(8) as root nor a user+mount '
                          'namespace (unshare -Urm) works here: %s' % '; '.join(errors))

    def server(self, *extra):
        prefix = []
        if self.ns:
            prefix = ['unshare', '-Urm', 'sh', '-c',
                      'mount -t tmpfs -o size=%dk tmpfs "$1" && shift && exec "$@"' % self.size_kib,
                      'sh', self.dir]
        return WrappedServer(*extra, prefix=prefix, base=self.base)

    def close(self, srv):
        srv.kill9()
        if self.mounted:
            if subprocess.run(['umount', self.dir], capture_output=True).returncode != 0:
                subprocess.run(['umount', '-l', self.dir], capture_output=True)
            self.mounted = False


def _disk_full(proto):
    fs = Tmpfs(8 * KiB)
    srv = fs.server()
    ns = fs.ns
    try:
        # 5 MiB of an unfinished filler upload (freed later by DELETE), a small finished upload
        filler = _tus_create(srv, 6 * MiB)
        filler_data = os.urandom(5 * MiB)
        _tus_patch_ok(srv, filler, 0, filler_data, 'filler')
        small = _tus_create(srv, 64 * KiB)
        small_data = os.urandom(64 * KiB)
        _tus_patch_ok(srv, small, 0, small_data, 'finished upload')

        # 6 MiB into the < 3 MiB left
        data = os.urandom(6 * MiB)
        what = '%s upload into a full disk' % proto
        if proto == 'tus':
            key = _tus_create(srv, len(data))
            r = _tus_patch(srv, key, 0, data)
            eq(r.status, 507, what + ': status; body %r' % r.body)
            check((r.header('Content-Type') or '').startswith('text/plain'),
                  what + ': Content-Type %r, expected text/plain' % r.header('Content-Type'))
            n = _tus_offset(srv, key, what)
        elif proto == 'ietf':
            key = _ietf_create(srv, len(data))
            r = _ietf_patch(srv, key, 0, data, True)
            _problem_json(r, 507, what)
            n = _ietf_offset(srv, key, what)
        else:
            fid = rand_id('full')
            r = _article_post(srv, fid, data, 0, len(data))
            eq(r.status, 507, what + ': status; body %r' % r.body)
            check(r.body.startswith(b'storage full'), what + ': body %r, expected "storage full"' % r.body)
            n = srv.status(fid)
            key = _article_key(srv, fid, ns)
        check(n < len(data), what + ': offset %d after a 507, but the disk cannot hold %d bytes' % (n, len(data)))
        _check_prefix(srv, key, data, n, what + ' (offset %d)' % n, ns)

        # the server and the other uploads still work
        check(srv.alive(), 'server died on a full disk; stderr %r' % srv.lines[-10:])
        eq(_tus_offset(srv, filler, 'filler on a full disk'), len(filler_data), 'filler offset on a full disk')
        eq(_download_sha(srv, small, 'finished upload on a full disk'), sha(small_data),
           'finished upload downloaded on a full disk')

        # space freed through the server: the same upload resumes and completes
        _tus_delete(srv, filler)
        if proto == 'tus':
            eq(_tus_offset(srv, key, 'after freeing space'), n, 'offset after freeing space')
            _tus_patch_ok(srv, key, n, data[n:], 'resume after freeing space')
            eq(_download_sha(srv, key, 'resumed upload'), sha(data), 'sha256 of the resumed upload')
        elif proto == 'ietf':
            eq(_ietf_offset(srv, key, 'after freeing space'), n, 'offset after freeing space')
            r = _ietf_patch(srv, key, n, data[n:], True)
            eq((r.status, r.header('Upload-Offset'), r.header('Upload-Complete')), (204, str(len(data)), '?1'),
               'resume after freeing space (status, Upload-Offset, Upload-Complete); body %r' % r.body)
            eq(_download_sha(srv, key, 'resumed upload'), sha(data), 'sha256 of the resumed upload')
        else:
            eq(srv.status(fid), n, '/status after freeing space')
            r = _article_post(srv, fid, data[n:], n, len(data))
            expect_success(r, len(data), 'resume after freeing space')
            eq(sha(_stored(srv, key, ns)), sha(data), 'sha256 of the resumed upload')
        # and a new upload works
        other = _tus_create(srv, 100 * KiB)
        _tus_patch_ok(srv, other, 0, os.urandom(100 * KiB), 'new upload after freeing space')
    finally:
        fs.close(srv)


def test_disk_full_tus():
    _disk_full('tus')


def test_disk_full_ietf():
    _disk_full('ietf')


def test_disk_full_article():
    _disk_full('article')


# ---------------------------------------------------------------------------
# EIO / ENOSPC / failing fdatasync (faultfs)
# ---------------------------------------------------------------------------

_faultfs_built = []


def _is_asan(path):
    try:
        with open(path, 'rb') as f:
            return b'libasan.so' in f.read()
    except OSError:
        return False


class Faults:
    """A server with faultfs preloaded and its control file."""

    def __init__(self, *extra):
        if not _faultfs_built:
            r = subprocess.run(['make', '-s', '-C', REPO, 'build/tools/faultfs.so'], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=120)
            check(r.returncode == 0 and os.path.exists(FAULTFS_SO),
                  'cannot build %s: %s' % (FAULTFS_SO, (r.stdout + r.stderr).decode(errors='replace')[-500:]))
            _faultfs_built.append(True)
        binary = None
        if _is_asan(BIN):
            # An ASan binary refuses a preloaded library ahead of its runtime: use the normal build.
            binary = os.path.join(os.path.dirname(os.path.dirname(BIN)), 'resumed')
            if not os.path.exists(binary):
                binary = os.path.join(REPO, 'build', 'resumed')
            check(os.path.exists(binary) and not _is_asan(binary),
                  'faultfs needs a non-ASan build next to %s (make build/resumed)' % BIN)
            print('note: faultfs tests run against %s (RESUMED_BIN=%s is an ASan build, which cannot be '
                  'LD_PRELOADed)' % (binary, BIN), flush=True)
        base = make_tempdir()
        self.ctl = os.path.join(base, 'faultfs.ctl')
        self.set('off')
        self.srv = WrappedServer(*extra, base=base, binary=binary,
                                 prefix=['env', 'LD_PRELOAD=' + FAULTFS_SO, 'FAULTFS_CTL=' + self.ctl])

    def set(self, line):
        tmp = self.ctl + '.tmp'
        with open(tmp, 'w') as f:
            f.write(line + '\n')
        os.replace(tmp, self.ctl)
        time.sleep(FAULT_SETTLE)

    def hits(self):
        try:
            with open(self.ctl + '.hits') as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def check_hit(self, calls, key, what):
        hits = [h for h in self.hits() if h.split(' ', 1)[0] in calls and key in h]
        check(hits, '%s: faultfs injected no failure of %s on %s (hits: %r); the test did not test anything'
              % (what, '/'.join(sorted(calls)), key, self.hits()[-5:]))


WRITES = {'write', 'pwrite', 'pwrite64', 'writev', 'pwritev', 'pwritev64', 'pwritev2', 'pwritev64v2'}
SYNCS = {'fsync', 'fdatasync'}


def test_eio_write_mid_body_tus():
    """Writes of one upload start failing with EIO in the middle of a PATCH body: 500, the offset
    stays within what was written before the fault with the stored bytes matching, another upload
    goes on meanwhile, and after the fault clears the same upload resumes (no restart)."""
    f = Faults()
    srv = f.srv
    pid = srv.proc.pid
    data = os.urandom(4 * MiB)
    key = _tus_create(srv, len(data))
    _tus_patch_ok(srv, key, 0, data[:MiB], 'first PATCH')
    other_data = os.urandom(2 * MiB)
    other = _tus_create(srv, len(other_data))
    _tus_patch_ok(srv, other, 0, other_data[:512 * KiB], 'other upload')

    c = srv.conn()
    try:
        c.send(_tus_patch_head(key, MiB, 3 * MiB))
        before = MiB + MiB // 2
        c.send(data[MiB:before])
        time.sleep(0.4)     # the server writes these before the fault starts
        f.set('eio /uploads/%s write' % key)
        r = _send_and_read(c, data[before:], 'PATCH')
    finally:
        c.close()
    eq(r.status, 500, 'PATCH whose writes fail with EIO: status; body %r' % r.body)
    f.check_hit(WRITES, key, 'EIO mid-body')
    n = _tus_offset(srv, key, 'after EIO')
    check(MiB <= n <= before, 'offset after EIO mid-body = %d, expected between %d (before the PATCH) and %d '
          '(bytes sent before the fault)' % (n, MiB, before))
    _check_prefix(srv, key, data, n, 'after EIO (offset %d)' % n)

    # still failing: another PATCH is refused and changes nothing; the other upload is unaffected
    r = _tus_patch(srv, key, n, data[n:n + 256 * KiB])
    eq(r.status, 500, 'PATCH while writes still fail: status; body %r' % r.body)
    eq(_tus_offset(srv, key, 'after a second EIO'), n, 'offset after a second PATCH with EIO')
    _tus_patch_ok(srv, other, 512 * KiB, other_data[512 * KiB:MiB], 'other upload during the fault')

    f.set('off')
    _tus_patch_ok(srv, key, n, data[n:], 'resume after the fault cleared (offset %d)' % n)
    eq(_download_sha(srv, key, 'resumed after EIO'), sha(data), 'sha256 of the upload resumed after EIO')
    _tus_patch_ok(srv, other, MiB, other_data[MiB:], 'other upload after the fault')
    eq(_download_sha(srv, other, 'other upload'), sha(other_data), 'sha256 of the other upload')
    check(srv.alive() and srv.proc.pid == pid, 'the server was restarted or died')


def test_eio_fdatasync_tus():
    """fdatasync of one upload fails with EIO: the PATCH is not acknowledged (5xx) and the offset
    never includes its bytes; after the fault clears the upload resumes (at most one more 5xx)."""
    f = Faults()
    srv = f.srv
    pid = srv.proc.pid
    data = os.urandom(2 * MiB)
    key = _tus_create(srv, len(data))
    _tus_patch_ok(srv, key, 0, data[:512 * KiB], 'first PATCH')
    other_data = os.urandom(MiB)
    other = _tus_create(srv, len(other_data))

    f.set('eio /uploads/%s sync' % key)
    r = _tus_patch(srv, key, 512 * KiB, data[512 * KiB:MiB])
    check(500 <= r.status <= 599, 'PATCH whose fdatasync fails: status %d (Upload-Offset %r), expected a 5xx: '
          'nothing may be acknowledged that was not synced' % (r.status, r.header('Upload-Offset')))
    f.check_hit(SYNCS, key, 'failing fdatasync')
    eq(_tus_offset(srv, key, 'after the failed sync'), 512 * KiB,
       'offset after a PATCH whose fdatasync failed (must not count unsynced bytes)')
    _tus_patch_ok(srv, other, 0, other_data[:512 * KiB], 'other upload during the sync fault')

    f.set('off')
    failures = []
    for attempt in range(2):
        n = _tus_offset(srv, key, 'resume attempt %d' % attempt)
        check(512 * KiB <= n <= len(data), 'offset %d after the fault cleared' % n)
        _check_prefix(srv, key, data, n, 'before resume attempt %d' % attempt)
        r = _tus_patch(srv, key, n, data[n:])
        if r.status == 204:
            eq(r.header('Upload-Offset'), str(len(data)), 'Upload-Offset of the completing PATCH')
            break
        check(500 <= r.status <= 599, 'resume after the fault cleared: status %d; body %r' % (r.status, r.body))
        failures.append(r.status)
    check(len(failures) < 2, 'resume after the sync fault cleared failed twice: %r' % failures)
    eq(_download_sha(srv, key, 'resumed after the sync fault'), sha(data), 'sha256 after the sync fault')
    _tus_patch_ok(srv, other, 512 * KiB, other_data[512 * KiB:], 'other upload after the fault')
    check(srv.alive() and srv.proc.pid == pid, 'the server was restarted or died')


def test_eio_every_call_mid_body_article():
    """Every write-side call on an article upload's file fails (writes, fdatasync, ftruncate, so
    neither the flush nor a cut-back can succeed) in the middle of a body: 500, the server keeps
    serving others; once the fault clears /status is within the bytes written before it with the
    stored bytes matching, and the upload resumes (at most one more 5xx) without a restart."""
    f = Faults()
    srv = f.srv
    pid = srv.proc.pid
    data = os.urandom(3 * MiB)
    fid = rand_id('eioall')
    r = _article_post(srv, fid, data[:MiB], 0, len(data))
    eq((r.status, r.body), (200, b''), 'first article POST')
    key = _article_key(srv, fid)
    c = srv.conn()
    try:
        c.send(build_head('POST', '/upload', upload_headers(fid, MiB, len(data)) + [('Content-Length', str(MiB))]))
        before = MiB + 512 * KiB
        c.send(data[MiB:before])
        time.sleep(0.4)
        f.set('eio /uploads/%s' % key)
        r = _send_and_read(c, data[before:2 * MiB], 'POST')
    finally:
        c.close()
    eq(r.status, 500, 'article POST whose every write-side call fails: status; body %r' % r.body)
    f.check_hit(WRITES, key, 'EIO on every call')
    other = rand_id('eioall-other')
    odata = os.urandom(300 * KiB)
    expect_success(srv.upload(other, odata, start=0, size=len(odata)), len(odata), 'another upload during the fault')

    f.set('off')
    failures = []
    for attempt in range(2):
        n = srv.status(fid)
        check(MiB <= n <= before, '/status %d after the fault cleared, expected between %d and %d' % (n, MiB, before))
        _check_prefix(srv, key, data, n, 'resume attempt %d' % attempt)
        r = _article_post(srv, fid, data[n:], n, len(data))
        if r.status == 200:
            break
        check(500 <= r.status <= 599, 'resume after the fault cleared: status %d; body %r' % (r.status, r.body))
        failures.append(r.status)
    check(len(failures) < 2, 'resume after the fault cleared failed twice: %r' % failures)
    expect_success(r, len(data), 'article resume after EIO on every call')
    eq(sha(_stored(srv, key)), sha(data), 'sha256 after EIO on every call')
    check(srv.alive() and srv.proc.pid == pid, 'the server was restarted or died')


def test_enospc_ietf_and_eio_article():
    """ENOSPC on an IETF upload's writes: 507 problem+json, offset unchanged, resumes after; EIO on an
    article upload's writes: 500 "storage error", /status unchanged, resumes after."""
    f = Faults()
    srv = f.srv
    data = os.urandom(2 * MiB)
    key = _ietf_create(srv, len(data))
    _ietf_patch_ok(srv, key, 0, data[:512 * KiB], False, 'first IETF PATCH')
    adata = os.urandom(MiB + 12345)
    fid = rand_id('eio')
    r = _article_post(srv, fid, adata[:256 * KiB], 0, len(adata))
    eq((r.status, r.body), (200, b''), 'first article POST')
    akey = _article_key(srv, fid)

    f.set('enospc /uploads/%s write' % key)
    r = _ietf_patch(srv, key, 512 * KiB, data[512 * KiB:], True)
    _problem_json(r, 507, 'IETF PATCH whose writes fail with ENOSPC')
    f.check_hit(WRITES, key, 'ENOSPC')
    eq(_ietf_offset(srv, key, 'after ENOSPC'), 512 * KiB, 'IETF offset after ENOSPC')
    # the article upload is not affected by the IETF upload's fault
    r = _article_post(srv, fid, adata[256 * KiB:512 * KiB], 256 * KiB, len(adata))
    eq((r.status, r.body), (200, b''), 'article POST while another upload has ENOSPC')

    f.set('eio /uploads/%s write' % akey)
    r = _article_post(srv, fid, adata[512 * KiB:], 512 * KiB, len(adata))
    eq(r.status, 500, 'article POST whose writes fail with EIO: status; body %r' % r.body)
    check(r.body.startswith(b'storage error'), 'article EIO: body %r, expected "storage error"' % r.body)
    f.check_hit(WRITES, akey, 'EIO (article)')
    eq(srv.status(fid), 512 * KiB, '/status after EIO')
    _check_prefix(srv, akey, adata, 512 * KiB, 'article after EIO')

    f.set('off')
    _ietf_patch_ok(srv, key, 512 * KiB, data[512 * KiB:], True, 'IETF resume after ENOSPC cleared')
    eq(_download_sha(srv, key, 'IETF upload'), sha(data), 'sha256 of the IETF upload')
    r = _article_post(srv, fid, adata[512 * KiB:], 512 * KiB, len(adata))
    expect_success(r, len(adata), 'article resume after EIO cleared')
    eq(sha(_stored(srv, akey)), sha(adata), 'sha256 of the article upload')


# ---------------------------------------------------------------------------
# out of file descriptors
# ---------------------------------------------------------------------------

FD_LIMIT = 32      # the server's own fds (~13) + a few connections with an upload each


def _cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _open_flood(port, n):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(('127.0.0.1', port), timeout=3)
        except OSError:
            continue        # refused: allowed
        socks.append(s)
    return socks


def _outcomes(socks, wait_s):
    """Reads from every socket (a request already sent on each) for up to wait_s seconds, until
    each has answered (a complete head) or been closed.  Returns ({sock: (status, head)}, [closed],
    [still open without an answer])."""
    pending = {}
    for s in socks:
        s.setblocking(False)
        pending[s] = b''
    answered, closed = {}, []
    deadline = time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        rl, _, _ = select.select(list(pending), [], [], 0.05)
        for s in rl:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b''
            if not d:
                closed.append(s)
                del pending[s]
                continue
            pending[s] += d
            buf = pending[s]
            if b'\r\n\r\n' in buf:
                head = buf.split(b'\r\n\r\n', 1)[0].decode('latin-1')
                m = re.match(r'HTTP/1\.1 (\d{3})', head)
                answered[s] = (int(m.group(1)) if m else -1, head)
                del pending[s]
    for s in socks:
        s.setblocking(True)
        s.settimeout(10)
    return answered, closed, list(pending)


def _send_all(socks, data):
    """Sends data on each socket; a socket the server already closed is left to _outcomes."""
    for s in socks:
        try:
            s.sendall(data)
        except OSError:
            pass


def test_out_of_file_descriptors():
    """RLIMIT_NOFILE 32/32: uploads are created on new connections until the fds run out; a creation
    with no fd free is answered 503 by the protocol (not a crash, not a 500); a flood of connections
    is closed or refused or answered 503, without the server spinning; bodies in progress keep
    going; when the clients go away everything works again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 512:   # this process holds the flood's client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    wrapper = ('import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); '
               'os.execv(sys.argv[1], sys.argv[1:])' % (FD_LIMIT, FD_LIMIT))
    srv = WrappedServer('--max-connections', '100000', '--max-connections-per-ip', '0', '--min-body-rate', '0',
                        prefix=[sys.executable, '-c', wrapper])
    pid = srv.proc.pid
    with open('/proc/%d/limits' % pid) as fh:
        lim = [l for l in fh if l.startswith('Max open files')]
    check(lim and lim[0].split()[3:5] == [str(FD_LIMIT)] * 2, 'server fd limit not set: %r' % lim)
    base_fds = len(os.listdir('/proc/%d/fd' % pid))
    check(base_fds + 6 < FD_LIMIT, 'the server holds %d fds at start: too many for this test\'s limit %d'
          % (base_fds, FD_LIMIT))

    # a body in progress before the fds run out
    adata = os.urandom(2 * MiB)
    fid = rand_id('fdflood')
    up = srv.conn()
    up.send(build_head('POST', '/upload', upload_headers(fid, 0, len(adata)) + [('Content-Length', str(len(adata)))]))
    up.send(adata[:512 * KiB])
    time.sleep(0.3)
    akey = _article_key(srv, fid)

    creators, flood = [], []
    tlen = 64 * KiB
    tdatas = {}
    try:
        # tus creations with their body in progress, one connection each, until no fd is left
        for i in range(15):
            try:
                s = socket.create_connection(('127.0.0.1', srv.port), timeout=3)
            except OSError:
                continue
            d = os.urandom(tlen)
            tdatas[s] = d
            try:
                s.sendall(build_head('POST', '/files/', TUS + [('Upload-Length', str(tlen)), ('Content-Type', OCTET),
                                                                ('Content-Length', str(tlen))]) + d[:KiB])
            except OSError:
                pass
            creators.append(s)
            select.select([s], [], [], 0.1)     # its creation is done (or answered) before the next
        answered, closed, open_ = _outcomes(creators, 1.0)
        summary = ('%d connections: %d answered %r, %d closed, %d in progress; server fds %d of %d'
                   % (len(creators), len(answered), sorted(st for st, _ in answered.values()), len(closed),
                      len(open_), len(os.listdir('/proc/%d/fd' % pid)), FD_LIMIT))
        check(srv.alive(), 'server died when its fds ran out (%s); stderr %r' % (summary, srv.lines[-10:]))
        busy = [h for st, h in answered.values() if st == 503 and re.search(r'(?im)^Tus-Resumable: 1\.0\.0\r?$', h)]
        check(busy, 'no tus creation was answered 503 with Tus-Resumable although the fds ran out (%s); answers %r; '
              'server log %r' % (summary, [h for _, h in answered.values()][:2], srv.lines[-8:]))
        bad = [h for st, h in answered.values() if st != 503]
        check(not bad, 'creations with no fd free answered other than 503: %r (%s)' % (bad[:2], summary))

        # a flood on top: closed, refused or 503, never left hanging, no spinning
        cpu0 = _cpu_seconds(pid)
        t0 = time.monotonic()
        flood = _open_flood(srv.port, 150)
        _send_all(flood, build_request('OPTIONS', '/files/', TUS))
        fans, fclosed, fhung = _outcomes(flood, 4.0)
        check(not fhung, '%d of %d flood connections neither answered nor closed within 4 s; %d answered, %d closed'
              % (len(fhung), len(flood), len(fans), len(fclosed)))
        fbad = sorted(set(st for st, _ in fans.values() if st not in (204, 503)))
        check(not fbad, 'flood connections answered %r (expected 204, or 503 for those it cannot take)' % fbad)
        check(fclosed or any(st == 503 for st, _ in fans.values()),
              'all %d flood connections were served: the fds were not exhausted' % len(flood))
        time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
        cpu = _cpu_seconds(pid) - cpu0
        wall = time.monotonic() - t0
        check(cpu < 0.3 * wall, 'server used %.2f s of CPU in %.2f s while out of fds (spinning)' % (cpu, wall))
        check(srv.alive(), 'server died under the flood; stderr %r' % srv.lines[-10:])

        # the bodies in progress go on
        try:
            up.send(adata[512 * KiB:MiB + 512 * KiB])
        except OSError as e:
            raise TestFailure('the upload in progress was cut while the fds were exhausted: %s' % e)
    finally:
        for s in flood:
            s.close()
    # the creations still reading their body complete (201) or, if they got no fd, are 503
    for s in open_:
        s.sendall(tdatas[s][KiB:])
    done, dclosed, dhung = _outcomes(open_, 5.0)
    check(not dclosed and not dhung and all(st in (201, 503) for st, _ in done.values()),
          'creations whose body was in progress while out of fds, completed after: %r, %d closed, %d without answer'
          % (sorted(st for st, _ in done.values()), len(dclosed), len(dhung)))
    for s, (st, head) in done.items():
        m = re.search(r'(?im)^Location: /files/([0-9a-f]{32})\r?$', head)
        if st == 201:
            check(m is not None, 'creation 201 without Location: %r' % head)
            eq(_download_sha(srv, m.group(1), 'created while out of fds'), sha(tdatas[s]),
               'sha256 of an upload created while out of fds')
    for s in creators:
        s.close()
    time.sleep(0.3)

    try:
        up.send(adata[MiB + 512 * KiB:])
        r = up.read_final('POST')
    finally:
        up.close()
    expect_success(r, len(adata), 'the upload in progress while out of fds')
    eq(sha(_stored(srv, akey)), sha(adata), 'sha256 of the upload finished after the flood')

    # back to normal
    tdata = os.urandom(300 * KiB)
    tkey = _tus_create(srv, len(tdata))
    _tus_patch_ok(srv, tkey, 0, tdata, 'new upload after the flood')
    eq(_download_sha(srv, tkey, 'new upload after the flood'), sha(tdata), 'sha256 of a new upload after the flood')
    eq(_req(srv, 'GET', '/').status, 200, 'GET / after the flood')
    check(srv.alive() and srv.proc.pid == pid, 'the server died')


# ---------------------------------------------------------------------------
# graceful shutdown (SIGTERM, --shutdown-timeout)
# ---------------------------------------------------------------------------

class Boot:
    """--boot-id-file whose id changes at reboot(): the restarted server trusts only what was
    synced and recorded (bytes past the recorded offset are cut after a reboot)."""

    def __init__(self):
        self.base = make_tempdir()
        self.path = os.path.join(self.base, 'boot_id')
        self.reboot()

    def reboot(self):
        with open(self.path, 'w') as fh:
            fh.write(str(uuid.uuid4()) + '\n')


def _term_server(timeout):
    boot = Boot()
    srv = Server('--shutdown-timeout', str(timeout), '--boot-id-file', boot.path, base=boot.base)
    return srv, boot


def _wait_exit(srv, t0, limit, what):
    """Waits up to limit seconds after t0 for the server to exit; returns (seconds after t0, status)."""
    try:
        rc = srv.proc.wait(timeout=max(0.0, t0 + limit - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise TestFailure('%s: server still running %.1f s after SIGTERM' % (what, limit))
    dt = time.monotonic() - t0
    srv._join()
    return dt, rc


def _expect_refused(port, within, what):
    """New connections must be refused from some moment within `within` s of the signal on."""
    deadline = time.monotonic() + within
    accepted = []
    while True:
        try:
            s = socket.create_connection(('127.0.0.1', port), timeout=1)
        except ConnectionRefusedError:
            break
        accepted.append(s)
        if time.monotonic() > deadline:
            for a in accepted:
                a.close()
            raise TestFailure('%s: connections still accepted %.1f s after SIGTERM' % (what, within))
        time.sleep(0.02)
    for a in accepted:
        a.close()
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=1)
        s.close()
        raise TestFailure('%s: a connection was accepted after one had been refused' % what)
    except ConnectionRefusedError:
        pass


def test_sigterm_idle_exits_at_once():
    srv, _ = _term_server(10)
    idle = srv.conn()
    r = idle.request('OPTIONS', '/files/', TUS)
    eq(r.status, 204, 'OPTIONS before SIGTERM')
    check(not r.conn_close(), 'keep-alive expected before SIGTERM')
    t0 = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGTERM)
    dt, rc = _wait_exit(srv, t0, 1.0, 'idle server (one idle keep-alive connection)')
    eq(rc, 0, 'exit status after SIGTERM')
    closed, _ = idle.wait_closed(1.0)
    check(closed, 'idle keep-alive connection not closed by the exit')
    idle.close()


def test_sigterm_waits_for_tus_patch_in_progress():
    """A PATCH in progress is given --shutdown-timeout: bytes sent during the grace period are
    read; the server exits with 0 once the timeout passes; after a reboot exactly what was sent is
    there and the upload resumes.  New connections are refused, idle ones closed at once."""
    srv, boot = _term_server(2)
    data = os.urandom(10 * MiB)
    key = _tus_create(srv, len(data))
    idle = srv.conn()
    eq(idle.request('OPTIONS', '/files/', TUS).status, 204, 'OPTIONS on the idle connection')
    c = srv.conn()
    try:
        c.send(_tus_patch_head(key, 0, len(data)))
        c.send(data[:MiB])
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(srv.proc.pid, signal.SIGTERM)
        _expect_refused(srv.port, 1.0, 'during the grace period')
        closed, _ = idle.wait_closed(max(0.1, t0 + 1.0 - time.monotonic()))
        check(closed, 'an idle keep-alive connection was not closed at once on SIGTERM')
        check(srv.alive(), 'server exited at once although a PATCH was in progress (--shutdown-timeout 2)')
        sent = MiB + 512 * KiB
        c.send(data[MiB:sent])          # read during the grace period
        dt, rc = _wait_exit(srv, t0, 3.2, 'PATCH in progress, --shutdown-timeout 2')
        eq(rc, 0, 'exit status after the grace period')
        check(dt >= 1.7, 'server exited %.2f s after SIGTERM, before --shutdown-timeout 2 passed, with a PATCH '
              'in progress' % dt)
    finally:
        c.close()
        idle.close()
    boot.reboot()
    srv.start()
    eq(_tus_offset(srv, key, 'after shutdown and reboot'), sent,
       'offset after a graceful shutdown and a reboot (bytes sent before and during the grace period)')
    _check_prefix(srv, key, data, sent, 'after shutdown')
    _tus_patch_ok(srv, key, sent, data[sent:], 'resume after restart')
    eq(_download_sha(srv, key, 'resumed after shutdown'), sha(data), 'sha256 after resuming')


def test_sigterm_lets_short_request_finish():
    """A PATCH that completes during the grace period gets its normal 204 with Upload-Offset and
    Connection: close; then the server, idle, exits with 0 at once."""
    srv, boot = _term_server(5)
    data = os.urandom(MiB)
    key = _tus_create(srv, len(data))
    c = srv.conn()
    try:
        c.send(_tus_patch_head(key, 0, len(data)))
        c.send(data[:256 * KiB])
        time.sleep(0.2)
        t0 = time.monotonic()
        os.kill(srv.proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        c.send(data[256 * KiB:])
        r = c.read_final('PATCH')
        t1 = time.monotonic()
        eq((r.status, r.header('Upload-Offset')), (204, str(len(data))),
           'PATCH finished during the grace period (status, Upload-Offset); body %r' % r.body)
        check(r.conn_close(), 'answer during shutdown without Connection: close: %r' % r.raw_head)
        closed, _ = c.wait_closed(1.0)
        check(closed, 'connection not closed after the answer during shutdown')
    finally:
        c.close()
    dt, rc = _wait_exit(srv, t0, 5.5, 'after the last request finished')
    eq(rc, 0, 'exit status')
    check(time.monotonic() - t1 < 1.5, 'server lingered %.1f s after its last request finished (--shutdown-timeout '
          '5)' % (time.monotonic() - t1))
    boot.reboot()
    srv.start()
    eq(_download_sha(srv, key, 'upload finished during shutdown'), sha(data), 'sha256 after restart')


def test_sigterm_all_protocols_resume_after_restart():
    """tus, IETF and article bodies in progress at SIGTERM: each gets what its client sends during
    the grace period made durable; after a reboot each continues to a correct sha256."""
    srv, boot = _term_server(2)
    total = 3 * MiB
    tdata, idata, adata = os.urandom(total), os.urandom(total), os.urandom(total)
    tkey = _tus_create(srv, total)
    ikey = _ietf_create(srv, total)
    fid = rand_id('term')
    conns = [srv.conn() for _ in range(3)]
    first, more = MiB, 256 * KiB
    try:
        conns[0].send(_tus_patch_head(tkey, 0, total))
        conns[1].send(_ietf_patch_head(ikey, 0, total, True))
        conns[2].send(build_head('POST', '/upload', upload_headers(fid, 0, total) + [('Content-Length', str(total))]))
        for c, d in zip(conns, (tdata, idata, adata)):
            c.send(d[:first])
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(srv.proc.pid, signal.SIGTERM)
        time.sleep(0.4)
        for c, d in zip(conns, (tdata, idata, adata)):
            c.send(d[first:first + more])
        dt, rc = _wait_exit(srv, t0, 3.2, 'three bodies in progress, --shutdown-timeout 2')
        eq(rc, 0, 'exit status')
        check(dt >= 1.7, 'server exited %.2f s after SIGTERM with bodies in progress (--shutdown-timeout 2)' % dt)
    finally:
        for c in conns:
            c.close()
    boot.reboot()
    srv.start()
    held = first + more
    eq(_tus_offset(srv, tkey, 'tus after restart'), held, 'tus offset after shutdown and reboot')
    eq(_ietf_offset(srv, ikey, 'IETF after restart'), held, 'IETF offset after shutdown and reboot')
    eq(srv.status(fid), held, 'article /status after shutdown and reboot')
    akey = _article_key(srv, fid)
    for key, d, what in ((tkey, tdata, 'tus'), (ikey, idata, 'IETF'), (akey, adata, 'article')):
        _check_prefix(srv, key, d, held, what + ' after shutdown')
    _tus_patch_ok(srv, tkey, held, tdata[held:], 'tus resume')
    _ietf_patch_ok(srv, ikey, held, idata[held:], True, 'IETF resume')
    expect_success(_article_post(srv, fid, adata[held:], held, total), total, 'article resume')
    eq(_download_sha(srv, tkey, 'tus'), sha(tdata), 'tus sha256')
    eq(_download_sha(srv, ikey, 'IETF'), sha(idata), 'IETF sha256')
    eq(sha(_stored(srv, akey)), sha(adata), 'article sha256')


def test_second_signal_ends_grace_period():
    """A second SIGTERM or SIGINT during the grace period ends it at once, exit 0, bytes durable."""
    for second in (signal.SIGINT, signal.SIGTERM):
        name = signal.Signals(second).name
        srv, boot = _term_server(10)
        data = os.urandom(4 * MiB)
        key = _tus_create(srv, len(data))
        c = srv.conn()
        try:
            c.send(_tus_patch_head(key, 0, len(data)))
            c.send(data[:MiB])
            time.sleep(0.3)
            os.kill(srv.proc.pid, signal.SIGTERM)
            time.sleep(0.3)
            sent = MiB + 256 * KiB
            c.send(data[MiB:sent])
            time.sleep(0.3)
            check(srv.alive(), 'server exited at once on the first SIGTERM with a PATCH in progress '
                  '(--shutdown-timeout 10)')
            t1 = time.monotonic()
            os.kill(srv.proc.pid, second)
            dt, rc = _wait_exit(srv, t1, 1.0, 'second signal (%s)' % name)
            eq(rc, 0, 'exit status after a second signal (%s)' % name)
        finally:
            c.close()
        boot.reboot()
        srv.start()
        eq(_tus_offset(srv, key, 'after %s' % name), sent, 'offset after SIGTERM + %s and a reboot' % name)
        _check_prefix(srv, key, data, sent, 'after SIGTERM + %s' % name)
        _tus_patch_ok(srv, key, sent, data[sent:], 'resume after SIGTERM + %s' % name)
        eq(_download_sha(srv, key, 'after %s' % name), sha(data), 'sha256 after SIGTERM + %s' % name)
        srv.kill9()
