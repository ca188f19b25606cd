"""tus 1.0.0 rows: core protocol and every extension, one row per server MUST/SHOULD.

Source: tus/tus-resumable-upload-protocol protocol.md, version 1.0.0 (2016-03-25).  Client-only
requirements (e.g. "The Client SHOULD NOT include the Tus-Resumable header" in OPTIONS,
"The Client MUST NOT include the Upload-Length header in the final upload creation") are
not rows: a server cannot violate them.
"""

import base64
import hashlib
import re
import time
import zlib

from core import (Fail, Row, Skip, cache_no_store, data, expect, int_header, is_2xx, poll,
                  status_in)

SPEC = 'tus 1.0.0'
TR = ('Tus-Resumable', '1.0.0')
OCTET = ('Content-Type', 'application/offset+octet-stream')
IMF_FIXDATE = re.compile(r'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} '
                         r'(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} '
                         r'[0-9]{2}:[0-9]{2}:[0-9]{2} GMT')


# -- request helpers ------------------------------------------------------------------------

def options(ctx, extra=()):
    return ctx.req('OPTIONS', ctx.base, list(extra))


def create(ctx, length=None, defer=False, metadata=None, body=None, concat=None, extra=(),
           slow=None):
    """POST to the creation URL; returns (response, absolute upload URL or None)."""
    hs = [TR]
    if length is not None:
        hs.append(('Upload-Length', str(length)))
    if defer:
        hs.append(('Upload-Defer-Length', '1'))
    if metadata is not None:
        hs.append(('Upload-Metadata', metadata))
    if concat is not None:
        hs.append(('Upload-Concat', concat))
    if body is not None:
        hs.append(OCTET)
    hs += list(extra)
    if slow:
        c = ctx.conn(ctx.base)
        try:
            c.send_head('POST', _target(ctx.base), hs + [('Content-Length', str(len(body)))])
            for i in range(0, len(body), slow):
                c.send_body(body[i:i + slow])
                time.sleep(0.2)
            r = ctx.read(c, 'POST')
        finally:
            c.close()
    else:
        r = ctx.req('POST', ctx.base, hs, body if body is not None else b'')
    url = None
    if r.status == 201 and r.get('Location'):
        url = ctx.url(r.get('Location'))
        ctx.register(url, 'tus')
        track_expires(ctx, r)
    return r, url


def must_create(ctx, **kw):
    """An upload the row needs as a fixture; creation itself is tested by other rows."""
    if not ctx.tus.has('creation'):
        raise Skip('needs an upload URL, and the server does not advertise the creation '
                   'extension (Tus-Extension: %s)' % (ctx.tus.options.get('Tus-Extension')
                                                      if ctx.tus.options else '-'))
    r, url = create(ctx, **kw)
    if url is None:
        raise Fail('setup: creating an upload failed (expected 201 with Location)', r)
    return url, r


def head(ctx, url, extra=()):
    return ctx.req('HEAD', url, [TR] + list(extra))


def patch(ctx, url, offset, body, extra=(), ctype=OCTET):
    hs = [TR, ('Upload-Offset', str(offset))]
    if ctype:
        hs.append(ctype)
    r = ctx.req('PATCH', url, hs + list(extra), body)
    track_expires(ctx, r)
    return r


def delete(ctx, url):
    r = ctx.req('DELETE', url, [TR])
    if r.status == 204:
        ctx.mark_deleted(url)
    return r


def head_offset(ctx, url, what='HEAD'):
    r = head(ctx, url)
    if not is_2xx(r):
        raise Fail('%s: expected 2xx, got %d' % (what, r.status), r)
    return int_header(r, 'Upload-Offset', what), r


def track_expires(ctx, r):
    if r.get('Upload-Expires') and ctx.tus.expires_seen is None:
        ctx.tus.expires_seen = r.get('Upload-Expires')


def _target(url):
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    return (u.path or '/') + ('?' + u.query if u.query else '')


def parse_metadata(v):
    out = {}
    for pair in v.split(','):
        pair = pair.strip()
        if not pair:
            continue
        k, _, val = pair.partition(' ')
        out[k] = val.strip()
    return out


def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()


def digest(algo, body):
    """Base64 digest for the algorithms we know; None otherwise."""
    if algo == 'crc32':
        return base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, 'big')).decode()
    name = {'sha1': 'sha1', 'md5': 'md5', 'sha224': 'sha224', 'sha256': 'sha256',
            'sha384': 'sha384', 'sha512': 'sha512', 'sha3-256': 'sha3_256',
            'sha3-512': 'sha3_512', 'blake2b': 'blake2b', 'blake2s': 'blake2s'}.get(algo)
    if name is None:
        return None
    return base64.b64encode(hashlib.new(name, body).digest()).decode()


def wrong_digest(algo, body):
    """A well-formed digest of other bytes."""
    return digest(algo, body + b'!')


# -- core -----------------------------------------------------------------------------------

def t_tus_resumable_everywhere(ctx):
    url, r_post = must_create(ctx, length=10)
    rs = [('POST 201', r_post), ('HEAD', head(ctx, url)), ('PATCH', patch(ctx, url, 0, b'abc')),
          ('PATCH with a wrong offset', patch(ctx, url, 0, b'abc')),
          ('HEAD of an unknown upload', head(ctx, ctx.unknown_url())),
          ('POST with Tus-Resumable: 0.0.1',
           ctx.req('POST', ctx.base, [('Tus-Resumable', '0.0.1'), ('Upload-Length', '1')], b''))]
    if ctx.tus.has('termination'):
        rs.append(('DELETE', delete(ctx, url)))
    for what, r in rs:
        expect(r.has('Tus-Resumable'), '%s response (%d) has no Tus-Resumable' % (what, r.status), r)


def t_tus_resumable_value(ctx):
    url, r_post = must_create(ctx, length=10)
    for what, r in (('POST', r_post), ('HEAD', head(ctx, url)), ('PATCH', patch(ctx, url, 0, b'x'))):
        v = r.get('Tus-Resumable')
        expect(v is not None and v.strip() == '1.0.0',
               '%s answered a Tus-Resumable: 1.0.0 request with Tus-Resumable: %r' % (what, v), r)


def t_412(ctx):
    r = ctx.req('POST', ctx.base, [('Tus-Resumable', '0.0.1'), ('Upload-Length', '1')], b'')
    status_in(r, {412}, 'POST with an unsupported Tus-Resumable')


def t_412_tus_version(ctx):
    r = ctx.req('POST', ctx.base, [('Tus-Resumable', '0.0.1'), ('Upload-Length', '1')], b'')
    if r.status != 412:
        raise Skip('the server did not answer 412 (see TUS-003): %d' % r.status)
    expect(r.has('Tus-Version'), '412 response without Tus-Version', r)


def t_412_not_processed(ctx):
    r = ctx.req('POST', ctx.base, [('Tus-Resumable', '0.0.1'), ('Upload-Length', '1')], b'')
    if r.get('Location'):
        ctx.register(ctx.url(r.get('Location')), 'tus')
    expect(not (is_2xx(r) or r.get('Location')),
           'POST with an unsupported version was processed (created an upload)', r)
    url, _ = must_create(ctx, length=10)
    r = ctx.req('PATCH', url, [('Tus-Resumable', '0.0.1'), ('Upload-Offset', '0'), OCTET], b'abc')
    off, rh = head_offset(ctx, url)
    expect(off == 0, 'PATCH with Tus-Resumable: 0.0.1 (answered %d) changed the offset to %d'
           % (r.status, off), r)


