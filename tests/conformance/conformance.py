#!/usr/bin/env python3
"""Black-box conformance suite for resumable-upload servers:

  * tus 1.0.0: core protocol and the extensions creation, creation-with-upload,
    creation-defer-length, termination, checksum, checksum-trailer, expiration,
    concatenation, concatenation-unfinished;
  * IETF draft-ietf-httpbis-resumable-upload ("Resumable Uploads for HTTP"), server
    requirements, interop versions 3-8.

One table row per server MUST / SHOULD (id, spec, section + quote, level, description, test
function; `--list` prints the table).  Each row prints one line:

    PASS <id> <level> <description>
    FAIL <id> <level> <description> -- <reason>, then what was sent and what came back
    SKIP <id> <level> <description> -- <why it cannot be evaluated here>

then totals and, last, exactly "N passed, N failed" (SKIPs are neither).  Exit status 1 if any
MUST-level row failed, 2 on usage errors or when the server cannot be reached, else 0.

Usage:  python3 conformance.py [options] BASE_URL      e.g. http://127.0.0.1:8080/files/

BASE_URL is the tus creation URL and the IETF upload-creation target.  Standard library only;
HTTP/1.1 on raw sockets (interim 1xx responses are observed separately from final ones).
Everything the suite creates is deleted again (tus: where termination is advertised).
"""

import argparse
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import core  # noqa: E402
import httpclient  # noqa: E402
import ietf_rows  # noqa: E402
import tus_rows  # noqa: E402
from core import ANY, Fail, Skip, fmt_exchange  # noqa: E402

DEFAULT_VERSIONS = (3, 4, 5, 6, 7, 8)


class Result:
    def __init__(self, row, version, status, reason='', detail=()):
        self.row = row
        self.version = version
        self.status = status
        self.reason = reason
        self.detail = list(detail)
        self.elapsed = 0.0

    @property
    def label(self):
        if self.version is None:
            return self.row.id
        return '%s@v%s' % (self.row.id, '*' if self.version == ANY else self.version)

    @property
    def group(self):
        if self.version is None:
            return 'tus 1.0.0'
        if self.version == ANY:
            return 'RUFH (any version)'
        return 'RUFH interop %d (draft %s)' % (self.version, ietf_rows.DRAFT[self.version])


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='conformance.py',
        description='tus 1.0.0 + IETF resumable-upload (interop 3-8) server conformance suite.',
        epilog='The final output line is exactly "N passed, N failed".')
    p.add_argument('base', nargs='?', help='creation URL, e.g. http://127.0.0.1:8080/files/')
    p.add_argument('--only', choices=('tus', 'ietf'), help='run only the tus or only the IETF rows')
    p.add_argument('--ietf-versions', metavar='LIST',
                   help='comma-separated interop versions to run (default: 3,4,5,6,7,8, each only '
                        'if the server answers it; versions given here run even if it does not)')
    p.add_argument('--ietf-version', type=int, metavar='N', help='same as --ietf-versions N')
    p.add_argument('--level', choices=('must', 'should'), help='only MUST-level or only SHOULD-level rows')
    p.add_argument('-k', action='append', default=[], metavar='SUBSTR',
                   help='only rows whose id, description or test function contains SUBSTR '
                        '(case-insensitive; repeatable, any matches)')
    p.add_argument('-v', '--verbose', action='store_true', help='dump every exchange')
    p.add_argument('--timeout', type=float, default=10.0, help='socket timeout in seconds (10)')
    p.add_argument('--wait-timeouts', type=float, default=0.0, metavar='SEC',
                   help='allow waiting up to SEC for the server\'s body timeout (TUS-038); 0 = skip')
    p.add_argument('--expiry-wait', type=float, default=15.0, metavar='SEC',
                   help='wait up to SEC for an upload to expire (TUS-074) (15)')
    p.add_argument('--insecure', action='store_true', help='do not verify TLS certificates')
    p.add_argument('--list', action='store_true', help='print the row table (Markdown) and exit')
    a = p.parse_args(argv)
    if a.ietf_version is not None:
        a.ietf_versions = str(a.ietf_version)
    a.forced_versions = a.ietf_versions is not None
    try:
        a.versions = [int(x) for x in (a.ietf_versions or ','.join(map(str, DEFAULT_VERSIONS))).split(',') if x.strip()]
    except ValueError:
        p.error('--ietf-versions: comma-separated integers expected')
    bad = [n for n in a.versions if n not in DEFAULT_VERSIONS]
    if bad:
        p.error('--ietf-versions: interop versions 3-8 are covered, not %s' % bad)
    if not a.list and not a.base:
        p.error('BASE_URL is required')
    return a


