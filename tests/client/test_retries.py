"""How resumed-upload treats each kind of HTTP answer, end to end, against scriptedtus.py (an
in-memory tus server whose answers a fault script overrides, and which logs every request):
transient answers are retried after asking HEAD for the offset, permanent ones are not, a
creation answer without Tus-Resumable is "not a tus server" unless it is a proxy's 502/503/504,
Retry-After is obeyed within --retry-max-delay, and --retries counts failures in a row without
progress."""

import itertools
import json
import os
import re
import sys
import types

from clientlib import (FAST, HERE, ChildServer, check, eq, expect_rc, failed_line, http_req, make_file,
                       one_url, out_lines, retry_lines, run_client, sha, summary, tmpdir)

SCRIPTED = os.path.join(HERE, 'scriptedtus.py')
_n = itertools.count(1)


class Scripted:
    """A scriptedtus.py server with the given rules; killed by PID at the end of the test."""

    def __init__(self, rules=()):
        self.rules = list(rules)
        self.log = os.path.join(tmpdir(), 'scripted-%d.log' % next(_n))
        self.child = ChildServer([sys.executable, SCRIPTED, '--log', self.log, '--script', json.dumps(self.rules)],
                                 what='scriptedtus')
        self.port = self.child.port
        self.ep = 'http://127.0.0.1:%d/files/' % self.port

    def requests(self):
        """The logged requests so far, as objects with t, t_answer, method, path, offset, len,
        status, scripted, stored, checksum."""
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding='utf-8') as f:
            return [types.SimpleNamespace(**json.loads(l)) for l in f if l.strip()]

    def expect_stored(self, url, data, what):
        r = http_req(url)
        eq(r.status, 200, '%s: GET %s' % (what, url))
        eq((len(r.body), sha(r.body)), (len(data), sha(data)), '%s: (length, sha256) stored' % what)


def _seq(reqs):
    """(method, Upload-Offset, body length, status) of each request; offset and length only for PATCH."""
    return [(r.method, r.offset, r.len, r.status) if r.method == 'PATCH' else (r.method, r.status) for r in reqs]


def _show(reqs):
    return '\n  '.join(['requests:'] + ['%s %s offset=%r len=%d -> %d%s (server holds %r)'
                                         % (r.method, r.path, r.offset, r.len, r.status,
                                            ' scripted' if r.scripted else '', r.stored) for r in reqs])


def _only_reported_offsets(reqs, what):
    """Every PATCH starts at the offset the server last reported (0 on creation, Upload-Offset of a
    PATCH's 204, of a HEAD); after a failed PATCH the offset is unknown until the next HEAD, so
    the client may not send a PATCH before asking."""
    known = None
    for i, r in enumerate(reqs):
        if r.method == 'POST':
            known = 0 if r.status == 201 else None
        elif r.method == 'HEAD':
            known = r.stored if r.status == 200 else None
        elif r.method == 'PATCH':
            check(known is not None and r.offset == known,
                  '%s: request %d, PATCH at offset %r, but the server last reported %s\n%s'
                  % (what, i + 1, r.offset, 'nothing since a failure' if known is None else known, _show(reqs)))
            known = r.stored if r.status == 204 else None


def _retry_text(c, path):
    return [l for l in c.err_lines() if (path + ': ') in l and 'retrying in ' in l]


def _retry_pause(line):
    m = re.search(r'retrying in ([\d.]+)s', line)
    check(m is not None, 'no "retrying in Xs" in %r' % line)
    return float(m.group(1))


# ---------------------------------------------------------------------------
# a. transient answers to PATCH
# ---------------------------------------------------------------------------

