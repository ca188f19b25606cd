/* The upload endpoint at --base-path (default /files/), as the protocols
 * that share it see it: tus 1.0.0, the IETF resumable-upload draft and GET
 * downloads. It knows the endpoint's settings, maps paths and URLs to
 * upload keys, opens uploads, and builds Locations that work behind a
 * proxy. The router picks the protocol. */
#ifndef RESUMED_ENDPOINT_H
#define RESUMED_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "store.h"
#include "upload.h"

struct auth;
struct cors;

struct endpoint_config {
  const char *base_path;
  uint64_t max_size;        /* 0: none */
  uint64_t expire_after;    /* seconds an unfinished upload lives idle; 0: forever */
  int behind_proxy;         /* build Locations from Forwarded / X-Forwarded-* */
  int download;             /* GET downloads finished uploads */
  const char *cors_origins; /* NULL: no CORS; "*" or comma-separated origins */
  struct auth *auth;        /* tokens and URL signatures; NULL: none */
};

struct endpoint {
  struct upload_engine *eng;
  char base[256]; /* always ends in '/' */
  size_t base_len;
  uint64_t max_size;
  uint64_t expire_after;
  int behind_proxy;
  int download;
  struct cors *cors;
  struct auth *auth;
  /* tus final uploads waiting for their partials (kept by concat.c) */
  char (*waiting_finals)[STORE_KEY_LEN + 1];
  size_t n_waiting;
};

int endpoint_new(struct endpoint **out, struct upload_engine *eng, const struct endpoint_config *cfg);
void endpoint_free(struct endpoint *ep);
/* Whether a request path is the endpoint or below it. */
int endpoint_owns(const struct endpoint *ep, const char *path, size_t len);

/* Whether the request may use the endpoint at all (--auth-tokens): 0, or
 * -1 after answering 401. */
int endpoint_authenticate(struct endpoint *ep, struct http_request *req);
/* The requester's owner id for uploads it creates (auth_identify()). */
void endpoint_owner(struct endpoint *ep, struct http_request *req, char owner[STORE_OWNER_MAX + 1]);
/* The upload key the request path names: 0; -ENOENT when the path is the
 * endpoint itself; -EINVAL when it names nothing that could exist; -EACCES
 * when its signature is missing or wrong (--auth-secret). */
int endpoint_path_key(const struct endpoint *ep, struct http_request *req,
                      char key[STORE_KEY_LEN + 1]);
/* Opens an upload created by protocol `kind` for req's requester: 0, -ENOENT
 * (none, or another protocol's), -ETIMEDOUT (expired; the sweeper will
 * remove it) or -EPERM (another owner's, with --auth-tokens). */
int endpoint_open(struct endpoint *ep, struct http_request *req, const char *key, const char *kind,
                  struct upload **out);
/* Whether req's requester may touch an upload (--auth-tokens). */
int endpoint_may_access(struct endpoint *ep, struct http_request *req, const struct upload *u);
/* The 403 reason for -EACCES or -EPERM from the functions above, else NULL. */
const char *endpoint_denied(int rc);
/* The URL of an upload for Location headers: a path, or an absolute URL built
 * from the proxy's headers with --behind-proxy. */
void endpoint_url(const struct endpoint *ep, struct http_request *req, const char *key,
                  char *out, size_t n);
/* The key in an upload URL (absolute or a path) that a client sends back,
 * e.g. in Upload-Concat; -EINVAL if it names no upload of this endpoint,
 * -EACCES if its signature is missing or wrong. */
int endpoint_url_key(const struct endpoint *ep, const char *url, size_t n,
                     char key[STORE_KEY_LEN + 1]);

#endif
