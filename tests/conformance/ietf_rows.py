"""IETF "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload) server rows, for
interop versions 3-8.  Each row lists the interop versions whose draft text carries the
requirement; a requirement whose level changed between revisions is two rows.

    interop 3 = draft -01   Upload-Incomplete (?1 = not complete), 104 + Location, HEAD 204,
                            incomplete transfers answered 201, HEAD/DELETE with Upload-Offset 400
    interop 4 = draft -02   Upload-Complete replaces Upload-Incomplete; 104 progress offsets;
                            a recorded final size must match (400)
    interop 5 = draft -03   HEAD may answer 200; otherwise as -02
    interop 6 = draft -04/-05  application/partial-upload, Upload-Limit (OPTIONS MUST),
                            Upload-Length, 409 carries the offset, completed uploads reject appends,
                            DELETE 204
    interop 7 = draft -06..-08  `expires` limit renamed `max-age`; Upload-Complete on every
                            append response; an overflowing upload is invalidated (-08)
    interop 8 = draft -09..-11  Upload-Limit required on 104/creation/HEAD/413; DELETE needs no
                            204; 100-continue next to 104; 104 progress on append SHOULD

Which text: each interop version is checked against the last published revision carrying it
(-01, -02, -03, -05, -08, -11); where the editor's copy after -11 (still interop 8) reverted
or relaxed a requirement, the row takes the weaker level and says so.  The -03 and -06..-08
texts were not available to the author; their rows follow the neighbouring revisions and the
drafts' change logs (no change log entry touches the rows assumed unchanged).

Client-only requirements ("The client MUST NOT perform offset retrieval while ...") are not
rows.  Rows that need a server feature that is optional (a 104, limits, a problem type) SKIP
with the reason when the server does not show it.
"""

import json
import time
import urllib.parse

from core import ANY, Fail, Row, Skip, cache_no_store, data, expect, is_2xx, poll, status_in
from httpclient import SFError, is_sf_int, sf_dict, sf_item

DRAFT = {3: '-01', 4: '-02', 5: '-03', 6: '-04/-05', 7: '-06..-08', 8: '-09..-11'}
LIFETIME_KEYS = {6: ('max-age', 'expires')}
KNOWN_LIMITS = ('max-size', 'min-size', 'max-append-size', 'min-append-size', 'max-age')
PROMPT = 2.0       # seconds: "terminate the previous request" means promptly, not at a timeout
PROBLEM_MISMATCH = 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset'


class V:
    """Wire details of one interop version."""

    def __init__(self, n):
        self.n = n

    @property
    def complete_name(self):
        return 'Upload-Incomplete' if self.n == 3 else 'Upload-Complete'

    def comp(self, complete):
        if self.n == 3:
            return ('Upload-Incomplete', '?0' if complete else '?1')
        return ('Upload-Complete', '?1' if complete else '?0')

    def comp_text(self, complete):
        return '%s: %s' % self.comp(complete)

    def vh(self):
        return [('Upload-Draft-Interop-Version', str(self.n))]

    def completeness(self, resp):
        """True/False from the response's completeness field, None if absent or malformed."""
        raw = resp.get(self.complete_name)
        if raw is None:
            return None
        try:
            val, _ = sf_item(raw)
        except SFError:
            return None
        if not isinstance(val, bool):
            return None
        return (not val) if self.n == 3 else val

    def lifetime_keys(self):
        return LIFETIME_KEYS.get(self.n, ('max-age',))


class VState:
    """Per-version run state."""

    def __init__(self, n):
        self.n = n
        self.responses = []       # final responses (with .interim)
        self.interims = []        # (method, interim response) of exchanges without a final response
        self.options = None


# -- request helpers ------------------------------------------------------------------------

def _target(url):
    u = urllib.parse.urlsplit(url)
    return (u.path or '/') + ('?' + u.query if u.query else '')


def location_of(ctx, resp):
    """The upload resource URL: the first 104's Location, else a 2xx final Location."""
    for i in resp.interim:
        if i.status == 104 and i.get('Location'):
            return ctx.url(i.get('Location'))
    if is_2xx(resp) and resp.get('Location'):
        return ctx.url(resp.get('Location'))
    return None


def create(ctx, v, body=b'', complete=False, length=None, extra=()):
    hs = v.vh() + [v.comp(complete)]
    if length is not None and v.n >= 6:
        hs.append(('Upload-Length', str(length)))
    if body:
        hs.append(('Content-Type', 'application/octet-stream'))
    r = ctx.req('POST', ctx.base, hs + list(extra), body)
    url = location_of(ctx, r)
    if url:
        ctx.register(url, 'ietf', v.n)
    return r, url


def must_create(ctx, v, body=b'', complete=False, length=None):
    r, url = create(ctx, v, body, complete, length)
    if url is None or not is_2xx(r):
        raise Fail('setup: creation (%s, %d-byte body) did not give a 2xx with an upload URL'
                   % (v.comp_text(complete), len(body)), r)
    return url, r


def append(ctx, v, url, offset, body, complete, extra=(), chunks=None):
    hs = v.vh() + [('Upload-Offset', str(offset)), v.comp(complete)]
    if v.n >= 6:
        hs.append(('Content-Type', 'application/partial-upload'))
    if chunks is not None:
        return ctx.req('PATCH', url, hs + list(extra), None, chunks=chunks)
    return ctx.req('PATCH', url, hs + list(extra), body)


def head(ctx, v, url, extra=()):
    return ctx.req('HEAD', url, v.vh() + list(extra))


def delete(ctx, v, url, extra=()):
    r = ctx.req('DELETE', url, v.vh() + list(extra))
    if is_2xx(r):
        ctx.mark_deleted(url)
    return r


def sf_int_field(resp, name):
    raw = resp.get(name)
    if raw is None:
        return None
    try:
        val, _ = sf_item(raw)
    except SFError:
        return None
    return val if is_sf_int(val) and val >= 0 else None


def head_state(ctx, v, url, what='HEAD'):
    r = head(ctx, v, url)
    if not is_2xx(r):
        raise Fail('%s: expected 2xx, got %d' % (what, r.status), r)
    off = sf_int_field(r, 'Upload-Offset')
    if off is None:
        raise Fail('%s: no valid Upload-Offset' % what, r)
    return off, v.completeness(r), r


def limits_of(resp):
    """Parsed Upload-Limit dictionary {key: value}, or None if absent; Fail if malformed."""
    raw = resp.get('Upload-Limit')
    if raw is None:
        return None
    try:
        d = sf_dict(raw)
    except SFError as e:
        raise Fail('Upload-Limit %r is not a structured-field dictionary (%s)' % (raw, e), resp)
    return {k: val for k, (val, _) in d.items()}


def options(ctx, v):
    if ctx.vstate.options is None:
        ctx.vstate.options = ctx.req('OPTIONS', ctx.base, v.vh())
    return ctx.vstate.options


def known_limits(ctx, v):
    """Why we believe the server applies limits (list of reasons; empty = unknown)."""
    why = []
    o = options(ctx, v)
    try:
        lim = limits_of(o) or {}
    except Fail:
        lim = {}
    real = {k: x for k, x in lim.items() if not (k == 'min-size' and x == 0)}
    if real:
        why.append('OPTIONS Upload-Limit: %s' % o.get('Upload-Limit'))
    if ctx.tus.max_size is not None:
        why.append('Tus-Max-Size: %d on the same endpoint' % ctx.tus.max_size)
    if ctx.tus.expires_seen:
        why.append('tus uploads here expire (Upload-Expires)')
    return why


def server_max_size(ctx, v):
    for r in [options(ctx, v)] + ctx.vstate.responses:
        try:
            lim = limits_of(r) or {}
        except Fail:
            continue
        if is_sf_int(lim.get('max-size')):
            return lim['max-size'], 'Upload-Limit max-size'
    if ctx.tus.max_size is not None:
        return ctx.tus.max_size, 'Tus-Max-Size'
    return None, None


