"""Start-up with a damaged store: .meta records torn, empty, garbage, with a wrong crc, naming
another upload or no key, symlinked or a directory, a symlinked data file; crash leftovers.

The store (src/store_fs.c, store_fs_open) leaves an upload whose record it cannot read aside:
it logs "<key>.meta unreadable", keeps its files, and the upload is unknown (tus and IETF
HEAD/PATCH/GET 404; an article id whose record is unreadable loses its alias and starts
afresh). Everything else must be served as before: offsets, stored bytes, downloads,
resumption. Temp files (.<key>.meta.tmp, article .<alias>.tmp), a data file without a record
and an alias to nowhere are removed at start.
"""

import os
import re
import uuid
import zlib

from harness import (Sentinel, Server, build_request, check, eq, expect_success, file_sha, make_tempdir,
                     rand_id, read_file, sha)

TUS = [('Tus-Resumable', '1.0.0')]
LOC_RE = re.compile(r'/files/([0-9a-f]{32})$')


def _req(srv, method, path, headers=(), body=b''):
    with srv.conn() as c:
        c.send(build_request(method, path, list(headers), body))
        return c.read_final(method)


def _tus_create(srv, data, sent):
    """A tus upload of len(data) bytes holding data[:sent]; returns its key."""
    r = _req(srv, 'POST', '/files/', TUS + [('Upload-Length', str(len(data)))])
    eq(r.status, 201, 'tus creation')
    m = LOC_RE.search(r.header('Location') or '')
    check(m is not None, 'Location %r' % r.header('Location'))
    key = m.group(1)
    if sent:
        r = _req(srv, 'PATCH', '/files/' + key,
                 TUS + [('Upload-Offset', '0'), ('Content-Type', 'application/offset+octet-stream')], data[:sent])
        eq((r.status, r.header('Upload-Offset')), (204, str(sent)), 'tus PATCH of %d bytes' % sent)
    return key


def _tus_head(srv, key):
    return _req(srv, 'HEAD', '/files/' + key, TUS)


def _ietf_create(srv, data, sent):
    r = _req(srv, 'POST', '/files/', [('Upload-Draft-Interop-Version', '6'), ('Upload-Complete', '?0'),
                                      ('Upload-Length', str(len(data)))], data[:sent])
    eq(r.status, 201, 'IETF creation')
    m = LOC_RE.search(r.header('Location') or '')
    check(m is not None, 'Location %r' % r.header('Location'))
    eq(r.header('Upload-Offset'), str(sent), 'IETF creation offset')
    return m.group(1)


def _ietf_head(srv, key):
    return _req(srv, 'HEAD', '/files/' + key, [('Upload-Draft-Interop-Version', '6')])


def _new_boot(bootf):
    with open(bootf, 'w') as f:
        f.write(str(uuid.uuid4()) + '\n')


def _server_with_boot_file():
    base = make_tempdir()
    bootf = os.path.join(base, 'boot_id')
    _new_boot(bootf)
    return Server('--boot-id-file', bootf, base=base), bootf


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def _logged_aside(srv, key):
    want = '%s.meta unreadable' % key
    check(any(want in line for line in srv.lines),
          'no "%s" in the server log: %r' % (want, srv.lines[-12:]))


