/* fuzz_sfv: the RFC 9651 structured-field parsers (src/sfv.c) as the server
 * uses them: Items for Upload-Offset, Upload-Length and the interop version
 * (sfv_integer), Upload-Complete/Upload-Incomplete (sfv_boolean); Dictionaries
 * for Upload-Limit, Want-Repr-Digest and the digest fields, whose reading
 * (parse_digest() in src/ietf.c, included for the static function) is
 * checked too.
 *
 * The first byte picks the mode (item, dictionary, digest field); the rest
 * is the field value. Invariants:
 * - Items: serialising what was parsed (RFC 9651 §4.1) and parsing that
 *   gives the same item; leading and trailing spaces change nothing;
 *   sfv_integer and sfv_boolean agree with sfv_parse_item; integers stay
 *   within 15 digits.
 * - Dictionaries: a rejected field reports no member (the field fails as a
 *   unit); an accepted one, serialised member by member and parsed again,
 *   gives the same members in the same order.
 * - Digest fields: parse_digest() accepts a field exactly when it is a valid
 *   dictionary whose sha-256 and sha-512 members are byte sequences of 32 and
 *   64 bytes, and keeps the sha-512 digest if there is one, else sha-256
 *   (the last of a repeated key, as RFC 9651 §4.2.2 has it). */
#include "ietf.c"

#include <math.h>

#include "fuzz.h"

/* ---------- serialising what the parser reports (RFC 9651 §4.1) ---------- */

static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t cap, size_t at, const char *fmt, ...) {
  va_list ap;
  if (at >= cap) return at;
  va_start(ap, fmt);
  int n = vsnprintf(out + at, cap - at, fmt, ap);
  va_end(ap);
  return n < 0 ? at : at + (size_t)n;
}

static size_t ser_item(const struct sfv_item *it, char *out, size_t cap, size_t at) {
  switch (it->type) {
  case SFV_INTEGER: return put(out, cap, at, "%lld", (long long)it->integer);
  case SFV_DECIMAL: {
    char d[64];
    snprintf(d, sizeof(d), "%.3f", it->decimal);
    size_t l = strlen(d);
    while (l > 0 && d[l - 1] == '0' && d[l - 2] != '.') l--; /* keep one fractional digit */
    return put(out, cap, at, "%.*s", (int)l, d);
  }
  case SFV_STRING: return put(out, cap, at, "\"%.*s\"", (int)it->len, it->s);
  case SFV_TOKEN: return put(out, cap, at, "%.*s", (int)it->len, it->s);
  case SFV_BYTES: return put(out, cap, at, ":%.*s:", (int)it->len, it->s);
  case SFV_BOOLEAN: return put(out, cap, at, "?%d", (int)it->integer);
  case SFV_DATE: return put(out, cap, at, "@%lld", (long long)it->integer);
  case SFV_DISPLAY: return put(out, cap, at, "%%\"%.*s\"", (int)it->len, it->s);
  case SFV_INNER_LIST: return put(out, cap, at, "()"); /* members are not reported */
  }
  return at;
}

static void check_same_item(const struct sfv_item *a, const struct sfv_item *b, const char *what) {
  FUZZ_CHECK(a->type == b->type, "%s: type %d became %d", what, a->type, b->type);
  switch (a->type) {
  case SFV_INTEGER:
  case SFV_BOOLEAN:
  case SFV_DATE: FUZZ_CHECK(a->integer == b->integer, "%s: %lld became %lld", what, (long long)a->integer,
                            (long long)b->integer); break;
  case SFV_DECIMAL: FUZZ_CHECK(a->decimal == b->decimal, "%s: %.17g became %.17g", what, a->decimal,
                               b->decimal); break;
  case SFV_STRING:
  case SFV_TOKEN:
  case SFV_BYTES:
  case SFV_DISPLAY:
    FUZZ_CHECK(a->len == b->len && memcmp(a->s, b->s, a->len) == 0, "%s: text '%.*s' became '%.*s'", what,
               (int)a->len, a->s, (int)b->len, b->s);
    break;
  case SFV_INNER_LIST: break;
  }
}

static void check_item_value(const struct sfv_item *it) {
  if (it->type == SFV_INTEGER || it->type == SFV_DATE)
    FUZZ_CHECK(it->integer >= -999999999999999LL && it->integer <= 999999999999999LL, "integer %lld",
               (long long)it->integer);
  if (it->type == SFV_BOOLEAN) FUZZ_CHECK(it->integer == 0 || it->integer == 1, "boolean");
  if (it->type == SFV_DECIMAL)
    FUZZ_CHECK(isfinite(it->decimal) && fabs(it->decimal) < 1e12, "decimal %.17g", it->decimal);
}

/* ---------- items ---------- */

static void item_mode(const char *v, size_t n) {
  static char buf[8192], padded[8192];
  struct sfv_item it, again;
  int rc = sfv_parse_item(v, n, &it);
  int64_t i64;
  int b;
  int irc = sfv_integer(v, n, &i64), brc = sfv_boolean(v, n, &b);
  FUZZ_CHECK((irc == 0) == (rc == 0 && it.type == SFV_INTEGER), "sfv_integer disagrees");
  FUZZ_CHECK((brc == 0) == (rc == 0 && it.type == SFV_BOOLEAN), "sfv_boolean disagrees");
  if (irc == 0) FUZZ_CHECK(i64 == it.integer, "sfv_integer value");
  if (brc == 0) FUZZ_CHECK(b == it.integer, "sfv_boolean value");
  if (n + 4 <= sizeof(padded)) {
    padded[0] = padded[1] = ' ';
    memcpy(padded + 2, v, n);
    padded[n + 2] = padded[n + 3] = ' ';
    struct sfv_item p;
    int prc = sfv_parse_item(padded, n + 4, &p);
    FUZZ_CHECK((prc == 0) == (rc == 0), "surrounding spaces change the verdict (%d, %d)", prc, rc);
    if (rc == 0) check_same_item(&it, &p, "with spaces");
  }
  if (rc < 0) return;
  check_item_value(&it);
  size_t l = ser_item(&it, buf, sizeof(buf), 0);
  if (l >= sizeof(buf)) return;
  FUZZ_CHECK(sfv_parse_item(buf, l, &again) == 0, "serialised item '%.*s' does not parse", (int)l, buf);
  check_same_item(&it, &again, "item round trip");
}

