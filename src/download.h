/* GET on a finished upload at the upload endpoint: its bytes, with Range,
 * ETag and a Content-Type / Content-Disposition derived safely from the
 * upload's filename and filetype metadata. */
#ifndef RESUMED_DOWNLOAD_H
#define RESUMED_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "http.h"

void download_handle(struct endpoint *ep, struct http_request *req);

/* Range header against a representation of len bytes: 0 with [*first,
 * *last] for one satisfiable range; 1 to send it all (absent, malformed, or
 * several ranges); -1 unsatisfiable. */
int download_parse_range(const char *v, size_t n, uint64_t len, uint64_t *first, uint64_t *last);
/* The media type to serve a file declared as `type` with: the same type when
 * browsers can show it without running anything (then *inline_ok is 1),
 * else application/octet-stream for download. */
const char *download_safe_type(const char *type, int *inline_ok);
/* Content-Disposition for a client-chosen file name: path parts dropped,
 * an ASCII fallback and an RFC 8187 filename*. */
void download_disposition(const char *name, int inline_ok, char *out, size_t n);

#endif
