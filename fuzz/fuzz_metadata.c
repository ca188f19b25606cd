/* fuzz_metadata: tus Upload-Metadata (src/metadata.c: metadata_valid,
 * metadata_get, metadata_append) and the strict base64 decoder under it
 * (base64_decode in src/util.c).
 *
 * The first byte picks the mode:
 * - even: the rest is an Upload-Metadata header value. Checked against a
 *   reference reading of the grammar (comma-separated pairs, spaces around a
 *   pair ignored, key up to the first space, value strict base64 or absent,
 *   keys unique): metadata_valid() agrees with it, and for a valid value
 *   metadata_get() returns every pair's decoded value, or -ENOSPC when the
 *   buffer is one byte short. Every value also goes through base64_decode()
 *   and a reference decoder, which must agree byte for byte.
 * - odd: the rest is a list of key/value pairs separated by NUL bytes; valid
 *   keys are written with metadata_append() into a buffer of a size the input
 *   chooses (it must fail with -ENOSPC rather than overflow), and what was
 *   written must be valid exactly when the keys are unique and give every
 *   value back through metadata_get(). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "metadata.h"
#include "util.h"

static void check_b64(const char *v, size_t n) {
  static unsigned char a[16384], b[16384];
  if (n > sizeof(a)) return;
  ssize_t want = fuzz_ref_b64(v, n, a, sizeof(a));
  ssize_t got = base64_decode(v, n, b, sizeof(b));
  FUZZ_CHECK((want < 0) == (got < 0), "base64_decode('%.*s') = %zd, reference %zd", (int)n, v, got, want);
  if (want >= 0) {
    FUZZ_CHECK(got == want && memcmp(a, b, (size_t)want) == 0, "base64 bytes differ");
    FUZZ_CHECK(base64_decode(v, n, NULL, 0) == want, "length-only decode differs");
    if (want > 0) FUZZ_CHECK(base64_decode(v, n, b, (size_t)want - 1) < 0, "decode into a short buffer");
  }
}

struct pair {
  const char *k, *v;
  size_t kl, vl;
};

/* metadata.c accepts at most this many pairs (its duplicate check keeps them
 * in an array); more is refused as malformed. */
#define MAX_PAIRS 128

/* The reference reading of a header value: -1 when malformed. */
static int ref_pairs(const char *s, size_t n, struct pair *p, size_t *np) {
  size_t pos = 0;
  *np = 0;
  if (n == 0) return 0;
  for (;;) {
    const char *comma = memchr(s + pos, ',', n - pos);
    size_t end = comma ? (size_t)(comma - s) : n, a = pos, b = end;
    while (a < b && s[a] == ' ') a++;
    while (b > a && s[b - 1] == ' ') b--;
    const char *sp = memchr(s + a, ' ', b - a);
    size_t kl = sp ? (size_t)(sp - (s + a)) : b - a;
    if (kl == 0 || *np == MAX_PAIRS) return -1;
    for (size_t i = 0; i < kl; i++)
      if ((unsigned char)s[a + i] <= 0x20 || s[a + i] == 0x7f) return -1;
    struct pair *q = &p[(*np)++];
    q->k = s + a;
    q->kl = kl;
    q->v = sp ? sp + 1 : s + b;
    q->vl = sp ? (size_t)(s + b - (sp + 1)) : 0;
    for (size_t j = 0; j + 1 < *np; j++)
      if (p[j].kl == kl && memcmp(p[j].k, q->k, kl) == 0) return -1;
    if (!comma) return 0;
    pos = end + 1;
  }
}

static int ref_valid(const char *s, size_t n, struct pair *p, size_t *np) {
  static unsigned char tmp[16384];
  if (ref_pairs(s, n, p, np) < 0) return -1;
  for (size_t i = 0; i < *np; i++)
    if (p[i].vl && (p[i].vl > sizeof(tmp) || fuzz_ref_b64(p[i].v, p[i].vl, tmp, sizeof(tmp)) < 0)) return -1;
  return 0;
}

