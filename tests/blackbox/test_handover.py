"""A new request on an id whose earlier request hangs mid-body ends the earlier one at once."""

import os
import time

from harness import Server, check, eq, expect_success, file_sha, rand_id, send_partial, sha


def test_status_hands_over_hung_upload():
    srv = Server()
    data = os.urandom(3 << 20)
    fid = rand_id('hung')
    sent = (1 << 20) + 4321
    hung = send_partial(srv, fid, data, sent, mode='keep')
    try:
        time.sleep(0.5)   # let the server read what was sent
        t0 = time.monotonic()
        st = srv.status(fid)
        dt = time.monotonic() - t0
        check(dt < 2.0, 'GET /status took %.2f s while an upload of the id hangs' % dt)
        eq(st, sent, '/status while the earlier request hangs')
        path = srv.data_path(fid)
        eq(file_sha(path), sha(data[:sent]), 'stored prefix')
        t0 = time.monotonic()
        r = srv.upload(fid, data[sent:], start=sent)
        expect_success(r, len(data), 'resume while the old connection is still open')
        eq(file_sha(path), sha(data), 'stored sha256')
        closed, extra = hung.wait_closed(2)
        check(closed, 'the hung connection was not closed by the server')
    finally:
        hung.close()


def test_upload_hands_over_hung_upload():
    srv = Server()
    data = os.urandom(2 << 20)
    n = len(data)
    fid = rand_id('hung2')
    sent = 777777
    hung = send_partial(srv, fid, data, sent, size=n, mode='keep')
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        r = srv.upload(fid, data[sent:], start=sent, size=n)
        dt = time.monotonic() - t0
        expect_success(r, n, 'POST /upload resuming at the hung request\'s count')
        check(dt < 3.0, 'resume took %.2f s' % dt)
        eq(file_sha(srv.data_files()[0]), sha(data), 'stored sha256')
        closed, extra = hung.wait_closed(2)
        check(closed, 'the hung connection was not closed by the server')
        # the hung client's late bytes must not land anywhere
        try:
            hung.send(data[sent:sent + 1000])
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)
        eq(file_sha(srv.data_files()[0]), sha(data), 'stored sha256 after late bytes from the old connection')
        eq(srv.status(fid), 0, '/status after completion')
    finally:
        hung.close()


def test_handover_then_restart_from_zero():
    # a fresh start (X-Start-Byte 0) on an id with a hung request: new content wins
    srv = Server()
    old = os.urandom(1 << 20)
    new = os.urandom(300000)
    fid = rand_id('hung3')
    hung = send_partial(srv, fid, old, 500000, mode='keep')
    try:
        time.sleep(0.3)
        r = srv.upload(fid, new, start=0)
        expect_success(r, len(new), 'fresh upload over a hung one')
        check(sha(new) in [file_sha(p) for p in srv.data_files()], 'new content not stored')
        closed, extra = hung.wait_closed(2)
        check(closed, 'the hung connection was not closed by the server')
        eq(srv.status(fid), 0, '/status after completion')
    finally:
        hung.close()
