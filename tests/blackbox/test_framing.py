"""Request framing attacks: each -> 400 + Connection: close + connection closed; header limits -> 431."""

from harness import Sentinel, Server, check, eq, rand_id


def _server():
    srv = Server('--max-header-bytes', '4096', '--max-headers', '20')
    return srv, Sentinel(srv)


def _expect_400_close(srv, raw, what, fid=None, status=400, reason=None):
    with srv.conn() as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_final('POST')
        eq(r.status, status, what + ': status')
        if reason is not None:
            check(reason.encode() in r.body, '%s: body %r lacks the reason %r' % (what, r.body, reason))
        check(r.conn_close(), what + ': response lacks Connection: close (headers %r)' % r.headers)
        closed, extra = c.wait_closed(3)
        check(closed, what + ': connection not closed after the 400 (extra data %r)' % extra[:200])
    if fid is not None:
        eq(srv.status(fid), 0, what + ': /status of the id used in the bad request')


def _post(fid, extra_headers, body):
    head = ('POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: %s\r\nX-Start-Byte: 0\r\n' % fid).encode()
    return head + b''.join(h + b'\r\n' for h in extra_headers) + b'\r\n' + body


def test_content_length_and_transfer_encoding():
    srv, s = _server()
    fid = rand_id('clte')
    _expect_400_close(srv, _post(fid, [b'Content-Length: 10', b'Transfer-Encoding: chunked'],
                                 b'5\r\nhello\r\n0\r\n\r\n'), 'CL + TE: chunked', fid)
    s.check('CL+TE')
    fid = rand_id('tecl')
    _expect_400_close(srv, _post(fid, [b'Transfer-Encoding: chunked', b'Content-Length: 5'],
                                 b'5\r\nhello\r\n0\r\n\r\n'), 'TE: chunked + CL', fid)
    s.check('TE+CL')


def test_two_different_content_lengths():
    srv, s = _server()
    fid = rand_id('2cl')
    _expect_400_close(srv, _post(fid, [b'Content-Length: 5', b'Content-Length: 6'], b'hello!'),
                      'two Content-Length 5 and 6', fid)
    s.check('two CL')
    _expect_400_close(srv, _post(fid, [b'Content-Length: 5, 6'], b'hello!'), 'Content-Length: 5, 6', fid)
    s.check('CL list')


def test_invalid_content_length():
    srv, s = _server()
    for v in (b'abc', b'-1', b'+5', b'0x10', b'1e3', b'', b'99999999999999999999999', b'5 5'):
        fid = rand_id('badcl')
        _expect_400_close(srv, _post(fid, [b'Content-Length: ' + v], b'hello'), 'Content-Length %r' % v, fid)
        s.check('Content-Length %r' % v)


def _expect_chunked_rejected(srv, s, bodies, what):
    for bad in bodies:
        fid = rand_id('badchunk')
        with srv.conn() as c:
            c.send(_post(fid, [b'Transfer-Encoding: chunked'], bad))
            r = c.read_final('POST')
            eq(r.status, 400, 'chunked body %r: status' % bad)
            check(r.conn_close(), 'chunked body %r: no Connection: close' % bad)
            closed, extra = c.wait_closed(3)
            check(closed, 'chunked body %r: connection not closed' % bad)
        st = srv.status(fid)
        check(st in (0, 5), 'chunked body %r: /status %d (expected 0 or the 5 valid bytes)' % (bad, st))
        s.check('%s %r' % (what, bad))


def test_bad_chunk_size():
    srv, s = _server()
    _expect_chunked_rejected(srv, s, (
        b'zz\r\nhello\r\n0\r\n\r\n', b'5\r\nhello\r\nzz\r\n', b'-5\r\nhello\r\n0\r\n\r\n',
        b'0x5\r\nhello\r\n0\r\n\r\n', b'fffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n'), 'chunk')


def test_bad_chunk_terminator():
    # chunk = chunk-size CRLF chunk-data CRLF (RFC 9112 7.1): data not followed by CRLF is a framing error
    srv, s = _server()
    _expect_chunked_rejected(srv, s, (
        b'5\r\nhelloXX0\r\n\r\n', b'5\r\nhello\n0\r\n\r\n', b'5\r\nhelloX\r\n0\r\n\r\n'),
        'chunk terminator')