def all_interims(ctx, kind=None):
    out = [i for (m, i) in ctx.vstate.interims if kind is None or m == kind]
    for r in ctx.vstate.responses:
        if kind is None or (r.request and r.request.method == kind):
            out += r.interim
    return out


def interim_104(resp):
    return [i for i in resp.interim if i.status == 104]


def interrupted_creation(ctx, v, total=100, sent=40):
    """Creation with Upload-Complete true and Content-Length `total`; `sent` bytes, then the
    connection is closed once a 104 with Location arrived.  Returns the upload URL."""
    c = ctx.conn(ctx.base)
    try:
        c.send_head('POST', _target(ctx.base), v.vh() + [v.comp(True), ('Content-Length', str(total)),
                                                        ('Content-Type', 'application/octet-stream')])
        c.send_body(data(sent, 7))
        got = c.poll_interim(3.0, stop=lambda r: r.status == 104 and r.get('Location'))
    finally:
        c.close()
    ctx.vstate.interims += [('POST', i) for i in got]
    locs = [i.get('Location') for i in got if i.status == 104 and i.get('Location')]
    if not locs:
        raise Skip('no 104 with Location within 3 s of sending %d of %d bytes, so an interrupted '
                   'creation cannot be resumed (104 is a SHOULD: RUFH-010)' % (sent, total))
    url = ctx.url(locs[0])
    ctx.register(url, 'ietf', v.n)
    return url


def interrupted_append(ctx, v, url, offset, total=1000, sent=300, complete=False):
    c = ctx.conn(url)
    try:
        hs = v.vh() + [('Upload-Offset', str(offset)), v.comp(complete), ('Content-Length', str(total))]
        if v.n >= 6:
            hs.append(('Content-Type', 'application/partial-upload'))
        c.send_head('PATCH', _target(url), hs)
        c.send_body(data(sent, 9))
        ctx.vstate.interims += [('PATCH', i) for i in c.poll_interim(0.3)]
    finally:
        c.close()


def slow_request(ctx, v, method, url, headers, pieces, pause):
    c = ctx.conn(url)
    try:
        total = sum(len(p) for p in pieces)
        c.send_head(method, _target(url), headers + [('Content-Length', str(total))])
        for i, p in enumerate(pieces):
            c.send_body(p)
            if i + 1 < len(pieces):
                c.poll_interim(pause)
        return ctx.read(c, method)
    finally:
        c.close()


# -- draft version identification ----------------------------------------------------------

def t_104_version_echo(ctx, v):
    # make sure there is traffic to look at, then judge every 104 of this version's run
    url, r = must_create(ctx, v, data(16))
    append(ctx, v, url, 16, b'', True)
    seen = [i for i in all_interims(ctx) if i.status == 104]
    if not seen:
        raise Skip('the server sent no 104 in this run')
    for i in seen:
        val = i.get('Upload-Draft-Interop-Version')
        try:
            ok = val is not None and sf_item(val)[0] == v.n
        except SFError:
            ok = False
        if not ok:
            raise Fail('a 104 (of %d seen) carries Upload-Draft-Interop-Version %r, not %d'
                       % (len(seen), val, v.n), extra=['got:  ' + i.summary(False)])


def _no_104_probe(ctx, version_value):
    hs = [('Upload-Complete', '?0'), ('Upload-Incomplete', '?1'),
          ('Content-Type', 'application/octet-stream')]
    if version_value is not None:
        hs.append(('Upload-Draft-Interop-Version', version_value))
    r = ctx.req('POST', ctx.base, hs, data(16))
    if r.get('Location') and is_2xx(r):
        ctx.register(ctx.url(r.get('Location')), 'ietf', version_value)
    return r


def t_no_104_missing(ctx, v):
    r = _no_104_probe(ctx, None)
    expect(not interim_104(r), 'a creation request without Upload-Draft-Interop-Version got a 104', r)


def t_no_104_mismatch(ctx, v):
    for val in ('99', '2'):
        r = _no_104_probe(ctx, val)
        expect(not interim_104(r), 'a creation request with Upload-Draft-Interop-Version: %s got a 104'
               % val, r)


# -- creation -------------------------------------------------------------------------------

def t_creation_104(ctx, v):
    url, r = must_create(ctx, v, data(16))
    expect(interim_104(r), 'creation answered without a 104 (Upload Resumption Supported)', r)


def _creation_104(ctx, v):
    url, r = must_create(ctx, v, data(16))
    f = interim_104(r)
    if not f:
        raise Skip('the server sent no 104 on creation')
    return url, r, f


def t_104_location(ctx, v):
    url, r, f = _creation_104(ctx, v)
    expect(f[0].get('Location'), 'the first 104 of a creation has no Location', r)


def t_104_limits(ctx, v):
    why = known_limits(ctx, v)
    if not why:
        raise Skip('no sign that the server applies limits')
    url, r, f = _creation_104(ctx, v)
    expect(f[0].has('Upload-Limit'), 'the creation 104 has no Upload-Limit although limits exist (%s)'
           % '; '.join(why), r)


def t_creation_location(ctx, v):
    r, url = create(ctx, v, data(16), complete=False)
    expect(is_2xx(r) and r.get('Location'), 'creation with %s: expected 2xx with Location'
           % v.comp_text(False), r)


def t_creation_limits(ctx, v):
    why = known_limits(ctx, v)
    if not why:
        raise Skip('no sign that the server applies limits')
    url, r = must_create(ctx, v, data(16))
    expect(r.has('Upload-Limit'), 'creation response (%s) has no Upload-Limit although limits '
           'exist (%s)' % (v.comp_text(False), '; '.join(why)), r)


def t_creation_201(ctx, v):
    url, r = must_create(ctx, v, data(16))
    expect(r.status == 201, 'creation with %s answered %d, 201 is recommended' % (v.comp_text(False), r.status), r)


def t_creation_incomplete_201(ctx, v):
    r, url = create(ctx, v, data(16), complete=False)
    status_in(r, {201}, 'creation with %s' % v.comp_text(False))
    expect(v.completeness(r) is False, 'incomplete creation: the response must carry %s'
           % v.comp_text(False), r)


def t_creation_complete_2xx(ctx, v):
    r, url = create(ctx, v, data(10), complete=True)
    expect(is_2xx(r), 'complete creation (%s) answered %d' % (v.comp_text(True), r.status), r)
    expect(v.completeness(r) is not False, 'the response to a complete creation carries %s'
           % v.comp_text(False), r)


def t_creation_offset(ctx, v):
    r, url = create(ctx, v, data(16), complete=False)
    expect(sf_int_field(r, 'Upload-Offset') == 16, 'incomplete creation with 16 bytes: response '
           'Upload-Offset must be 16', r)
    r, url = create(ctx, v, data(10), complete=True)
    expect(sf_int_field(r, 'Upload-Offset') == 10, 'complete creation with 10 bytes: response '
           'Upload-Offset must be 10', r)


def t_location_identical(ctx, v):
    url, r, f = _creation_104(ctx, v)
    a, b = f[0].get('Location'), r.get('Location')
    if v.n >= 8:
        expect(a == b, 'Location differs between 104 (%r) and final response (%r)' % (a, b), r)
    else:
        expect(b is not None and ctx.url(a) == ctx.url(b), 'Location of the 104 (%r) and of the '
               'final response (%r) name different resources' % (a, b), r)


def _slow_creation(ctx, v):
    pieces = [data(65536, i) for i in range(3)]
    r = slow_request(ctx, v, 'POST', ctx.base, v.vh() + [v.comp(False), ('Content-Type', 'application/octet-stream')],
                     pieces, 0.7)
    url = location_of(ctx, r)
    if url:
        ctx.register(url, 'ietf', v.n)
    return r, url


def t_creation_later_104_no_location(ctx, v):
    r, url = _slow_creation(ctx, v)
    f = interim_104(r)
    if len(f) < 2:
        raise Skip('fewer than two 104s on a slow creation (%d)' % len(f))
    for i in f[1:]:
        expect(not i.has('Location'), 'a later 104 (progress) of a creation carries Location', r)


