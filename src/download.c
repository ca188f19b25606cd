/* Downloads of finished uploads (see download.h). */
#include "download.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "metadata.h"
#include "util.h"

int download_parse_range(const char *v, size_t n, uint64_t len, uint64_t *first, uint64_t *last) {
  if (n < 6 || strncasecmp(v, "bytes=", 6) != 0) return 1;
  v += 6, n -= 6;
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (memchr(v, ',', n)) return 1; /* several ranges: serving all is allowed (RFC 9110 §14.2) */
  const char *dash = memchr(v, '-', n);
  if (!dash) return 1;
  size_t a = (size_t)(dash - v), b = n - a - 1;
  uint64_t x, y;
  if (a == 0) { /* suffix: the last y bytes */
    if (b == 0 || parse_u64_strict(dash + 1, b, &y) < 0) return 1;
    if (y == 0 || len == 0) return -1;
    *first = y >= len ? 0 : len - y;
    *last = len - 1;
    return 0;
  }
  if (parse_u64_strict(v, a, &x) < 0) return 1;
  if (b == 0) y = UINT64_MAX;
  else if (parse_u64_strict(dash + 1, b, &y) < 0 || y < x) return 1;
  if (x >= len) return -1;
  *first = x;
  *last = y >= len ? len - 1 : y;
  return 0;
}

/* Types a browser displays without executing anything. Everything else
 * (HTML, SVG, XML, scripts, unknown) is sent as a download. */
static const char *const harmless[] = {
    "image/png",  "image/jpeg", "image/gif",  "image/webp", "image/avif", "image/bmp",
    "video/mp4",  "video/webm", "video/ogg",  "audio/mpeg", "audio/ogg",  "audio/wav",
    "audio/webm", "audio/flac", "text/plain", "application/pdf",
};

const char *download_safe_type(const char *type, int *inline_ok) {
  *inline_ok = 0;
  if (type) {
    size_t n = strcspn(type, "; \t"); /* parameters are not carried over */
    for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
      if (strlen(harmless[i]) == n && strncasecmp(harmless[i], type, n) == 0) {
        *inline_ok = 1;
        return harmless[i];
      }
  }
  return "application/octet-stream";
}

static int utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t k;
    if (c < 0x80) k = 0;
    else if ((c & 0xe0) == 0xc0 && c >= 0xc2) k = 1;
    else if ((c & 0xf0) == 0xe0) k = 2;
    else if ((c & 0xf8) == 0xf0 && c <= 0xf4) k = 3;
    else return 0;
    if (c < 0x20 || c == 0x7f || k > n - i - 1) return 0;
    for (size_t j = 1; j <= k; j++)
      if ((s[i + j] & 0xc0) != 0x80) return 0;
    i += k + 1;
  }
  return 1;
}

void download_disposition(const char *name, int inline_ok, char *out, size_t n) {
  const char *kind = inline_ok ? "inline" : "attachment";
  if (name) { /* a name is a name, never a path */
    const char *slash = strrchr(name, '/'), *bslash = strrchr(name, '\\');
    if (slash) name = slash + 1;
    if (bslash && bslash + 1 > name) name = bslash + 1;
  }
  size_t len = name ? strlen(name) : 0;
  if (len > 255) len = 255;
  if (len == 0 || !utf8_valid((const unsigned char *)name, len)) {
    snprintf(out, n, "%s", kind);
    return;
  }
  char ascii[256], enc[3 * 255 + 1];
  size_t a = 0, e = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_';
    ascii[a++] = plain || c == ' ' || c == '(' || c == ')' ? (char)c : '_';
    if (plain) enc[e++] = (char)c;
    else e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", c);
  }
  ascii[a] = 0;
  enc[e] = 0;
  snprintf(out, n, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii, enc);
}

static void text(struct http_request *req, int status, const char *msg) {
  http_res_text(req, status, NULL, msg);
}

