/* The upload endpoint (see endpoint.h). */
#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "cors.h"

int endpoint_new(struct endpoint **out, struct upload_engine *eng, const struct endpoint_config *cfg) {
  size_t n = strlen(cfg->base_path);
  if (n == 0 || cfg->base_path[0] != '/' || n + 2 > sizeof(((struct endpoint *)0)->base))
    return -EINVAL;
  struct endpoint *ep = calloc(1, sizeof(*ep));
  if (!ep) return -ENOMEM;
  ep->eng = eng;
  ep->max_size = cfg->max_size;
  ep->expire_after = cfg->expire_after;
  ep->behind_proxy = cfg->behind_proxy;
  ep->download = cfg->download;
  ep->auth = cfg->auth;
  memcpy(ep->base, cfg->base_path, n);
  if (ep->base[n - 1] != '/') ep->base[n++] = '/';
  ep->base[n] = 0;
  ep->base_len = n;
  if (cfg->cors_origins) {
    int rc = cors_new(&ep->cors, cfg->cors_origins);
    if (rc < 0) {
      free(ep);
      return rc;
    }
  }
  *out = ep;
  return 0;
}

void endpoint_free(struct endpoint *ep) {
  if (!ep) return;
  cors_free(ep->cors);
  free(ep->waiting_finals);
  free(ep);
}

int endpoint_owns(const struct endpoint *ep, const char *path, size_t len) {
  if (len + 1 == ep->base_len && memcmp(path, ep->base, len) == 0) return 1; /* "/files" */
  return len >= ep->base_len && memcmp(path, ep->base, ep->base_len) == 0;
}

/* The key in the last n bytes of a path, "<key>" or "<key>-<sig>"; -EINVAL
 * if they are not one, -EACCES if the signature is missing or wrong. */
static int take_key(const struct endpoint *ep, const char *s, size_t n, char key[STORE_KEY_LEN + 1]) {
  if (n != STORE_KEY_LEN && (n != STORE_KEY_LEN + 1 + AUTH_SIG_LEN || s[STORE_KEY_LEN] != '-'))
    return -EINVAL;
  memcpy(key, s, STORE_KEY_LEN);
  key[STORE_KEY_LEN] = 0;
  if (!store_key_valid(key)) return -EINVAL;
  const char *sig = n > STORE_KEY_LEN ? s + STORE_KEY_LEN + 1 : "";
  if (ep->auth && !auth_verify(ep->auth, key, sig, n > STORE_KEY_LEN ? AUTH_SIG_LEN : 0))
    return -EACCES;
  return 0;
}

int endpoint_path_key(const struct endpoint *ep, struct http_request *req,
                      char key[STORE_KEY_LEN + 1]) {
  size_t plen;
  const char *path = http_req_path(req, &plen);
  if (plen <= ep->base_len) return -ENOENT;
  return take_key(ep, path + ep->base_len, plen - ep->base_len, key);
}

int endpoint_url_key(const struct endpoint *ep, const char *url, size_t n,
                     char key[STORE_KEY_LEN + 1]) {
  const char *p = url, *end = url + n;
  const char *sep = memmem(url, n, "://", 3);
  if (sep) { /* absolute: skip scheme and authority */
    p = memchr(sep + 3, '/', (size_t)(end - (sep + 3)));
    if (!p) return -EINVAL;
  }
  size_t len = (size_t)(end - p);
  if (len <= ep->base_len || memcmp(p, ep->base, ep->base_len) != 0) return -EINVAL;
  return take_key(ep, p + ep->base_len, len - ep->base_len, key);
}

int endpoint_authenticate(struct endpoint *ep, struct http_request *req) {
  char owner[STORE_OWNER_MAX + 1];
  int rc = ep->auth ? auth_identify(ep->auth, req, owner, NULL, NULL) : 0;
  if (rc == 0) return 0;
  auth_challenge(req, rc);
  /* tus: every answer but OPTIONS names the protocol version. */
  if (http_req_header(req, "tus-resumable", NULL)) http_res_header(req, "Tus-Resumable", "1.0.0");
  http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
  if (rc == -EACCES) http_res_send(req, "authentication required\n", 24);
  else http_res_send(req, "invalid token\n", 14);
  return -1;
}

void endpoint_owner(struct endpoint *ep, struct http_request *req, char owner[STORE_OWNER_MAX + 1]) {
  owner[0] = 0;
  if (ep->auth && auth_identify(ep->auth, req, owner, NULL, NULL) < 0) owner[0] = 0;
}

int endpoint_may_access(struct endpoint *ep, struct http_request *req, const struct upload *u) {
  char owner[STORE_OWNER_MAX + 1];
  if (!ep->auth || !auth_tokens_on(ep->auth)) return 1;
  endpoint_owner(ep, req, owner);
  return owner[0] && auth_may_access(ep->auth, owner, upload_info(u)->owner);
}

const char *endpoint_denied(int rc) {
  if (rc == -EACCES) return "upload URL signature missing or wrong";
  if (rc == -EPERM) return "this upload belongs to someone else";
  return NULL;
}

int endpoint_open(struct endpoint *ep, struct http_request *req, const char *key, const char *kind,
                  struct upload **out) {
  struct upload *u;
  if (!store_key_valid(key) || upload_get(ep->eng, key, &u) < 0) return -ENOENT;
  if (strcmp(upload_info(u)->kind, kind) != 0) { /* another protocol's upload */
    upload_put(u);
    return -ENOENT;
  }
  if (!endpoint_may_access(ep, req, u)) {
    upload_put(u);
    return -EPERM;
  }
  if (upload_expired(u)) {
    upload_put(u);
    return -ETIMEDOUT;
  }
  *out = u;
  return 0;
}

/* ---------- Locations behind a proxy ---------- */

static int host_valid(const char *s, size_t n) {
  if (n == 0 || n > 255) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_'))
      return 0;
  }
  return 1;
}

void endpoint_url(const struct endpoint *ep, struct http_request *req, const char *key,
                  char *out, size_t n) {
  char sig[AUTH_SIG_LEN + 1] = "";
  if (ep->auth) auth_sign(ep->auth, key, sig);
  if (ep->behind_proxy) {
    size_t hl = 0, pl = 0;
    const char *host = http_req_forwarded(req, "host", &hl);
    const char *proto = http_req_forwarded(req, "proto", &pl);
    if (!host) host = http_req_header_first(req, "x-forwarded-host", &hl);
    if (!proto) proto = http_req_header_first(req, "x-forwarded-proto", &pl);
    if (!host) host = http_req_header(req, "host", &hl);
    int https = proto && pl == 5 && strncasecmp(proto, "https", 5) == 0;
    int http = !proto || (pl == 4 && strncasecmp(proto, "http", 4) == 0);
    /* Anything odd falls back to a relative Location rather than echoing
     * client-controlled bytes into a header. */
    if (host && host_valid(host, hl) && (https || http)) {
      snprintf(out, n, "%s://%.*s%s%s%s%s", https ? "https" : "http", (int)hl, host, ep->base, key,
               sig[0] ? "-" : "", sig);
      return;
    }
  }
  snprintf(out, n, "%s%s%s%s", ep->base, key, sig[0] ? "-" : "", sig);
}
