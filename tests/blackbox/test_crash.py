"""kill -9 durability and reboot simulation (--boot-id-file)."""

import os
import time
import uuid

from harness import (Server, check, eq, expect_success, file_sha, make_tempdir, poll_status, rand_id,
                     read_file, send_partial, sha)


def test_kill9_during_upload():
    srv = Server('--sync-interval', '256K')
    data = os.urandom(5 << 20)
    n = len(data)
    fid = rand_id('kill9')
    s1 = (1 << 20) + 12345
    send_partial(srv, fid, data, s1, mode='close')
    time.sleep(0.2)
    eq(poll_status(srv, fid, s1), s1, '/status after first cut')   # reported count
    more = 2 << 20
    c = send_partial(srv, fid, data[s1:], more, start=s1, mode='keep')
    time.sleep(0.4)
    srv.kill9()
    c.close()
    srv.start()
    s2 = srv.status(fid)
    check(s1 <= s2 <= s1 + more, '/status after kill -9 = %d, expected between %d (last reported) and %d (sent)'
          % (s2, s1, s1 + more))
    path = srv.data_path(fid)
    stored = read_file(path)
    check(len(stored) >= s2, 'data file (%d bytes) shorter than /status %d' % (len(stored), s2))
    eq(sha(stored[:s2]), sha(data[:s2]), 'sha256 of the stored prefix [0,%d)' % s2)
    r = srv.upload(fid, data[s2:], start=s2)
    expect_success(r, n, 'resume after kill -9 (first cut %d, then %d more sent, /status after restart %d; '
                   'server stderr %r)' % (s1, more, s2, srv.lines[-6:]))
    eq(file_sha(path), sha(data), 'stored sha256 after resume')


def test_kill9_keeps_acknowledged_counts():
    srv = Server()
    ids = {}
    for i, cut in enumerate((333333, 1 << 20, 77)):
        fid = rand_id('ack%d' % i)
        data = os.urandom(2 << 20)
        size = len(data) if i == 1 else None
        send_partial(srv, fid, data, cut, size=size, mode='close')
        ids[fid] = (data, cut, size)
    time.sleep(0.2)
    for fid, (data, cut, size) in ids.items():
        eq(poll_status(srv, fid, cut), cut, '/status (ack) for %s' % fid)
    srv.kill9()
    srv.start()
    for fid, (data, cut, size) in ids.items():
        s = srv.status(fid)
        check(s >= cut, '/status for %s after kill -9 = %d < acknowledged %d' % (fid, s, cut))
        check(s <= cut, '/status for %s after kill -9 = %d > bytes sent %d' % (fid, s, cut))
        path = srv.data_path(fid)
        eq(file_sha(path), sha(data[:cut]), 'stored prefix sha256 for %s' % fid)
    # a second crash right after restart changes nothing
    srv.kill9()
    srv.start()
    for fid, (data, cut, size) in ids.items():
        eq(srv.status(fid), cut, '/status for %s after second kill -9' % fid)
        r = srv.upload(fid, data[cut:], start=cut, size=size)
        expect_success(r, len(data), 'resume %s' % fid)


def _reboot_setup():
    base = make_tempdir()
    bootf = os.path.join(base, 'boot_id')
    with open(bootf, 'w') as f:
        f.write(str(uuid.uuid4()) + '\n')
    srv = Server('--boot-id-file', bootf, base=base)
    data = os.urandom(2 << 20)
    fid = rand_id('reboot')
    s = 700001
    send_partial(srv, fid, data, s, mode='close')
    time.sleep(0.2)
    eq(poll_status(srv, fid, s), s, '/status after cut')
    path = srv.data_path(fid)
    srv.kill9()
    with open(path, 'ab') as f:
        f.write(b'J' * 1000)
    return srv, bootf, data, fid, s, path


def _new_boot(bootf):
    with open(bootf, 'w') as f:
        f.write(str(uuid.uuid4()) + '\n')


def test_crash_same_boot_keeps_written_bytes():
    srv, bootf, data, fid, s, path = _reboot_setup()
    srv.start()
    eq(srv.status(fid), s + 1000, '/status after kill -9 + restart, same boot id (file has S+1000 bytes)')
    eq(os.path.getsize(path), s + 1000, 'data file length')
    # the recovered count was reported, so it must survive a later "reboot"
    srv.kill9()
    _new_boot(bootf)
    srv.start()
    eq(srv.status(fid), s + 1000, '/status after a reboot following the recovery that reported S+1000')
    eq(os.path.getsize(path), s + 1000, 'data file length after reboot')
    stored = read_file(path)
    eq(sha(stored[:s]), sha(data[:s]), 'stored prefix')


def test_reboot_cuts_back_to_synced_offset():
    srv, bootf, data, fid, s, path = _reboot_setup()
    _new_boot(bootf)
    srv.start()
    eq(srv.status(fid), s, '/status after reboot (boot id changed)')
    eq(os.path.getsize(path), s, 'data file length after reboot')
    eq(file_sha(path), sha(data[:s]), 'data file sha256 after reboot')
    r = srv.upload(fid, data[s:], start=s)
    expect_success(r, len(data), 'resume after reboot')
    eq(file_sha(path), sha(data), 'stored sha256 after resume')