def t_options_tus_version(ctx):
    r = options(ctx)
    status_in(r, {200, 204}, 'OPTIONS')
    expect(r.has('Tus-Version'), 'successful OPTIONS response without Tus-Version', r)


def t_tus_version_list(ctx):
    r = options(ctx)
    v = r.get('Tus-Version')
    if v is None:
        raise Fail('no Tus-Version in the OPTIONS response', r)
    items = [x.strip() for x in v.split(',')]
    expect(all(re.fullmatch(r'[0-9]+\.[0-9]+\.[0-9]+', x) for x in items),
           'Tus-Version is not a comma-separated list of versions: %r' % v, r)
    expect('1.0.0' in items, 'Tus-Version %r does not list 1.0.0, the version this server '
           'answers with' % v, r)


def t_options_ignores_version(ctx):
    r = options(ctx, [('Tus-Resumable', '0.0.1')])
    status_in(r, {200, 204}, 'OPTIONS carrying Tus-Resumable: 0.0.1')
    expect(r.has('Tus-Version'), 'OPTIONS response without Tus-Version', r)


def t_tus_extension_list(ctx):
    r = options(ctx)
    if not r.has('Tus-Extension'):
        raise Skip('no Tus-Extension header (allowed when no extension is supported)')
    v = r.get('Tus-Extension')
    items = [x.strip() for x in v.split(',')]
    expect(all(re.fullmatch(r'[A-Za-z0-9-]+', x) for x in items),
           'Tus-Extension is not a comma-separated list of extension names: %r' % v, r)


def t_tus_max_size_format(ctx):
    r = options(ctx)
    if not r.has('Tus-Max-Size'):
        raise Skip('no Tus-Max-Size header (optional)')
    v = r.get('Tus-Max-Size').strip()
    expect(re.fullmatch(r'[0-9]+', v) is not None, 'Tus-Max-Size is not a non-negative integer: %r'
           % v, r)


def t_tus_max_size_set(ctx):
    if not ctx.tus.has('creation'):
        raise Skip('needs the creation extension to probe a size limit')
    if ctx.tus.max_size is not None:
        r, url = create(ctx, length=ctx.tus.max_size)
        expect(r.status != 413, 'Tus-Max-Size is %d, but an upload of exactly that length was '
               'refused with 413' % ctx.tus.max_size, r)
        return
    big = 2 ** 53
    r, url = create(ctx, length=big)
    expect(r.status != 413, 'no Tus-Max-Size advertised, but Upload-Length: %d was refused with '
           '413: a hard limit exists and is not announced' % big, r)


def t_offset_length_format(ctx):
    url, r_post = must_create(ctx, length=10)
    rs = [r_post, head(ctx, url), patch(ctx, url, 0, b'abcd'), patch(ctx, url, 1, b'x'), head(ctx, url)]
    for r in rs:
        for name in ('Upload-Offset', 'Upload-Length'):
            for v in r.get_all(name):
                expect(re.fullmatch(r'[0-9]+', v.strip()) is not None,
                       '%s is not a non-negative integer: %r' % (name, v), r)


def t_method_override(ctx):
    url, _ = must_create(ctx, length=10)
    r = ctx.req('POST', url, [TR, ('X-HTTP-Method-Override', 'PATCH'), ('Upload-Offset', '0'), OCTET],
                b'abc')
    expect(r.status == 204, 'POST with X-HTTP-Method-Override: PATCH was not handled as a PATCH '
           '(expected 204)', r)
    off, _ = head_offset(ctx, url)
    expect(off == 3, 'after POST + X-HTTP-Method-Override: PATCH of 3 bytes, HEAD offset is %d' % off)


# -- HEAD -----------------------------------------------------------------------------------

def t_head_offset_zero(ctx):
    url, _ = must_create(ctx, length=10)
    r = head(ctx, url)
    status_in(r, set(range(200, 300)), 'HEAD of a new upload')
    expect(r.get('Upload-Offset') is not None and r.get('Upload-Offset').strip() == '0',
           'HEAD of a new upload: Upload-Offset must be present and 0', r)


def t_head_offset_complete(ctx):
    url, _ = must_create(ctx, length=3)
    r = patch(ctx, url, 0, b'abc')
    status_in(r, {204}, 'setup: PATCH completing the upload')
    r = head(ctx, url)
    status_in(r, set(range(200, 300)), 'HEAD of a completed upload')
    expect((r.get('Upload-Offset') or '').strip() == '3',
           'HEAD of a completed 3-byte upload: Upload-Offset must be 3', r)


def t_head_length(ctx):
    url, _ = must_create(ctx, length=10)
    r = head(ctx, url)
    expect((r.get('Upload-Length') or '').strip() == '10',
           'HEAD of an upload created with Upload-Length: 10 must carry Upload-Length: 10', r)


def t_head_unknown(ctx):
    r = head(ctx, ctx.unknown_url())
    expect(r.status in (403, 404, 410), 'HEAD of an unknown upload: expected 404, 410 or 403, got %d'
           % r.status, r)
    expect(not r.has('Upload-Offset'), 'HEAD of an unknown upload carries Upload-Offset', r)


def t_head_no_store(ctx):
    url, _ = must_create(ctx, length=10)
    r = head(ctx, url)
    expect(cache_no_store(r), 'HEAD response without Cache-Control: no-store', r)


# -- PATCH ----------------------------------------------------------------------------------

def t_patch_accepted(ctx):
    url, _ = must_create(ctx, length=10)
    r = patch(ctx, url, 0, b'hello')
    expect(is_2xx(r), 'PATCH of 5 bytes at the current offset was not accepted', r)


def t_patch_415(ctx):
    url, _ = must_create(ctx, length=10)
    r = patch(ctx, url, 0, b'hello', ctype=('Content-Type', 'application/octet-stream'))
    status_in(r, {415}, 'PATCH with Content-Type: application/octet-stream')


def t_patch_409(ctx):
    url, _ = must_create(ctx, length=20)
    r = patch(ctx, url, 5, b'hello')
    status_in(r, {409}, 'PATCH at offset 5 while the upload is at 0')
    status_in(patch(ctx, url, 0, b'hello'), {204}, 'setup: PATCH at the current offset')
    r = patch(ctx, url, 2, b'hello')
    status_in(r, {409}, 'PATCH at offset 2 while the upload is at 5')


def t_patch_409_unmodified(ctx):
    url, _ = must_create(ctx, length=20)
    status_in(patch(ctx, url, 0, b'hello'), {204}, 'setup: PATCH')
    r1 = patch(ctx, url, 9, b'XXXXX')
    r2 = patch(ctx, url, 1, b'YYYYY')
    off, rh = head_offset(ctx, url)
    expect(off == 5, 'after 409s (answered %d, %d) the offset moved from 5 to %d'
           % (r1.status, r2.status, off), rh)
    r = patch(ctx, url, 5, b'world')
    status_in(r, {204}, 'PATCH at the real offset after the rejected ones')
    expect((r.get('Upload-Offset') or '').strip() == '10',
           'PATCH at 5 with 5 bytes after rejected PATCHes: expected Upload-Offset 10', r)


def t_patch_204(ctx):
    url, _ = must_create(ctx, length=10)
    r = patch(ctx, url, 0, b'hello')
    expect(r.status == 204, 'successful PATCH must be answered 204, got %d' % r.status, r)