def t_creation_104_offsets(ctx, v):
    r, url = _slow_creation(ctx, v)
    offs = [sf_int_field(i, 'Upload-Offset') for i in interim_104(r) if i.has('Upload-Offset')]
    if not offs:
        raise Skip('no progress 104 (with Upload-Offset) on a slow creation')
    expect(offs == sorted(offs), '104 progress offsets decrease: %s' % offs, r)
    off, _, rh = head_state(ctx, v, url)
    expect(off >= offs[-1], 'HEAD offset %d is below the last 104 offset %d' % (off, offs[-1]), rh)


def t_recorded_length_400(ctx, v):
    url = interrupted_creation(ctx, v, 100, 40)
    off, _, rh = head_state(ctx, v, url)
    r = append(ctx, v, url, off, data(10), True)
    expect(r.status == 400, 'creation recorded the final size 100 (%s + Content-Length: 100); an '
           'append at %d completing with 10 bytes (size %d) must get 400, got %d'
           % (v.comp_text(True), off, off + 10, r.status), r)


def t_recorded_length_head(ctx, v):
    url = interrupted_creation(ctx, v, 100, 40)
    r = head(ctx, v, url)
    expect(sf_int_field(r, 'Upload-Length') == 100, 'creation with %s and Content-Length: 100 '
           '(interrupted): HEAD must report Upload-Length: 100' % v.comp_text(True), r)


def t_interrupted_creation_kept(ctx, v):
    url = interrupted_creation(ctx, v, 100, 40)
    last = {}

    def ok():
        r = head(ctx, v, url)
        last['r'] = r
        return sf_int_field(r, 'Upload-Offset') == 40
    expect(poll(ok, 3.0), 'a creation cut after 40 of 100 bytes: HEAD never showed offset 40',
           last.get('r'))


def t_interrupted_creation_incomplete(ctx, v):
    url = interrupted_creation(ctx, v, 100, 40)
    time.sleep(0.3)
    r = head(ctx, v, url)
    expect(is_2xx(r) and v.completeness(r) is False, 'a creation with %s cut after 40 of 100 bytes '
           'must not be complete: HEAD must say %s' % (v.comp_text(True), v.comp_text(False)), r)


def t_100_continue(ctx, v):
    c = ctx.conn(ctx.base)
    try:
        body = data(16)
        c.send_head('POST', _target(ctx.base), v.vh() + [v.comp(False), ('Expect', '100-continue'),
                                                        ('Content-Type', 'application/octet-stream'),
                                                        ('Content-Length', str(len(body)))])
        inter = c.poll_interim(3.0, stop=lambda r: r.status == 100)
        final_first = c.final_pending()
        if not final_first:
            c.send_body(body)
        r = ctx.read(c, 'POST')
    finally:
        c.close()
    url = location_of(ctx, r)
    if url:
        ctx.register(url, 'ietf', v.n)
    got = [i.status for i in inter]
    if 100 in got:
        return
    if 104 not in got:
        raise Skip('no 104 (and no 100) before the body was sent; interim seen: %s' % (got or 'none'))
    if final_first:
        return          # a final response instead of 100 is allowed (RFC 9110 §10.1.1)
    raise Fail('with Expect: 100-continue the server sent 104 but no 100 (Continue) within 3 s', r)


def t_unguessable(ctx, v):
    u1, _ = must_create(ctx, v)
    u2, _ = must_create(ctx, v)
    s1 = urllib.parse.urlsplit(u1).path.rstrip('/').rsplit('/', 1)[-1]
    s2 = urllib.parse.urlsplit(u2).path.rstrip('/').rsplit('/', 1)[-1]
    expect(len(s1) >= 16 and len(s2) >= 16 and not (s1.isdigit() and s2.isdigit()),
           'upload URLs %s and %s: the last path segments look guessable (heuristic: fewer than 16 '
           'characters, or numeric)' % (u1, u2))


def t_unique(ctx, v):
    a, _ = must_create(ctx, v)
    b, _ = must_create(ctx, v)
    delete(ctx, v, a)
    c, _ = must_create(ctx, v)
    expect(len({a, b, c}) == 3, 'upload URLs are reused: %s, %s, then after deleting the first %s'
           % (a, b, c))


# -- offset retrieval -----------------------------------------------------------------------