def test_patch_transient_statuses_resume_from_head():
    # 10000 bytes in chunks of 4000; the 2nd PATCH (at 4000) is answered with the status after
    # the server kept 1500 of its bytes: the client must ask HEAD and go on from 5500.
    for status in (500, 502, 503, 504, 409, 423, 429):
        what = 'PATCH answered %d' % status
        srv = Scripted([{'method': 'PATCH', 'nth': 2, 'status': status, 'consume': False, 'keep': 1500,
                         'body': 'scripted trouble %d\n' % status}])
        path, data = make_file(10000)
        c = run_client(FAST + ['--retries', '3', '-c', '4000', path, srv.ep], timeout=20)
        reqs = srv.requests()
        expect_rc(c, 0, what)
        srv.expect_stored(one_url(c, path, srv.ep), data, what)
        eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 4000, 204), ('PATCH', 4000, 4000, status), ('HEAD', 200),
                        ('PATCH', 5500, 4000, 204), ('PATCH', 9500, 500, 204)],
           '%s: requests\n%s' % (what, _show(reqs)))
        _only_reported_offsets(reqs, what)
        eq(retry_lines(c, path), [(2, 4)], '%s: retry lines' % what)
        check('server answered %d' % status in _retry_text(c, path)[0],
              '%s: the retry line does not give the status\n%s' % (what, c.describe()))
        eq(summary(c), (1, 0), '%s: summary' % what)


def test_patch_failed_with_nothing_kept_resends_from_zero_after_head():
    srv = Scripted([{'method': 'PATCH', 'nth': 1, 'status': 503}])
    path, data = make_file(7000)
    c = run_client(FAST + ['--retries', '3', path, srv.ep], timeout=20)
    reqs = srv.requests()
    expect_rc(c, 0, 'first PATCH answered 503, nothing kept')
    srv.expect_stored(one_url(c, path, srv.ep), data, 'after a 503')
    eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 7000, 503), ('HEAD', 200), ('PATCH', 0, 7000, 204)],
       'requests\n' + _show(reqs))
    _only_reported_offsets(reqs, 'first PATCH answered 503')


# ---------------------------------------------------------------------------
# b. 460 checksum mismatch
# ---------------------------------------------------------------------------

def test_checksum_mismatch_460_is_sent_again():
    srv = Scripted([{'method': 'PATCH', 'nth': 2, 'status': 460, 'body': 'checksum mismatch\n'}])
    path, data = make_file(10000)
    c = run_client(FAST + ['--retries', '3', '--checksum', 'sha256', '-c', '4000', path, srv.ep], timeout=20)
    reqs = srv.requests()
    expect_rc(c, 0, 'PATCH answered 460')
    srv.expect_stored(one_url(c, path, srv.ep), data, 'after a 460')
    eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 4000, 204), ('PATCH', 4000, 4000, 460), ('HEAD', 200),
                    ('PATCH', 4000, 4000, 204), ('PATCH', 8000, 2000, 204)], 'requests\n' + _show(reqs))
    _only_reported_offsets(reqs, 'PATCH answered 460')
    # the server checks each Upload-Checksum (a wrong one would be answered 460 again)
    for r in reqs:
        if r.method == 'PATCH':
            check((r.checksum or '').startswith('sha256 '), 'PATCH without "Upload-Checksum: sha256 ...": %r'
                  % r.checksum)
    eq(retry_lines(c, path), [(2, 4)], 'retry lines')
    check('server answered 460' in _retry_text(c, path)[0], 'the retry line does not give the 460\n'
          + c.describe())


# ---------------------------------------------------------------------------
# c. permanent answers to PATCH
# ---------------------------------------------------------------------------

def test_patch_permanent_statuses_fail_at_once():
    for status in (400, 403, 413, 501):
        what = 'PATCH answered %d' % status
        srv = Scripted([{'method': 'PATCH', 'status': status,
                         'body': 'scripted refusal %d\nsecond line of the body\n' % status}])
        path, _ = make_file(5000)
        c = run_client(FAST + ['--retries', '3', path, srv.ep], timeout=20)
        reqs = srv.requests()
        expect_rc(c, 1, what)
        eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 5000, status)], '%s: requests\n%s' % (what, _show(reqs)))
        reason = failed_line(c, path)
        check('server answered %d' % status in reason, '%s: failure reason %r lacks the status' % (what, reason))
        check('scripted refusal %d' % status in reason and 'second line' not in reason,
              "%s: failure reason %r is not the server's first body line" % (what, reason))
        eq(retry_lines(c, path), [], '%s: retry lines' % what)
        eq(out_lines(c), [], '%s: stdout' % what)
        eq(summary(c), (0, 1), '%s: summary' % what)


