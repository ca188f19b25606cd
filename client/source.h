/* What is being uploaded: a regular file, read where needed, or standard
 * input, read once, whose unacknowledged bytes are kept in memory so that a
 * failed request can be sent again. */
#ifndef RESUMED_UPLOAD_SOURCE_H
#define RESUMED_UPLOAD_SOURCE_H

#include <stdint.h>
#include <sys/stat.h>

#include "checksum.h"
#include "http_client.h"

#define STDIN_CHUNK_DEFAULT (8u << 20)

struct source {
  const char *arg; /* as given on the command line */
  const char *name; /* base name, for metadata and messages */
  int fd;
  int is_stdin;
  int64_t size; /* -1 while standard input has not reached its end */
  struct stat st;
  /* standard input: bytes [held_start, held_start + held_len) */
  unsigned char *held;
  size_t held_cap, held_len;
  uint64_t held_start;
  int eof, has_peek;
  unsigned char peek;
};

/* chunk: the most standard input bytes held at once. */
int source_open(struct source *s, const char *arg, uint64_t chunk);
void source_close(struct source *s);

/* The bytes to send from offset, at most max (0: no limit), into b; *last
 * is 1 when they end the source. For standard input, blocks to read more;
 * -ESPIPE when offset is outside what is held (the server went backwards
 * past an acknowledged chunk, or ahead of what was sent), -EIO on a read
 * error. */
int source_body(struct source *s, uint64_t offset, uint64_t max, struct body *b, int *last);

/* The digest of a body's bytes, checksum_size(algo) bytes into out. */
int body_digest(const struct body *b, enum checksum_algo algo, unsigned char *out);

#endif