class _Good:
    """Uploads that no damage touches; check() proves each is served as before."""

    def __init__(self, srv):
        self.srv = srv
        self.sentinel = Sentinel(srv)
        self.data = os.urandom(300000)
        self.part = _tus_create(srv, self.data, 123456)          # unfinished tus
        self.fin_data = os.urandom(77777)
        self.fin = _tus_create(srv, self.fin_data, len(self.fin_data))   # finished tus
        self.ietf_data = os.urandom(200000)
        self.ietf = _ietf_create(srv, self.ietf_data, 65432)

    def check(self, after):
        srv = self.srv
        self.sentinel.check(after)
        r = _tus_head(srv, self.part)
        eq((r.status, r.header('Upload-Offset')), (200, '123456'), 'good tus upload HEAD after %s' % after)
        r = _req(srv, 'GET', '/files/' + self.fin)
        eq((r.status, sha(r.body)), (200, sha(self.fin_data)), 'finished tus upload download after %s' % after)
        r = _ietf_head(srv, self.ietf)
        eq((r.status, r.header('Upload-Offset')), (204, '65432'), 'good IETF upload HEAD after %s' % after)

    def finish(self):
        """The unfinished ones resume to completion."""
        srv = self.srv
        r = _req(srv, 'PATCH', '/files/' + self.part,
                 TUS + [('Upload-Offset', '123456'), ('Content-Type', 'application/offset+octet-stream')],
                 self.data[123456:])
        eq((r.status, r.header('Upload-Offset')), (204, str(len(self.data))), 'good tus upload resumed')
        r = _req(srv, 'GET', '/files/' + self.part)
        eq(sha(r.body), sha(self.data), 'good tus upload sha256 after resuming')
        r = _req(srv, 'PATCH', '/files/' + self.ietf,
                 [('Upload-Draft-Interop-Version', '6'), ('Upload-Offset', '65432'), ('Upload-Complete', '?1'),
                  ('Content-Type', 'application/partial-upload')], self.ietf_data[65432:])
        eq((r.status, r.header('Upload-Complete')), (204, '?1'), 'good IETF upload resumed')
        r = _req(srv, 'GET', '/files/' + self.ietf)
        eq(sha(r.body), sha(self.ietf_data), 'good IETF upload sha256 after resuming')
        s = self.sentinel
        r = srv.upload(s.fid, s.data[s.held:], start=s.held, size=len(s.data))
        expect_success(r, len(s.data), 'sentinel resumed')


def test_torn_meta_at_many_lengths():
    """40 tus uploads, each record torn at a different length from 0 to one byte short; a reboot
    (new boot id) and a same-boot restart: each is 404 to HEAD, PATCH and GET, logged, its data
    untouched; the good uploads are served and resume."""
    srv, bootf = _server_with_boot_file()
    good = _Good(srv)
    bad = []
    for i in range(40):
        data = os.urandom(1000 + i)
        bad.append((_tus_create(srv, data, 500 + i), data))
    meta_len = len(read_file(os.path.join(srv.dir, 'uploads', bad[0][0] + '.meta')))
    srv.kill9()
    cuts = sorted({round(i * (meta_len - 1) / (len(bad) - 1)) for i in range(len(bad))})
    eq(len(cuts), len(bad), 'distinct cut lengths (record of %d bytes)' % meta_len)
    for (key, data), cut in zip(bad, cuts):
        p = os.path.join(srv.dir, 'uploads', key + '.meta')
        full = read_file(p)
        eq(len(full), meta_len, 'records of the same size')
        _write(p, full[:cut])
    for restart in ('reboot', 'same-boot restart'):
        if restart == 'reboot':
            _new_boot(bootf)
        srv.start()
        for (key, data), cut in zip(bad, cuts):
            what = 'record cut to %d of %d bytes, after a %s' % (cut, meta_len, restart)
            eq(_tus_head(srv, key).status, 404, what + ': HEAD')
            r = _req(srv, 'PATCH', '/files/' + key,
                     TUS + [('Upload-Offset', str(500 + bad.index((key, data)))),
                            ('Content-Type', 'application/offset+octet-stream')], b'x' * 10)
            eq(r.status, 404, what + ': PATCH')
            eq(_req(srv, 'GET', '/files/' + key).status, 404, what + ': GET')
            _logged_aside(srv, key)
            eq(read_file(os.path.join(srv.dir, 'uploads', key)), data[:500 + bad.index((key, data))],
               what + ': data file left as it was')
        good.check(restart)
        srv.kill9()
    srv.start()
    good.finish()


