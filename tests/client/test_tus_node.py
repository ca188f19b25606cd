"""The client against another tus server: @tus/server with its FileStore (tests/tus-node), which
stores an upload's bytes in DIR/<id> (the last segment of the upload URL)."""

import os

from clientlib import (FAST, FaultProxy, check, eq, expect_rc, file_sha, make_file, make_tempdir,
                       one_url, resume_lines, retry_lines, run_client, sha, state_entries, summary,
                       tus_node_server)

MiB = 1 << 20


def _stored(store, url, data, what):
    uid = url.rstrip('/').rsplit('/', 1)[1]
    f = os.path.join(store, uid)
    check(os.path.isfile(f), '%s: %s missing (store has %r)' % (what, f, sorted(os.listdir(store))))
    eq((os.path.getsize(f), file_sha(f)), (len(data), sha(data)), '%s: stored (length, sha256)' % what)


def _node():
    store = os.path.join(make_tempdir('resumed-upload-tusnode-'), 'store')
    os.makedirs(store)
    return tus_node_server(store), store


def test_tus_node_upload():
    node, store = _node()
    ep = 'http://127.0.0.1:%d/files/' % node.port
    path, data = make_file(MiB + 123)
    c = run_client(FAST + [path, ep])
    expect_rc(c, 0, 'upload to @tus/server')
    _stored(store, one_url(c, path, ep), data, '@tus/server')
    eq(summary(c), (1, 0), 'summary')
    eq(state_entries(), [], 'state entries')


def test_tus_node_chunked_and_metadata():
    node, store = _node()
    ep = 'http://127.0.0.1:%d/files/' % node.port
    path, data = make_file(700001, name='node.txt')
    c = run_client(FAST + ['-c', '128K', '-m', 'k=v', path, ep])
    expect_rc(c, 0, 'chunked upload to @tus/server')
    url = one_url(c, path, ep)
    _stored(store, url, data, '@tus/server -c 128K')


def test_tus_node_cuts():
    node, store = _node()
    p = FaultProxy(node.port)
    p.cut(300 * 1024, 900 * 1024, mode='alternate', limit=4)
    ep = 'http://127.0.0.1:%d/files/' % p.port
    size = 3 * MiB
    path, data = make_file(size)
    c = run_client(FAST + ['--retries', '10', path, ep], timeout=50)
    expect_rc(c, 0, '@tus/server behind cuts')
    check(p.cuts >= 2, 'only %d cuts' % p.cuts)
    rl, res = retry_lines(c, path), resume_lines(c, path)
    check(rl and res and len(rl) >= len(res), '%d cuts: retry lines %r, resume lines %r\n%s'
          % (p.cuts, rl, res, c.describe()))
    _stored(store, one_url(c, path, ep), data, '@tus/server after %d cuts' % p.cuts)


def test_tus_node_stdin():
    node, store = _node()
    ep = 'http://127.0.0.1:%d/files/' % node.port
    data = os.urandom(200003)
    c = run_client(FAST + ['-c', '64K', '-', ep], stdin_data=data)
    expect_rc(c, 0, 'stdin to @tus/server')
    _stored(store, one_url(c, '-', ep), data, '@tus/server from stdin')
