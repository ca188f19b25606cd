/* Upload metadata (see metadata.h). */
#include "metadata.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "util.h"

/* Calls fn for each pair; stops with its non-zero result. -EINVAL when
 * malformed. Pairs may be separated by ", " as well as ",". */
static int each_pair(const char *v, size_t n,
                     int (*fn)(void *arg, const char *k, size_t kl, const char *val, size_t vl),
                     void *arg) {
  size_t pos = 0;
  if (n == 0) return -EINVAL;
  for (;;) {
    const char *comma = memchr(v + pos, ',', n - pos);
    size_t end = comma ? (size_t)(comma - v) : n;
    size_t a = pos, b = end;
    while (a < b && v[a] == ' ') a++;
    while (b > a && v[b - 1] == ' ') b--;
    const char *sp = memchr(v + a, ' ', b - a);
    size_t klen = sp ? (size_t)(sp - (v + a)) : b - a;
    if (klen == 0) return -EINVAL;
    for (size_t i = 0; i < klen; i++) {
      unsigned char ch = (unsigned char)v[a + i];
      if (ch <= 0x20 || ch == 0x7f || ch == ',') return -EINVAL;
    }
    const char *val = sp ? sp + 1 : v + b;
    size_t vl = sp ? (size_t)(v + b - val) : 0;
    int rc = fn(arg, v + a, klen, val, vl);
    if (rc) return rc;
    if (!comma) return 0;
    pos = end + 1;
  }
}

struct seen {
  struct {
    const char *k;
    size_t kl;
  } keys[128];
  size_t n;
};

static int check_pair(void *arg, const char *k, size_t kl, const char *val, size_t vl) {
  struct seen *s = arg;
  for (size_t i = 0; i < s->n; i++)
    if (s->keys[i].kl == kl && memcmp(s->keys[i].k, k, kl) == 0) return -EINVAL;
  if (s->n == sizeof(s->keys) / sizeof(s->keys[0])) return -EINVAL;
  s->keys[s->n].k = k;
  s->keys[s->n++].kl = kl;
  if (vl && base64_decode(val, vl, NULL, 0) < 0) return -EINVAL;
  return 0;
}

int metadata_valid(const char *v, size_t n) {
  struct seen s;
  if (n == 0) return 0; /* an empty header: no pairs */
  s.n = 0;
  return each_pair(v, n, check_pair, &s) < 0 ? -EINVAL : 0;
}

struct lookup {
  const char *key;
  char *out;
  size_t cap;
  ssize_t result;
};

static int find_pair(void *arg, const char *k, size_t kl, const char *val, size_t vl) {
  struct lookup *l = arg;
  if (kl != strlen(l->key) || memcmp(k, l->key, kl) != 0) return 0;
  ssize_t n = vl ? base64_decode(val, vl, (unsigned char *)l->out, l->cap) : 0;
  l->result = n < 0 ? -ENOSPC : n;
  return 1;
}

ssize_t metadata_get(const char *meta, const char *key, char *out, size_t cap) {
  struct lookup l = {key, out, cap, -ENOENT};
  if (!meta || !*meta) return -ENOENT;
  if (each_pair(meta, strlen(meta), find_pair, &l) < 0) return -ENOENT;
  return l.result;
}

int metadata_append(char *buf, size_t *len, size_t cap, const char *key, const void *value,
                    size_t vlen) {
  size_t klen = strlen(key), need = (*len ? 1 : 0) + klen + 1 + 4 * ((vlen + 2) / 3) + 1;
  if (*len + need > cap) return -ENOSPC;
  char *p = buf + *len;
  if (*len) *p++ = ',';
  memcpy(p, key, klen);
  p += klen;
  *p++ = ' ';
  int n = EVP_EncodeBlock((unsigned char *)p, value, (int)vlen);
  p += n;
  *p = 0;
  *len = (size_t)(p - buf);
  return 0;
}
