#include "router.h"

#include <string.h>

static int path_is(const char *p, size_t n, const char *want) {
  return n == strlen(want) && memcmp(p, want, n) == 0;
}

void router_dispatch(struct http_request *req, void *ctx) {
  struct router *r = ctx;
  size_t n;
  const char *path = http_req_path(req, &n);
  /* The article's client uses relative URLs from the page at "/". */
  if (endpoint_owns(r->endpoint, path, n)) endpoint_handle(req, r->endpoint);
  else if (path_is(path, n, "/status")) article_status(req, r->article);
  else if (path_is(path, n, "/upload")) article_upload(req, r->article);
  else static_files_serve(req, r->web);
}