def t_head_offset(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    status_in(r, set(range(200, 300)), 'HEAD of an upload resource')
    expect(sf_int_field(r, 'Upload-Offset') == 16, 'HEAD after a 16-byte creation must carry '
           'Upload-Offset: 16', r)


def t_head_incomplete(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    expect(is_2xx(r) and v.completeness(r) is False, 'HEAD of an incomplete upload must carry %s'
           % v.comp_text(False), r)


def t_head_complete(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    ra = append(ctx, v, url, 16, data(4), True)
    expect(is_2xx(ra), 'setup: completing append answered %d' % ra.status, ra)
    r = head(ctx, v, url)
    if not is_2xx(r):
        raise Skip('the completed upload resource is no longer available (HEAD %d)' % r.status)
    expect(v.completeness(r) is True, 'HEAD of a completed upload must carry %s' % v.comp_text(True), r)


def t_head_204(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    status_in(r, {204}, 'HEAD of an active upload resource')


def t_head_200_204(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    status_in(r, {200, 204}, 'HEAD of an active upload resource')


def t_head_no_store(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    expect(cache_no_store(r), 'HEAD response without Cache-Control: no-store', r)


def t_head_length(ctx, v):
    url, _ = must_create(ctx, v, data(16), length=64)
    r = head(ctx, v, url)
    expect(sf_int_field(r, 'Upload-Length') == 64, 'upload created with Upload-Length: 64: HEAD '
           'must carry Upload-Length: 64', r)


def t_head_limits(ctx, v):
    why = known_limits(ctx, v)
    if not why:
        raise Skip('no sign that the server applies limits')
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    expect(r.has('Upload-Limit'), 'HEAD without Upload-Limit although limits exist (%s)' % '; '.join(why), r)


def t_head_400(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url, [('Upload-Offset', '16')])
    status_in(r, {400}, 'HEAD carrying Upload-Offset')
    r = head(ctx, v, url, [v.comp(False)])
    status_in(r, {400}, 'HEAD carrying %s' % v.complete_name)


def t_head_404(ctx, v):
    r = head(ctx, v, ctx.unknown_url())
    status_in(r, {404}, 'HEAD of an unknown upload resource')


def _redirect_probe(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    rs = [head(ctx, v, url), head(ctx, v, ctx.unknown_url()), delete(ctx, v, url),
          delete(ctx, v, ctx.unknown_url())]
    for r in rs:
        expect(r.status not in (301, 302), '%s answered %d' % (r.request.method, r.status), r)


def t_offset_accepted(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    interrupted_append(ctx, v, url, 16)
    off, _, rh = head_state(ctx, v, url, 'HEAD right after a cut append')
    r = append(ctx, v, url, off, data(8), False)
    expect(is_2xx(r), 'HEAD reported offset %d right after an append was cut, but an append at '
           'that offset answered %d' % (off, r.status), r)


def t_concurrent_terminated(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    c = ctx.conn(url)
    try:
        hs = v.vh() + [('Upload-Offset', '16'), v.comp(False), ('Content-Length', '100000')]
        if v.n >= 6:
            hs.append(('Content-Type', 'application/partial-upload'))
        c.send_head('PATCH', _target(url), hs)
        c.send_body(data(1000, 3))
        time.sleep(0.5)
        t0 = time.monotonic()
        try:
            r = ctx.req('HEAD', url, v.vh(), timeout=PROMPT)
        except Fail as e:
            raise Fail('HEAD while an append is in flight got no answer within %g s (the earlier '
                       'request was not terminated): %s' % (PROMPT, e.msg))
        took = time.monotonic() - t0
        ended = c.wait_closed(2.0) or c.final_pending()
    finally:
        c.close()
    expect(ended, 'after a HEAD (answered %d in %.1f s) arrived for the same upload, the in-flight '
           'append was neither answered nor its connection closed within 2 s' % (r.status, took), r)
    off = sf_int_field(r, 'Upload-Offset')
    if off is not None:
        ra = append(ctx, v, url, off, b'', False)
        expect(is_2xx(ra), 'the offset %d that HEAD reported was not accepted by the next append' % off, ra)


def t_kept_after_complete(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    ra = append(ctx, v, url, 16, data(4), True)
    expect(is_2xx(ra), 'setup: completing append answered %d' % ra.status, ra)
    r = head(ctx, v, url)
    expect(is_2xx(r), 'HEAD right after the upload completed answered %d' % r.status, r)


# -- append ---------------------------------------------------------------------------------

def t_offset_monotonic(ctx, v):
    url, r0 = must_create(ctx, v, data(16))
    seq = []

    def note(r):
        for i in r.interim:
            o = sf_int_field(i, 'Upload-Offset')
            if o is not None:
                seq.append((o, i))
        o = sf_int_field(r, 'Upload-Offset')
        if o is not None:
            seq.append((o, r))
    note(r0)
    note(append(ctx, v, url, 16, data(16), False))
    note(head(ctx, v, url))
    note(append(ctx, v, url, 5, data(4), False))
    interrupted_append(ctx, v, url, 32)
    note(head(ctx, v, url))
    note(append(ctx, v, url, 999, data(4), False))
    note(head(ctx, v, url))
    for (a, ra), (b, rb) in zip(seq, seq[1:]):
        expect(b >= a, 'the reported offset decreased from %d to %d' % (a, b), rb)


def _mismatch(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    hi = append(ctx, v, url, 21, data(4), False)
    lo = append(ctx, v, url, 11, data(4), False)
    return url, hi, lo


def t_409(ctx, v):
    url, hi, lo = _mismatch(ctx, v)
    status_in(hi, {409}, 'append at offset 21 while the offset is 16')
    status_in(lo, {409}, 'append at offset 11 while the offset is 16')


def t_409_offset(ctx, v):
    url, hi, lo = _mismatch(ctx, v)
    for r in (hi, lo):
        if r.status != 409:
            raise Skip('mismatching append answered %d, not 409 (RUFH-061)' % r.status)
        expect(sf_int_field(r, 'Upload-Offset') == 16, '409 must carry the correct Upload-Offset: 16', r)


def t_409_unchanged(ctx, v):
    url, hi, lo = _mismatch(ctx, v)
    off, _, rh = head_state(ctx, v, url)
    expect(off == 16, 'after rejected appends (answered %d, %d) the offset is %d, not 16'
           % (hi.status, lo.status, off), rh)
    r = append(ctx, v, url, 16, data(4), False)
    expect(is_2xx(r), 'append at the correct offset after rejected ones answered %d' % r.status, r)


def t_409_problem(ctx, v):
    url, hi, lo = _mismatch(ctx, v)
    r = hi
    ct = (r.get('Content-Type') or '').split(';')[0].strip().lower()
    if r.status != 409 or ct != 'application/problem+json':
        raise Skip('the 409 does not use a problem type (Content-Type %r)' % ct)
    try:
        doc = json.loads(r.body.decode('utf-8'))
    except Exception:
        raise Fail('409 problem+json body is not JSON', r)
    if doc.get('type') != PROBLEM_MISMATCH:
        raise Skip('the 409 uses another problem type: %r' % doc.get('type'))
    expect(doc.get('expected-offset') == 16 and doc.get('provided-offset') == 21,
           'mismatching-upload-offset problem: expected-offset must be 16 and provided-offset 21, '
           'got %r / %r' % (doc.get('expected-offset'), doc.get('provided-offset')), r)


def t_append_offset(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), False)
    expect(is_2xx(r) and sf_int_field(r, 'Upload-Offset') == 24, 'append of 8 bytes at 16: expected '
           '2xx with Upload-Offset: 24', r)
    r = append(ctx, v, url, 24, data(6), True)
    expect(is_2xx(r) and sf_int_field(r, 'Upload-Offset') == 30, 'completing append of 6 bytes at 24: '
           'expected 2xx with Upload-Offset: 30', r)


def t_append_incomplete_201(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), False)
    status_in(r, {201}, 'append with %s' % v.comp_text(False))
    if v.n == 3:
        expect(v.completeness(r) is False, 'incomplete append: response must carry Upload-Incomplete: ?1', r)


def t_append_complete_2xx(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), True)
    expect(is_2xx(r), 'completing append answered %d' % r.status, r)
    expect(v.completeness(r) is not False, 'the response to a completing append carries %s'
           % v.comp_text(False), r)


def t_append_complete_false_all(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), False)
    expect(is_2xx(r) and v.completeness(r) is False, 'append with Upload-Complete: ?0: the 2xx '
           'response must carry Upload-Complete: ?0', r)
    r = append(ctx, v, url, 99, data(8), False)
    expect(v.completeness(r) is False, 'append with Upload-Complete: ?0 rejected with %d: the '
           'response must still carry Upload-Complete: ?0' % r.status, r)


def t_append_complete_false(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), False)
    expect(is_2xx(r) and v.completeness(r) is False, 'append with Upload-Complete: ?0: expected 2xx '
           'with Upload-Complete: ?0', r)


def t_append_complete_true(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, data(8), True)
    expect(v.completeness(r) is True, 'completing append: the response must carry Upload-Complete: ?1', r)


def _exceed(ctx, v, chunked):
    url, _ = must_create(ctx, v, data(4), length=10)
    body = data(12, 5)
    if chunked:
        r = append(ctx, v, url, 4, None, False, chunks=[body[:6], body[6:]])
    else:
        r = append(ctx, v, url, 4, body, False)
    return url, r


def _check_exceed(ctx, v, chunked):
    url, r = _exceed(ctx, v, chunked)
    expect(not is_2xx(r), 'upload of length 10 at offset 4: an append of 12 bytes%s was accepted (%d)'
           % (' (chunked, no Content-Length)' if chunked else '', r.status), r)
    rh = head(ctx, v, url)
    off = sf_int_field(rh, 'Upload-Offset')
    expect(off is None or off <= 10, 'the offset %d exceeds the upload length 10' % (off or 0), rh)
    return url


def t_exceed_cl(ctx, v):
    _check_exceed(ctx, v, False)


def t_exceed_chunked(ctx, v):
    _check_exceed(ctx, v, True)


def t_exceed_invalidates(ctx, v):
    url, r = _exceed(ctx, v, True)
    if is_2xx(r):
        raise Skip('the overflowing append was accepted (see RUFH-073)')
    rh = head(ctx, v, url)
    rp = append(ctx, v, url, 10, b'', True)
    expect(not is_2xx(rh) and not is_2xx(rp), 'after an append overflowed the length, the resource '
           'must be invalid: HEAD answered %d, append %d' % (rh.status, rp.status), rh if is_2xx(rh) else rp)


def t_completed_rejects(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    ra = append(ctx, v, url, 16, data(4), True)
    expect(is_2xx(ra), 'setup: completing append answered %d' % ra.status, ra)
    r = append(ctx, v, url, 20, data(3), True)
    expect(not is_2xx(r), 'append of 3 bytes to a completed upload answered %d' % r.status, r)
    rh = head(ctx, v, url)
    if is_2xx(rh):
        expect(sf_int_field(rh, 'Upload-Offset') == 20 and v.completeness(rh) is True,
               'append to a completed upload modified it (HEAD after)', rh)


def t_empty_complete(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = append(ctx, v, url, 16, b'', True)
    expect(is_2xx(r), 'empty append with %s answered %d' % (v.comp_text(True), r.status), r)
    rh = head(ctx, v, url)
    if not is_2xx(rh):
        raise Skip('completed upload resource no longer available (HEAD %d)' % rh.status)
    expect(v.completeness(rh) is True and sf_int_field(rh, 'Upload-Offset') == 16,
           'after an empty completing append HEAD must say complete at offset 16', rh)


def t_interrupted_append_kept(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    interrupted_append(ctx, v, url, 16, 1000, 300)
    last = {}

    def ok():
        r = head(ctx, v, url)
        last['r'] = r
        return sf_int_field(r, 'Upload-Offset') == 316
    expect(poll(ok, 3.0), 'an append cut after 300 of 1000 bytes at offset 16: HEAD never showed 316',
           last.get('r'))


def t_interrupted_append_incomplete(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    interrupted_append(ctx, v, url, 16, 1000, 300, complete=True)
    time.sleep(0.3)
    r = head(ctx, v, url)
    expect(is_2xx(r) and v.completeness(r) is False, 'a completing append cut after 300 of 1000 '
           'bytes must leave the upload incomplete', r)


def _slow_append(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    hs = v.vh() + [('Upload-Offset', '16'), v.comp(False)]
    if v.n >= 6:
        hs.append(('Content-Type', 'application/partial-upload'))
    r = slow_request(ctx, v, 'PATCH', url, hs, [data(65536, i) for i in range(3)], 1.0)
    return url, r


def t_append_progress(ctx, v):
    url, r = _slow_append(ctx, v)
    prog = [i for i in interim_104(r) if i.has('Upload-Offset')]
    expect(prog, 'an append whose body took 2 s produced no 104 with Upload-Offset', r)


def t_append_104_no_location(ctx, v):
    _slow_append(ctx, v)
    f = [i for i in all_interims(ctx, 'PATCH') if i.status == 104]
    if not f:
        raise Skip('the server sent no 104 on appends')
    for i in f:
        if i.has('Location'):
            raise Fail('a 104 on an append carries Location', extra=['got:  ' + i.summary(False)])


# -- cancellation ---------------------------------------------------------------------------

def t_delete_204(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = delete(ctx, v, url)
    status_in(r, {204}, 'DELETE of an upload resource')


def t_delete_deactivates(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = delete(ctx, v, url)
    expect(is_2xx(r), 'DELETE answered %d' % r.status, r)
    rh = head(ctx, v, url)
    rp = append(ctx, v, url, 16, data(4), False)
    expect(not is_2xx(rh) and not is_2xx(rp), 'after DELETE the resource still works: HEAD %d, '
           'append %d' % (rh.status, rp.status), rh if is_2xx(rh) else rp)


def t_delete_then_404(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    status_in(delete(ctx, v, url), {204}, 'setup: DELETE')
    status_in(head(ctx, v, url), {404}, 'HEAD after DELETE')
    status_in(append(ctx, v, url, 16, data(4), False), {404}, 'append after DELETE')


def t_delete_400(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    r = ctx.req('DELETE', url, v.vh() + [('Upload-Offset', '16')])
    status_in(r, {400}, 'DELETE carrying Upload-Offset')
    r = ctx.req('DELETE', url, v.vh() + [v.comp(False)])
    status_in(r, {400}, 'DELETE carrying %s' % v.complete_name)
    off, _, rh = head_state(ctx, v, url, 'HEAD after the rejected DELETEs')


def t_delete_unknown_404(ctx, v):
    r = delete(ctx, v, ctx.unknown_url())
    status_in(r, {404}, 'DELETE of an unknown upload resource')


def t_delete_terminates(ctx, v):
    url, _ = must_create(ctx, v, data(16))
    c = ctx.conn(url)
    try:
        hs = v.vh() + [('Upload-Offset', '16'), v.comp(False), ('Content-Length', '100000')]
        if v.n >= 6:
            hs.append(('Content-Type', 'application/partial-upload'))
        c.send_head('PATCH', _target(url), hs)
        c.send_body(data(1000, 4))
        time.sleep(0.5)
        try:
            r = ctx.req('DELETE', url, v.vh(), timeout=PROMPT)
        except Fail as e:
            raise Fail('DELETE while an append is in flight got no answer within %g s (the earlier '
                       'request was not terminated): %s' % (PROMPT, e.msg))
        if is_2xx(r):
            ctx.mark_deleted(url)
        ended = c.wait_closed(2.0) or c.final_pending()
    finally:
        c.close()
    expect(ended, 'after DELETE (answered %d) the in-flight append was neither answered nor its '
           'connection closed within 2 s' % r.status, r)


# -- OPTIONS and limits ---------------------------------------------------------------------

def t_options_limit(ctx, v):
    r = options(ctx, v)
    expect(r.has('Upload-Limit'), 'OPTIONS of the creation URL without Upload-Limit', r)


def t_options_limit_nonempty(ctx, v):
    r = options(ctx, v)
    if not r.has('Upload-Limit'):
        raise Skip('no Upload-Limit in OPTIONS (RUFH-100/101)')
    lim = limits_of(r)
    expect(lim, 'OPTIONS Upload-Limit is empty (without limits the server must send min-size=0)', r)


def t_accept_patch(ctx, v):
    r = options(ctx, v)
    vals = [x.split(';')[0].strip().lower() for x in (r.get('Accept-Patch') or '').split(',')]
    expect('application/partial-upload' in vals, 'OPTIONS Accept-Patch (%r) does not list '
           'application/partial-upload' % r.get('Accept-Patch'), r)


def t_options_not_looser(ctx, v):
    o = limits_of(options(ctx, v))
    if not o:
        raise Skip('no Upload-Limit in OPTIONS')
    url, r = must_create(ctx, v, data(16))
    c = limits_of(r)
    if c is None:
        c = limits_of(head(ctx, v, url))
    if not c:
        raise Skip('no Upload-Limit on the created upload')
    for k in ('max-size', 'max-append-size'):
        if is_sf_int(c.get(k)):
            expect(is_sf_int(o.get(k)) and o[k] <= c[k], 'OPTIONS %s=%r is looser than the created '
                   'upload\'s %s=%d' % (k, o.get(k), k, c[k]), r)
    for k in ('min-size', 'min-append-size'):
        if is_sf_int(c.get(k)) and c[k] > 0:
            expect(is_sf_int(o.get(k)) and o[k] >= c[k], 'OPTIONS %s=%r is looser than the created '
                   'upload\'s %s=%d' % (k, o.get(k), k, c[k]), r)


def _exercise(ctx, v):
    url, _ = must_create(ctx, v, data(16), length=64 if v.n >= 6 else None)
    append(ctx, v, url, 16, data(8), False)
    append(ctx, v, url, 3, data(8), False)
    head(ctx, v, url)
    append(ctx, v, url, 24, data(40), True)
    head(ctx, v, url)
    options(ctx, v)


def t_limit_syntax(ctx, v):
    _exercise(ctx, v)
    seen = 0
    for r in ctx.vstate.responses + all_interims(ctx):
        if not r.has('Upload-Limit'):
            continue
        seen += 1
        lim = limits_of(r)
        for k in KNOWN_LIMITS + tuple(v.lifetime_keys()):
            if k in lim:
                expect(is_sf_int(lim[k]) and lim[k] >= 0, 'Upload-Limit %s=%r is not a non-negative '
                       'Integer' % (k, lim[k]), r)
    if not seen:
        raise Skip('no Upload-Limit seen in this run')


def t_max_age_on_head(ctx, v):
    lifetime = ctx.tus.expires_seen
    if not lifetime:
        for r in ctx.vstate.responses:
            try:
                lim = limits_of(r) or {}
            except Fail:
                continue
            if any(k in lim for k in ('max-age', 'expires')):
                lifetime = 'Upload-Limit %s' % r.get('Upload-Limit')
                break
    if not lifetime:
        raise Skip('no sign that uploads expire on this server')
    url, _ = must_create(ctx, v, data(16))
    r = head(ctx, v, url)
    lim = limits_of(r) or {}
    expect(is_sf_int(lim.get('max-age')), 'uploads expire here (%s), but HEAD Upload-Limit (%r) has '
           'no max-age' % (lifetime, r.get('Upload-Limit')), r)


def _limits_pair(ctx, v):
    url, r = must_create(ctx, v, data(16))
    t1 = time.time()
    a = limits_of(r)
    if a is None:
        raise Skip('the creation response has no Upload-Limit')
    time.sleep(1.1)
    ra = append(ctx, v, url, 16, data(8), False)
    rh = head(ctx, v, url)
    t2 = time.time()
    b = limits_of(rh)
    if b is None:
        raise Skip('HEAD has no Upload-Limit to compare with')
    return a, b, t1, t2, r, rh


def t_limits_unchanged(ctx, v):
    a, b, t1, t2, r, rh = _limits_pair(ctx, v)
    life = set(v.lifetime_keys()) | {'max-age', 'expires'}
    a2 = {k: x for k, x in a.items() if k not in life}
    b2 = {k: x for k, x in b.items() if k not in life}
    expect(a2 == b2, 'limits changed during the upload: creation %r, later HEAD %r' % (a2, b2), rh)


def t_limits_not_tightened(ctx, v):
    a, b, t1, t2, r, rh = _limits_pair(ctx, v)
    for k in ('max-size', 'max-append-size'):
        if is_sf_int(a.get(k)):
            expect(is_sf_int(b.get(k)) and b[k] >= a[k], '%s decreased from %d to %r' % (k, a[k], b.get(k)), rh)
    if is_sf_int(a.get('min-append-size')):
        expect(not is_sf_int(b.get('min-append-size')) or b['min-append-size'] <= a['min-append-size'],
               'min-append-size increased from %d to %r' % (a['min-append-size'], b.get('min-append-size')), rh)


def t_lifetime_not_reduced(ctx, v):
    a, b, t1, t2, r, rh = _limits_pair(ctx, v)
    for k in v.lifetime_keys():
        if is_sf_int(a.get(k)) and is_sf_int(b.get(k)):
            e1, e2 = t1 + a[k], t2 + b[k]
            expect(e2 >= e1 - 1.5, 'the end of the upload\'s lifetime moved earlier: %s=%d at creation, '
                   '%s=%d %.1f s later' % (k, a[k], k, b[k], t2 - t1), rh)
            return
    raise Skip('no lifetime (%s) in both Upload-Limit fields' % '/'.join(v.lifetime_keys()))


def t_413_limit(ctx, v):
    mx, src = server_max_size(ctx, v)
    if mx is None:
        raise Skip('no maximum size known (no Upload-Limit max-size, no Tus-Max-Size)')
    r, url = create(ctx, v, b'', False, length=mx + 1)
    if r.status != 413:
        raise Skip('creation with Upload-Length %d (above %s %d) answered %d, not 413' % (mx + 1, src, mx, r.status))
    expect(r.has('Upload-Limit'), '413 for exceeding the size limit has no Upload-Limit', r)


def t_field_syntax(ctx, v):
    _exercise(ctx, v)
    names = ['Upload-Offset', 'Upload-Length', v.complete_name]
    checked = 0
    for r in ctx.vstate.responses + all_interims(ctx):
        for name in names:
            for raw in r.get_all(name):
                checked += 1
                try:
                    val, _ = sf_item(raw)
                except SFError as e:
                    raise Fail('%s %r is not a structured-field item (%s)' % (name, raw, e), r)
                if name == v.complete_name:
                    expect(isinstance(val, bool), '%s %r is not a Boolean (?0/?1)' % (name, raw), r)
                else:
                    expect(is_sf_int(val) and val >= 0, '%s %r is not a non-negative Integer' % (name, raw), r)
    if not checked:
        raise Skip('no Upload-* fields seen in this run')


# -- the table ------------------------------------------------------------------------------

SPEC = 'draft-ietf-httpbis-resumable-upload'
ALL = (3, 4, 5, 6, 7, 8)


def R(rid, versions, ref, level, desc, fn):
    return Row(rid, SPEC, ref, level, desc, fn, versions=versions)


ROWS = [
    # draft version identification
    R('RUFH-002', ANY, '§Draft Version Identification: "MUST NOT send a 104 ... when the interop version ... is missing"',
      'MUST NOT', 'no 104 without Upload-Draft-Interop-Version', t_no_104_missing),
    R('RUFH-003', ANY, '§Draft Version Identification: "... missing or mismatching"',
      'MUST NOT', 'no 104 for an unknown interop version (99, 2)', t_no_104_mismatch),
    # creation
    R('RUFH-010', ALL, '-01 §Feature Detection "The server SHOULD send the 104"; -02/-03 "Servers SHOULD use the 104"; -04+ §Upload Creation "SHOULD announce the upload resource by sending an interim response with the 104"',
      'SHOULD', 'creation is answered with a 104', t_creation_104),
    R('RUFH-011', (3, 4, 5, 8), '§Upload Creation: 104 "the Location header field MUST be set to the upload URL" (-01..-03); "When sent, it MUST include Location header field" (-09+)',
      'MUST', 'the creation 104 carries Location', t_104_location),
    R('RUFH-030', (6, 7), '§Upload Creation/Server Behavior: "it SHOULD announce the upload resource by sending an interim response with the 104 ... status code and the Location header field"',
      'SHOULD', 'the creation 104 carries Location', t_104_location),
    R('RUFH-012', (8,), '§Upload Creation/Server Behavior: 104 "MUST include the Upload-Limit header field ... if existing"',
      'MUST', 'the creation 104 carries Upload-Limit when limits exist', t_104_limits),
    R('RUFH-013', ALL, '§Upload Creation: "the server MUST include the Location header field in the response" (-01..-03); "Upload-Complete ... false ... MUST include the Location response header field" (-04+)',
      'MUST', 'incomplete creation: 2xx with Location', t_creation_location),
    R('RUFH-014', (8,), '§Upload Creation/Server Behavior: "MUST include the Upload-Limit header field with the corresponding limits if existing"',
      'MUST', 'incomplete creation response carries Upload-Limit when limits exist', t_creation_limits),
    R('RUFH-015', (6, 7), '§Upload Creation/Server Behavior: "The response SHOULD include the Upload-Limit header field ... if existing"',
      'SHOULD', 'incomplete creation response carries Upload-Limit when limits exist', t_creation_limits),
    R('RUFH-016', (6, 7, 8), '§Upload Creation/Server Behavior: "Servers are RECOMMENDED to use the 201 (Created) status code"',
      'SHOULD', 'incomplete creation answers 201', t_creation_201),
    R('RUFH-017', (3, 4, 5), '§Upload Creation: "MUST acknowledge it by responding with the 201 (Created) status code" and Upload-Incomplete true / Upload-Complete false',
      'MUST', 'incomplete creation: 201 and the not-complete field', t_creation_incomplete_201),
    R('RUFH-018', (3, 4, 5), '§Upload Creation: "MUST acknowledge it by responding with a successful status code between 200 and 299 ... MUST NOT include" the not-complete value',
      'MUST', 'complete creation: 2xx, not marked incomplete', t_creation_complete_2xx),
    R('RUFH-019', (3, 4, 5), '§Upload Creation: "The server MUST send the Upload-Offset header in the response ... equal to the end offset"',
      'MUST', 'creation response Upload-Offset = bytes received', t_creation_offset),
    R('RUFH-020', ALL, '§Upload Creation: "all interim and final response messages for the same request MUST contain an identical Location value" (-09+; earlier: both MUST point to the upload resource)',
      'MUST', 'the 104 and the final response name the same upload resource', t_location_identical),
    R('RUFH-021', (4, 5, 6, 7), '§Upload Creation: "In subsequent informational responses, the Location header field MUST NOT be set" (-02/-03); progress 104s "MUST NOT include the Location header field" (-04..-08)',
      'MUST NOT', 'progress 104s of a creation carry no Location', t_creation_later_104_no_location),
    R('RUFH-022', (4, 5), '§Upload Creation: "the upload offset MUST NOT be smaller than in previous informational responses ... later offset retrievals MUST NOT receive an upload offset that is less"',
      'MUST', 'creation 104 offsets never decrease; HEAD not below them', t_creation_104_offsets),
    R('RUFH-023', (4, 5), '§Upload Append: "If the server does have a previous record, that value MUST match ... MUST reject the request with a 400"',
      'MUST', 'final size recorded from Upload-Complete: ?1 + Content-Length; mismatch -> 400', t_recorded_length_400),
    R('RUFH-024', (6, 7, 8), '§Upload Creation: "The server MUST record the length ... if the Upload-Length or Upload-Complete: ?1 header fields are included"',
      'MUST', 'length from Upload-Complete: ?1 + Content-Length is recorded (HEAD Upload-Length)', t_recorded_length_head),
    R('RUFH-025', (6, 7, 8), '§Upload Creation: "the server SHOULD append as much of the request content as possible to the upload resource"',
      'SHOULD', 'bytes of a cut creation are kept', t_interrupted_creation_kept),
    R('RUFH-026', (6, 7, 8), '§Upload Creation: "In addition, the upload resource MUST NOT be considered complete then"',
      'MUST NOT', 'a cut creation with Upload-Complete: ?1 is not complete', t_interrupted_creation_incomplete),
    R('RUFH-027', (8,), '§104 (Upload Resumption Supported): "the server MUST NOT omit the 100 (Continue) response because it has sent an interim response with the 104" (-10+)',
      'MUST NOT', 'Expect: 100-continue still gets 100 next to 104', t_100_continue),
    R('RUFH-028', (4, 5, 6, 7, 8), '§Security Considerations: "the upload resource URL SHOULD be generated in such a way that makes it hard to be guessed" (RECOMMENDED from -09)',
      'SHOULD', 'upload URLs are hard to guess (heuristic)', t_unguessable),
    R('RUFH-029', (8,), '§Upload Resource: "An upload resource SHOULD be unique. Reuse of a URI for a different upload resource SHOULD be avoided"',
      'SHOULD', 'upload URLs are not reused', t_unique),
    # offset retrieval
    R('RUFH-040', ALL, '§Offset Retrieval: "The response MUST include the Upload-Offset header field" / "MUST include the offset in the Upload-Offset header field"',
      'MUST', 'HEAD carries Upload-Offset = bytes received', t_head_offset),
    R('RUFH-041', ALL, '§Offset Retrieval: "The response MUST include the Upload-Incomplete / Upload-Complete header" (completeness state)',
      'MUST', 'HEAD of an incomplete upload says so', t_head_incomplete),
    R('RUFH-042', ALL, '§Offset Retrieval: "... set to true only if the upload is complete" / "MUST include the completeness state"',
      'MUST', 'HEAD of a completed upload says so', t_head_complete),
    R('RUFH-043', (3, 4), '§Offset Retrieval: "If the server considers the upload resource to be active, it MUST respond with a 204 (No Content)"',
      'MUST', 'HEAD of an active upload -> 204', t_head_204),
    R('RUFH-044', (5,), '§Offset Retrieval: 204 (No Content) or, since -03, 200 (OK)',
      'MUST', 'HEAD of an active upload -> 200/204', t_head_200_204),
    R('RUFH-045', ALL, '§Offset Retrieval: "SHOULD include the Cache-Control header field with the value no-store"',
      'SHOULD', 'HEAD has Cache-Control: no-store', t_head_no_store),
    R('RUFH-046', (6, 7, 8), '§Offset Retrieval/Server Behavior: "MUST include the length in the Upload-Length header field" (if known)',
      'MUST', 'HEAD carries Upload-Length when known', t_head_length),
    R('RUFH-047', (8,), '§Offset Retrieval/Server Behavior: "MUST indicate the limits in the Upload-Limit header field"',
      'MUST', 'HEAD carries Upload-Limit when limits exist', t_head_limits),
    R('RUFH-048', (3, 4, 5), '§Offset Retrieval: "The server MUST reject requests with either of these fields by responding with a 400 (Bad Request)"',
      'MUST', 'HEAD carrying Upload-Offset or the completeness field -> 400', t_head_400),
    R('RUFH-049', (3, 4, 5), '§Offset Retrieval: "If the server does not consider the upload resource to be active, it MUST respond with a 404"',
      'MUST', 'HEAD of an unknown upload resource -> 404', t_head_404),
    R('RUFH-050', (3, 4, 5, 6, 7), '§Redirection (-01..-03) / Offset Retrieval, Cancellation (-04..-08): "MUST NOT generate a response with the 301 ... and 302"',
      'MUST NOT', 'HEAD/DELETE never answer 301/302', _redirect_probe),
    R('RUFH-051', (8,), '§Offset Retrieval, §Upload Cancellation: "SHOULD NOT generate a response with the 301 ... and 302"',
      'SHOULD NOT', 'HEAD/DELETE never answer 301/302', _redirect_probe),
    R('RUFH-052', ALL, '§Offset Retrieval: "The offset MUST be accepted by a subsequent append" (-01..-03); §Concurrency: "the offset sent by the server MUST be accepted in a subsequent request to append"',
      'MUST', 'the offset HEAD reports right after a cut append is accepted', t_offset_accepted),
    R('RUFH-053', (6, 7, 8), '§Concurrency: "SHOULD prevent race conditions ... by terminating the previous request before processing the new request"',
      'SHOULD', 'a HEAD during an in-flight append ends that append', t_concurrent_terminated),
    R('RUFH-054', (8,), '§Upload Resource: "the server SHOULD keep the upload resource available for a reasonable amount of time after the upload is complete"',
      'SHOULD', 'a completed upload still answers HEAD', t_kept_after_complete),
    # append
    R('RUFH-060', (6, 7, 8), '§Offset: "the offset MUST NOT decrease"',
      'MUST NOT', 'reported offsets never decrease (appends, 409s, cut append, HEADs)', t_offset_monotonic),
    R('RUFH-061', ALL, '§Upload Append: "the server MUST respond with a 409 (Conflict)" / "MUST reject the request with a 409"',
      'MUST', 'append at a wrong (higher, lower) offset -> 409', t_409),
    R('RUFH-062', ALL, '§Upload Append: "The server MUST send the Upload-Offset header ... when the response is a failure (e.g. 409)" / "The response MUST include the correct offset"',
      'MUST', '409 carries the correct Upload-Offset', t_409_offset),
    R('RUFH-063', ALL, '§Upload Append: "MUST reject the request" (409: the upload is not modified)',
      'MUST', 'a rejected append leaves the upload unchanged', t_409_unchanged),
    R('RUFH-064', (6, 7, 8), '§Problem Types/Mismatching Offset: "A response using this problem type SHOULD populate both members"',
      'SHOULD', 'mismatching-upload-offset problem has expected-offset/provided-offset', t_409_problem),
    R('RUFH-065', (3, 4, 5), '§Upload Append: "The server MUST send the Upload-Offset header in the response ... equal to the end offset"',
      'MUST', 'append response Upload-Offset = begin + bytes', t_append_offset),
    R('RUFH-066', (3, 4, 5), '§Upload Append: "the server MUST acknowledge it by responding with a 201 (Created)"',
      'MUST', 'incomplete append -> 201', t_append_incomplete_201),
    R('RUFH-067', (3, 4, 5), '§Upload Append: "successful status code between 200 and 299 ... MUST NOT include" the not-complete value',
      'MUST', 'completing append: 2xx, not marked incomplete', t_append_complete_2xx),
    R('RUFH-068', (6, 7), '§Upload Append: "Any response, successful or not, MUST then include the Upload-Complete header field with a false value"',
      'MUST', 'append with ?0: 2xx and error responses carry Upload-Complete: ?0', t_append_complete_false_all),
    R('RUFH-069', (8,), '§Upload Append/Server Behavior: "acknowledges the appended data by sending a 2xx (Successful) response with the Upload-Complete header field set to false" (no RFC 2119 keyword)',
      'SHOULD', 'append with ?0 -> 2xx with Upload-Complete: ?0', t_append_complete_false),
    R('RUFH-070', (6, 7, 8), '§Upload Append: "the response MUST include the Upload-Complete header field with a true value"',
      'MUST', 'completing append response carries Upload-Complete: ?1', t_append_complete_true),
    R('RUFH-071', (6, 7, 8), '§Upload Append: "the server MUST prevent the offset from exceeding the upload length"',
      'MUST', 'append beyond Upload-Length (Content-Length) rejected', t_exceed_cl),
    R('RUFH-072', (6, 7, 8), '§Upload Append: "It is not sufficient to rely on the Content-Length header field for enforcement"',
      'MUST', 'append beyond Upload-Length (chunked) rejected', t_exceed_chunked),
    R('RUFH-073', (7, 8), '§Upload Append: "marking the upload resource invalid and rejecting any further interaction with it" (-08+)',
      'MUST', 'after a chunked overflow the resource rejects HEAD and appends', t_exceed_invalidates),
    R('RUFH-074', (6, 7, 8), '§Upload Append: "If the upload is already complete, the server MUST NOT modify the upload resource and MUST reject the request"',
      'MUST', 'append to a completed upload is rejected, upload unchanged', t_completed_rejects),
    R('RUFH-075', ALL, '§Completeness: "An upload is marked as completed if a request ... included the Upload-Complete header field with a true value and the request content was fully processed" (empty content allowed)',
      'MUST', 'an empty append with the complete flag completes the upload', t_empty_complete),
    R('RUFH-076', (6, 7, 8), '§Upload Append: "the server SHOULD append as much of the patch document as possible"',
      'SHOULD', 'bytes of a cut append are kept', t_interrupted_append_kept),
    R('RUFH-077', (6, 7, 8), '§Upload Append: "the upload resource MUST NOT be considered complete then"',
      'MUST NOT', 'a cut append with Upload-Complete: ?1 is not complete', t_interrupted_append_incomplete),
    R('RUFH-078', (8,), '§Upload Append/Server Behavior: "the server SHOULD send interim responses with a 104 ... and the Upload-Offset header field"',
      'SHOULD', 'a slow append gets 104 progress', t_append_progress),
    R('RUFH-079', (4, 5, 6, 7, 8), '§Upload Append: "These informational responses MUST NOT contain the Location header field"',
      'MUST NOT', '104s on appends carry no Location', t_append_104_no_location),
    # cancellation
    R('RUFH-090', (3, 4, 5, 6, 7), '§Upload Cancellation: "it MUST respond with a 204 (No Content)" (requirement removed in -09)',
      'MUST', 'DELETE -> 204', t_delete_204),
    R('RUFH-091', (6, 7, 8), '§Upload Cancellation: "the server SHOULD deactivate the upload resource"',
      'SHOULD', 'after DELETE, HEAD and append fail', t_delete_deactivates),
    R('RUFH-092', (3, 4, 5), '§Offset Retrieval, §Upload Append: "If the server does not consider the upload ... active, it MUST respond with 404"',
      'MUST', 'after DELETE, HEAD and append -> 404', t_delete_then_404),
    R('RUFH-093', (3, 4, 5), '§Upload Cancellation: "The server MUST reject the request with a Upload-Offset or Upload-Complete header field with a 400"',
      'MUST', 'DELETE carrying Upload-Offset / completeness field -> 400', t_delete_400),
    R('RUFH-094', (3, 4, 5), '§Upload Cancellation: "If the server does not consider the upload resource to be active, it MUST respond with a 404"',
      'MUST', 'DELETE of an unknown upload resource -> 404', t_delete_unknown_404),
    R('RUFH-095', (8,), '§Upload Cancellation: "The server SHOULD terminate any in-flight requests to the upload resource before sending the response"',
      'SHOULD', 'DELETE ends an in-flight append', t_delete_terminates),
    # OPTIONS and limits
    R('RUFH-100', (6, 7), '§Limits: "A server that supports the creation of a resumable upload resource ... under a target URI MUST include the Upload-Limit header field ... in a response to an OPTIONS request sent to this target URI"',
      'MUST', 'OPTIONS of the creation URL carries Upload-Limit', t_options_limit),
    R('RUFH-101', (8,), '§Limits: "The Upload-Limit header field SHOULD be included in the response to an OPTIONS request if limits apply" (-10/-11; MUST in -09)',
      'SHOULD', 'OPTIONS of the creation URL carries Upload-Limit', t_options_limit),
    R('RUFH-102', (6, 7), '§Limits: "If the server does not apply any limits, it MUST use min-size=0 instead of an empty header value"',
      'MUST', 'OPTIONS Upload-Limit is never empty', t_options_limit_nonempty),
    R('RUFH-103', (8,), '§Limits: "the server MUST include the Accept-Patch header field ... MUST include the full application/partial-upload media type" (-10/-11; reverted in the editor\'s copy, so rated SHOULD)',
      'SHOULD', 'OPTIONS Accept-Patch lists application/partial-upload', t_accept_patch),
    R('RUFH-104', (6, 7, 8), '§Limits: "the limits announced in an OPTIONS response SHOULD NOT be less restrictive than the limits applied to an upload"',
      'SHOULD NOT', 'OPTIONS limits are not looser than the created upload\'s', t_options_not_looser),
    R('RUFH-105', (6, 7, 8), '§Limits: Upload-Limit "is a Dictionary Structured Header Field"; "The value is an Integer" for each defined key',
      'MUST', 'Upload-Limit is an SF dictionary with Integer limits', t_limit_syntax),
    R('RUFH-106', (8,), '§Offset Retrieval: "MUST indicate the limits in the Upload-Limit header field" + §Limits max-age',
      'MUST', 'HEAD Upload-Limit has max-age when uploads expire', t_max_age_on_head),
    R('RUFH-107', (6, 7), '§Limits: "Except for the max-age limit, the existence of a limit or its value MUST NOT change throughout the lifetime of the upload resource"',
      'MUST NOT', 'limits other than the lifetime do not change', t_limits_unchanged),
    R('RUFH-108', (8,), '§Limits: "max-size, max-append-size, and max-age ... SHOULD NOT decrease ... min-append-size SHOULD NOT increase"',
      'SHOULD NOT', 'limits are not tightened during the upload', t_limits_not_tightened),
    R('RUFH-109', (6, 7, 8), '§Limits: max-age "The lifetime MAY be extended but SHOULD NOT be reduced" / "SHOULD NOT decrease"',
      'SHOULD NOT', 'the end of the upload\'s lifetime does not move earlier', t_lifetime_not_reduced),
    R('RUFH-110', (8,), '§Limits: "A server responding with a 413 ... as a result of its upload limits MUST include the Upload-Limit header"',
      'MUST', '413 for a limit carries Upload-Limit', t_413_limit),
    R('RUFH-111', ALL, '§Header Fields / §State: Upload-Offset and Upload-Length are (non-negative) Integers, Upload-Complete / Upload-Incomplete a Boolean (sf-integer / sf-boolean)',
      'MUST', 'Upload-* fields in responses are well-formed structured fields', t_field_syntax),
    R('RUFH-112', ALL, '§Draft Version Identification: "MUST also send a header field Upload-Draft-Interop-Version with the interop version as its value to the 104"',
      'MUST', 'every 104 echoes Upload-Draft-Interop-Version', t_104_version_echo),
]


def probe(ctx, n):
    """Does the server answer interop version n?  Returns (True, '') or (False, reason)."""
    v = V(n)
    try:
        r, url = create(ctx, v, b'', False)
    except Fail as e:
        return False, e.msg
    signs = []
    if interim_104(r):
        signs.append('104')
    if url:
        signs.append('Location')
    for name in ('Upload-Complete', 'Upload-Incomplete', 'Upload-Offset', 'Upload-Limit'):
        if r.has(name):
            signs.append(name)
    if url:
        try:
            delete(ctx, v, url)
        except Fail:
            pass
    if is_2xx(r) and url:
        return True, ''
    return False, ('empty creation with %s answered %d %s (signs of draft support: %s)'
                   % (v.comp_text(False), r.status, r.reason, ', '.join(signs) or 'none'))
