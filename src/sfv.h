/* Structured Field Values for HTTP (RFC 9651): the parsing the IETF
 * resumable-upload fields (Upload-Offset, Upload-Complete, Upload-Length,
 * Upload-Limit) and the digest fields (RFC 9530) need. Parsers validate the
 * whole field and fail it as a unit, as RFC 9651 §4.2 requires. */
#ifndef RESUMED_SFV_H
#define RESUMED_SFV_H

#include <stddef.h>
#include <stdint.h>

enum sfv_type {
  SFV_INTEGER,
  SFV_DECIMAL,
  SFV_STRING,
  SFV_TOKEN,
  SFV_BYTES,
  SFV_BOOLEAN,
  SFV_DATE,
  SFV_DISPLAY,
  SFV_INNER_LIST,
};

struct sfv_item {
  enum sfv_type type;
  int64_t integer; /* INTEGER, BOOLEAN (0/1), DATE */
  double decimal;
  /* STRING, DISPLAY: the characters between the quotes, escapes undone
   * only by sfv_string_copy(); TOKEN: the token; BYTES: the base64 text. */
  const char *s;
  size_t len;
};

/* A field that is an Item (parameters allowed and ignored). 0 or -EINVAL. */
int sfv_parse_item(const char *v, size_t n, struct sfv_item *out);
/* A Dictionary: fn sees each member in order (a bare key is Boolean true;
 * an inner list has type SFV_INNER_LIST). Nothing is reported unless the
 * whole field is valid. fn returning non-zero stops with that value. */
int sfv_parse_dict(const char *v, size_t n,
                   int (*fn)(void *arg, const char *key, size_t klen, const struct sfv_item *value),
                   void *arg);
/* Shorthands for Items of one type: -EINVAL when malformed or of another type. */
int sfv_integer(const char *v, size_t n, int64_t *out);
int sfv_boolean(const char *v, size_t n, int *out);

#endif