def test_transfer_encoding_not_chunked():
    srv, s = _server()
    for te in (b'gzip, chunked', b'gzip', b'chunked, gzip', b'identity', b'chunked, chunked', b'xchunked'):
        fid = rand_id('te')
        _expect_400_close(srv, _post(fid, [b'Transfer-Encoding: ' + te], b'5\r\nhello\r\n0\r\n\r\n'),
                          'Transfer-Encoding: %r' % te, fid,
                          reason=None if te in (b'chunked, chunked', b'xchunked', b'chunked, gzip') else 'unsupported Transfer-Encoding')
        s.check('TE %r' % te)


def test_refusals_from_the_head_keep_their_status_and_reason():
    # Checks made once the whole head is parsed: their status and reason, not llhttp's generic one.
    srv, s = _server()
    fid = rand_id('hd')
    _expect_400_close(srv, b'POST /upload HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-File-Id: %s\r\n'
                      b'X-Start-Byte: 0\r\nContent-Length: 1\r\n\r\nx' % fid.encode(),
                      'duplicate Host', fid, reason='duplicate Host')
    _expect_400_close(srv, _post(fid, [b'Expect: 200-ok', b'Content-Length: 1'], b'x'),
                      'Expect: 200-ok', fid, status=417, reason='unsupported expectation')
    s.check('refusals from the head')


def test_obs_fold():
    srv, s = _server()
    raw = (b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + s.fid.encode()
           + b'\r\n  continued\r\n\r\n')
    _expect_400_close(srv, raw, 'obs-fold in X-File-Id')
    fid = rand_id('fold')
    raw = _post(fid, [b'X-Foo: a', b'\tb', b'Content-Length: 5'], b'hello')
    _expect_400_close(srv, raw, 'obs-fold (tab) in another header', fid)
    s.check('obs-fold')


def test_bare_lf():
    srv, s = _server()
    raw = b'GET /status HTTP/1.1\nHost: 127.0.0.1\nX-File-Id: ' + s.fid.encode() + b'\n\n'
    _expect_400_close(srv, raw, 'bare-LF request')
    fid = rand_id('lf')
    raw = (b'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + fid.encode()
           + b'\nX-Start-Byte: 0\r\nContent-Length: 5\r\n\r\nhello')
    _expect_400_close(srv, raw, 'one bare-LF header line', fid)
    s.check('bare LF')


def _expect_431(srv, raw, what):
    with srv.conn() as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_final('GET')
        eq(r.status, 431, what)


def test_header_limits():
    srv, s = _server()
    fid = s.fid
    # one big header (over 4096 bytes of head)
    raw = (b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + fid.encode()
           + b'\r\nX-Pad: ' + b'p' * 5000 + b'\r\n\r\n')
    _expect_431(srv, raw, 'one 5000-byte header with --max-header-bytes 4096')
    s.check('big header')
    # many moderate headers, fewer than --max-headers, total over the byte limit
    raw = (b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + fid.encode() + b'\r\n'
           + b''.join(b'X-Pad-%d: %s\r\n' % (i, b'q' * 400) for i in range(15)) + b'\r\n')
    _expect_431(srv, raw, '15 x 400-byte headers with --max-header-bytes 4096')
    s.check('many moderate headers')
    # more header fields than --max-headers (20), small
    raw = (b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + fid.encode() + b'\r\n'
           + b''.join(b'X-H%d: v\r\n' % i for i in range(25)) + b'\r\n')
    _expect_431(srv, raw, '27 header fields with --max-headers 20')
    s.check('too many headers')
    # just under the limits is fine
    raw = (b'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-File-Id: ' + fid.encode() + b'\r\n'
           + b''.join(b'X-H%d: v\r\n' % i for i in range(10)) + b'\r\n')
    with srv.conn() as c:
        c.send(raw)
        r = c.read_final()
    eq((r.status, r.body), (200, str(s.held).encode()), '12 header fields (under the limit)')