def test_damaged_meta_kinds():
    """Empty, binary garbage, oversized, one digit changed (crc wrong), a valid record of another
    upload, a valid record with no key in it, a symlink to a valid copy, a directory; for tus,
    IETF and a finished tus upload: 404 (IETF as a problem), logged, nothing served from them."""
    srv, bootf = _server_with_boot_file()
    good = _Good(srv)
    cases = ['empty', 'garbage', 'oversized', 'crc', 'other upload', 'no key', 'symlink', 'directory']
    bad = []
    for i, case in enumerate(cases):
        data = os.urandom(20000 + i)
        kind = ('tus', 'ietf', 'finished')[i % 3]
        if kind == 'ietf':
            key = _ietf_create(srv, data, 5000)
        else:
            key = _tus_create(srv, data, len(data) if kind == 'finished' else 5000)
        bad.append((case, kind, key, data))
    srv.kill9()
    up = os.path.join(srv.dir, 'uploads')
    outside = os.path.join(srv.base, 'outside')
    os.makedirs(outside)
    good_meta = read_file(os.path.join(up, good.part + '.meta'))
    for case, kind, key, data in bad:
        p = os.path.join(up, key + '.meta')
        rec = read_file(p)
        if case == 'empty':
            _write(p, b'')
        elif case == 'garbage':
            _write(p, bytes(range(256)) * 3)
        elif case == 'oversized':
            _write(p, rec[:-1] + b'x' * (64 << 10) + b'\n')
        elif case == 'crc':
            m = re.search(rb'\ncreated (\d)', rec)
            d = m.group(1)
            _write(p, rec[:m.start(1)] + (b'1' if d != b'1' else b'2') + rec[m.end(1):])
        elif case == 'other upload':
            _write(p, good_meta)
        elif case == 'no key':
            # right crc, but the key line names no key: rebuild the record around it (the crc is
            # CRC-32 of everything before its line, as the original record shows)
            i = rec.index(b'crc ')
            eq(rec[i:], b'crc %08x\n' % zlib.crc32(rec[:i]), 'crc line of a record as the server wrote it')
            body = re.sub(rb'\nkey [0-9a-f]{32}\n', b'\nkey ../../../../../../etc/passwd_ab\n', rec[:i])
            _write(p, body + b'crc %08x\n' % zlib.crc32(body))
        elif case == 'symlink':
            q = os.path.join(outside, key + '.meta')
            symlinked = (q, rec)
            _write(q, rec)
            os.unlink(p)
            os.symlink(q, p)
        elif case == 'directory':
            os.unlink(p)
            os.mkdir(p)
    _new_boot(bootf)
    srv.start()
    for case, kind, key, data in bad:
        what = '%s record of a %s upload' % (case, kind)
        if kind == 'ietf':
            r = _ietf_head(srv, key)
            eq(r.status, 404, what + ': IETF HEAD')
            check((r.header('Content-Type') or '').startswith('application/problem+json'),
                  what + ': a problem document (%r)' % r)
        else:
            eq(_tus_head(srv, key).status, 404, what + ': tus HEAD')
        r = _req(srv, 'GET', '/files/' + key)
        eq(r.status, 404, what + ': GET (nothing served from a record that cannot be read)')
        _logged_aside(srv, key)
        held = len(data) if kind == 'finished' else 5000
        eq(read_file(os.path.join(up, key)), data[:held], what + ': data file left as it was')
    eq(read_file(symlinked[0]), symlinked[1], 'the target of the symlinked record, unchanged')
    good.check('a reboot with damaged records')
    # a new upload is served normally
    d = os.urandom(4321)
    k = _tus_create(srv, d, len(d))
    eq(sha(_req(srv, 'GET', '/files/' + k).body), sha(d), 'new upload after start-up with damaged records')
    good.finish()