/* ---------- dictionaries ---------- */

#define MAX_MEMBERS 512

struct member {
  const char *k;
  size_t kl;
  struct sfv_item v;
};

struct members {
  struct member m[MAX_MEMBERS];
  size_t n;
  int calls;
};

static int collect(void *arg, const char *k, size_t kl, const struct sfv_item *v) {
  struct members *ms = arg;
  ms->calls++;
  FUZZ_CHECK(kl > 0, "empty key");
  FUZZ_CHECK((k[0] >= 'a' && k[0] <= 'z') || k[0] == '*', "key starts with '%c'", k[0]);
  for (size_t i = 0; i < kl; i++)
    FUZZ_CHECK((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || strchr("_-.*", k[i]),
               "key character %02x", (unsigned char)k[i]);
  if (ms->n < MAX_MEMBERS) ms->m[ms->n++] = (struct member){k, kl, *v};
  return 0;
}

static void dict_mode(const char *v, size_t n) {
  static struct members a, b;
  static char buf[65536];
  a.n = 0;
  a.calls = 0;
  int rc = sfv_parse_dict(v, n, collect, &a);
  if (rc < 0) {
    FUZZ_CHECK(a.calls == 0, "a rejected dictionary reported %d member(s)", a.calls);
    return;
  }
  FUZZ_CHECK(rc == 0, "sfv_parse_dict returned %d", rc);
  if (a.n == MAX_MEMBERS) return;
  size_t l = 0;
  for (size_t i = 0; i < a.n; i++) {
    check_item_value(&a.m[i].v);
    l = put(buf, sizeof(buf), l, "%s%.*s=", i ? ", " : "", (int)a.m[i].kl, a.m[i].k);
    l = ser_item(&a.m[i].v, buf, sizeof(buf), l);
  }
  if (l >= sizeof(buf)) return;
  b.n = 0;
  b.calls = 0;
  FUZZ_CHECK(sfv_parse_dict(buf, l, collect, &b) == 0, "serialised dictionary '%.*s' does not parse", (int)l,
             buf);
  FUZZ_CHECK(a.n == b.n, "%zu members became %zu", a.n, b.n);
  for (size_t i = 0; i < a.n; i++) {
    FUZZ_CHECK(a.m[i].kl == b.m[i].kl && memcmp(a.m[i].k, b.m[i].k, a.m[i].kl) == 0, "member %zu key", i);
    check_same_item(&a.m[i].v, &b.m[i].v, "dictionary round trip");
  }
}

/* ---------- digest fields (Content-Digest, Repr-Digest) ---------- */

static void digest_mode(const char *v, size_t n) {
  static struct members a;
  struct body_check ck;
  memset(&ck, 0xaa, sizeof(ck));
  int got = parse_digest(v, n, &ck);

  a.n = 0;
  a.calls = 0;
  int ref = sfv_parse_dict(v, n, collect, &a) == 0 && a.n < MAX_MEMBERS ? 0 : -1;
  int algo = CHECKSUM_NONE;
  unsigned char want[CHECKSUM_MAX_SIZE];
  size_t wl = 0;
  for (size_t i = 0; ref == 0 && i < a.n; i++) {
    const struct member *m = &a.m[i];
    int al = m->kl == 7 && memcmp(m->k, "sha-256", 7) == 0   ? CHECKSUM_SHA256
             : m->kl == 7 && memcmp(m->k, "sha-512", 7) == 0 ? CHECKSUM_SHA512
                                                             : CHECKSUM_NONE;
    if (al == CHECKSUM_NONE) continue;
    unsigned char d[CHECKSUM_MAX_SIZE];
    ssize_t dl = m->v.type == SFV_BYTES ? base64_decode(m->v.s, m->v.len, d, sizeof(d)) : -1;
    if (dl != (ssize_t)checksum_size(al)) {
      ref = -1;
      break;
    }
    if (algo == CHECKSUM_SHA512 && al == CHECKSUM_SHA256) continue;
    algo = al;
    memcpy(want, d, (size_t)dl);
    wl = (size_t)dl;
  }
  if (a.n == MAX_MEMBERS) return;
  FUZZ_CHECK((got == 0) == (ref == 0), "parse_digest('%.*s') = %d, reference %d", (int)n, v, got, ref);
  if (got < 0) return;
  FUZZ_CHECK(ck.algo == algo, "digest algorithm %d, reference %d", ck.algo, algo);
  if (algo != CHECKSUM_NONE) FUZZ_CHECK(ck.dlen == wl && memcmp(ck.digest, want, wl) == 0, "digest bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 8192) return 0;
  const char *v = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0: item_mode(v, n); break;
  case 1: dict_mode(v, n); break;
  default: digest_mode(v, n); break;
  }
  return 0;
}