def t_patch_new_offset(ctx):
    url, _ = must_create(ctx, length=10)
    r = patch(ctx, url, 0, b'hel')
    status_in(r, {204}, 'PATCH')
    expect((r.get('Upload-Offset') or '').strip() == '3', 'PATCH of 3 bytes at 0: Upload-Offset '
           'must be 3', r)
    r = patch(ctx, url, 3, b'lo wo')
    status_in(r, {204}, 'second PATCH')
    expect((r.get('Upload-Offset') or '').strip() == '8', 'PATCH of 5 bytes at 3: Upload-Offset '
           'must be 8', r)
    off, rh = head_offset(ctx, url)
    expect(off == 8, 'HEAD after the PATCHes: offset %d, expected 8' % off, rh)


def t_patch_404(ctx):
    r = patch(ctx, ctx.unknown_url(), 0, b'abc')
    status_in(r, {404}, 'PATCH of an unknown upload')


def t_patch_partial_stored(ctx):
    url, _ = must_create(ctx, length=1000)
    c = ctx.conn(url)
    try:
        c.send_head('PATCH', _target(url), [TR, ('Upload-Offset', '0'), OCTET, ('Content-Length', '1000')])
        c.send_body(data(300))
        time.sleep(0.3)
    finally:
        c.close()
    last = {}

    def check():
        r = head(ctx, url)
        last['r'] = r
        return is_2xx(r) and r.get('Upload-Offset', '').strip() == '300'
    if not poll(check, 3.0):
        raise Fail('PATCH announcing 1000 bytes was cut after 300: HEAD never showed offset 300 '
                   '(stored data is lost)', last.get('r'))


def t_patch_timeout(ctx):
    wait = ctx.opts.wait_timeouts
    if not wait:
        raise Skip('needs --wait-timeouts SEC (waits for the server\'s body timeout)')
    url, _ = must_create(ctx, length=100)
    c = ctx.conn(url)
    try:
        c.send_head('PATCH', _target(url), [TR, ('Upload-Offset', '0'), OCTET, ('Content-Length', '100')])
        c.send_body(b'0123456789')
        t0 = time.monotonic()
        closed = c.wait_closed(wait)
        took = time.monotonic() - t0
    finally:
        c.close()
    expect(closed, 'a PATCH whose body stalled after 10 of 100 bytes: the connection was still '
           'open after %d s' % wait)
    ctx.note = 'closed after %.1f s' % took


def t_not_probeable(ctx):
    raise Skip('not observable black-box')


# -- creation -------------------------------------------------------------------------------

def t_creation_advertised(ctx):
    r, url = create(ctx, length=10)
    if r.status == 201 and url and not ctx.tus.has('creation'):
        raise Fail('POST created an upload (201) but Tus-Extension does not list creation', r)


def t_creation_201(ctx):
    r, url = create(ctx, length=10)
    status_in(r, {201}, 'POST with Upload-Length: 10')


def t_creation_location(ctx):
    r, url = create(ctx, length=10)
    status_in(r, {201}, 'setup: creation')
    expect(r.get('Location'), '201 without Location', r)
    rh = head(ctx, url)
    expect(is_2xx(rh) and rh.has('Upload-Offset'), 'the Location %r (resolved %s) does not lead '
           'to the upload: HEAD answered %d' % (r.get('Location'), url, rh.status), rh)


def t_creation_metadata(ctx):
    meta = 'filename %s,is_confidential' % b64('world_domination_plan.pdf')
    url, _ = must_create(ctx, length=10, metadata=meta)
    r = head(ctx, url)
    v = r.get('Upload-Metadata')
    expect(v is not None, 'HEAD of an upload created with Upload-Metadata has no Upload-Metadata', r)
    expect(parse_metadata(v) == parse_metadata(meta), 'HEAD Upload-Metadata %r differs from the '
           'one sent at creation %r' % (v, meta), r)


def t_creation_413(ctx):
    if ctx.tus.max_size is None:
        raise Skip('the server advertises no Tus-Max-Size')
    r, url = create(ctx, length=ctx.tus.max_size + 1)
    status_in(r, {413}, 'POST with Upload-Length one above Tus-Max-Size %d' % ctx.tus.max_size)


def t_metadata_sanitised(ctx):
    if not ctx.tus.has('creation'):
        raise Skip('needs the creation extension')
    evil = b'x\r\nX-Injected-By-Metadata: yes'
    r, url = create(ctx, length=10, metadata='name %s' % b64(evil))
    expect(not r.has('X-Injected-By-Metadata'), 'a metadata value decoding to CRLF + a header '
           'line was emitted as a header', r)
    if url is None:
        return      # refused: validated
    rh = head(ctx, url)
    expect(not rh.has('X-Injected-By-Metadata'), 'a metadata value decoding to CRLF + a header '
           'line was emitted as a header', rh)
    for resp in (r, rh):
        for k, v in resp.headers:
            expect('\r' not in v and '\n' not in v, 'raw CR/LF in a response header', resp)


def t_no_defer_header(ctx):
    url, _ = must_create(ctx, length=10)
    r = head(ctx, url)
    expect(not r.has('Upload-Defer-Length'), 'HEAD of an upload with a known length carries '
           'Upload-Defer-Length', r)


# -- creation-defer-length ------------------------------------------------------------------

def t_defer_advertised(ctx):
    if not ctx.tus.has('creation'):
        raise Skip('needs the creation extension')
    r, url = create(ctx, defer=True)
    if r.status == 201 and url and not ctx.tus.has('creation-defer-length'):
        rh = head(ctx, url)
        if rh.get('Upload-Defer-Length') or not rh.has('Upload-Length'):
            raise Fail('POST with Upload-Defer-Length: 1 created an upload of unknown length, but '
                       'Tus-Extension does not list creation-defer-length', r)


def t_defer_head(ctx):
    url, _ = must_create(ctx, defer=True)
    r = head(ctx, url)
    expect((r.get('Upload-Defer-Length') or '').strip() == '1', 'HEAD of a deferred-length upload '
           'must carry Upload-Defer-Length: 1', r)
    status_in(patch(ctx, url, 0, b'abc'), {204}, 'setup: PATCH without Upload-Length')
    r = head(ctx, url)
    expect((r.get('Upload-Defer-Length') or '').strip() == '1', 'HEAD after a PATCH that did not '
           'declare the length must still carry Upload-Defer-Length: 1', r)


def t_defer_immutable(ctx):
    url, _ = must_create(ctx, defer=True)
    status_in(patch(ctx, url, 0, b'abc', extra=[('Upload-Length', '10')]), {204},
              'setup: PATCH declaring Upload-Length: 10')
    r = patch(ctx, url, 3, b'de', extra=[('Upload-Length', '20')])
    rh = head(ctx, url)
    expect((rh.get('Upload-Length') or '').strip() == '10', 'a later PATCH with Upload-Length: 20 '
           '(answered %d) changed the declared length 10' % r.status, rh)


def t_defer_declared(ctx):
    url, _ = must_create(ctx, defer=True)
    status_in(patch(ctx, url, 0, b'abc', extra=[('Upload-Length', '10')]), {204},
              'setup: PATCH declaring Upload-Length: 10')
    r = head(ctx, url)
    expect((r.get('Upload-Length') or '').strip() == '10', 'HEAD after the length was declared '
           'must carry Upload-Length: 10', r)
    expect(not r.has('Upload-Defer-Length'), 'HEAD after the length was declared still carries '
           'Upload-Defer-Length', r)


def t_defer_400(ctx):
    r, url = create(ctx, extra=[('Upload-Defer-Length', '2')])
    status_in(r, {400}, 'POST with Upload-Defer-Length: 2')