void download_handle(struct endpoint *ep, struct http_request *req) {
  char key[STORE_KEY_LEN + 1];
  struct upload *u = NULL;
  if (!ep->download) {
    http_res_start(req, 405, NULL);
    http_res_header(req, "Allow", "POST, HEAD, PATCH, DELETE, OPTIONS");
    http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
    http_res_send(req, "downloads are disabled\n", 23);
    return;
  }
  int rc = endpoint_path_key(ep, req, key);
  if (rc == -EACCES) {
    text(req, 403, endpoint_denied(rc));
    return;
  }
  if (rc < 0 || upload_get(ep->eng, key, &u) < 0 || strcmp(upload_info(u)->kind, "article") == 0) {
    if (u) upload_put(u);
    text(req, 404, "no such upload");
    return;
  }
  /* Only its owner may read an upload (--auth-tokens). */
  if (!endpoint_may_access(ep, req, u)) {
    upload_put(u);
    text(req, 403, endpoint_denied(-EPERM));
    return;
  }
  const struct upload_info *info = upload_info(u);
  if (!info->finished) {
    upload_put(u);
    text(req, 409, "upload not finished");
    return;
  }
  uint64_t len = (uint64_t)info->length;
  char etag[STORE_KEY_LEN + 3];
  /* A finished upload never changes and keys are never reused: the key is a
   * strong validator. */
  snprintf(etag, sizeof(etag), "\"%s\"", key);
  char type[256], name[1024], disposition[1200];
  ssize_t tl = metadata_get(info->metadata, "filetype", type, sizeof(type) - 1);
  if (tl < 0) tl = metadata_get(info->metadata, "type", type, sizeof(type) - 1); /* Uppy */
  ssize_t nl = metadata_get(info->metadata, "filename", name, sizeof(name) - 1);
  if (nl < 0) nl = metadata_get(info->metadata, "name", name, sizeof(name) - 1);
  if (tl >= 0) type[tl] = 0;
  if (nl >= 0) name[nl] = 0;
  int inline_ok;
  const char *ctype = download_safe_type(tl >= 0 ? type : NULL, &inline_ok);
  download_disposition(nl >= 0 && (size_t)nl == strlen(name) ? name : NULL, inline_ok,
                       disposition, sizeof(disposition));
  struct store *st = upload_engine_store(ep->eng);
  upload_put(u);

  size_t n;
  const char *v = http_req_header(req, "if-none-match", &n);
  if (v && ((n == 1 && v[0] == '*') || memmem(v, n, etag, strlen(etag)))) {
    http_res_start(req, 304, NULL);
    http_res_header(req, "ETag", "%s", etag);
    http_res_send(req, NULL, 0);
    return;
  }
  uint64_t first = 0, last = len ? len - 1 : 0;
  int range = 1;
  v = http_req_header(req, "range", &n);
  if (v) {
    size_t il;
    const char *ifr = http_req_header(req, "if-range", &il);
    if (!ifr || (il == strlen(etag) && memcmp(ifr, etag, il) == 0))
      range = download_parse_range(v, n, len, &first, &last);
  }
  if (range < 0) {
    http_res_start(req, 416, NULL);
    http_res_header(req, "Content-Range", "bytes */%" PRIu64, len);
    http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
    http_res_send(req, "range not satisfiable\n", 22);
    return;
  }
  int fd = st->ops->open_data ? st->ops->open_data(st, key) : -ENOTSUP;
  if (fd < 0) { /* removed in the meantime, or a store without files */
    text(req, fd == -ENOENT ? 404 : 501, fd == -ENOENT ? "no such upload" : "download not supported by this store");
    return;
  }
  http_res_start(req, range == 0 ? 206 : 200, NULL);
  if (range == 0) http_res_header(req, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, len);
  http_res_header(req, "Accept-Ranges", "bytes");
  http_res_header(req, "ETag", "%s", etag);
  http_res_header(req, "Content-Type", "%s", ctype);
  http_res_header(req, "Content-Disposition", "%s", disposition);
  http_res_header(req, "X-Content-Type-Options", "nosniff");
  /* Even an allowed type never gets to run script in our origin. */
  http_res_header(req, "Content-Security-Policy", "sandbox");
  http_res_header(req, "Cache-Control", "private, no-cache");
  http_res_send_file(req, fd, range == 0 ? first : 0, len == 0 ? 0 : last - first + 1, 1);
}
