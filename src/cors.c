/* CORS (see cors.h). */
#include "cors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ORIGINS 32

struct cors {
  int any;
  size_t n;
  char *origins[MAX_ORIGINS];
};

/* Request headers the tus, IETF and article clients send. */
#define ALLOW_HEADERS                                                                             \
  "Authorization, Content-Type, Content-Disposition, Content-Digest, Repr-Digest, "              \
  "Want-Repr-Digest, Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset, "             \
  "Upload-Defer-Length, Upload-Concat, Upload-Checksum, Upload-Complete, Upload-Incomplete, "    \
  "Upload-Draft-Interop-Version, X-HTTP-Method-Override, X-Requested-With, X-Request-ID, "      \
  "X-File-Id, X-Start-Byte, X-File-Size, X-Upload-Token"
/* Response headers a browser script may read: everything the protocols say. */
#define EXPOSE_HEADERS                                                                            \
  "Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, Upload-Defer-Length, " \
  "Upload-Concat, Upload-Complete, Upload-Incomplete, Upload-Limit, Upload-Draft-Interop-Version, " \
  "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, "            \
  "Repr-Digest, Content-Digest, Content-Disposition, Content-Range, ETag, WWW-Authenticate, Retry-After"
#define ALLOW_METHODS "POST, HEAD, PATCH, DELETE, OPTIONS, GET"

/* scheme "://" host [":" port], nothing else. */
static int origin_valid(const char *s, size_t n) {
  const char *sep = memmem(s, n, "://", 3);
  if (!sep || sep == s || (size_t)(sep - s) + 3 >= n) return 0;
  for (const char *p = s; p < s + n; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch <= 0x20 || ch >= 0x7f || ch == ',' || ch == '"') return 0;
    if (p > sep + 2 && ch == '/') return 0;
  }
  return 1;
}

int cors_new(struct cors **out, const char *origins) {
  struct cors *c = calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  const char *p = origins;
  for (;;) {
    while (*p == ' ') p++;
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n && p[n - 1] == ' ') n--;
    if (n == 1 && p[0] == '*') c->any = 1;
    else if (c->n == MAX_ORIGINS || !origin_valid(p, n)) goto bad;
    else if (!(c->origins[c->n++] = strndup(p, n))) goto nomem;
    if (!end) break;
    p = end + 1;
  }
  *out = c;
  return 0;
nomem:
  cors_free(c);
  return -ENOMEM;
bad:
  cors_free(c);
  return -EINVAL;
}

void cors_free(struct cors *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) free(c->origins[i]);
  free(c);
}

static int allowed(const struct cors *c, const char *o, size_t n) {
  if (c->any) return 1;
  for (size_t i = 0; i < c->n; i++)
    if (strlen(c->origins[i]) == n && strncasecmp(c->origins[i], o, n) == 0) return 1;
  return 0;
}

static void add_headers(struct http_request *req, void *arg) {
  (void)arg;
  size_t n;
  const char *o = http_req_header(req, "origin", &n);
  /* The origin is echoed rather than "*" so that credentialed requests work;
   * Vary keeps caches from serving one origin's answer to another. */
  http_res_header(req, "Access-Control-Allow-Origin", "%.*s", (int)n, o);
  http_res_header(req, "Vary", "Origin");
  http_res_header(req, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
}

/* Browsers send Origin on same-origin POSTs too: a page served by us (or
 * through a proxy keeping Host) must never be refused. */
static int same_origin(struct http_request *req, const char *o, size_t n) {
  size_t hl;
  const char *host = http_req_header(req, "host", &hl);
  const char *sep = memmem(o, n, "://", 3);
  if (!host || !sep) return 0;
  size_t rest = n - (size_t)(sep + 3 - o);
  return rest == hl && strncasecmp(sep + 3, host, hl) == 0;
}

int cors_handle(struct cors *c, struct http_request *req) {
  size_t n;
  const char *o = http_req_header(req, "origin", &n);
  if (!o || same_origin(req, o, n)) return 0; /* not a cross-origin browser request */
  if (!allowed(c, o, n)) {
    http_res_start(req, 403, NULL);
    /* tus: every answer but OPTIONS names the protocol version. */
    if (http_req_header(req, "tus-resumable", NULL)) http_res_header(req, "Tus-Resumable", "1.0.0");
    http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
    http_res_send(req, "origin not allowed\n", 19);
    return 1;
  }
  if (strcmp(http_req_method(req), "OPTIONS") == 0 &&
      http_req_header(req, "access-control-request-method", NULL)) {
    http_res_start(req, 204, NULL);
    http_res_header(req, "Access-Control-Allow-Origin", "%.*s", (int)n, o);
    http_res_header(req, "Vary", "Origin");
    http_res_header(req, "Access-Control-Allow-Methods", ALLOW_METHODS);
    http_res_header(req, "Access-Control-Allow-Headers", ALLOW_HEADERS);
    http_res_header(req, "Access-Control-Max-Age", "86400");
    http_res_send(req, NULL, 0);
    return 1;
  }
  http_req_set_res_hook(req, add_headers, c);
  return 0;
}
