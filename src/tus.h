/* tus resumable upload protocol 1.0.0 at the upload endpoint: core,
 * creation, creation-with-upload, creation-defer-length, termination,
 * checksum, checksum-trailer, expiration, concatenation and
 * concatenation-unfinished. */
#ifndef RESUMED_TUS_H
#define RESUMED_TUS_H

#include "endpoint.h"
#include "http.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS \
  "creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer," \
  "expiration,concatenation,concatenation-unfinished"

void tus_handle(struct endpoint *ep, struct http_request *req);
/* The tus discovery headers of an OPTIONS answer. */
void tus_add_discovery(struct endpoint *ep, struct http_request *req);

#endif
