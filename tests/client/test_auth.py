"""resumed-upload against a server with --auth-tokens and --auth-secret: the bearer token goes
in --header, the signed upload URL the server hands out is used as given for every resume
(through connection cuts), and the result belongs to that token alone."""

import os
import re
import secrets

from clientlib import (FAST, FaultProxy, Server, base_url, check, eq, expect_rc, files_url,
                       http_req, make_file, make_tempdir, one_url, run_client, sha, upload_files)

MiB = 1 << 20
SIGNED = re.compile(r'/files/[0-9a-f]{32}-[0-9a-f]{32}$')


def _auth_server():
    d = make_tempdir()
    owner, other = 'owner-' + secrets.token_hex(16), 'other-' + secrets.token_hex(16)
    tokens, secret = os.path.join(d, 'tokens'), os.path.join(d, 'secret')
    with open(tokens, 'w') as f:
        f.write('%s\n%s\n' % (owner, other))
    with open(secret, 'w') as f:
        f.write(secrets.token_hex(32) + '\n')
    srv = Server('--auth-tokens', tokens, '--auth-secret', secret)
    return srv, owner, other


def _bearer(token):
    return {'Authorization': 'Bearer ' + token}


def _cut_upload_with_token(protocol):
    srv, owner, other = _auth_server()
    p = FaultProxy(srv.port, seed=None)
    # The ranges of test_faults: an IETF creation's 104 (and so its URL) only follows the durable
    # creation, so cuts in the first MiB would keep the client from ever learning the URL.
    size, lo, hi = 16 * MiB, MiB, 4 * MiB
    assert size > 3 * hi        # at least three cuts whatever the draws
    p.cut(lo, hi, mode='alternate')
    ep = base_url(p.port) if protocol == 'article' else files_url(p.port)
    path, data = make_file(size, name='auth-%s.bin' % protocol)
    c = run_client(FAST + ['--retries', '10', '-p', protocol, '--header', 'Authorization: Bearer ' + owner,
                           path, ep], timeout=50)
    expect_rc(c, 0, '%s upload with a token through %d cuts' % (protocol, p.cuts))
    check(p.cuts >= 3, '%s: only %d cuts (%r)' % (protocol, p.cuts, p.cut_log))
    return srv, owner, other, p, c, path, data, ep


def test_tus_signed_url_through_cuts():
    srv, owner, other, p, c, path, data, ep = _cut_upload_with_token('tus')
    url = one_url(c, path, ep)
    check(SIGNED.search(url), 'the client reported %r, not the signed URL the server gave' % url)
    r = http_req(url, headers=_bearer(owner))
    eq((r.status, len(r.body), sha(r.body)), (200, len(data), sha(data)), 'owner downloads the upload')
    eq(http_req(url, headers=_bearer(other)).status, 403, 'another token downloads it')
    eq(http_req(url).status, 401, 'no token downloads it')
    eq(http_req(url[:url.rindex('-')], headers=_bearer(owner)).status, 403, 'the URL without its signature')


def test_ietf_signed_url_through_cuts():
    srv, owner, other, p, c, path, data, ep = _cut_upload_with_token('ietf')
    url = one_url(c, path, ep)
    check(SIGNED.search(url), 'the client reported %r, not the signed URL the server gave' % url)
    r = http_req(url, headers=_bearer(owner))
    eq((r.status, len(r.body), sha(r.body)), (200, len(data), sha(data)), 'owner downloads the upload')
    eq(http_req(url, headers=_bearer(other)).status, 403, 'another token downloads it')


def test_article_with_token_through_cuts():
    srv, owner, other, p, c, path, data, ep = _cut_upload_with_token('article')
    files = upload_files(srv)
    eq(len(files), 1, 'data files on the server')
    with open(files[0], 'rb') as f:
        got = f.read()
    eq((len(got), sha(got)), (len(data), sha(data)), 'article upload with a token: stored bytes')


def test_no_or_wrong_token_fails_with_the_reason():
    srv, owner, other = _auth_server()
    path, _ = make_file(64 * 1024, name='noauth.bin')
    c = run_client(FAST + ['--retries', '1', path, files_url(srv.port)])
    expect_rc(c, 1, 'upload without a token')
    check('401' in c.err, 'no 401 in the client\'s message: %r' % c.err)
    c = run_client(FAST + ['--retries', '1', '--header', 'Authorization: Bearer wrong-' + secrets.token_hex(8),
                           path, files_url(srv.port)])
    expect_rc(c, 1, 'upload with an unknown token')
    check('invalid token' in c.err, 'the server\'s reason is not in the client\'s message: %r' % c.err)
    eq(upload_files(srv), [], 'data files after refused uploads')
