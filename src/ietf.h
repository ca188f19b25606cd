/* IETF "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload)
 * at the upload endpoint, interop versions 3 to 8: creation with 104
 * interim responses, offset retrieval, append, cancellation, Upload-Limit,
 * RFC 9457 problem details and RFC 9530 digests. */
#ifndef RESUMED_IETF_H
#define RESUMED_IETF_H

#include "endpoint.h"
#include "http.h"
#include "store.h"

#define IETF_VERSION_MIN 3
#define IETF_VERSION_MAX 8

void ietf_handle(struct endpoint *ep, struct http_request *req);
/* The Upload-Limit field: server-wide (info NULL) or for an upload. */
void ietf_add_limit(struct endpoint *ep, struct http_request *req, const struct upload_info *info);

#endif