def selected(row, args, version=None):
    if args.level == 'must' and not row.is_must:
        return False
    if args.level == 'should' and row.is_must:
        return False
    if args.k:
        hay = ' '.join([row.id, row.desc, row.fn.__name__, row.level]).lower()
        if version is not None:
            hay += ' %s@v%s v%s' % (row.id.lower(), version, version)
        if not any(k.lower() in hay for k in args.k):
            return False
    return True


def print_table(args):
    print('| id | spec | versions | section / quote | level | description | test |')
    print('|---|---|---|---|---|---|---|')
    rows = []
    if args.only != 'ietf':
        rows += [(r, '-') for r in tus_rows.ROWS]
    if args.only != 'tus':
        for r in ietf_rows.ROWS:
            vs = 'any' if r.versions == ANY else ','.join(map(str, r.versions))
            rows.append((r, vs))
    for r, vs in rows:
        if not selected(r, args):
            continue
        cell = lambda s: s.replace('|', '\\|')  # noqa: E731
        print('| %s | %s | %s | %s | %s | %s | `%s` |' % (r.id, r.spec, vs, cell(r.ref), r.level,
                                                         cell(r.desc), r.fn.__name__))


class Out:
    def __init__(self, verbose, quiet=False):
        self.verbose = verbose
        self.quiet = quiet

    def line(self, s=''):
        if not self.quiet:
            print(s, flush=True)

    def result(self, res):
        head = '%-4s %-13s %-10s %s' % (res.status, res.label, res.row.level, res.row.desc)
        if res.reason:
            head += ' -- ' + res.reason
        if self.verbose:
            head += ' [%.2f s]' % res.elapsed
        self.line(head)
        for d in res.detail:
            self.line('       ' + d)


def run_row(ctx, out, row, version=None, skip_reason=None):
    t0 = time.monotonic()
    res = _run_row(ctx, out, row, version, skip_reason)
    res.elapsed = time.monotonic() - t0
    return res


def _run_row(ctx, out, row, version=None, skip_reason=None):
    ctx.note = ''
    res = None
    if skip_reason:
        return Result(row, version, 'SKIP', skip_reason)
    missing = [e for e in row.needs if not ctx.tus.has(e)]
    if missing:
        return Result(row, version, 'SKIP', 'server does not advertise %s in Tus-Extension'
                      % ', '.join(missing))
    if out.verbose:
        out.line('--- %s%s: %s' % (row.id, '' if version is None else '@v%s' % version, row.ref))
    try:
        if version is None:
            row.fn(ctx)
        else:
            row.fn(ctx, ietf_rows.V(version if version != ANY else 0))
        res = Result(row, version, 'PASS', ctx.note)
    except Skip as e:
        res = Result(row, version, 'SKIP', str(e))
    except Fail as e:
        res = Result(row, version, 'FAIL', e.msg, e.extra + fmt_exchange(e.resp))
    except Exception as e:  # a bug in the suite or an unexpected server answer
        tb = traceback.format_exc().strip().splitlines()
        res = Result(row, version, 'FAIL', 'suite error: %s: %s' % (type(e).__name__, e),
                     tb[-3:] if out.verbose else [])
    finally:
        try:
            ctx.cleanup()
        except Exception:
            pass
    return res


def discover(ctx, out):
    t = ctx.tus
    try:
        r = ctx.req('OPTIONS', ctx.base, [])
    except Fail as e:
        t.error = e.msg
        out.line('tus:  OPTIONS failed: %s' % e.msg)
        return
    t.options = r
    t.extensions = {x.strip() for x in (r.get('Tus-Extension') or '').split(',') if x.strip()}
    mx = (r.get('Tus-Max-Size') or '').strip()
    t.max_size = int(mx) if mx.isdigit() else None
    t.algorithms = [x.strip() for x in (r.get('Tus-Checksum-Algorithm') or '').split(',') if x.strip()]
    out.line('tus:  OPTIONS %d; Tus-Version: %s; Tus-Extension: %s; Tus-Max-Size: %s; '
             'Tus-Checksum-Algorithm: %s' % (r.status, r.get('Tus-Version', '-'), r.get('Tus-Extension', '-'),
                                             r.get('Tus-Max-Size', '-'), r.get('Tus-Checksum-Algorithm', '-')))
    if t.has('creation'):
        try:
            rc, url = tus_rows.create(ctx, length=1)
            if rc.get('Upload-Expires'):
                t.expires_seen = rc.get('Upload-Expires')
                out.line('tus:  uploads expire (creation answered Upload-Expires: %s)' % t.expires_seen)
        except Fail:
            pass
        ctx.cleanup()
    ctx.responses = []


