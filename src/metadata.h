/* Upload metadata as tus writes it (Upload-Metadata): comma-separated
 * "key base64value" pairs. Every upload's metadata is kept in this form,
 * whichever protocol brought it, so downloads read one format. */
#ifndef RESUMED_METADATA_H
#define RESUMED_METADATA_H

#include <stddef.h>
#include <sys/types.h>

/* 0 when v is valid: keys non-empty, unique, without spaces or commas;
 * values strict base64 (or absent). -EINVAL otherwise. */
int metadata_valid(const char *v, size_t n);
/* Decodes the value of key into out (cap bytes); returns its length,
 * -ENOENT when absent, -ENOSPC when it does not fit. */
ssize_t metadata_get(const char *meta, const char *key, char *out, size_t cap);
/* Appends "key base64(value)" to buf (len bytes used of cap), with a comma
 * when buf is not empty; -ENOSPC when it does not fit. */
int metadata_append(char *buf, size_t *len, size_t cap, const char *key, const void *value,
                    size_t vlen);

#endif
