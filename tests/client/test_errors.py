"""Usage errors (exit 2, nothing uploaded), --help/--version (exit 0) and per-file failures
(exit 1): unreachable server, a server that does not speak tus, a permanent 4xx with its reason."""

import os

from clientlib import (FAST, Server, check, closed_port, eq, expect_download, expect_rc,
                       expect_usage_error, failed_line, files_url, make_file, out_lines,
                       plain_http_server, retry_lines, run_client, state_entries, summary, tmpdir)


def _no_uploads(srv):
    eq(srv.data_files(), [], 'uploads created on the server by a usage error')


def test_help_and_version():
    for args in (['--help'], ['-h']):
        c = run_client(args)
        expect_rc(c, 0, ' '.join(args))
        check('--protocol' in c.out and '--resume' in c.out and '--chunk-size' in c.out,
              '%s: stdout does not summarise the options: %r' % (args[0], c.out[:500]))
        eq(c.err, '', '%s: stderr' % args[0])
    for args in (['--version'], ['-V']):
        c = run_client(args)
        expect_rc(c, 0, ' '.join(args))
        eq(c.out.strip(), 'resumed-upload 0.1', '%s: stdout' % args[0])
        eq(c.err, '', '%s: stderr' % args[0])


def test_usage_errors():
    srv = Server()
    ep = files_url(srv.port)
    path, _ = make_file(1000)
    missing = os.path.join(tmpdir(), 'files', 'no-such-file.bin')
    cases = [
        ([path, missing, ep], "cannot read '%s': No such file or directory" % missing),
        ([path, 'ftp://x/'], 'bad URL'),
        ([path, 'notaurl'], 'bad URL'),
        ([], 'need at least one FILE and a URL'),
        ([path], 'need at least one FILE and a URL'),
        (['--bogus-option', path, ep], 'unknown option'),
        (['--parallel', 'x', path, ep], 'bad value for --parallel'),
        (['--protocol', 'article', '-', 'http://127.0.0.1:%d/' % srv.port],
         'standard input needs --protocol tus or ietf'),
        (['--protocol', 'article', '--checksum', 'sha256', path, 'http://127.0.0.1:%d/' % srv.port],
         '--checksum is not available with the article protocol'),
        (['--resume', ep + '0123456789abcdef0123456789abcdef', path, path, ep],
         '--resume takes exactly one FILE'),
    ]
    for args, msg in cases:
        c = run_client(FAST + args, timeout=15)
        expect_usage_error(c, msg)
    # a missing file among good ones: nothing at all is uploaded
    _no_uploads(srv)
    eq(state_entries(), [], 'state entries after usage errors')


def test_usage_bad_values_of_other_options():
    srv = Server()
    ep = files_url(srv.port)
    path, _ = make_file(1000)
    for opt, val in (('--retries', 'many'), ('--chunk-size', '12Q'), ('--retry-delay', 'soon'),
                     ('--stall-timeout', '-1'), ('--protocol', 'ftp'), ('--checksum', 'sha3'),
                     ('--ietf-version', '9'), ('--ietf-version', '2'), ('-j', '0')):
        c = run_client(FAST + [opt, val, path, ep], timeout=15)
        expect_rc(c, 2, '%s %s' % (opt, val))
        check(any(l.startswith('resumed-upload: ') for l in c.err_lines()) and
              "Try 'resumed-upload --help'." in c.err_lines(),
              '%s %s: not a usage error message\n%s' % (opt, val, c.describe()))
    # an option missing its value
    c = run_client([path, ep, '--retries'], timeout=15)
    expect_rc(c, 2, '--retries without a value')
    # a header that is not "Name: value"
    c = run_client(FAST + ['-H', 'NoColonHere', path, ep], timeout=15)
    expect_rc(c, 2, '-H NoColonHere')
    _no_uploads(srv)


def test_unreachable_server_fails():
    path, _ = make_file(5000)
    ep = 'http://127.0.0.1:%d/files/' % closed_port()
    c = run_client(FAST + ['--retries', '2', path, ep], timeout=30)
    expect_rc(c, 1, 'unreachable server')
    reason = failed_line(c, path)
    check('cannot connect' in reason, 'failure reason %r lacks "cannot connect"' % reason)
    # --retries N: N retries in a row without progress, that is N+1 attempts
    eq(retry_lines(c, path), [(2, 3), (3, 3)], '(attempt N of M) of the retry lines with --retries 2')
    eq(out_lines(c), [], 'stdout')
    eq(summary(c), (0, 1), 'summary')
    # --retries 0 fails at the first error
    c = run_client(FAST + ['--retries', '0', path, ep], timeout=30)
    expect_rc(c, 1, 'unreachable server, --retries 0')
    check('cannot connect' in failed_line(c, path), 'reason with --retries 0')
    eq(retry_lines(c, path), [], 'retry lines with --retries 0')


def test_not_a_tus_server():
    for status in (200, 404):
        plain = plain_http_server(status)
        path, _ = make_file(5000)
        ep = 'http://127.0.0.1:%d/files/' % plain.port
        c = run_client(FAST + ['--retries', '2', path, ep], timeout=30)
        expect_rc(c, 1, 'server answering %d without Tus-Resumable' % status)
        reason = failed_line(c, path)
        check('does not speak tus' in reason, 'failure reason %r lacks "does not speak tus"' % reason)
        eq(out_lines(c), [], 'stdout')
        eq(summary(c), (0, 1), 'summary')


def test_permanent_4xx_413_with_reason():
    srv = Server('--max-size', '1K')
    ep = files_url(srv.port)
    path, _ = make_file(4096)
    c = run_client(FAST + [path, ep], timeout=30)
    expect_rc(c, 1, '4 KiB to a server with --max-size 1K')
    reason = failed_line(c, path)
    check('server answered 413' in reason, 'failure reason %r lacks "server answered 413"' % reason)
    check('Content Too Large' in reason or 'exceeds the maximum size' in reason,
          "failure reason %r lacks the server's reason text" % reason)
    eq(retry_lines(c, path), [], 'retries of a permanent 413')
    eq(summary(c), (0, 1), 'summary')
    eq(srv.data_files(), [], 'uploads on the server')


def test_one_fails_others_uploaded():
    srv = Server('--max-size', '10K')
    ep = files_url(srv.port)
    small, sdata = make_file(3000, name='small.bin')
    big, _ = make_file(20000, name='big.bin')
    small2, sdata2 = make_file(9000, name='small2.bin')
    c = run_client(FAST + [small, big, small2, ep], timeout=30)
    expect_rc(c, 1, 'one of three files too large')
    lines = dict((f, u) for u, f in out_lines(c))
    eq(sorted(lines), sorted([small, small2]), 'files on stdout')
    expect_download(lines[small], sdata)
    expect_download(lines[small2], sdata2)
    check('server answered 413' in failed_line(c, big), 'reason for big.bin')
    eq(summary(c), (2, 1), 'summary')


def test_quiet_still_prints_errors():
    path, _ = make_file(5000)
    ep = 'http://127.0.0.1:%d/files/' % closed_port()
    c = run_client(FAST + ['-q', '--retries', '2', path, ep], timeout=30)
    expect_rc(c, 1, '-q, unreachable')
    check('cannot connect' in failed_line(c, path), 'reason with -q')
    eq(retry_lines(c, path), [], 'retry lines with -q')
