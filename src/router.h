/* Maps a request to the protocol that serves it. */
#ifndef RESUMED_ROUTER_H
#define RESUMED_ROUTER_H

#include "article.h"
#include "endpoint.h"
#include "http.h"
#include "static_files.h"

struct router {
  struct article *article;
  struct endpoint *endpoint;
  struct static_files *web;
};

/* http_request_cb for http_server_new(); ctx is a struct router. */
void router_dispatch(struct http_request *req, void *ctx);

#endif
