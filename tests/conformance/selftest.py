#!/usr/bin/env python3
"""Self-test of the conformance suite (standard library only, no external server needed).

1. Runs the whole suite against refserver.py (an in-memory reference implementation of tus
   1.0.0 + every extension and of the IETF draft, interop 3-8): every row must PASS, except
   the rows that are SKIP by nature (not observable black-box).
2. For every row, starts refserver with a fault that breaks exactly what the row checks and
   runs that row: it must FAIL (in every interop version it applies to).  This is the proof
   that no row is a test that cannot fail.

Prints one line per case and, last, "N passed, N failed".  Exit status 1 on any failure.

    python3 tests/conformance/selftest.py [-j JOBS] [-k SUBSTR] [-v]
"""

import argparse
import concurrent.futures
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import conformance  # noqa: E402
import ietf_rows  # noqa: E402
import refserver  # noqa: E402
import tus_rows  # noqa: E402

# Rows that cannot be probed black-box: SKIP everywhere, nothing to break.
UNPROBEABLE = {'TUS-039', 'TUS-104', 'TUS-119'}

# (fault, rows that must FAIL, extra suite args, refserver config overrides)
CASES = [
    # ---- tus core
    ('no_tus_resumable_on_errors', ['TUS-001']),
    ('wrong_tus_resumable_value', ['TUS-002']),
    ('no_412', ['TUS-003', 'TUS-005']),
    ('412_without_tus_version', ['TUS-004']),
    ('412_after_processing', ['TUS-005']),
    ('options_no_tus_version', ['TUS-006', 'TUS-007', 'TUS-008']),
    ('tus_version_malformed', ['TUS-007']),
    ('options_checks_version', ['TUS-008']),
    ('tus_extension_malformed', ['TUS-009']),
    ('tus_max_size_malformed', ['TUS-010']),
    ('unannounced_limit', ['TUS-011']),
    ('offset_malformed', ['TUS-012']),
    ('no_method_override', ['TUS-013']),
    ('head_no_offset_when_zero', ['TUS-020']),
    ('head_no_offset_when_complete', ['TUS-021']),
    ('head_no_length', ['TUS-022']),
    ('unknown_head_with_offset', ['TUS-023']),
    ('head_no_cache_control', ['TUS-024']),
    ('patch_403_always', ['TUS-030']),
    ('no_415', ['TUS-031']),
    ('patch_offset_ignored', ['TUS-032', 'TUS-033']),
    ('409_but_modifies', ['TUS-033']),
    ('patch_200', ['TUS-034']),
    ('patch_offset_header_wrong', ['TUS-035']),
    ('patch_unknown_400', ['TUS-036']),
    ('partial_discarded', ['TUS-037']),
    (None, ['TUS-038'], ['--wait-timeouts', '4'], {'body_timeout': None}),
    ('creation_unadvertised', ['TUS-040']),
    ('creation_200', ['TUS-041']),
    ('creation_bad_location', ['TUS-042']),
    ('metadata_not_echoed', ['TUS-043']),
    ('no_413', ['TUS-044']),
    ('metadata_decoded_into_headers', ['TUS-045']),
    ('defer_header_always', ['TUS-046']),
    ('defer_unadvertised', ['TUS-050']),
    ('defer_head_missing', ['TUS-051']),
    ('defer_length_mutable', ['TUS-052']),
    ('defer_still_after_declare', ['TUS-053']),
    ('defer_bad_value_accepted', ['TUS-054']),
    ('cwu_unadvertised', ['TUS-060']),
    ('cwu_without_creation', ['TUS-061']),
    ('cwu_offset_missing', ['TUS-062']),
    ('cwu_partial', ['TUS-063']),
    ('expiration_unadvertised', ['TUS-070']),
    ('expires_not_on_patch', ['TUS-071']),
    ('expires_not_on_post', ['TUS-072']),
    ('expires_bad_format', ['TUS-073']),
    ('expired_still_200', ['TUS-074'], ['--expiry-wait', '10'], {'expire_after': 2}),
    ('checksum_unadvertised', ['TUS-080']),
    ('no_checksum_algorithm_header', ['TUS-081']),
    ('no_sha1', ['TUS-082']),
    ('uppercase_algo_names', ['TUS-083']),
    ('checksum_not_verified_md5', ['TUS-084']),
    ('checksum_mismatch_stored', ['TUS-085']),
    ('unknown_algo_accepted', ['TUS-086']),
    ('trailer_unadvertised', ['TUS-090']),
    ('trailer_rejected', ['TUS-091']),
    ('trailer_not_verified', ['TUS-092']),
    ('termination_unadvertised', ['TUS-100']),
    ('delete_200', ['TUS-101']),
    ('delete_completed_403', ['TUS-102']),
    ('deleted_still_there', ['TUS-103']),
    ('concat_unadvertised', ['TUS-110']),
    ('concat_length_wrong', ['TUS-111']),
    ('concat_reversed', ['TUS-112']),
    ('concat_patch_409', ['TUS-113']),
    ('concat_patch_modifies', ['TUS-114']),
    ('concat_offset_missing_after', ['TUS-115']),
    ('partial_head_no_offset', ['TUS-116']),
    ('concat_header_missing', ['TUS-117']),
    ('concat_inherits_metadata', ['TUS-118']),
    ('unfinished_unadvertised', ['TUS-120']),
    ('unfinished_offset_shown', ['TUS-121']),
    ('unfinished_no_length', ['TUS-122']),
    ('unfinished_never_completes', ['TUS-123']),
    # ---- IETF
    ('104_without_version', ['RUFH-002']),
    ('104_any_version', ['RUFH-003']),
    ('no_104', ['RUFH-010']),
    ('104_no_location', ['RUFH-011', 'RUFH-030']),
    ('104_no_limit', ['RUFH-012']),
    ('creation_no_location', ['RUFH-013']),
    ('creation_no_limit', ['RUFH-014', 'RUFH-015']),
    ('creation_200', ['RUFH-016', 'RUFH-017']),
    ('creation_incomplete_no_flag', ['RUFH-017']),
    ('creation_complete_flagged_incomplete', ['RUFH-018']),
    ('creation_no_offset', ['RUFH-019']),
    ('location_mismatch', ['RUFH-020']),
    ('creation_progress_with_location', ['RUFH-021']),
    ('creation_progress_decreasing', ['RUFH-022']),
    ('no_recorded_length', ['RUFH-023']),
    ('no_length_from_cl', ['RUFH-024']),
    ('creation_partial_discarded', ['RUFH-025']),
    ('interrupted_creation_complete', ['RUFH-026']),
    ('no_100_with_104', ['RUFH-027']),
    ('guessable_ids', ['RUFH-028']),
    ('reuse_ids', ['RUFH-029']),
    ('head_wrong_offset', ['RUFH-040']),
    ('head_no_complete_field', ['RUFH-041', 'RUFH-042']),
    ('head_complete_wrong', ['RUFH-042']),
    ('head_200', ['RUFH-043']),
    ('head_202', ['RUFH-044']),
    ('head_no_cache', ['RUFH-045']),
    ('head_no_length', ['RUFH-046']),
    ('head_no_limit', ['RUFH-047']),
    ('head_accepts_offset', ['RUFH-048']),
    ('head_unknown_410', ['RUFH-049']),
    ('head_unknown_301', ['RUFH-050', 'RUFH-051']),
    ('stale_offset', ['RUFH-052']),
    ('no_terminate', ['RUFH-053']),
    ('forget_completed', ['RUFH-054']),
    ('offset_decreases', ['RUFH-060']),
    ('no_409', ['RUFH-061']),
    ('409_no_offset', ['RUFH-062']),
    ('409_modifies', ['RUFH-063']),
    ('problem_wrong_members', ['RUFH-064']),
    ('append_no_offset', ['RUFH-065']),
    ('append_204', ['RUFH-066']),
    ('append_complete_flagged_incomplete', ['RUFH-067', 'RUFH-070']),
    ('append_409_no_complete', ['RUFH-068']),
    ('append_no_complete_field', ['RUFH-069']),
    ('append_complete_no_true', ['RUFH-070']),
    ('no_length_enforcement_cl', ['RUFH-071']),
    ('no_length_enforcement_chunked', ['RUFH-072']),
    ('overflow_not_invalidated', ['RUFH-073']),
    ('completed_accepts_append', ['RUFH-074']),
    ('empty_complete_ignored', ['RUFH-075']),
    ('append_partial_discarded', ['RUFH-076']),
    ('interrupted_append_complete', ['RUFH-077']),
    ('no_append_progress', ['RUFH-078']),
    ('append_104_location', ['RUFH-079']),
    ('delete_200', ['RUFH-090']),
    ('delete_keeps', ['RUFH-091']),
    ('deleted_410', ['RUFH-092']),
    ('delete_accepts_offset', ['RUFH-093']),
    ('delete_unknown_410', ['RUFH-094']),
    ('delete_no_terminate', ['RUFH-095']),
    ('options_no_limit', ['RUFH-100', 'RUFH-101']),
    ('options_empty_limit', ['RUFH-102']),
    ('no_accept_patch', ['RUFH-103']),
    ('options_looser', ['RUFH-104']),
    ('limit_bad_syntax', ['RUFH-105']),
    ('no_max_age', ['RUFH-106']),
    ('limits_change', ['RUFH-107']),
    ('limits_tighten', ['RUFH-108']),
    ('lifetime_shrinks', ['RUFH-109']),
    ('413_no_limit', ['RUFH-110']),
    ('bad_sf', ['RUFH-111']),
    ('104_wrong_version', ['RUFH-112']),
]

