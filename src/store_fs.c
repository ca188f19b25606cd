/* Filesystem store (see store_fs.h). */
#include "store_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define META_MAX (STORE_METADATA_MAX + STORE_CONCAT_MAX + 1024)
#define WRITEBACK_STEP (8u << 20)

struct fs_store {
  struct store base;
  int uploads_fd; /* DIR/uploads */
  int alias_fd;   /* DIR/article */
  char boot_id[STORE_BOOT_ID_MAX + 1];
};

struct store_upload {
  struct fs_store *st;
  int fd;
  char key[STORE_KEY_LEN + 1];
  uint64_t wb_mark; /* writeback started up to here */
};

static const struct store_ops fs_ops;

/* ---------- metadata record ---------- */

int store_fs_format_info(const struct upload_info *in, char *buf, size_t len) {
  if ((in->metadata && strpbrk(in->metadata, "\r\n")) || (in->concat && strpbrk(in->concat, "\r\n")) ||
      strpbrk(in->owner, " \r\n"))
    return -EINVAL;
  int n = snprintf(buf, len,
                   "resumed-upload 1\nkey %s\nkind %s\nlength %" PRId64 "\noffset %" PRIu64
                   "\nfinished %d\ncreated %" PRId64 "\nexpires %" PRId64 "\nboot %s\n%s%s%s%s%s%s%s%s%s%s",
                   in->key, in->kind[0] ? in->kind : "article", in->length, in->offset,
                   in->finished ? 1 : 0, in->created, in->expires, in->boot_id[0] ? in->boot_id : "-",
                   in->unverified ? "unverified 1\n" : "",
                   in->owner[0] ? "owner " : "", in->owner, in->owner[0] ? "\n" : "",
                   in->metadata ? "metadata " : "", in->metadata ? in->metadata : "",
                   in->metadata ? "\n" : "", in->concat ? "concat " : "",
                   in->concat ? in->concat : "", in->concat ? "\n" : "");
  if (n < 0 || (size_t)n + 16 > len) return -ENAMETOOLONG;
  /* A checksum line makes a torn or foreign file detectable even where
   * rename atomicity was not honoured by the filesystem. */
  int m = snprintf(buf + n, len - (size_t)n, "crc %08" PRIx32 "\n", crc32_update(0, buf, (size_t)n));
  return n + m;
}

static int parse_i64_field(const char *v, size_t n, int64_t *out) {
  uint64_t u;
  if (n && v[0] == '-') {
    if (n == 2 && v[1] == '1') {
      *out = -1;
      return 0;
    }
    return -EINVAL;
  }
  if (parse_u64_strict(v, n, &u) < 0 || u > INT64_MAX) return -EINVAL;
  *out = (int64_t)u;
  return 0;
}