# -- creation-with-upload -------------------------------------------------------------------

def t_cwu_advertised(ctx):
    if not ctx.tus.has('creation'):
        raise Skip('needs the creation extension')
    r, url = create(ctx, length=10, body=b'hello')
    if r.status == 201 and url and not ctx.tus.has('creation-with-upload'):
        off, _ = head_offset(ctx, url)
        if off > 0:
            raise Fail('POST with a body created the upload and stored %d bytes, but Tus-Extension '
                       'does not list creation-with-upload' % off, r)


def t_cwu_needs_creation(ctx):
    exts = ctx.tus.extensions
    expect(not ('creation-with-upload' in exts and 'creation' not in exts),
           'Tus-Extension offers creation-with-upload without creation', ctx.tus.options)


def t_cwu_offset(ctx):
    r, url = create(ctx, length=10, body=b'hello')
    status_in(r, {201}, 'POST with Upload-Length: 10 and a 5-byte body')
    expect((r.get('Upload-Offset') or '').strip() == '5', 'creation with 5 bytes of data: '
           'Upload-Offset must be 5', r)
    off, rh = head_offset(ctx, url)
    expect(off == 5, 'HEAD after creation with 5 bytes: offset %d' % off, rh)


def t_cwu_all_bytes(ctx):
    body = data(3000, 1)
    r, url = create(ctx, length=4000, body=body, slow=1000)
    status_in(r, {201}, 'POST with a 3000-byte body sent in three pieces')
    expect((r.get('Upload-Offset') or '').strip() == '3000', 'not all 3000 bytes of the creation '
           'body were accepted', r)


# -- expiration -----------------------------------------------------------------------------

def _expiry_probe(ctx):
    url, r_post = must_create(ctx, length=10)
    r_patch = patch(ctx, url, 0, b'abc')
    return url, r_post, r_patch


def t_expiration_advertised(ctx):
    url, r_post, r_patch = _expiry_probe(ctx)
    seen = [r for r in (r_post, r_patch, head(ctx, url)) if r.has('Upload-Expires')]
    if seen and not ctx.tus.has('expiration'):
        raise Fail('responses carry Upload-Expires (the upload will be removed), but Tus-Extension '
                   'does not list expiration', seen[0])


def t_expires_patch(ctx):
    url, r_post, r_patch = _expiry_probe(ctx)
    status_in(r_patch, {204}, 'setup: PATCH')
    if r_patch.has('Upload-Expires'):
        return
    if r_post.has('Upload-Expires'):
        raise Fail('the creation response announced Upload-Expires: %s, but the PATCH response has '
                   'no Upload-Expires' % r_post.get('Upload-Expires'), r_patch)
    raise Skip('neither the creation nor the PATCH response says this upload will expire')


def t_expires_post(ctx):
    url, r_post, r_patch = _expiry_probe(ctx)
    if r_post.has('Upload-Expires'):
        return
    if r_patch.has('Upload-Expires'):
        raise Fail('the creation response has no Upload-Expires, yet the PATCH sent right after '
                   'it carries Upload-Expires: %s: the expiry was known at creation'
                   % r_patch.get('Upload-Expires'), r_post)
    raise Skip('no Upload-Expires on creation or PATCH: the upload does not expire')


def t_expires_format(ctx):
    url, r_post, r_patch = _expiry_probe(ctx)
    vals = [(r, v) for r in (r_post, r_patch) for v in r.get_all('Upload-Expires')]
    if not vals:
        raise Skip('no Upload-Expires seen')
    for r, v in vals:
        expect(IMF_FIXDATE.fullmatch(v.strip()) is not None,
               'Upload-Expires %r is not an RFC 7231 HTTP-date (IMF-fixdate)' % v, r)


def t_expired_gone(ctx):
    import email.utils
    url, r_post, r_patch = _expiry_probe(ctx)
    v = r_patch.get('Upload-Expires') or r_post.get('Upload-Expires')
    if not v:
        raise Skip('the upload does not expire (no Upload-Expires)')
    try:
        when = email.utils.parsedate_to_datetime(v).timestamp()
    except Exception:
        raise Skip('Upload-Expires %r does not parse' % v)
    wait = when - time.time() + 1.5
    if wait > ctx.opts.expiry_wait:
        raise Skip('the upload expires in %.0f s, beyond --expiry-wait %g' % (wait, ctx.opts.expiry_wait))
    time.sleep(max(0.0, wait))
    deadline = time.monotonic() + 10
    while True:
        rh = head(ctx, url)
        if rh.status in (404, 410) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expect(rh.status in (404, 410), 'HEAD of an upload past its Upload-Expires (%s): expected 404 '
           'or 410, got %d' % (v, rh.status), rh)
    rp = patch(ctx, url, 3, b'd')
    expect(rp.status in (404, 410), 'PATCH of an expired upload: expected 404 or 410, got %d'
           % rp.status, rp)
    ctx.mark_deleted(url)


# -- checksum -------------------------------------------------------------------------------

def t_checksum_advertised(ctx):
    url, _ = must_create(ctx, length=10)
    body = b'abc'
    r = patch(ctx, url, 0, body, extra=[('Upload-Checksum', 'sha1 ' + wrong_digest('sha1', body))])
    off, _ = head_offset(ctx, url)
    if not is_2xx(r) and off == 0 and not ctx.tus.has('checksum'):
        raise Fail('a PATCH with a wrong sha1 Upload-Checksum was rejected (the server verifies '
                   'checksums), but Tus-Extension does not list checksum', r)


def t_checksum_algorithm_header(ctx):
    r = options(ctx)
    expect(r.has('Tus-Checksum-Algorithm'), 'OPTIONS response without Tus-Checksum-Algorithm', r)


def t_checksum_sha1(ctx):
    algos = ctx.tus.algorithms
    expect('sha1' in algos, 'Tus-Checksum-Algorithm %r does not list sha1' % ','.join(algos),
           ctx.tus.options)
    url, _ = must_create(ctx, length=10)
    body = b'hello'
    r = patch(ctx, url, 0, body, extra=[('Upload-Checksum', 'sha1 ' + digest('sha1', body))])
    status_in(r, {204}, 'PATCH with a correct sha1 Upload-Checksum')
    expect((r.get('Upload-Offset') or '').strip() == '5', 'PATCH with a correct sha1 checksum: '
           'Upload-Offset must be 5', r)


def t_checksum_names(ctx):
    r = ctx.tus.options
    v = r.get('Tus-Checksum-Algorithm') if r else None
    if not v:
        raise Skip('no Tus-Checksum-Algorithm header')
    for a in v.split(','):
        a = a.strip()
        expect(re.fullmatch(r'[!-@\[-~]+', a) is not None and a,
               'checksum algorithm name %r is not lower-case printable ASCII' % a, r)


def t_checksum_verified(ctx):
    algos = ctx.tus.algorithms
    checked, unknown = [], []
    for algo in algos:
        body = data(37, len(checked) + 3)
        good = digest(algo, body)
        if good is None:
            unknown.append(algo)
            continue
        url, _ = must_create(ctx, length=100)
        r = patch(ctx, url, 0, body, extra=[('Upload-Checksum', '%s %s' % (algo, wrong_digest(algo, body)))])
        off, rh = head_offset(ctx, url)
        expect(not is_2xx(r) and off == 0, '%s: a PATCH with a wrong checksum was accepted '
               '(answered %d, offset now %d)' % (algo, r.status, off), r)
        r = patch(ctx, url, 0, body, extra=[('Upload-Checksum', '%s %s' % (algo, good))])
        expect(r.status == 204 and (r.get('Upload-Offset') or '').strip() == str(len(body)),
               '%s: a PATCH with the correct checksum %s was not accepted' % (algo, good), r)
        checked.append(algo)
    if not checked:
        raise Skip('no advertised algorithm is one this suite can compute: %s' % ','.join(unknown))
    if unknown:
        ctx.note = 'not checked (unknown to the suite): %s' % ','.join(unknown)


