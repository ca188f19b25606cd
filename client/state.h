/* The state file: which upload URL belongs to which file, so that running the
 * same command again continues. One line per upload in progress,
 * "<key> <url>", where key is the SHA-256 of the file's absolute path, size,
 * modification time, the endpoint and the protocol. Changes are made under
 * an flock(2) on "<file>.lock" and land by rename(2), so concurrent uploads
 * and concurrent runs never lose each other's entries. */
#ifndef RESUMED_UPLOAD_STATE_H
#define RESUMED_UPLOAD_STATE_H

#include <stddef.h>
#include <sys/stat.h>

#define STATE_KEY_LEN 64

/* The key of a file (abs_path and its stat) uploaded to endpoint by protocol. */
int state_key(const char *abs_path, const struct stat *st, const char *endpoint, const char *protocol,
              char key[STATE_KEY_LEN + 1]);

/* The URL stored under key into url (0), -ENOENT when none. */
int state_lookup(const char *file, const char *key, char *url, size_t cap);
/* Stores url under key, replacing any earlier one. */
int state_store(const char *file, const char *key, const char *url);
int state_remove(const char *file, const char *key);

#endif