# the clean reference must pass these with a special configuration
CLEAN_SPECIAL = [
    (['TUS-038'], ['--wait-timeouts', '4'], {'body_timeout': 1.5}),
    (['TUS-074'], ['--expiry-wait', '10'], {'expire_after': 2}),
]


def run_suite(rows, extra_args=(), cfg_over=None, faults=()):
    cfg = refserver.Config(faults=[f for f in faults if f])
    for k, val in (cfg_over or {}).items():
        setattr(cfg, k, val)
    srv, url = refserver.start(cfg)
    try:
        argv = [url] + list(extra_args)
        for r in rows or ():
            argv += ['-k', r]
        args = conformance.parse_args(argv)
        args.quiet = True
        _, results = conformance.run(args)
        return results
    finally:
        srv.shutdown()
        srv.server_close()


def check_fault(case):
    fault, rows = case[0], case[1]
    extra = case[2] if len(case) > 2 else ()
    over = case[3] if len(case) > 3 else None
    results = run_suite(rows, extra, over, [fault])
    problems = []
    for rid in rows:
        mine = [r for r in results if r.row.id == rid]
        if not mine:
            problems.append('%s did not run' % rid)
        for r in mine:
            if r.status != 'FAIL':
                problems.append('%s: %s (%s)' % (r.label, r.status, r.reason))
    return problems, results