def t_checksum_mismatch(ctx):
    url, _ = must_create(ctx, length=10)
    status_in(patch(ctx, url, 0, b'ab'), {204}, 'setup: PATCH')
    body = b'cdef'
    r = patch(ctx, url, 2, body, extra=[('Upload-Checksum', 'sha1 ' + wrong_digest('sha1', body))])
    expect(not is_2xx(r), 'PATCH with a mismatching sha1 checksum answered %d' % r.status, r)
    off, rh = head_offset(ctx, url)
    expect(off == 2, 'after a checksum mismatch the offset moved from 2 to %d' % off, rh)
    r = patch(ctx, url, 2, body, extra=[('Upload-Checksum', 'sha1 ' + digest('sha1', body))])
    expect(r.status == 204 and (r.get('Upload-Offset') or '').strip() == '6',
           'after a checksum mismatch, the same chunk with the right checksum was not accepted', r)


def t_checksum_unsupported(ctx):
    url, _ = must_create(ctx, length=10)
    r = patch(ctx, url, 0, b'abcd', extra=[('Upload-Checksum', 'nosuchalgo AAAAAAAAAAAAAAAAAAAAAAAAAAA=')])
    expect(not is_2xx(r), 'PATCH with an unsupported checksum algorithm answered %d' % r.status, r)
    off, rh = head_offset(ctx, url)
    expect(off == 0, 'after a PATCH with an unsupported algorithm the offset is %d, not 0' % off, rh)


# -- checksum-trailer -----------------------------------------------------------------------

