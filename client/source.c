#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int source_open(struct source *s, const char *arg, uint64_t chunk) {
  *s = (struct source){.arg = arg, .fd = -1, .size = -1};
  if (strcmp(arg, "-") == 0) {
    s->is_stdin = 1;
    s->name = "stdin";
    s->fd = STDIN_FILENO;
    s->held_cap = chunk ? (size_t)chunk : STDIN_CHUNK_DEFAULT;
    s->held = malloc(s->held_cap);
    return s->held ? 0 : -ENOMEM;
  }
  const char *slash = strrchr(arg, '/');
  s->name = slash && slash[1] ? slash + 1 : arg;
  s->fd = open(arg, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) return -errno;
  if (fstat(s->fd, &s->st) < 0) {
    int err = -errno;
    close(s->fd);
    s->fd = -1;
    return err;
  }
  s->size = (int64_t)s->st.st_size;
  posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return 0;
}

void source_close(struct source *s) {
  if (s->fd >= 0 && !s->is_stdin) close(s->fd);
  free(s->held);
  s->held = NULL;
  s->fd = -1;
}

/* Replaces what is held by the next bytes of standard input, up to its
 * capacity, and finds out whether they are the last by reading one more. */
static int refill(struct source *s) {
  s->held_start += s->held_len;
  s->held_len = 0;
  if (s->has_peek) {
    s->held[s->held_len++] = s->peek;
    s->has_peek = 0;
  }
  if (s->held_len < s->held_cap) {
    ssize_t n = read_full(s->fd, s->held + s->held_len, s->held_cap - s->held_len);
    if (n < 0) return -EIO;
    s->held_len += (size_t)n;
    if (s->held_len < s->held_cap) s->eof = 1;
  }
  if (!s->eof) {
    ssize_t n = read_full(s->fd, &s->peek, 1);
    if (n < 0) return -EIO;
    if (n == 0) s->eof = 1;
    else s->has_peek = 1;
  }
  if (s->eof) s->size = (int64_t)(s->held_start + s->held_len);
  return 0;
}

int source_body(struct source *s, uint64_t offset, uint64_t max, struct body *b, int *last) {
  if (!s->is_stdin) {
    if (offset > (uint64_t)s->size) return -ESPIPE;
    uint64_t len = (uint64_t)s->size - offset;
    if (max && len > max) len = max;
    *b = (struct body){.fd = s->fd, .off = offset, .len = len};
    *last = offset + len == (uint64_t)s->size;
    return 0;
  }
  /* At the end of what is held (at first, nothing is): read on. */
  while (offset == s->held_start + s->held_len && !s->eof) {
    int rc = refill(s);
    if (rc < 0) return rc;
  }
  if (offset < s->held_start || offset > s->held_start + s->held_len) return -ESPIPE;
  uint64_t avail = s->held_start + s->held_len - offset;
  uint64_t len = max && avail > max ? max : avail;
  *b = (struct body){.fd = -1, .mem = s->held, .off = offset - s->held_start, .len = len};
  *last = s->eof && offset + len == s->held_start + s->held_len;
  return 0;
}

int body_digest(const struct body *b, enum checksum_algo algo, unsigned char *out) {
  struct checksum ck;
  int rc = checksum_init(&ck, algo);
  if (rc < 0) return rc;
  if (b->fd < 0) {
    rc = checksum_update(&ck, b->mem + b->off, (size_t)b->len);
  } else {
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    if (!buf) rc = -ENOMEM;
    for (uint64_t done = 0; buf && rc == 0 && done < b->len;) {
      size_t want = b->len - done < BUF ? (size_t)(b->len - done) : BUF;
      ssize_t n = pread(b->fd, buf, want, (off_t)(b->off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) rc = -EIO;
      else rc = checksum_update(&ck, buf, (size_t)n), done += (uint64_t)n;
    }
    free(buf);
  }
  if (rc < 0) {
    checksum_release(&ck);
    return rc;
  }
  return checksum_final(&ck, out);
}
