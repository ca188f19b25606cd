/* RFC 9651 parsing (sfv.c), cases from the RFC's grammar and the HTTP WG's
 * structured-field test suite. */
#include <errno.h>

#include "sfv.h"
#include "unit.h"

static double absd(double x) { return x < 0 ? -x : x; }

static int item(const char *s, struct sfv_item *it) { return sfv_parse_item(s, strlen(s), it); }

static void test_integers(void) {
  int64_t v;
  CHECK(sfv_integer("42", 2, &v) == 0 && v == 42);
  CHECK(sfv_integer("-42", 3, &v) == 0 && v == -42);
  CHECK(sfv_integer("0", 1, &v) == 0 && v == 0);
  CHECK(sfv_integer("  7  ", 5, &v) == 0 && v == 7); /* surrounding spaces discarded */
  CHECK(sfv_integer("999999999999999", 15, &v) == 0 && v == 999999999999999LL);
  CHECK(sfv_integer("1000000000000000", 16, &v) < 0); /* 16 digits */
  CHECK(sfv_integer("7;a=1", 5, &v) == 0 && v == 7);  /* parameters allowed */
  CHECK(sfv_integer("", 0, &v) < 0);
  CHECK(sfv_integer("1.5", 3, &v) < 0);  /* a decimal */
  CHECK(sfv_integer("+1", 2, &v) < 0);
  CHECK(sfv_integer("1 2", 3, &v) < 0);
  CHECK(sfv_integer("0x10", 4, &v) < 0);
  CHECK(sfv_integer("-", 1, &v) < 0);
  CHECK(sfv_integer("?1", 2, &v) < 0);   /* a boolean */
  CHECK(sfv_integer("1\t", 2, &v) < 0);  /* only SP is discarded */
}

static void test_items(void) {
  struct sfv_item it;
  CHECK(item("?0", &it) == 0 && it.type == SFV_BOOLEAN && it.integer == 0);
  CHECK(item("?1", &it) == 0 && it.type == SFV_BOOLEAN && it.integer == 1);
  CHECK(item("?2", &it) < 0);
  CHECK(item("?", &it) < 0);
  CHECK(item("1.5", &it) == 0 && it.type == SFV_DECIMAL && absd(it.decimal - 1.5) < 1e-9);
  CHECK(item("-0.125", &it) == 0 && it.type == SFV_DECIMAL && absd(it.decimal + 0.125) < 1e-9);
  CHECK(item("1.1234", &it) < 0);        /* four fraction digits */
  CHECK(item("1.", &it) < 0);
  CHECK(item("1234567890123.0", &it) < 0); /* 13 integer digits */
  CHECK(item("\"a \\\"b\\\\\"", &it) == 0 && it.type == SFV_STRING && it.len == 7);
  CHECK(item("\"bad \\n\"", &it) < 0);   /* only \" and \\ escape */
  CHECK(item("\"unterminated", &it) < 0);
  CHECK(item("\"tab\there\"", &it) < 0);
  CHECK(item("foo/bar:baz", &it) == 0 && it.type == SFV_TOKEN && it.len == 11);
  CHECK(item("*tok", &it) == 0 && it.type == SFV_TOKEN);
  CHECK(item(":aGVsbG8=:", &it) == 0 && it.type == SFV_BYTES && it.len == 8);
  CHECK(item(":aGVsbG8:", &it) < 0);     /* bad base64 */
  CHECK(item(":aGVs", &it) < 0);
  CHECK(item("@1659578233", &it) == 0 && it.type == SFV_DATE && it.integer == 1659578233);
  CHECK(item("@1.5", &it) < 0);
  CHECK(item("%\"f%c3%bc\"", &it) == 0 && it.type == SFV_DISPLAY);
  CHECK(item("%\"f%C3\"", &it) < 0);     /* uppercase hex */
  CHECK(item("1;a", &it) == 0);
  CHECK(item("1;A=1", &it) < 0);         /* keys are lowercase */
  CHECK(item("1;a=", &it) < 0);
  CHECK(item("(1 2)", &it) < 0);         /* an inner list is not an item */
  CHECK(item("a, b", &it) < 0);
}

struct seen {
  int n;
  char keys[8][16];
  struct sfv_item v[8];
};

static int collect(void *arg, const char *k, size_t kl, const struct sfv_item *v) {
  struct seen *s = arg;
  if (s->n < 8 && kl < 16) {
    memcpy(s->keys[s->n], k, kl);
    s->keys[s->n][kl] = 0;
    s->v[s->n] = *v;
  }
  s->n++;
  return 0;
}

static int dict(const char *str, struct seen *s) {
  memset(s, 0, sizeof(*s));
  return sfv_parse_dict(str, strlen(str), collect, s);
}

static void test_dictionaries(void) {
  struct seen s;
  CHECK(dict("max-size=100, max-age=3600", &s) == 0 && s.n == 2);
  CHECK(strcmp(s.keys[0], "max-size") == 0 && s.v[0].integer == 100);
  CHECK(strcmp(s.keys[1], "max-age") == 0 && s.v[1].integer == 3600);
  CHECK(dict("sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=:", &s) == 0 && s.n == 1 &&
        s.v[0].type == SFV_BYTES);
  CHECK(dict("a, b=?0, c;x=1", &s) == 0 && s.n == 3 && s.v[0].type == SFV_BOOLEAN &&
        s.v[0].integer == 1 && s.v[1].integer == 0 && s.v[2].integer == 1);
  CHECK(dict("a=(1 2 \"x\");p, b=3", &s) == 0 && s.n == 2 && s.v[0].type == SFV_INNER_LIST);
  CHECK(dict("a=1,\tb=2", &s) == 0 && s.n == 2); /* OWS around commas */
  CHECK(dict("", &s) == 0 && s.n == 0);
  /* A field that is invalid anywhere reports nothing. */
  CHECK(dict("a=1, B=2", &s) < 0 && s.n == 0);
  CHECK(dict("a=1,", &s) < 0 && s.n == 0);
  CHECK(dict("a=1 b=2", &s) < 0 && s.n == 0);
  CHECK(dict("a=(1 2", &s) < 0 && s.n == 0);
  CHECK(dict("a=(1,2)", &s) < 0 && s.n == 0);
  CHECK(dict("1a=1", &s) < 0 && s.n == 0);
  CHECK(dict("sha-256=abc==", &s) < 0 && s.n == 0);
}

int main(void) {
  RUN(test_integers);
  RUN(test_items);
  RUN(test_dictionaries);
  UNIT_DONE();
}