def test_damaged_article_record_starts_afresh():
    """An article upload whose record is torn: its alias goes at start, /status is 0, the same id
    starts a new upload that completes; the old files are left aside (logged)."""
    srv, bootf = _server_with_boot_file()
    good = _Good(srv)
    fid = rand_id('torn')
    data = os.urandom(100000)
    r = srv.upload(fid, data[:40000], size=len(data))
    eq(r.status, 200, 'article partial upload')
    eq(srv.status(fid), 40000, '/status before damage')
    key = os.path.basename(os.readlink(srv.article_link(fid)))
    srv.kill9()
    p = os.path.join(srv.dir, 'uploads', key + '.meta')
    _write(p, read_file(p)[:37])
    srv.start()
    _logged_aside(srv, key)
    check(not srv.has_article_link(fid), 'the alias of an unreadable record is removed at start')
    eq(srv.status(fid), 0, '/status of the id whose record is unreadable')
    eq(read_file(os.path.join(srv.dir, 'uploads', key)), data[:40000], 'old data left aside')
    r = srv.upload(fid, data, size=len(data))
    expect_success(r, len(data), 'the id starts afresh')
    good.check('an article record torn')


def test_leftovers_removed_at_start():
    """Temp records (.<key>.meta.tmp, alone or with a data file that never got its record), an
    article alias's temp link (.<alias>.tmp), an alias to nowhere and a data file without a
    record are removed at start; the uploads and aliases in use are not."""
    srv, bootf = _server_with_boot_file()
    good = _Good(srv)
    fid = rand_id('live')
    data = os.urandom(50000)
    eq(srv.upload(fid, data[:20000], size=len(data)).status, 200, 'article partial upload')
    srv.kill9()
    up = os.path.join(srv.dir, 'uploads')
    art = os.path.join(srv.dir, 'article')
    orphan = 'ab' * 16
    half = 'cd' * 16
    made = {
        os.path.join(up, '.%s.meta.tmp' % good.part): read_file(os.path.join(up, good.part + '.meta'))[:50],
        os.path.join(up, orphan): b'data that never got a record',
        os.path.join(up, '.%s.meta.tmp' % half): read_file(os.path.join(up, good.part + '.meta')),
        os.path.join(up, half): b'',
    }
    for p, content in made.items():
        _write(p, content)
    alias_tmp = os.path.join(art, '.%s.tmp' % ('e' * 64))
    os.symlink(good.part, alias_tmp)
    dangling = os.path.join(art, 'f' * 64)
    os.symlink('0' * 32, dangling)
    srv.start()
    for p in list(made) + [alias_tmp, dangling]:
        check(not os.path.lexists(p), '%s removed at start' % os.path.relpath(p, srv.dir))
    check(srv.has_article_link(fid), 'the live alias is kept')
    eq(srv.status(fid), 20000, '/status of the live article upload')
    good.check('leftovers were swept')
    expect_success(srv.upload(fid, data[20000:], start=20000, size=len(data)), len(data), 'article resumed')
    eq(file_sha(os.path.join(up, os.path.basename(_finished_key(srv, len(data))))), sha(data),
       'article upload stored')


def _finished_key(srv, n):
    """The key of the one finished article upload of n bytes."""
    up = os.path.join(srv.dir, 'uploads')
    found = []
    for name in os.listdir(up):
        if name.endswith('.meta'):
            rec = read_file(os.path.join(up, name))
            if b'\nkind article\n' in rec and b'\nfinished 1\n' in rec and b'\nlength %d\n' % n in rec:
                found.append(name[:-5])
    eq(len(found), 1, 'finished article uploads of %d bytes' % n)
    return found[0]


def test_symlinked_data_file_not_followed():
    """A data file replaced by a symlink to a file elsewhere: after a reboot, recovery (which cuts
    unsynced tails) must not cut or write the target; the upload is dropped, the target intact."""
    srv, bootf = _server_with_boot_file()
    good = _Good(srv)
    data = os.urandom(10000)
    key = _tus_create(srv, data, 3000)
    srv.kill9()
    target = os.path.join(srv.base, 'precious')
    precious = os.urandom(9000)
    _write(target, precious)
    p = os.path.join(srv.dir, 'uploads', key)
    os.unlink(p)
    os.symlink(target, p)
    _new_boot(bootf)
    srv.start()
    eq(read_file(target), precious, 'the symlink target after recovery')
    eq(_tus_head(srv, key).status, 404, 'HEAD of the upload whose data was a symlink')
    good.check('a symlinked data file')