# ---------------------------------------------------------------------------
# d. a creation answer without Tus-Resumable
# ---------------------------------------------------------------------------

def test_creation_answer_without_tus_resumable_is_not_tus():
    # 501 is what python's http.server answers to a POST it has no handler for
    for status in (501, 405, 200, 404):
        what = 'POST answered %d without Tus-Resumable' % status
        srv = Scripted([{'method': 'POST', 'status': status, 'tus': False, 'body': 'just a web server\n'}])
        path, _ = make_file(5000)
        c = run_client(FAST + ['--retries', '3', path, srv.ep], timeout=20)
        reqs = srv.requests()
        expect_rc(c, 1, what)
        reason = failed_line(c, path)
        check('does not speak tus' in reason, '%s: failure reason %r lacks "does not speak tus"' % (what, reason))
        eq(_seq(reqs), [('POST', status)], '%s: requests\n%s' % (what, _show(reqs)))
        eq(retry_lines(c, path), [], '%s: retry lines' % what)
        eq(summary(c), (0, 1), '%s: summary' % what)


def test_creation_gateway_errors_without_tus_resumable_are_retried():
    # a proxy in front of a tus server that is down answers so, without Tus-Resumable
    for status in (502, 503, 504):
        what = 'POST answered %d without Tus-Resumable' % status
        srv = Scripted([{'method': 'POST', 'nth': 1, 'status': status, 'tus': False,
                         'body': '<html>bad gateway</html>\n'}])
        path, data = make_file(5000)
        c = run_client(FAST + ['--retries', '3', path, srv.ep], timeout=20)
        reqs = srv.requests()
        expect_rc(c, 0, what)
        srv.expect_stored(one_url(c, path, srv.ep), data, what)
        eq(_seq(reqs), [('POST', status), ('POST', 201), ('PATCH', 0, 5000, 204)],
           '%s: requests\n%s' % (what, _show(reqs)))
        eq(retry_lines(c, path), [(2, 4)], '%s: retry lines' % what)


# ---------------------------------------------------------------------------
# e. Retry-After
# ---------------------------------------------------------------------------

def _retry_after_run(rule, what):
    srv = Scripted([dict(rule, method='PATCH', nth=1)])
    path, data = make_file(6000)
    c = run_client(['--retry-delay', '0.05', '--retry-max-delay', '5', '--retries', '3', path, srv.ep], timeout=20)
    reqs = srv.requests()
    expect_rc(c, 0, what)
    srv.expect_stored(one_url(c, path, srv.ep), data, what)
    eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 6000, rule['status']), ('HEAD', 200), ('PATCH', 0, 6000, 204)],
       '%s: requests\n%s' % (what, _show(reqs)))
    gap = reqs[2].t - reqs[1].t_answer
    check(gap >= 1.5, '%s: the next request came %.2f s after the answer (asked for 2 s)\n%s'
          % (what, gap, c.describe()))
    lines = _retry_text(c, path)
    eq(len(lines), 1, '%s: retry lines (%r)' % (what, lines))
    pause = _retry_pause(lines[0])
    check(pause >= 2.0, '%s: the retry line announces %.1f s, not at least 2\n%s' % (what, pause, c.describe()))


def test_retry_after_seconds_on_503():
    _retry_after_run({'status': 503, 'headers': {'Retry-After': '2'}}, 'PATCH answered 503 with Retry-After: 2')


def test_retry_after_http_date_on_429():
    _retry_after_run({'status': 429, 'retry_after_date': 2},
                     'PATCH answered 429 with Retry-After an HTTP-date 2 s ahead')


def test_retry_after_is_capped_by_retry_max_delay():
    srv = Scripted([{'method': 'PATCH', 'nth': 1, 'status': 503, 'headers': {'Retry-After': '30'}}])
    path, data = make_file(6000)
    # a 30 s pause would outlast this timeout
    c = run_client(['--retry-delay', '0.05', '--retry-max-delay', '0.5', '--retries', '3', path, srv.ep],
                   timeout=15)
    expect_rc(c, 0, 'PATCH answered 503 with Retry-After: 30, --retry-max-delay 0.5')
    srv.expect_stored(one_url(c, path, srv.ep), data, 'after a capped Retry-After')
    lines = _retry_text(c, path)
    eq(len(lines), 1, 'retry lines (%r)' % lines)
    pause = _retry_pause(lines[0])
    check(pause <= 0.5, 'the retry line announces %.1f s, more than --retry-max-delay 0.5\n%s'
          % (pause, c.describe()))