int store_fs_parse_info(const char *buf, size_t len, struct upload_info *info) {
  static const char magic[] = "resumed-upload 1\n";
  enum { F_KEY = 1, F_LEN = 2, F_OFF = 4, F_FIN = 8, F_CRE = 16, F_BOOT = 32, F_CRC = 64 };
  unsigned seen = 0;
  memset(info, 0, sizeof(*info));
  snprintf(info->kind, sizeof(info->kind), "article");
  if (len < sizeof(magic) - 1 || memcmp(buf, magic, sizeof(magic) - 1) != 0) goto bad;
  /* Records are text: a NUL byte is damage (and would cut a field short). */
  if (memchr(buf, 0, len)) goto bad;
  size_t pos = 0;
  while (pos < len) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    if (!nl) goto bad; /* torn: every record line ends in a newline */
    size_t ll = (size_t)(nl - line);
    size_t line_start = pos;
    pos += ll + 1;
    if (line_start == 0) continue; /* magic */
    const char *sp = memchr(line, ' ', ll);
    if (!sp) goto bad;
    size_t kl = (size_t)(sp - line);
    const char *v = sp + 1;
    size_t vl = ll - kl - 1;
#define KEY_IS(s) (kl == sizeof(s) - 1 && memcmp(line, s, kl) == 0)
    if (KEY_IS("key")) {
      if (vl != STORE_KEY_LEN) goto bad;
      memcpy(info->key, v, vl);
      info->key[vl] = 0;
      if (!store_key_valid(info->key)) goto bad;
      seen |= F_KEY;
    } else if (KEY_IS("length")) {
      if (parse_i64_field(v, vl, &info->length) < 0) goto bad;
      seen |= F_LEN;
    } else if (KEY_IS("offset")) {
      if (parse_u64_strict(v, vl, &info->offset) < 0) goto bad;
      seen |= F_OFF;
    } else if (KEY_IS("finished")) {
      if (vl != 1 || (v[0] != '0' && v[0] != '1')) goto bad;
      info->finished = v[0] == '1';
      seen |= F_FIN;
    } else if (KEY_IS("created")) {
      if (parse_i64_field(v, vl, &info->created) < 0) goto bad;
      seen |= F_CRE;
    } else if (KEY_IS("boot")) {
      if (vl > STORE_BOOT_ID_MAX) goto bad;
      memcpy(info->boot_id, v, vl);
      info->boot_id[vl] = 0;
      if (strcmp(info->boot_id, "-") == 0) info->boot_id[0] = 0;
      seen |= F_BOOT;
    } else if (KEY_IS("unverified")) {
      if (vl != 1 || v[0] != '1') goto bad;
      info->unverified = 1;
    } else if (KEY_IS("expires")) {
      if (parse_i64_field(v, vl, &info->expires) < 0 || info->expires < 0) goto bad;
    } else if (KEY_IS("owner")) {
      /* what store_fs_format_info refuses to write is refused here too: a
       * record loaded must be savable again */
      if (vl == 0 || vl > STORE_OWNER_MAX || memchr(v, ' ', vl) || memchr(v, '\r', vl)) goto bad;
      memcpy(info->owner, v, vl);
      info->owner[vl] = 0;
    } else if (KEY_IS("kind")) {
      if (vl == 0 || vl > STORE_KIND_MAX) goto bad;
      memcpy(info->kind, v, vl);
      info->kind[vl] = 0;
    } else if (KEY_IS("concat")) {
      if (info->concat || vl > STORE_CONCAT_MAX || memchr(v, '\r', vl)) goto bad;
      if (!(info->concat = strndup(v, vl))) goto nomem;
    } else if (KEY_IS("metadata")) {
      if (info->metadata || vl > STORE_METADATA_MAX || memchr(v, '\r', vl)) goto bad;
      if (!(info->metadata = malloc(vl + 1))) goto nomem;
      memcpy(info->metadata, v, vl);
      info->metadata[vl] = 0;
    } else if (KEY_IS("crc")) {
      uint32_t want = crc32_update(0, buf, line_start);
      char hex[9];
      snprintf(hex, sizeof(hex), "%08" PRIx32, want);
      if (vl != 8 || memcmp(v, hex, 8) != 0) goto bad;
      seen |= F_CRC;
      if (pos != len) goto bad; /* nothing may follow the checksum */
    }
    /* unknown fields are skipped: newer versions may add some */
#undef KEY_IS
  }
  if (seen != (F_KEY | F_LEN | F_OFF | F_FIN | F_CRE | F_BOOT | F_CRC)) goto bad;
  if (info->length >= 0 && info->offset > (uint64_t)info->length) goto bad;
  /* The engine records a finished upload's length and offset together, equal;
   * a record saying otherwise would have GET announce a Content-Length the
   * data does not have (2^64-1 for a length of -1). */
  if (info->finished && (info->length < 0 || (uint64_t)info->length != info->offset)) goto bad;
  return 0;
nomem:
  store_info_release(info);
  return -ENOMEM;
bad:
  store_info_release(info);
  return -EBADMSG;
}

