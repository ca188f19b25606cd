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

struct cors;

struct endpoint_config {
  const char *base_path;
  uint64_t max_size;        /* 0: none */
  uint64_t expire_after;    /* seconds an unfinished upload lives idle; 0: forever */
  int behind_proxy;         /* build Locations from Forwarded / X-Forwarded-* */
  int download;             /* GET downloads finished uploads */
  const char *cors_origins; /* NULL: no CORS; "*" or comma-separated origins */
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
  /* tus final uploads waiting for their partials (kept by concat.c) */
  char (*waiting_finals)[STORE_KEY_LEN + 1];
  size_t n_waiting;
};

int endpoint_new(struct endpoint **out, struct upload_engine *eng, const struct endpoint_config *cfg);
void endpoint_free(struct endpoint *ep);
/* Whether a request path is the endpoint or below it. */
int endpoint_owns(const struct endpoint *ep, const char *path, size_t len);

/* The upload key the request path names: 0; -ENOENT when the path is the
 * endpoint itself; -EINVAL when it names nothing that could exist. */
int endpoint_path_key(const struct endpoint *ep, struct http_request *req,
                      char key[STORE_KEY_LEN + 1]);
/* Opens an upload created by protocol `kind`: 0, -ENOENT (none, or another
 * protocol's) or -ETIMEDOUT (expired; the sweeper will remove it). */
int endpoint_open(struct endpoint *ep, const char *key, const char *kind, struct upload **out);
/* The URL of an upload for Location headers: a path, or an absolute URL built
 * from the proxy's headers with --behind-proxy. */
void endpoint_url(const struct endpoint *ep, struct http_request *req, const char *key,
                  char *out, size_t n);
/* The key in an upload URL (absolute or a path) that a client sends back,
 * e.g. in Upload-Concat; -EINVAL if it names no upload of this endpoint. */
int endpoint_url_key(const struct endpoint *ep, const char *url, size_t n,
                     char key[STORE_KEY_LEN + 1]);

#endif
