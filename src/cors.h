/* CORS for the upload endpoint (--cors-origin): lets a page from another
 * origin drive uploads and read the protocol's response headers. */
#ifndef RESUMED_CORS_H
#define RESUMED_CORS_H

#include "http.h"

struct cors;

/* origins: "*" or a comma-separated list of origins ("https://a.example").
 * -EINVAL when an entry is not an origin. */
int cors_new(struct cors **out, const char *origins);
void cors_free(struct cors *c);
/* For each request: 0 to go on (CORS headers join every response); 1 when
 * answered here (a preflight, or an origin that is not allowed). */
int cors_handle(struct cors *c, struct http_request *req);

#endif