static int read_info(struct fs_store *st, const char *key, struct upload_info *info) {
  char name[STORE_KEY_LEN + 8], buf[META_MAX];
  snprintf(name, sizeof(name), "%s.meta", key);
  int fd = openat(st->uploads_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  ssize_t n = read_full(fd, buf, sizeof(buf));
  int saved = errno;
  close(fd);
  if (n < 0) return -saved;
  if ((size_t)n == sizeof(buf)) return -EBADMSG;
  int rc = store_fs_parse_info(buf, (size_t)n, info);
  if (rc == 0 && strcmp(info->key, key) != 0) {
    store_info_release(info);
    return -EBADMSG;
  }
  return rc;
}

static int write_info(struct fs_store *st, const struct upload_info *info) {
  char buf[META_MAX], tmp[STORE_KEY_LEN + 16], name[STORE_KEY_LEN + 8];
  int n = store_fs_format_info(info, buf, sizeof(buf));
  if (n < 0) return n;
  snprintf(tmp, sizeof(tmp), ".%s.meta.tmp", info->key);
  snprintf(name, sizeof(name), "%s.meta", info->key);
  int fd = openat(st->uploads_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return -errno;
  int rc = 0;
  if (write_full(fd, buf, (size_t)n) < 0 || fsync(fd) < 0) rc = -errno;
  if (close(fd) < 0 && rc == 0) rc = -errno;
  if (rc == 0 && renameat(st->uploads_fd, tmp, st->uploads_fd, name) < 0) rc = -errno;
  if (rc == 0 && fsync(st->uploads_fd) < 0) rc = -errno;
  if (rc < 0) unlinkat(st->uploads_fd, tmp, 0);
  return rc;
}

/* ---------- operations ---------- */

static int fs_create(struct store *s, struct upload_info *info, struct store_upload **out) {
  struct fs_store *st = (struct fs_store *)s;
  struct store_upload *u = calloc(1, sizeof(*u));
  if (!u) return -ENOMEM;
  int rc;
  for (int tries = 0;; tries++) {
    if ((rc = store_new_key(info->key)) < 0) goto fail;
    u->fd = openat(st->uploads_fd, info->key,
                   O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (u->fd >= 0) break;
    if (errno != EEXIST || tries > 4) {
      rc = -errno;
      goto fail;
    }
  }
  snprintf(info->boot_id, sizeof(info->boot_id), "%s", st->boot_id);
  info->offset = 0;
  info->finished = 0;
  /* The metadata rename and the directory fsync in write_info also make the
   * new data file's directory entry durable. */
  if ((rc = write_info(st, info)) < 0) {
    close(u->fd);
    unlinkat(st->uploads_fd, info->key, 0);
    goto fail;
  }
  u->st = st;
  memcpy(u->key, info->key, sizeof(u->key));
  *out = u;
  return 0;
fail:
  free(u);
  return rc;
}

static int fs_open(struct store *s, const char *key, struct upload_info *info,
                   struct store_upload **out) {
  struct fs_store *st = (struct fs_store *)s;
  if (!store_key_valid(key)) return -ENOENT;
  int rc = read_info(st, key, info);
  if (rc < 0) return rc;
  struct store_upload *u = calloc(1, sizeof(*u));
  if (!u) {
    store_info_release(info);
    return -ENOMEM;
  }
  u->fd = openat(st->uploads_fd, key, (info->finished ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
  if (u->fd < 0) {
    rc = errno == ENOENT ? -ENOENT : -errno;
    store_info_release(info);
    free(u);
    return rc;
  }
  u->st = st;
  u->wb_mark = info->offset;
  memcpy(u->key, key, sizeof(u->key));
  *out = u;
  return 0;
}

static int64_t fs_write(struct store_upload *u, const struct iovec *iov, int iovcnt,
                        uint64_t offset) {
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  size_t done = 0;
  struct iovec local[16];
  if (iovcnt > 16) return -EINVAL;
  memcpy(local, iov, sizeof(*iov) * (size_t)iovcnt);
  struct iovec *v = local;
  int vc = iovcnt;
  while (done < total) {
    ssize_t n = pwritev(u->fd, v, vc, (off_t)(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return done ? (int64_t)done : -errno;
    }
    if (n == 0) return done ? (int64_t)done : -EIO;
    done += (size_t)n;
    while (vc && (size_t)n >= v->iov_len) {
      n -= (ssize_t)v->iov_len;
      v++, vc--;
    }
    if (vc) {
      v->iov_base = (char *)v->iov_base + n;
      v->iov_len -= (size_t)n;
    }
  }
  /* Start writeback early so the flush that acknowledges the upload finds
   * little left to do: disk and network then work in parallel. */
  uint64_t end = offset + done;
  if (end > u->wb_mark + WRITEBACK_STEP) {
    sync_file_range(u->fd, (off_t)u->wb_mark, (off_t)(end - u->wb_mark), SYNC_FILE_RANGE_WRITE);
    u->wb_mark = end;
  }
  return (int64_t)done;
}

static int64_t fs_read(struct store_upload *u, void *buf, size_t len, uint64_t offset) {
  for (;;) {
    ssize_t n = pread(u->fd, buf, len, (off_t)offset);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

static int fs_flush(struct store_upload *u) { return fdatasync(u->fd) < 0 ? -errno : 0; }

static int fs_save(struct store_upload *u, const struct upload_info *info) {
  struct upload_info copy = *info;
  snprintf(copy.boot_id, sizeof(copy.boot_id), "%s", u->st->boot_id);
  return write_info(u->st, &copy);
}

static int fs_truncate(struct store_upload *u, uint64_t len) {
  if (ftruncate(u->fd, (off_t)len) < 0) return -errno;
  if (u->wb_mark > len) u->wb_mark = len;
  return 0;
}

static void fs_close(struct store_upload *u) {
  if (!u) return;
  close(u->fd);
  free(u);
}

static int fs_remove(struct store *s, const char *key) {
  struct fs_store *st = (struct fs_store *)s;
  char name[STORE_KEY_LEN + 8];
  if (!store_key_valid(key)) return -ENOENT;
  snprintf(name, sizeof(name), "%s.meta", key);
  /* Metadata first: without it the data file is an orphan that recovery removes. */
  if (unlinkat(st->uploads_fd, name, 0) < 0 && errno != ENOENT) return -errno;
  if (unlinkat(st->uploads_fd, key, 0) < 0 && errno != ENOENT) return -errno;
  return fsync(st->uploads_fd) < 0 ? -errno : 0;
}

static int fs_list(struct store *s, int (*fn)(void *arg, const char *key), void *arg) {
  struct fs_store *st = (struct fs_store *)s;
  int fd = openat(st->uploads_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -errno;
  }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n != STORE_KEY_LEN + 5 || strcmp(e->d_name + STORE_KEY_LEN, ".meta") != 0) continue;
    char key[STORE_KEY_LEN + 1];
    memcpy(key, e->d_name, STORE_KEY_LEN);
    key[STORE_KEY_LEN] = 0;
    if (!store_key_valid(key)) continue;
    if ((rc = fn(arg, key)) != 0) break;
  }
  closedir(d);
  return rc < 0 ? rc : 0;
}

static int alias_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n != 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
  return 1;
}

static int fs_alias_get(struct store *s, const char *name, char key[STORE_KEY_LEN + 1]) {
  struct fs_store *st = (struct fs_store *)s;
  if (!alias_name_valid(name)) return -EINVAL;
  char buf[STORE_KEY_LEN + 2];
  ssize_t n = readlinkat(st->alias_fd, name, buf, sizeof(buf));
  if (n < 0) return -errno;
  if (n != STORE_KEY_LEN) return -EBADMSG;
  memcpy(key, buf, STORE_KEY_LEN);
  key[STORE_KEY_LEN] = 0;
  return store_key_valid(key) ? 0 : -EBADMSG;
}

static int fs_alias_set(struct store *s, const char *name, const char *key) {
  struct fs_store *st = (struct fs_store *)s;
  if (!alias_name_valid(name) || !store_key_valid(key)) return -EINVAL;
  char tmp[80];
  snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
  unlinkat(st->alias_fd, tmp, 0);
  /* symlink + rename replaces an alias atomically. */
  if (symlinkat(key, st->alias_fd, tmp) < 0) return -errno;
  if (renameat(st->alias_fd, tmp, st->alias_fd, name) < 0) {
    int rc = -errno;
    unlinkat(st->alias_fd, tmp, 0);
    return rc;
  }
  return fsync(st->alias_fd) < 0 ? -errno : 0;
}

static int fs_alias_del(struct store *s, const char *name) {
  struct fs_store *st = (struct fs_store *)s;
  if (!alias_name_valid(name)) return -EINVAL;
  if (unlinkat(st->alias_fd, name, 0) < 0) return errno == ENOENT ? 0 : -errno;
  return fsync(st->alias_fd) < 0 ? -errno : 0;
}

static void fs_free(struct store *s) {
  struct fs_store *st = (struct fs_store *)s;
  if (!st) return;
  close(st->uploads_fd);
  close(st->alias_fd);
  free(st);
}

static int fs_open_data(struct store *base, const char *key) {
  struct fs_store *st = (struct fs_store *)base;
  int fd = openat(st->uploads_fd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  return fd < 0 ? -errno : fd;
}

static const struct store_ops fs_ops = {
    .create = fs_create,
    .open = fs_open,
    .write = fs_write,
    .flush = fs_flush,
    .save = fs_save,
    .truncate = fs_truncate,
    .read = fs_read,
    .close = fs_close,
    .remove = fs_remove,
    .list = fs_list,
    .alias_get = fs_alias_get,
    .alias_set = fs_alias_set,
    .alias_del = fs_alias_del,
    .free = fs_free,
    .open_data = fs_open_data,
};

/* ---------- recovery ---------- */

struct recover_ctx {
  struct fs_store *st;
  uint64_t recovered;
};

static int recover_one(void *arg, const char *key) {
  struct recover_ctx *rc = arg;
  struct fs_store *st = rc->st;
  struct upload_info info;
  int err = read_info(st, key, &info);
  if (err < 0) {
    log_warn("store: %s.meta unreadable (%s); upload left aside", key, strerror(-err));
    return 0;
  }
  if (info.finished) {
    store_info_release(&info);
    return 0;
  }
  int fd = openat(st->uploads_fd, key, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    log_warn("store: %s has metadata but no data (%s); removed", key, strerror(errno));
    store_info_release(&info);
    fs_remove(&st->base, key);
    return 0;
  }
  struct stat sb;
  if (fstat(fd, &sb) < 0) goto out;
  uint64_t size = (uint64_t)sb.st_size;
  int same_boot = info.boot_id[0] && strcmp(info.boot_id, st->boot_id) == 0;
  if (size > info.offset && info.unverified) {
    /* A checksummed body was cut before its check: none of it counts. */
    log_warn("store: %s: dropping %" PRIu64 " unverified bytes", key, size - info.offset);
    if (ftruncate(fd, (off_t)info.offset) < 0) goto out;
  } else if (size > info.offset && !same_boot) {
    /* The page cache did not survive: bytes past the last flush may be
     * zeros or stale blocks, never trust them. */
    log_warn("store: %s: new boot, cutting %" PRIu64 " unsynced bytes", key, size - info.offset);
    if (ftruncate(fd, (off_t)info.offset) < 0) goto out;
  } else if (size != info.offset) {
    /* Same boot (process crash): what write() put in the page cache is real;
     * make it durable before anyone is told about it. A shorter file than
     * recorded means someone cut it: report what is there. */
    if (size < info.offset)
      log_warn("store: %s: data shorter than recorded (%" PRIu64 " < %" PRIu64 ")", key, size,
               info.offset);
    info.offset = size;
  }
  if (info.length >= 0 && info.offset > (uint64_t)info.length) {
    if (ftruncate(fd, info.length) < 0) goto out;
    info.offset = (uint64_t)info.length;
  }
  if (fdatasync(fd) < 0) goto out;
  info.unverified = 0;
  snprintf(info.boot_id, sizeof(info.boot_id), "%s", st->boot_id);
  if (write_info(st, &info) < 0) goto out;
  rc->recovered++;
out:
  close(fd);
  store_info_release(&info);
  return 0;
}

/* Removes temp files and data files whose creation never got metadata. */
static void sweep_uploads_dir(struct fs_store *st) {
  int fd = openat(st->uploads_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    if (n[0] == '.' && strstr(n, ".tmp")) {
      unlinkat(st->uploads_fd, n, 0);
      continue;
    }
    if (strlen(n) == STORE_KEY_LEN && store_key_valid(n)) {
      char meta[sizeof(e->d_name) + 8];
      struct stat sb;
      snprintf(meta, sizeof(meta), "%s.meta", n);
      if (fstatat(st->uploads_fd, meta, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        unlinkat(st->uploads_fd, n, 0);
    }
  }
  closedir(d);
}

/* Drops aliases that point nowhere or at finished uploads (a crash between
 * finishing an upload and removing its alias). */
static void sweep_aliases(struct fs_store *st) {
  int fd = openat(st->alias_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) continue;
    char key[STORE_KEY_LEN + 1];
    struct upload_info info;
    int keep = n[0] != '.' && fs_alias_get(&st->base, n, key) == 0 && read_info(st, key, &info) == 0;
    if (keep) {
      keep = !info.finished;
      store_info_release(&info);
    }
    if (!keep) unlinkat(st->alias_fd, n, 0);
  }
  closedir(d);
}

static int open_subdir(int dirfd, const char *name) {
  if (mkdirat(dirfd, name, 0750) < 0 && errno != EEXIST) return -errno;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int store_fs_open(struct store **out, const char *dir, const char *boot_id, uint64_t *recovered) {
  int rc;
  if (mkdir(dir, 0750) < 0 && errno != EEXIST) return -errno;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  struct fs_store *st = calloc(1, sizeof(*st));
  if (!st) {
    close(dfd);
    return -ENOMEM;
  }
  st->base.ops = &fs_ops;
  st->uploads_fd = st->alias_fd = -1;
  snprintf(st->boot_id, sizeof(st->boot_id), "%s", boot_id ? boot_id : "");
  if ((rc = open_subdir(dfd, "uploads")) < 0) goto fail;
  st->uploads_fd = rc;
  if ((rc = open_subdir(dfd, "article")) < 0) goto fail;
  st->alias_fd = rc;
  if (fsync(dfd) < 0) {
    rc = -errno;
    goto fail;
  }
  close(dfd);
  dfd = -1;

  sweep_uploads_dir(st);
  struct recover_ctx ctx = {st, 0};
  if ((rc = fs_list(&st->base, recover_one, &ctx)) < 0) goto fail;
  sweep_aliases(st);
  fsync(st->uploads_fd);
  fsync(st->alias_fd);
  if (recovered) *recovered = ctx.recovered;
  *out = &st->base;
  return 0;
fail:
  if (dfd >= 0) close(dfd);
  fs_free(&st->base);
  return rc;
}