def main(argv):
    args = parse_args(argv)
    if args.list:
        print_table(args)
        return 0
    code, _ = run(args)
    return code


def run(args):
    """Run the selected rows; returns (exit status, [Result])."""
    base = args.base
    httpclient.Conn.insecure = args.insecure
    out = Out(args.verbose, getattr(args, 'quiet', False))
    if args.verbose:
        httpclient.Conn.log = lambda s: out.line('       ' + s.replace('\n', '\n       '))
    ctx = core.Context(base, args)
    out.line('conformance suite: %s' % base)
    t0 = time.monotonic()
    discover(ctx, out)
    results = []
    try:
        httpclient.Conn(base, args.timeout).close()
    except OSError as e:
        out.line('cannot connect to %s: %s' % (base, e))
        out.line('0 passed, 1 failed')
        return 2, results

    def emit(res):
        results.append(res)
        out.result(res)

    if args.only != 'ietf':
        out.line('')
        out.line('== tus 1.0.0')
        for row in tus_rows.ROWS:
            if selected(row, args):
                emit(run_row(ctx, out, row))

    if args.only != 'tus':
        answered = {}
        for n in args.versions:
            ctx.vstate = ietf_rows.VState(n)
            ok, why = ietf_rows.probe(ctx, n)
            ctx.cleanup()
            answered[n] = (ok, why)
            out.line('ietf: interop %d: %s' % (n, 'answered' if ok else
                                                'not answered%s: %s' % (' (running anyway: requested)'
                                                                         if args.forced_versions else '', why)))
        once = [r for r in ietf_rows.ROWS if r.versions == ANY and selected(r, args)]
        if once:
            out.line('')
            out.line('== RUFH, any interop version')
            ctx.vstate = ietf_rows.VState(0)
            for row in once:
                emit(run_row(ctx, out, row, ANY))
        for n in args.versions:
            ok, why = answered[n]
            skip = None
            if not ok and not args.forced_versions:
                skip = 'server does not answer interop version %d (see above)' % n
            out.line('')
            out.line('== RUFH interop %d (draft %s)%s' % (n, ietf_rows.DRAFT[n], '' if not skip else ': ' + skip))
            ctx.vstate = ietf_rows.VState(n)
            for row in ietf_rows.ROWS:
                if row.versions == ANY or n not in row.versions or not selected(row, args, n):
                    continue
                emit(run_row(ctx, out, row, n, skip))
        ctx.vstate = None

    # totals
    out.line('')
    out.line('== totals (%.1f s)' % (time.monotonic() - t0))
    groups = []
    for r in results:
        if r.group not in groups:
            groups.append(r.group)

    def count(rs):
        p = sum(1 for r in rs if r.status == 'PASS')
        f = sum(1 for r in rs if r.status == 'FAIL')
        s = sum(1 for r in rs if r.status == 'SKIP')
        fm = sum(1 for r in rs if r.status == 'FAIL' and r.row.is_must)
        return p, f, s, fm

    for g in groups:
        p, f, s, fm = count([r for r in results if r.group == g])
        out.line('  %-32s %3d passed, %3d failed (%d MUST, %d SHOULD), %3d skipped' % (g, p, f, fm, f - fm, s))
    p, f, s, fm = count(results)
    out.line('  %-32s %3d passed, %3d failed (%d MUST, %d SHOULD), %3d skipped' % ('all', p, f, fm, f - fm, s))
    if ctx.deleted_count or ctx.leftover:
        out.line('  cleanup: %d uploads deleted%s' % (ctx.deleted_count, '' if not ctx.leftover else
                 '; %d left on the server (no termination, or DELETE failed): %s'
                 % (len(ctx.leftover), ' '.join(ctx.leftover[:5]) + (' ...' if len(ctx.leftover) > 5 else ''))))
    out.line('%d passed, %d failed' % (p, f))
    return (1 if fm else 0), results


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
