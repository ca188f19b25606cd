/* RFC 9651 parsing (see sfv.h). Follows the algorithms of RFC 9651 §4.2. */
#include "sfv.h"

#include <errno.h>
#include <string.h>

#include "util.h"

struct cur {
  const char *p, *end;
};

static int peek(const struct cur *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }
static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static int is_lcalpha(int ch) { return ch >= 'a' && ch <= 'z'; }
static int is_alpha(int ch) { return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z'); }
static int is_tchar(int ch) {
  return is_alpha(ch) || is_digit(ch) || (ch >= 0 && strchr("!#$%&'*+-.^_`|~", ch) && ch != 0);
}
static void skip_sp(struct cur *c) {
  while (peek(c) == ' ') c->p++;
}
static void skip_ows(struct cur *c) {
  while (peek(c) == ' ' || peek(c) == '\t') c->p++;
}

/* §4.2.4 */
static int parse_number(struct cur *c, struct sfv_item *it) {
  int neg = 0, digits = 0, frac = -1;
  int64_t ip = 0;
  double dv = 0, scale = 1;
  if (peek(c) == '-') neg = 1, c->p++;
  if (!is_digit(peek(c))) return -EINVAL;
  for (;;) {
    int ch = peek(c);
    if (is_digit(ch)) {
      if (frac < 0) {
        if (++digits > 15) return -EINVAL;
        ip = ip * 10 + (ch - '0');
      } else {
        if (++frac > 3) return -EINVAL;
        scale /= 10;
        dv += (ch - '0') * scale;
      }
      c->p++;
    } else if (ch == '.' && frac < 0) {
      if (digits > 12) return -EINVAL;
      frac = 0;
      c->p++;
    } else {
      break;
    }
  }
  if (frac == 0) return -EINVAL; /* "1." */
  if (frac < 0) {
    it->type = SFV_INTEGER;
    it->integer = neg ? -ip : ip;
  } else {
    it->type = SFV_DECIMAL;
    it->decimal = ((double)ip + dv) * (neg ? -1 : 1);
  }
  return 0;
}

/* §4.2.5 */
static int parse_string(struct cur *c, struct sfv_item *it) {
  c->p++; /* '"' */
  it->type = SFV_STRING;
  it->s = c->p;
  for (;;) {
    int ch = peek(c);
    if (ch < 0) return -EINVAL;
    c->p++;
    if (ch == '\\') {
      ch = peek(c);
      if (ch != '"' && ch != '\\') return -EINVAL;
      c->p++;
    } else if (ch == '"') {
      it->len = (size_t)(c->p - 1 - it->s);
      return 0;
    } else if (ch < 0x20 || ch > 0x7e) {
      return -EINVAL;
    }
  }
}

/* §4.2.6 */
static int parse_token(struct cur *c, struct sfv_item *it) {
  it->type = SFV_TOKEN;
  it->s = c->p++;
  while (is_tchar(peek(c)) || peek(c) == ':' || peek(c) == '/') c->p++;
  it->len = (size_t)(c->p - it->s);
  return 0;
}

/* §4.2.7 */
static int parse_bytes(struct cur *c, struct sfv_item *it) {
  c->p++; /* ':' */
  const char *start = c->p;
  while (c->p < c->end && *c->p != ':') {
    int ch = peek(c);
    if (!(is_alpha(ch) || is_digit(ch) || ch == '+' || ch == '/' || ch == '=')) return -EINVAL;
    c->p++;
  }
  if (c->p == c->end) return -EINVAL;
  it->type = SFV_BYTES;
  it->s = start;
  it->len = (size_t)(c->p - start);
  c->p++;
  if (base64_decode(it->s, it->len, NULL, 0) < 0) return -EINVAL;
  return 0;
}

/* §4.2.10: %"..." with lowercase %xx escapes of UTF-8 */
static int parse_display(struct cur *c, struct sfv_item *it) {
  c->p += 2;
  it->type = SFV_DISPLAY;
  it->s = c->p;
  for (;;) {
    int ch = peek(c);
    if (ch < 0x20 || ch > 0x7e) return -EINVAL;
    c->p++;
    if (ch == '"') {
      it->len = (size_t)(c->p - 1 - it->s);
      return 0;
    }
    if (ch == '%') {
      for (int k = 0; k < 2; k++) {
        int h = peek(c);
        if (!(is_digit(h) || (h >= 'a' && h <= 'f'))) return -EINVAL;
        c->p++;
      }
    }
  }
}

/* §4.2.3.1 */
static int parse_bare(struct cur *c, struct sfv_item *it) {
  int ch = peek(c);
  memset(it, 0, sizeof(*it));
  if (ch == '-' || is_digit(ch)) return parse_number(c, it);
  if (ch == '"') return parse_string(c, it);
  if (ch == '*' || is_alpha(ch)) return parse_token(c, it);
  if (ch == ':') return parse_bytes(c, it);
  if (ch == '?') {
    c->p++;
    ch = peek(c);
    if (ch != '0' && ch != '1') return -EINVAL;
    c->p++;
    it->type = SFV_BOOLEAN;
    it->integer = ch == '1';
    return 0;
  }
  if (ch == '@') {
    c->p++;
    if (parse_number(c, it) < 0 || it->type != SFV_INTEGER) return -EINVAL;
    it->type = SFV_DATE;
    return 0;
  }
  if (ch == '%' && c->p + 1 < c->end && c->p[1] == '"') return parse_display(c, it);
  return -EINVAL;
}

/* §4.2.3.3 */
static int parse_key(struct cur *c, const char **k, size_t *kl) {
  int ch = peek(c);
  if (!is_lcalpha(ch) && ch != '*') return -EINVAL;
  *k = c->p;
  while (is_lcalpha(ch = peek(c)) || is_digit(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '*')
    c->p++;
  *kl = (size_t)(c->p - *k);
  return 0;
}

/* §4.2.3.2: validated and skipped; nothing we read has parameters. */
static int parse_params(struct cur *c) {
  while (peek(c) == ';') {
    const char *k;
    size_t kl;
    struct sfv_item it;
    c->p++;
    skip_sp(c);
    if (parse_key(c, &k, &kl) < 0) return -EINVAL;
    if (peek(c) == '=') {
      c->p++;
      if (parse_bare(c, &it) < 0) return -EINVAL;
    }
  }
  return 0;
}

/* §4.2.1.2 */
static int parse_inner_list(struct cur *c, struct sfv_item *it) {
  c->p++; /* '(' */
  memset(it, 0, sizeof(*it));
  it->type = SFV_INNER_LIST;
  for (;;) {
    struct sfv_item m;
    skip_sp(c);
    if (peek(c) == ')') {
      c->p++;
      return parse_params(c);
    }
    if (parse_bare(c, &m) < 0 || parse_params(c) < 0) return -EINVAL;
    if (peek(c) != ' ' && peek(c) != ')') return -EINVAL;
  }
}

static int parse_item_or_list(struct cur *c, struct sfv_item *it) {
  if (peek(c) == '(') return parse_inner_list(c, it);
  if (parse_bare(c, it) < 0) return -EINVAL;
  return parse_params(c);
}

int sfv_parse_item(const char *v, size_t n, struct sfv_item *out) {
  struct cur c = {v, v + n};
  skip_sp(&c);
  if (parse_bare(&c, out) < 0 || parse_params(&c) < 0) return -EINVAL;
  skip_sp(&c);
  return c.p == c.end ? 0 : -EINVAL;
}

/* §4.2.2: runs twice, first to validate, then to report. */
static int dict_pass(const char *v, size_t n,
                     int (*fn)(void *arg, const char *key, size_t klen, const struct sfv_item *value),
                     void *arg) {
  struct cur c = {v, v + n};
  skip_sp(&c);
  if (c.p == c.end) return 0; /* empty */
  for (;;) {
    const char *k;
    size_t kl;
    struct sfv_item it;
    if (parse_key(&c, &k, &kl) < 0) return -EINVAL;
    if (peek(&c) == '=') {
      c.p++;
      if (parse_item_or_list(&c, &it) < 0) return -EINVAL;
    } else {
      memset(&it, 0, sizeof(it));
      it.type = SFV_BOOLEAN;
      it.integer = 1;
      if (parse_params(&c) < 0) return -EINVAL;
    }
    if (fn) {
      int rc = fn(arg, k, kl, &it);
      if (rc) return rc;
    }
    skip_ows(&c);
    if (c.p == c.end) return 0;
    if (peek(&c) != ',') return -EINVAL;
    c.p++;
    skip_ows(&c);
    if (c.p == c.end) return -EINVAL; /* trailing comma */
  }
}

int sfv_parse_dict(const char *v, size_t n,
                   int (*fn)(void *arg, const char *key, size_t klen, const struct sfv_item *value),
                   void *arg) {
  int rc = dict_pass(v, n, NULL, NULL);
  if (rc < 0) return rc;
  return dict_pass(v, n, fn, arg);
}

int sfv_integer(const char *v, size_t n, int64_t *out) {
  struct sfv_item it;
  if (sfv_parse_item(v, n, &it) < 0 || it.type != SFV_INTEGER) return -EINVAL;
  *out = it.integer;
  return 0;
}

int sfv_boolean(const char *v, size_t n, int *out) {
  struct sfv_item it;
  if (sfv_parse_item(v, n, &it) < 0 || it.type != SFV_BOOLEAN) return -EINVAL;
  *out = (int)it.integer;
  return 0;
}
