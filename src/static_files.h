/* Serves the web page directory (GET/HEAD only, no listings, no dot segments). */
#ifndef RESUMED_STATIC_FILES_H
#define RESUMED_STATIC_FILES_H

#include "http.h"

struct static_files;

int static_files_open(struct static_files **out, const char *dir);
void static_files_free(struct static_files *sf);
void static_files_serve(struct http_request *req, struct static_files *sf);
/* Content type for a file name, by extension. */
const char *static_content_type(const char *name);
/* Percent-decodes a request path into a relative file path; -1 if unsafe. */
int static_resolve(const char *path, size_t len, char *out, size_t outlen);

#endif
