#include "router.h"

#include <string.h>

#include "cors.h"
#include "download.h"
#include "ietf.h"
#include "tus.h"

static int path_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

/* Which protocol a request at the upload endpoint speaks. tus clients always
 * send Tus-Resumable (tus §Headers); IETF draft clients send their interop
 * version, and the draft's own fields identify the rest. */
static int speaks_ietf(struct http_request *req) {
  if (http_req_header(req, "tus-resumable", NULL)) return 0;
  return http_req_header(req, "upload-draft-interop-version", NULL) ||
         http_req_header(req, "upload-complete", NULL) ||
         http_req_header(req, "upload-incomplete", NULL);
}

/* A client of the final protocol sends no Upload-* field on HEAD or
 * DELETE: the upload it names says which protocol it belongs to. */
static int names_ietf_upload(struct endpoint *ep, struct http_request *req) {
  char key[STORE_KEY_LEN + 1];
  struct upload *u;
  if (http_req_header(req, "tus-resumable", NULL) || endpoint_path_key(ep, req, key) < 0 ||
      endpoint_open(ep, req, key, "ietf", &u) < 0)
    return 0;
  upload_put(u);
  return 1;
}

/* Discovery serves both protocols at once. */
static void endpoint_options(struct endpoint *ep, struct http_request *req) {
  http_res_start(req, 204, NULL);
  http_res_header(req, "Accept-Patch", "application/offset+octet-stream, application/partial-upload");
  tus_add_discovery(ep, req);
  ietf_add_limit(ep, req, NULL);
  http_res_send(req, NULL, 0);
}

static void endpoint_dispatch(struct endpoint *ep, struct http_request *req) {
  if (ep->cors && cors_handle(ep->cors, req)) return;
  const char *m = http_req_method(req);
  if (strcmp(m, "OPTIONS") == 0) endpoint_options(ep, req);
  else if (endpoint_authenticate(ep, req) < 0) return;
  else if (speaks_ietf(req)) ietf_handle(ep, req);
  else if (strcmp(m, "GET") == 0) download_handle(ep, req); /* plain HTTP: no protocol headers */
  else if (names_ietf_upload(ep, req)) ietf_handle(ep, req);
  else tus_handle(ep, req);
}

void router_dispatch(struct http_request *req, void *ctx) {
  struct router *r = ctx;
  size_t n;
  const char *path = http_req_path(req, &n);
  /* The article's client uses relative URLs from the page at "/". */
  if (endpoint_owns(r->endpoint, path, n)) endpoint_dispatch(r->endpoint, req);
  else if (path_is(path, n, "/status") || path_is(path, n, "/upload")) {
    if (endpoint_authenticate(r->endpoint, req) < 0) return;
    if (path[1] == 's') article_status(req, r->article);
    else article_upload(req, r->article);
  }
  else static_files_serve(req, r->web);
}
