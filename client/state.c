#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util.h"

#define STATE_MAX (4 << 20) /* far beyond any real use; a bigger file is not ours */

int state_key(const char *abs_path, const struct stat *st, const char *endpoint, const char *protocol,
              char key[STATE_KEY_LEN + 1]) {
  char *text = NULL;
  int n = asprintf(&text, "resumed-upload 1%c%s%c%" PRIdMAX "%c%" PRIdMAX ".%09ld%c%s%c%s", 0, abs_path, 0,
                   (intmax_t)st->st_size, 0, (intmax_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, 0, endpoint, 0,
                   protocol);
  if (n < 0) return -ENOMEM;
  int rc = sha256_hex(text, (size_t)n, key);
  free(text);
  return rc;
}

static int mkdirs(const char *dir) {
  char path[4096];
  if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) return -ENAMETOOLONG;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(path, 0700) < 0 && errno != EEXIST) return -errno;
  return 0;
}

/* Opens and locks "<file>.lock"; the fd, or a negative errno. */
static int lock_state(const char *file, int how) {
  char path[4096];
  if (snprintf(path, sizeof(path), "%s.lock", file) >= (int)sizeof(path)) return -ENAMETOOLONG;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENOENT) {
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", file);
    int rc = mkdirs(dirname(dir));
    if (rc < 0) return rc;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }
  if (fd < 0) return -errno;
  while (flock(fd, how) < 0) {
    if (errno == EINTR) continue;
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

/* The whole state file, NUL-terminated (empty when missing). */
static int read_state(const char *file, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) return -errno;
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_size > STATE_MAX)) {
    close(fd);
    return -EFBIG;
  }
  size_t size = fd >= 0 ? (size_t)st.st_size : 0;
  char *buf = malloc(size + 1);
  if (!buf) {
    if (fd >= 0) close(fd);
    return -ENOMEM;
  }
  ssize_t n = size ? read_full(fd, buf, size) : 0;
  if (fd >= 0) close(fd);
  if (n < 0) {
    free(buf);
    return -EIO;
  }
  buf[n] = 0;
  *out = buf;
  *len = (size_t)n;
  return 0;
}

/* A line "<key> <url>" for key: a pointer to its url and the url's length. */
static const char *find(const char *text, const char *key, size_t *url_len, const char **line_start,
                        const char **line_end) {
  for (const char *p = text; *p;) {
    const char *eol = strchr(p, '\n');
    if (!eol) eol = p + strlen(p);
    if ((size_t)(eol - p) > STATE_KEY_LEN + 1 && p[STATE_KEY_LEN] == ' ' &&
        memcmp(p, key, STATE_KEY_LEN) == 0) {
      *url_len = (size_t)(eol - p) - STATE_KEY_LEN - 1;
      if (line_start) *line_start = p;
      if (line_end) *line_end = *eol ? eol + 1 : eol;
      return p + STATE_KEY_LEN + 1;
    }
    p = *eol ? eol + 1 : eol;
  }
  return NULL;
}

int state_lookup(const char *file, const char *key, char *url, size_t cap) {
  int lock = lock_state(file, LOCK_SH);
  if (lock < 0) return lock;
  char *text;
  size_t len, ulen;
  int rc = read_state(file, &text, &len);
  close(lock);
  if (rc < 0) return rc;
  const char *u = find(text, key, &ulen, NULL, NULL);
  if (!u) rc = -ENOENT;
  else if (ulen >= cap) rc = -ENAMETOOLONG;
  else memcpy(url, u, ulen), url[ulen] = 0;
  free(text);
  return rc;
}

/* Rewrites the file without key's line and, when url is given, with a new one. */
static int update(const char *file, const char *key, const char *url) {
  int lock = lock_state(file, LOCK_EX);
  if (lock < 0) return lock;
  char *text = NULL, tmp[4096];
  size_t len, ulen;
  FILE *f = NULL;
  int rc = read_state(file, &text, &len);
  if (rc < 0) goto out;
  const char *ls = NULL, *le = NULL;
  int had = find(text, key, &ulen, &ls, &le) != NULL;
  if (!had && !url) goto out;
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp)) {
    rc = -ENAMETOOLONG;
    goto out;
  }
  if (!(f = fopen(tmp, "we"))) {
    rc = -errno;
    goto out;
  }
  if (had) {
    fwrite(text, 1, (size_t)(ls - text), f);
    fputs(le, f);
  } else {
    fputs(text, f);
  }
  if (len && !had && text[len - 1] != '\n') fputc('\n', f);
  if (url) fprintf(f, "%s %s\n", key, url);
  /* The new contents are durable before they replace the old. */
  if (fflush(f) != 0 || fdatasync(fileno(f)) < 0) rc = -errno;
  if (fclose(f) != 0 && rc == 0) rc = -errno;
  f = NULL;
  if (rc == 0 && rename(tmp, file) < 0) rc = -errno;
  if (rc < 0) unlink(tmp);
out:
  if (f) fclose(f);
  free(text);
  close(lock);
  return rc;
}

int state_store(const char *file, const char *key, const char *url) {
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f) return -EINVAL;
  return update(file, key, url);
}

int state_remove(const char *file, const char *key) {
  return update(file, key, NULL);
}