# ---------------------------------------------------------------------------
# f. --retries counts failures in a row without progress
# ---------------------------------------------------------------------------

def test_retries_count_failures_in_a_row_only():
    # 6000 bytes in chunks of 1000: every other PATCH fails, with a chunk stored in between, so
    # there are 5 failures in all but never 2 in a row
    srv = Scripted([{'method': 'PATCH', 'nth': [2, 4, 6, 8, 10], 'status': 503}])
    path, data = make_file(6000)
    c = run_client(FAST + ['--retries', '1', '-c', '1000', path, srv.ep], timeout=20)
    reqs = srv.requests()
    expect_rc(c, 0, 'every other PATCH answered 503, --retries 1')
    srv.expect_stored(one_url(c, path, srv.ep), data, 'every other PATCH answered 503')
    patches = [(r.offset, r.status) for r in reqs if r.method == 'PATCH']
    eq(patches, [(0, 204), (1000, 503), (1000, 204), (2000, 503), (2000, 204), (3000, 503), (3000, 204),
                 (4000, 503), (4000, 204), (5000, 503), (5000, 204)], 'PATCHes (offset, status)\n' + _show(reqs))
    _only_reported_offsets(reqs, 'every other PATCH answered 503')
    eq(retry_lines(c, path), [(2, 2)] * 5, 'retry lines')


def test_retries_progress_seen_by_head_counts():
    # every PATCH fails, but the server keeps 1500 bytes of each: HEAD shows progress each time
    srv = Scripted([{'method': 'PATCH', 'status': 503, 'consume': False, 'keep': 1500}])
    path, data = make_file(5000)
    c = run_client(FAST + ['--retries', '1', path, srv.ep], timeout=20)
    reqs = srv.requests()
    # the 4th PATCH stores the last 500 bytes and fails; the HEAD after it reports them all
    expect_rc(c, 0, 'every PATCH answered 503 after keeping 1500 bytes, --retries 1')
    srv.expect_stored(one_url(c, path, srv.ep), data, 'every PATCH answered 503 after keeping 1500 bytes')
    eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 5000, 503), ('HEAD', 200), ('PATCH', 1500, 3500, 503),
                    ('HEAD', 200), ('PATCH', 3000, 2000, 503), ('HEAD', 200), ('PATCH', 4500, 500, 503),
                    ('HEAD', 200)], 'requests\n' + _show(reqs))
    _only_reported_offsets(reqs, 'every PATCH answered 503 after keeping 1500 bytes')


def test_retries_give_up_after_n_plus_one_attempts():
    srv = Scripted([{'method': 'PATCH', 'status': 503, 'body': 'down for maintenance\n'}])
    path, _ = make_file(5000)
    c = run_client(FAST + ['--retries', '2', path, srv.ep], timeout=20)
    reqs = srv.requests()
    expect_rc(c, 1, 'every PATCH answered 503, --retries 2')
    eq(_seq(reqs), [('POST', 201), ('PATCH', 0, 5000, 503), ('HEAD', 200), ('PATCH', 0, 5000, 503),
                    ('HEAD', 200), ('PATCH', 0, 5000, 503)], 'requests\n' + _show(reqs))
    _only_reported_offsets(reqs, 'every PATCH answered 503')
    reason = failed_line(c, path)
    check('server answered 503' in reason and 'down for maintenance' in reason,
          'failure reason %r lacks the last answer' % reason)
    check('gave up after 3 attempts' in reason, 'failure reason %r lacks "gave up after 3 attempts"' % reason)
    eq(retry_lines(c, path), [(2, 3), (3, 3)], 'retry lines')
    eq(out_lines(c), [], 'stdout')
    eq(summary(c), (0, 1), 'summary')
