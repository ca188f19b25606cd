"""Article protocol ids scoped by X-Upload-Token: the article's ids (name-size-mtime) are
guessable, so a client that sends a token gets ids of its own."""

import hashlib
import os

from harness import Conn, Server, check, eq, expect_success, file_sha, sha

FID = 'report.pdf-3000-1700000000000'


def _status(srv, fid, token=None):
    h = [('X-File-Id', fid)] + ([('X-Upload-Token', token)] if token is not None else [])
    with Conn(srv.port) as c:
        r = c.request('GET', '/status', h)
    eq(r.status, 200, 'GET /status (token %r): %r' % (token, r.body))
    return int(r.body)


def _post(srv, fid, data, start, size, token=None, extra=()):
    h = [('X-File-Id', fid), ('X-Start-Byte', str(start)), ('X-File-Size', str(size))]
    if token is not None:
        h.append(('X-Upload-Token', token))
    with Conn(srv.port) as c:
        return c.request('POST', '/upload', h + list(extra), data)


def test_same_id_different_tokens_are_different_uploads():
    srv = Server()
    a, b = os.urandom(3000), os.urandom(3000)
    eq(_post(srv, FID, a[:1000], 0, 3000, token='alice-0123').status, 200, 'alice part 1')
    eq(_post(srv, FID, b[:2000], 0, 3000, token='bob-4567').status, 200, 'bob part 1')
    eq(_status(srv, FID, 'alice-0123'), 1000, "alice's offset")
    eq(_status(srv, FID, 'bob-4567'), 2000, "bob's offset")
    eq(_status(srv, FID), 0, 'the same id without a token is a third, empty upload')
    # bob cannot append to alice's upload by guessing its id: his offset is his own
    r = _post(srv, FID, a[1000:], 1000, 3000, token='bob-4567')
    eq((r.status, r.reason), (400, 'Wrong start byte'), "bob sending at alice's offset")
    eq(_status(srv, FID, 'alice-0123'), 1000, "alice's offset after bob's attempt")
    expect_success(_post(srv, FID, a[1000:], 1000, 3000, token='alice-0123'), 3000)
    expect_success(_post(srv, FID, b[2000:], 2000, 3000, token='bob-4567'), 3000)
    stored = sorted(file_sha(f) for f in srv.data_files())
    eq(stored, sorted([sha(a), sha(b)]), 'two stored files, each intact')


def test_token_link_name_is_domain_separated():
    srv = Server()
    eq(_post(srv, FID, b'x' * 10, 0, 3000, token='t0k').status, 200, 'partial upload')
    want = hashlib.sha256(b'article-scoped\nt0k\n' + FID.encode()).hexdigest()
    eq(os.listdir(os.path.join(srv.dir, 'article')), [want], 'DIR/article link name for a scoped id')
    check(not srv.has_article_link(FID), 'the unscoped name is not used')


def test_bad_tokens_are_refused_and_nothing_is_written():
    srv = Server()
    for token, status, what in ((b'a b', 400, 'a space'), (b'\xc3\xa9t\xc3\xa9', 400, 'non-ASCII'),
                                (b'x' * 257, 431, '257 bytes')):
        r = _post(srv, FID, b'data', 0, 3000, token=token.decode('latin-1'))
        eq(r.status, status, 'X-Upload-Token with %s: %r' % (what, r.body))
        check(r.body.strip(), 'a reason in the body for %s' % what)
    with Conn(srv.port) as c:
        r = c.request('GET', '/status', [('X-File-Id', FID), ('X-Upload-Token', 'a'),
                                         ('X-Upload-Token', 'b')])
    eq(r.status, 400, 'two X-Upload-Token headers')
    eq(srv.data_files(), [], 'no data file after refused requests')
    eq(_post(srv, FID, b'x' * 256, 0, 3000, token='y' * 256).status, 200, 'a 256-byte token is accepted')
