/* tus resumable upload protocol 1.0.0 at a base path (default /files/):
 * core, creation, creation-with-upload, creation-defer-length, termination,
 * checksum, checksum-trailer and expiration. */
#ifndef RESUMED_TUS_H
#define RESUMED_TUS_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "upload.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS \
  "creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer," \
  "expiration"

struct tus;

int tus_new(struct tus **out, struct upload_engine *eng, const char *base_path, uint64_t max_size);
void tus_free(struct tus *t);
/* Whether a request path belongs to tus (the base path or below it). */
int tus_owns(const struct tus *t, const char *path, size_t len);
void tus_handle(struct http_request *req, struct tus *t);

/* Validates an Upload-Metadata value: comma-separated "key base64value"
 * pairs, keys non-empty, unique, without spaces or commas; strict base64. */
int tus_metadata_valid(const char *v, size_t n);

#endif