def main(argv):
    p = argparse.ArgumentParser(description='self-test of the conformance suite')
    p.add_argument('-j', type=int, default=8, help='parallel cases (8)')
    p.add_argument('-k', action='append', default=[], help='only cases whose fault or rows contain SUBSTR')
    p.add_argument('-v', action='store_true', help='show each failing result of a fault run')
    a = p.parse_args(argv)
    t0 = time.monotonic()
    passed = failed = 0

    def report(ok, name, detail=()):
        nonlocal passed, failed
        if ok:
            passed += 1
            print('PASS %s' % name, flush=True)
        else:
            failed += 1
            print('FAIL %s' % name, flush=True)
            for d in detail:
                print('       ' + d, flush=True)

    cases = [c for c in CASES if not a.k or any(k in (c[0] or '') or any(k in r for r in c[1]) for k in a.k)]

    # coverage: every row has a fault case (or is unprobeable)
    if not a.k:
        covered = {r for c in CASES for r in c[1]}
        all_ids = [r.id for r in tus_rows.ROWS + ietf_rows.ROWS]
        missing = [i for i in all_ids if i not in covered and i not in UNPROBEABLE]
        report(not missing, 'coverage: every row has a fault that must make it fail',
               ['rows without a fault case: %s' % ', '.join(missing)] if missing else [])

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.j)) as ex:
        clean = []
        if not a.k:
            # the clean reference passes everything (the long run starts first)
            clean.append((None, ex.submit(run_suite, None)))
            for rows, extra, over in CLEAN_SPECIAL:
                clean.append(((rows, over), ex.submit(run_suite, rows, extra, over)))
        futs = [(c, ex.submit(check_fault, c)) for c in cases]
        for what, fut in clean:
            results = fut.result()
            if what is None:
                bad = [r for r in results if r.status == 'FAIL' or
                       (r.status == 'SKIP' and r.row.id not in UNPROBEABLE | {'TUS-038', 'TUS-074'})]
                report(not bad, 'clean reference server: %d rows, no FAIL, SKIP only where unprobeable'
                       % len(results), ['%s %s: %s' % (r.status, r.label, r.reason) for r in bad])
            else:
                bad = [r for r in results if r.status != 'PASS']
                report(results and not bad, 'clean reference server: %s with %s' % (','.join(what[0]), what[1]),
                       ['%s %s: %s' % (r.status, r.label, r.reason) for r in bad])
        for c, fut in futs:
            try:
                problems, results = fut.result()
            except Exception as e:  # noqa
                problems, results = ['selftest error: %s: %s' % (type(e).__name__, e)], []
            name = 'fault %-36s -> %s FAIL' % (c[0] or str(c[3]), ','.join(c[1]))
            detail = list(problems)
            if a.v:
                detail += ['%s %s: %s' % (r.status, r.label, r.reason) for r in results if r.status == 'FAIL']
            report(not problems, name, detail)

    print('selftest took %.1f s' % (time.monotonic() - t0))
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