def _trailer_patch(ctx, url, offset, body, checksum):
    return ctx.req('PATCH', url, [TR, ('Upload-Offset', str(offset)), OCTET, ('Trailer', 'Upload-Checksum')],
                   chunks=[body[:len(body) // 2], body[len(body) // 2:]],
                   trailers=[('Upload-Checksum', checksum)])


def t_trailer_advertised(ctx):
    url, _ = must_create(ctx, length=10)
    body = b'abcd'
    r = _trailer_patch(ctx, url, 0, body, 'sha1 ' + wrong_digest('sha1', body))
    off, _ = head_offset(ctx, url)
    if not is_2xx(r) and off == 0 and not ctx.tus.has('checksum-trailer'):
        raise Fail('a chunked PATCH with a wrong Upload-Checksum trailer was rejected (the server '
                   'handles trailers), but Tus-Extension does not list checksum-trailer', r)


def t_trailer_good(ctx):
    url, _ = must_create(ctx, length=10)
    body = b'hello'
    r = _trailer_patch(ctx, url, 0, body, 'sha1 ' + digest('sha1', body))
    expect(r.status == 204 and (r.get('Upload-Offset') or '').strip() == '5',
           'chunked PATCH with a correct Upload-Checksum trailer was not accepted', r)


def t_trailer_bad(ctx):
    url, _ = must_create(ctx, length=10)
    body = b'hello'
    r = _trailer_patch(ctx, url, 0, body, 'sha1 ' + wrong_digest('sha1', body))
    expect(not is_2xx(r), 'chunked PATCH with a wrong Upload-Checksum trailer answered %d' % r.status, r)
    off, rh = head_offset(ctx, url)
    expect(off == 0, 'after a trailer checksum mismatch the offset is %d, not 0' % off, rh)


# -- termination ----------------------------------------------------------------------------

def t_termination_advertised(ctx):
    url, _ = must_create(ctx, length=10)
    r = delete(ctx, url)
    if r.status == 204 and not ctx.tus.has('termination'):
        raise Fail('DELETE terminated the upload (204), but Tus-Extension does not list termination', r)


def t_delete_204(ctx):
    url, _ = must_create(ctx, length=10)
    status_in(patch(ctx, url, 0, b'abc'), {204}, 'setup: PATCH')
    r = delete(ctx, url)
    status_in(r, {204}, 'DELETE of an unfinished upload')


def t_delete_completed(ctx):
    url, _ = must_create(ctx, length=3)
    status_in(patch(ctx, url, 0, b'abc'), {204}, 'setup: PATCH completing the upload')
    r = delete(ctx, url)
    status_in(r, {204}, 'DELETE of a completed upload')


def t_delete_gone(ctx):
    url, _ = must_create(ctx, length=10)
    status_in(delete(ctx, url), {204}, 'setup: DELETE')
    rh = head(ctx, url)
    expect(rh.status in (404, 410), 'HEAD after DELETE: expected 404 or 410, got %d' % rh.status, rh)
    rp = patch(ctx, url, 0, b'abc')
    expect(rp.status in (404, 410), 'PATCH after DELETE: expected 404 or 410, got %d' % rp.status, rp)


# -- concatenation --------------------------------------------------------------------------

def _partial(ctx, body, length=None, metadata=None, fill=True):
    r, url = create(ctx, length=len(body) if length is None else length, concat='partial',
                    metadata=metadata)
    if url is None:
        raise Fail('setup: creating a partial upload failed', r)
    if fill and body:
        status_in(patch(ctx, url, 0, body), {204}, 'setup: PATCH of a partial upload')
    return url, r.get('Location')


def _final(ctx, locs, metadata=None):
    r, url = create(ctx, concat='final;' + ' '.join(locs), metadata=metadata)
    return r, url


def _finished_final(ctx):
    a, la = _partial(ctx, b'hello', metadata='secret %s' % b64('partial-only'))
    b, lb = _partial(ctx, b' world')
    r, url = _final(ctx, [la, lb])
    if url is None:
        raise Fail('setup: creating a final upload of two finished partials failed', r)
    return url, (a, la), (b, lb), r


def t_concat_advertised(ctx):
    if not ctx.tus.has('creation'):
        raise Skip('needs the creation extension')
    r, url = create(ctx, length=5, concat='partial')
    if url and not ctx.tus.has('concatenation'):
        rh = head(ctx, url)
        if (rh.get('Upload-Concat') or '').strip() == 'partial':
            raise Fail('the server creates partial uploads (HEAD says Upload-Concat: partial), but '
                       'Tus-Extension does not list concatenation', rh)


def t_concat_length(ctx):
    url, _, _, _ = _finished_final(ctx)
    r = head(ctx, url)
    expect((r.get('Upload-Length') or '').strip() == '11', 'final upload of a 5- and a 6-byte '
           'partial: HEAD Upload-Length must be 11', r)


def t_concat_order(ctx):
    url, _, _, _ = _finished_final(ctx)
    r = ctx.req('GET', url, [TR])
    if not is_2xx(r):
        raise Skip('content not observable: GET of the final upload answered %d (tus defines no '
                   'download)' % r.status)
    expect(r.body == b'hello world', 'final upload of "hello" + " world" reads back as %r' % r.body[:64], r)


def t_concat_patch_403(ctx):
    url, _, _, _ = _finished_final(ctx)
    off = (head(ctx, url).get('Upload-Offset') or '11').strip()
    r = patch(ctx, url, off, b'!')
    status_in(r, {403}, 'PATCH of a final upload')


def t_concat_patch_unmodified(ctx):
    url, (a, _), (b, _), _ = _finished_final(ctx)
    before = [(head(ctx, u).get('Upload-Offset'), head(ctx, u).get('Upload-Length')) for u in (url, a, b)]
    r1 = patch(ctx, url, (before[0][0] or '11').strip(), b'!')
    r2 = patch(ctx, url, 0, b'!')
    after = [(head(ctx, u).get('Upload-Offset'), head(ctx, u).get('Upload-Length')) for u in (url, a, b)]
    expect(before == after, 'PATCHes of a final upload (answered %d, %d) changed offset/length: '
           'final, partials before %s after %s' % (r1.status, r2.status, before, after), r1)


def t_concat_offset_eq_length(ctx):
    url, _, _, _ = _finished_final(ctx)
    last = {}

    def done():
        r = head(ctx, url)
        last['r'] = r
        return r.has('Upload-Offset')
    poll(done, 3.0)
    r = last['r']
    o, n = (r.get('Upload-Offset') or '').strip(), (r.get('Upload-Length') or '').strip()
    expect(o and n and o == n, 'HEAD of a final upload of finished partials: Upload-Offset (%r) and '
           'Upload-Length (%r) must both be set and equal' % (o, n), r)


def t_concat_partial_offset(ctx):
    a, la = _partial(ctx, b'hello', length=10)
    r = head(ctx, a)
    expect(r.has('Upload-Offset'), 'HEAD of a partial upload without Upload-Offset', r)


def t_concat_header(ctx):
    url, (a, la), (b, lb), _ = _finished_final(ctx)
    r = head(ctx, a)
    expect((r.get('Upload-Concat') or '').strip() == 'partial', 'HEAD of a partial upload must '
           'carry Upload-Concat: partial', r)
    r = head(ctx, url)
    v = (r.get('Upload-Concat') or '').strip()
    expect(v.startswith('final;'), 'HEAD of a final upload must carry Upload-Concat: final;...', r)
    got = [ctx.url(x) for x in v[len('final;'):].split()]
    expect(got == [a, b], 'HEAD Upload-Concat lists %r; the creation request listed %r (compared '
           'after resolving against the creation URL)' % (got, [a, b]), r)


def t_concat_no_metadata(ctx):
    url, _, _, _ = _finished_final(ctx)
    r = head(ctx, url)
    md = parse_metadata(r.get('Upload-Metadata') or '')
    expect('secret' not in md, 'the final upload carries the partial upload\'s metadata: %r'
           % r.get('Upload-Metadata'), r)


def _unfinished_final(ctx):
    a, la = _partial(ctx, b'hello')
    b, lb = _partial(ctx, b' wo', length=6)
    r, url = _final(ctx, [la, lb])
    return r, url, a, b


def t_unfinished_advertised(ctx):
    r, url, a, b = _unfinished_final(ctx)
    if url and not ctx.tus.has('concatenation-unfinished'):
        raise Fail('a final upload of an unfinished partial was created (201), but Tus-Extension '
                   'does not list concatenation-unfinished', r)


def _need_unfinished(ctx):
    r, url, a, b = _unfinished_final(ctx)
    if url is None:
        raise Fail('setup: creating a final upload of an unfinished partial failed', r)
    return url, a, b


def t_unfinished_no_offset(ctx):
    url, a, b = _need_unfinished(ctx)
    r = head(ctx, url)
    expect(not r.has('Upload-Offset'), 'HEAD of a final upload whose partials are unfinished '
           'carries Upload-Offset', r)


def t_unfinished_length(ctx):
    url, a, b = _need_unfinished(ctx)
    r = head(ctx, url)
    expect((r.get('Upload-Length') or '').strip() == '11', 'HEAD of a final upload of partials '
           'with lengths 5 and 6 (one unfinished) must carry Upload-Length: 11', r)


def t_unfinished_completes(ctx):
    url, a, b = _need_unfinished(ctx)
    status_in(patch(ctx, b, 3, b'rld'), {204}, 'PATCH finishing the last partial')
    last = {}

    def done():
        r = head(ctx, url)
        last['r'] = r
        return (r.get('Upload-Offset') or '').strip() == '11'
    poll(done, 5.0, 0.2)
    r = last['r']
    expect((r.get('Upload-Offset') or '').strip() == '11' and (r.get('Upload-Length') or '').strip() == '11',
           'after the last partial finished, HEAD of the final upload must show Upload-Offset = '
           'Upload-Length = 11', r)


# -- the table ------------------------------------------------------------------------------

def R(rid, ref, level, desc, fn, needs=()):
    return Row(rid, SPEC, ref, level, desc, fn, needs=needs)


ROWS = [
    # core: headers
    R('TUS-001', '§Tus-Resumable: "MUST be included in every request and response except for OPTIONS requests"',
      'MUST', 'Tus-Resumable on every non-OPTIONS response (2xx, 409, 404, 412)', t_tus_resumable_everywhere),
    R('TUS-002', '§Tus-Resumable: "The value MUST be the version of the protocol used by the Client or the Server"',
      'MUST', 'Tus-Resumable: 1.0.0 in answers to 1.0.0 requests', t_tus_resumable_value),
    R('TUS-003', '§Tus-Resumable: "it MUST respond with the 412 Precondition Failed status"',
      'MUST', 'unsupported Tus-Resumable -> 412', t_412),
    R('TUS-004', '§Tus-Resumable: "and MUST include the Tus-Version header into the response"',
      'MUST', '412 carries Tus-Version', t_412_tus_version),
    R('TUS-005', '§Tus-Resumable: "the Server MUST NOT process the request"',
      'MUST NOT', 'a request with an unsupported version changes nothing', t_412_not_processed),
    R('TUS-006', '§OPTIONS: "A successful response ... MUST contain the Tus-Version header"',
      'MUST', 'OPTIONS answers 200/204 with Tus-Version', t_options_tus_version),
    R('TUS-007', '§Tus-Version: "MUST be a comma-separated list of protocol versions supported by the Server"',
      'MUST', 'Tus-Version is a version list including 1.0.0', t_tus_version_list),
    R('TUS-008', '§OPTIONS: "the Server MUST ignore the header" (Tus-Resumable)',
      'MUST', 'OPTIONS with an unsupported Tus-Resumable still succeeds', t_options_ignores_version),
    R('TUS-009', '§Tus-Extension: "MUST be a comma-separated list of the extensions supported"',
      'MUST', 'Tus-Extension is a well-formed list', t_tus_extension_list),
    R('TUS-010', '§Tus-Max-Size: "MUST be a non-negative integer"',
      'MUST', 'Tus-Max-Size is a non-negative integer', t_tus_max_size_format),
    R('TUS-011', '§Tus-Max-Size: "The Server SHOULD set this header if there is a known hard limit"',
      'SHOULD', 'a size limit that is enforced is announced (and accurate)', t_tus_max_size_set),
    R('TUS-012', '§Upload-Offset, §Upload-Length: "The value MUST be a non-negative integer"',
      'MUST', 'Upload-Offset / Upload-Length values are non-negative integers', t_offset_length_format),
    R('TUS-013', '§X-HTTP-Method-Override: "MUST be interpreted as the request\'s method by the Server"',
      'MUST', 'POST + X-HTTP-Method-Override: PATCH appends', t_method_override),
    # core: HEAD
    R('TUS-020', '§HEAD: "MUST always include the Upload-Offset header ..., even if the offset is 0"',
      'MUST', 'HEAD of a new upload: Upload-Offset: 0', t_head_offset_zero),
    R('TUS-021', '§HEAD: "... or the upload is already considered completed"',
      'MUST', 'HEAD of a completed upload carries Upload-Offset', t_head_offset_complete),
    R('TUS-022', '§HEAD: "If the size of the upload is known, the Server MUST include the Upload-Length header"',
      'MUST', 'HEAD carries Upload-Length when known', t_head_length),
    R('TUS-023', '§HEAD: "SHOULD return either the 404 Not Found, 410 Gone or 403 Forbidden status without the Upload-Offset header"',
      'SHOULD', 'HEAD of an unknown upload: 404/410/403 without Upload-Offset', t_head_unknown),
    R('TUS-024', '§HEAD: "MUST prevent the client and/or proxies from caching the response by adding the Cache-Control: no-store header"',
      'MUST', 'HEAD response has Cache-Control: no-store', t_head_no_store),
    # core: PATCH
    R('TUS-030', '§PATCH: "The Server SHOULD accept PATCH requests against any upload URL and apply the bytes"',
      'SHOULD', 'PATCH at the current offset is accepted', t_patch_accepted),
    R('TUS-031', '§PATCH: "All PATCH requests MUST use Content-Type: application/offset+octet-stream, otherwise the server SHOULD return a 415"',
      'SHOULD', 'PATCH with another Content-Type -> 415', t_patch_415),
    R('TUS-032', '§PATCH: "If the offsets do not match, the Server MUST respond with the 409 Conflict status"',
      'MUST', 'PATCH at a higher or lower offset -> 409', t_patch_409),
    R('TUS-033', '§PATCH: "... without modifying the upload resource"',
      'MUST', '409 leaves the upload unchanged', t_patch_409_unmodified),
    R('TUS-034', '§PATCH: "The Server MUST acknowledge successful PATCH requests with the 204 No Content status"',
      'MUST', 'successful PATCH -> 204', t_patch_204),
    R('TUS-035', '§PATCH: "It MUST include the Upload-Offset header containing the new offset"',
      'MUST', 'PATCH response Upload-Offset = old offset + bytes (HEAD agrees)', t_patch_new_offset),
    R('TUS-036', '§PATCH: "against a non-existent resource it SHOULD return a 404 Not Found status"',
      'SHOULD', 'PATCH of an unknown upload -> 404', t_patch_404),
    R('TUS-037', '§PATCH: "The Server SHOULD always attempt to store as much of the received data as possible"',
      'SHOULD', 'bytes of a cut PATCH are kept', t_patch_partial_stored),
    R('TUS-038', '§PATCH: "A timeout SHOULD be handled by closing the underlying connection"',
      'SHOULD', 'a stalled PATCH body ends in a closed connection', t_patch_timeout),
    R('TUS-039', '§PATCH: "Both Client and Server, SHOULD attempt to detect and handle network errors predictably"',
      'SHOULD', 'network errors handled predictably (see TUS-037/038)', t_not_probeable),
    # creation
    R('TUS-040', '§Creation: "If the Server supports this extension, it MUST add creation to the Tus-Extension header"',
      'MUST', 'creation advertised when POST creates uploads', t_creation_advertised),
    R('TUS-041', '§Creation/POST: "The Server MUST acknowledge a successful upload creation with the 201 Created status"',
      'MUST', 'creation -> 201', t_creation_201, ('creation',)),
    R('TUS-042', '§Creation/POST: "The Server MUST set the Location header to the URL of the created resource"',
      'MUST', '201 carries a Location that leads to the upload', t_creation_location, ('creation',)),
    R('TUS-043', '§Creation/POST: "responses to HEAD requests MUST include the Upload-Metadata header and its value as specified by the Client"',
      'MUST', 'HEAD echoes Upload-Metadata (incl. a key without value)', t_creation_metadata, ('creation',)),
    R('TUS-044', '§Creation/POST: "If the length of the upload exceeds the maximum ... MUST respond with the 413"',
      'MUST', 'Upload-Length above Tus-Max-Size -> 413', t_creation_413, ('creation',)),
    R('TUS-045', '§Upload-Metadata: "Servers SHOULD carefully validate metadata values or sanitize them before using them as header values"',
      'SHOULD', 'metadata decoding to CRLF does not smuggle headers', t_metadata_sanitised),
    R('TUS-046', '§Upload-Defer-Length: "If the length of an upload is not deferred, this header MUST be omitted"',
      'MUST', 'no Upload-Defer-Length on uploads of known length', t_no_defer_header, ('creation',)),
    # creation-defer-length
    R('TUS-050', '§Creation/POST: "If the Server supports deferring length, it MUST add creation-defer-length"',
      'MUST', 'creation-defer-length advertised when deferring works', t_defer_advertised),
    R('TUS-051', '§Creation/POST: "the Server MUST set Upload-Defer-Length: 1 in all responses to HEAD requests"',
      'MUST', 'HEAD of a deferred upload: Upload-Defer-Length: 1', t_defer_head, ('creation-defer-length',)),
    R('TUS-052', '§Creation/POST: "Once set the length MUST NOT be changed"',
      'MUST NOT', 'a declared length cannot be changed by a later PATCH', t_defer_immutable, ('creation-defer-length',)),
    R('TUS-053', '§HEAD + §Upload-Defer-Length: Upload-Length once known; "this header MUST be omitted"',
      'MUST', 'after declaring: HEAD has Upload-Length, no Upload-Defer-Length', t_defer_declared, ('creation-defer-length',)),
    R('TUS-054', '§Creation/POST: "If the Upload-Defer-Length header contains any other value than 1 the server should return a 400" (lower-case should)',
      'SHOULD', 'Upload-Defer-Length: 2 -> 400', t_defer_400, ('creation-defer-length',)),
    # creation-with-upload
    R('TUS-060', '§Creation With Upload: "it MUST advertise this by including creation-with-upload"',
      'MUST', 'creation-with-upload advertised when POST bodies are stored', t_cwu_advertised),
    R('TUS-061', '§Creation With Upload: "if the Server does not offer the Creation extension, it MUST NOT offer the Creation With Upload extension"',
      'MUST NOT', 'no creation-with-upload without creation', t_cwu_needs_creation),
    R('TUS-062', '§Creation With Upload: "MUST include the Upload-Offset header in the response and MUST set its value to the offset of the upload after applying the accepted bytes"',
      'MUST', 'creation response Upload-Offset = bytes stored', t_cwu_offset, ('creation-with-upload',)),
    R('TUS-063', '§Creation With Upload: "The Server SHOULD accept as many bytes as possible"',
      'SHOULD', 'a creation body sent in pieces is accepted whole', t_cwu_all_bytes, ('creation-with-upload',)),
    # expiration
    R('TUS-070', '§Expiration: "the Server MUST add expiration to the Tus-Extension header"',
      'MUST', 'expiration advertised when Upload-Expires is sent', t_expiration_advertised, ('creation',)),
    R('TUS-071', '§Upload-Expires: "This header MUST be included in every PATCH response if the upload is going to expire"',
      'MUST', 'PATCH response carries Upload-Expires', t_expires_patch, ('expiration',)),
    R('TUS-072', '§Upload-Expires: "If the expiration is known at the creation, the Upload-Expires header MUST be included in the response to the initial POST"',
      'MUST', 'creation response carries Upload-Expires', t_expires_post, ('expiration',)),
    R('TUS-073', '§Upload-Expires: "The value of the Upload-Expires header MUST be in RFC 7231 datetime format"',
      'MUST', 'Upload-Expires is an IMF-fixdate', t_expires_format, ('expiration',)),
    R('TUS-074', '§Upload-Expires: "the Server SHOULD respond with the 404 Not Found or 410 Gone status"',
      'SHOULD', 'an expired upload answers 404/410 (needs a short expiry)', t_expired_gone, ('expiration',)),
    # checksum
    R('TUS-080', '§Checksum: "If supported, the Server MUST add checksum to the Tus-Extension header"',
      'MUST', 'checksum advertised when checksums are verified', t_checksum_advertised),
    R('TUS-081', '§Checksum: "The Tus-Checksum-Algorithm header MUST be included in the response to an OPTIONS request"',
      'MUST', 'OPTIONS carries Tus-Checksum-Algorithm', t_checksum_algorithm_header, ('checksum',)),
    R('TUS-082', '§Checksum: "The Server MUST support at least the SHA1 checksum algorithm identified by sha1"',
      'MUST', 'sha1 listed and a correct sha1 PATCH accepted', t_checksum_sha1, ('checksum',)),
    R('TUS-083', '§Checksum: "The names of the checksum algorithms MUST only consist of ASCII characters with the modification that uppercase characters are excluded"',
      'MUST', 'algorithm names are lower-case ASCII', t_checksum_names, ('checksum',)),
    R('TUS-084', '§Checksum: "the Server MUST verify the uploaded chunk against the provided checksum using the specified algorithm"',
      'MUST', 'every advertised algorithm: right digest accepted, wrong rejected', t_checksum_verified, ('checksum',)),
    R('TUS-085', '§Checksum: "the uploaded chunk MUST be discarded, and the upload and its offset MUST NOT be updated" (mismatch)',
      'MUST', 'checksum mismatch: chunk discarded, offset unchanged', t_checksum_mismatch, ('checksum',)),
    R('TUS-086', '§Checksum: "the uploaded chunk MUST be discarded, and the upload and its offset MUST NOT be updated" (unsupported algorithm)',
      'MUST', 'unsupported algorithm: chunk discarded, offset unchanged', t_checksum_unsupported, ('checksum',)),
    # checksum-trailer
    R('TUS-090', '§Checksum: "If the Server can handle trailers, this behavior MUST be announced by adding checksum-trailer"',
      'MUST', 'checksum-trailer advertised when trailers are verified', t_trailer_advertised, ('creation',)),
    R('TUS-091', '§Checksum (trailer): "the Server MUST verify the uploaded chunk against the provided checksum"',
      'MUST', 'chunked PATCH with a correct Upload-Checksum trailer accepted', t_trailer_good, ('checksum-trailer',)),
    R('TUS-092', '§Checksum (trailer): "the uploaded chunk MUST be discarded, and the upload and its offset MUST NOT be updated"',
      'MUST', 'wrong Upload-Checksum trailer: chunk discarded', t_trailer_bad, ('checksum-trailer',)),
    # termination
    R('TUS-100', '§Termination: "If this extension is supported by the Server, it MUST be announced by adding termination"',
      'MUST', 'termination advertised when DELETE works', t_termination_advertised, ('creation',)),
    R('TUS-101', '§Termination/DELETE: "MUST respond with the 204 No Content status"',
      'MUST', 'DELETE of an unfinished upload -> 204', t_delete_204, ('termination',)),
    R('TUS-102', '§Termination: "terminate completed and unfinished uploads" + "MUST respond with the 204"',
      'MUST', 'DELETE of a completed upload -> 204', t_delete_completed, ('termination',)),
    R('TUS-103', '§Termination/DELETE: "For all future requests to this URL, the Server SHOULD respond with the 404 Not Found or 410 Gone status"',
      'SHOULD', 'HEAD/PATCH after DELETE -> 404/410', t_delete_gone, ('termination',)),
    R('TUS-104', '§Termination/DELETE: "the Server SHOULD free associated resources"',
      'SHOULD', 'resources freed on DELETE', t_not_probeable, ('termination',)),
    # concatenation
    R('TUS-110', '§Concatenation: "If the Server supports this extension, it MUST add concatenation to the Tus-Extension header"',
      'MUST', 'concatenation advertised when partial uploads exist', t_concat_advertised),
    R('TUS-111', '§Concatenation: "The length of the final upload MUST be the sum of the length of all partial uploads"',
      'MUST', 'final length = sum of partial lengths', t_concat_length, ('concatenation',)),
    R('TUS-112', '§Concatenation: "The partial uploads MUST be concatenated as per the order specified in the list"',
      'MUST', 'final content is the partials in order (via GET if offered)', t_concat_order, ('concatenation',)),
    R('TUS-113', '§Concatenation: "The Server MUST respond with the 403 Forbidden status to PATCH requests against a final upload URL"',
      'MUST', 'PATCH of a final upload -> 403', t_concat_patch_403, ('concatenation',)),
    R('TUS-114', '§Concatenation: "and MUST NOT modify the final or its partial uploads"',
      'MUST NOT', 'PATCH of a final upload changes neither it nor its partials', t_concat_patch_unmodified, ('concatenation',)),
    R('TUS-115', '§Concatenation: "After successful concatenation, the Upload-Offset and Upload-Length MUST be set and their values MUST be equal"',
      'MUST', 'finished final: Upload-Offset = Upload-Length', t_concat_offset_eq_length, ('concatenation',)),
    R('TUS-116', '§Concatenation: "The response to a HEAD request for a partial upload MUST contain the Upload-Offset header"',
      'MUST', 'HEAD of a partial carries Upload-Offset', t_concat_partial_offset, ('concatenation',)),
    R('TUS-117', '§Concatenation: "Response to HEAD request against partial or final upload MUST include the Upload-Concat header and its value as received"',
      'MUST', 'HEAD echoes Upload-Concat (partial; final;<urls>)', t_concat_header, ('concatenation',)),
    R('TUS-118', '§Concatenation: "the partial uploads\' metadata SHALL NOT be transferred to the new final upload"',
      'SHALL NOT', 'final upload does not inherit partial metadata', t_concat_no_metadata, ('concatenation',)),
    R('TUS-119', '§Concatenation: "The Server SHOULD NOT process these partial uploads until they are concatenated"',
      'SHOULD NOT', 'partials not processed before concatenation', t_not_probeable, ('concatenation',)),
    # concatenation-unfinished
    R('TUS-120', '§Concatenation: "This feature MUST be explicitly announced by the Server by adding concatenation-unfinished"',
      'MUST', 'concatenation-unfinished advertised when finals of unfinished partials are accepted',
      t_unfinished_advertised, ('concatenation',)),
    R('TUS-121', '§Concatenation: "HEAD request for a final upload SHOULD NOT contain the Upload-Offset header unless the concatenation has been successfully finished"',
      'SHOULD NOT', 'unfinished final: HEAD without Upload-Offset', t_unfinished_no_offset,
      ('concatenation', 'concatenation-unfinished')),
    R('TUS-122', '§Concatenation: "The Upload-Length header MUST be included if the length of the final resource can be calculated"',
      'MUST', 'unfinished final: HEAD carries Upload-Length = sum', t_unfinished_length,
      ('concatenation', 'concatenation-unfinished')),
    R('TUS-123', '§Concatenation: "After successful concatenation, the Upload-Offset and Upload-Length MUST be set and their values MUST be equal"',
      'MUST', 'unfinished final completes once its partials do', t_unfinished_completes,
      ('concatenation', 'concatenation-unfinished')),
]