/* metadata_get(meta, key) must decode to want (wl bytes). */
static void check_get(const char *meta, const char *k, size_t kl, const unsigned char *want, size_t wl) {
  static char key[8192], out[16384];
  if (kl >= sizeof(key) || memchr(k, 0, kl)) return;
  memcpy(key, k, kl);
  key[kl] = 0;
  ssize_t got = metadata_get(meta, key, out, sizeof(out));
  FUZZ_CHECK(got == (ssize_t)wl, "metadata_get(%s) = %zd, want %zu", key, got, wl);
  FUZZ_CHECK(memcmp(out, want, wl) == 0, "metadata_get(%s): other bytes", key);
  if (wl > 0) FUZZ_CHECK(metadata_get(meta, key, out, wl - 1) == -ENOSPC, "no -ENOSPC one byte short");
}

static void header_mode(const char *s, size_t n) {
  static struct pair p[MAX_PAIRS];
  static char meta[16384];
  static unsigned char val[16384];
  size_t np;
  int want = ref_valid(s, n, p, &np);
  int got = metadata_valid(s, n);
  FUZZ_CHECK((want == 0) == (got == 0), "metadata_valid('%.*s') = %d, reference %d", (int)n, s, got, want);
  ref_pairs(s, n, p, &np);
  for (size_t i = 0; i < np; i++) check_b64(p[i].v, p[i].vl);
  /* Stored metadata is a C string without NUL; only a valid one is ever stored. */
  if (want < 0 || n >= sizeof(meta) || memchr(s, 0, n)) return;
  memcpy(meta, s, n);
  meta[n] = 0;
  for (size_t i = 0; i < np; i++) {
    ssize_t vl = p[i].vl ? fuzz_ref_b64(p[i].v, p[i].vl, val, sizeof(val)) : 0;
    check_get(meta, p[i].k, p[i].kl, val, (size_t)vl);
  }
  FUZZ_CHECK(metadata_get(meta, "\x01-absent", (char *)val, sizeof(val)) == -ENOENT, "absent key found");
}

static int key_ok(const char *k, size_t kl) {
  if (kl == 0 || kl > 200) return 0;
  for (size_t i = 0; i < kl; i++)
    if ((unsigned char)k[i] <= 0x20 || k[i] == 0x7f || k[i] == ',') return 0;
  return 1;
}

static void append_mode(const char *s, size_t n) {
  static struct pair p[MAX_PAIRS];
  static char buf[32768], key[256];
  if (n < 2) return;
  size_t cap = 1 + (((unsigned char)s[0] << 8 | (unsigned char)s[1]) % sizeof(buf)), len = 0, np = 0;
  int dup = 0, full = 0;
  s += 2, n -= 2;
  for (size_t pos = 0; pos < n && np < MAX_PAIRS;) {
    const char *z = memchr(s + pos, 0, n - pos);
    size_t kl = z ? (size_t)(z - (s + pos)) : n - pos;
    const char *k = s + pos;
    pos += kl + 1;
    if (pos > n) break;
    z = memchr(s + pos, 0, n - pos);
    size_t vl = z ? (size_t)(z - (s + pos)) : n - pos;
    const char *v = s + pos;
    pos += vl + 1;
    if (!key_ok(k, kl)) continue;
    memcpy(key, k, kl);
    key[kl] = 0;
    size_t before = len;
    int rc = metadata_append(buf, &len, cap, key, v, vl);
    if (rc < 0) {
      FUZZ_CHECK(rc == -ENOSPC && len == before, "metadata_append: %d, length moved", rc);
      full = 1;
      break;
    }
    FUZZ_CHECK(len < cap && buf[len] == 0, "metadata_append left no NUL inside its buffer");
    for (size_t j = 0; j < np; j++)
      if (p[j].kl == kl && memcmp(p[j].k, k, kl) == 0) dup = 1;
    p[np++] = (struct pair){k, v, kl, vl};
  }
  (void)full;
  if (np == 0) return;
  FUZZ_CHECK((metadata_valid(buf, len) == 0) == !dup, "metadata_valid of what metadata_append wrote: %s", buf);
  if (dup) return;
  for (size_t i = 0; i < np; i++) check_get(buf, p[i].k, p[i].kl, (const unsigned char *)p[i].v, p[i].vl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 16000) return 0;
  if (data[0] & 1) append_mode((const char *)data + 1, size - 1);
  else header_mode((const char *)data + 1, size - 1);
  return 0;
}
