/* faultfs: an LD_PRELOAD shim that makes the write-side file calls of a
 * process fail on demand, to test how the server handles EIO and ENOSPC
 * without a broken disk.
 *
 *   LD_PRELOAD=build/tools/faultfs.so FAULTFS_CTL=/path/ctl build/resumed ...
 *
 * The control file holds one line:
 *   off                          no faults (also: file missing or empty)
 *   <errno> <substring> [ops]    fail calls on fds whose path contains substring
 * errno: eio, enospc, edquot, erofs; ops: a comma list of write (write,
 * pwrite, writev, pwritev and their 64/2 variants), sync (fsync, fdatasync),
 * trunc (ftruncate); default all three.  A fd's path is readlink of
 * /proc/self/fd/N, so a socket or pipe ("socket:[...]") matches only a
 * substring chosen to match it.
 *
 * The control file is read at most every 50 ms (a call in between uses the
 * cached mode), so a change takes effect within ~50 ms.  Every injected
 * failure appends "<call> <path>" to FAULTFS_CTL.hits, so a test can tell
 * that its fault really happened.  Thread-safe: the mode is guarded by a
 * mutex (the server writes from libuv's thread pool and its loop thread). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { OP_WRITE = 1, OP_SYNC = 2, OP_TRUNC = 4, OP_ALL = 7 };
#define RELOAD_NS (50 * 1000 * 1000LL)

struct fault_mode {
  int err; /* 0: off */
  unsigned ops;
  char sub[512];
};

static pthread_mutex_t mode_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_mode mode;
static int64_t next_load_ns; /* 0: never loaded */

/* The real functions, looked up once; a racing first lookup from two threads
 * stores the same value, and the atomics keep that well-defined. */
#define REAL(name)                                                    \
  static __typeof__(name) *real_##name##_p;                           \
  static __typeof__(name) *real_##name(void) {                        \
    __typeof__(name) *f = __atomic_load_n(&real_##name##_p, __ATOMIC_ACQUIRE); \
    if (!f) {                                                         \
      f = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);                \
      __atomic_store_n(&real_##name##_p, f, __ATOMIC_RELEASE);        \
    }                                                                 \
    return f;                                                         \
  }

REAL(write)
REAL(pwrite)
REAL(pwrite64)
REAL(writev)
REAL(pwritev)
REAL(pwritev64)
REAL(pwritev2)
REAL(pwritev64v2)
REAL(fsync)
REAL(fdatasync)
REAL(ftruncate)
REAL(ftruncate64)

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int errno_by_name(const char *s) {
  if (strcmp(s, "eio") == 0) return EIO;
  if (strcmp(s, "enospc") == 0) return ENOSPC;
  if (strcmp(s, "edquot") == 0) return EDQUOT;
  if (strcmp(s, "erofs") == 0) return EROFS;
  return 0;
}

static unsigned ops_by_list(char *s) {
  unsigned ops = 0;
  for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (strcmp(t, "write") == 0) ops |= OP_WRITE;
    else if (strcmp(t, "sync") == 0) ops |= OP_SYNC;
    else if (strcmp(t, "trunc") == 0) ops |= OP_TRUNC;
    else if (strcmp(t, "all") == 0) ops |= OP_ALL;
  }
  return ops;
}

/* Called with mode_lock held. open/read/close are not wrapped here, so
 * this never re-enters the shim. An unreadable or malformed file is "off":
 * a test that fails to switch a fault on then sees no hits. */
static void load_mode(void) {
  struct fault_mode m = {0};
  const char *ctl = getenv("FAULTFS_CTL");
  char buf[1024];
  ssize_t n = -1;
  if (ctl) {
    int fd = open(ctl, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      n = read(fd, buf, sizeof(buf) - 1);
      close(fd);
    }
  }
  if (n > 0) {
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    char name[32] = "", sub[sizeof(m.sub)] = "", ops[128] = "";
    int k = sscanf(buf, "%31s %511s %127s", name, sub, ops);
    if (k >= 2 && (m.err = errno_by_name(name)) != 0) {
      snprintf(m.sub, sizeof(m.sub), "%s", sub);
      m.ops = k == 3 ? ops_by_list(ops) : OP_ALL;
    }
  }
  mode = m;
}

static void record_hit(const char *call, const char *path) {
  const char *ctl = getenv("FAULTFS_CTL");
  char name[4096], line[4096 + 64];
  if (!ctl) return;
  snprintf(name, sizeof(name), "%s.hits", ctl);
  int len = snprintf(line, sizeof(line), "%s %s\n", call, path);
  if (len < 0 || len >= (int)sizeof(line)) return;
  int fd = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  /* The real write: this fd's path could match the substring. */
  if (real_write()(fd, line, (size_t)len) < 0) { /* nothing to do: a lost hit line */
  }
  close(fd);
}

/* 1 with errno set when this call must fail, else 0 (errno untouched). */
static int inject(int fd, unsigned op, const char *call) {
  struct fault_mode m;
  if (!getenv("FAULTFS_CTL")) return 0;
  pthread_mutex_lock(&mode_lock);
  int64_t now = now_ns();
  if (next_load_ns == 0 || now >= next_load_ns) {
    load_mode();
    next_load_ns = now + RELOAD_NS;
  }
  m.err = mode.err;
  m.ops = mode.ops;
  if (m.err) memcpy(m.sub, mode.sub, sizeof(m.sub));
  pthread_mutex_unlock(&mode_lock);
  if (!m.err || !(m.ops & op)) return 0;

  int saved = errno;
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) {
    errno = saved;
    return 0;
  }
  path[n] = 0;
  if (!strstr(path, m.sub)) {
    errno = saved;
    return 0;
  }
  record_hit(call, path);
  errno = m.err;
  return 1;
}

ssize_t write(int fd, const void *buf, size_t len) {
  if (inject(fd, OP_WRITE, "write")) return -1;
  return real_write()(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off) {
  if (inject(fd, OP_WRITE, "pwrite")) return -1;
  return real_pwrite()(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off) {
  if (inject(fd, OP_WRITE, "pwrite64")) return -1;
  return real_pwrite64()(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  if (inject(fd, OP_WRITE, "writev")) return -1;
  return real_writev()(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  if (inject(fd, OP_WRITE, "pwritev")) return -1;
  return real_pwritev()(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
  if (inject(fd, OP_WRITE, "pwritev64")) return -1;
  return real_pwritev64()(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  if (inject(fd, OP_WRITE, "pwritev2")) return -1;
  return real_pwritev2()(fd, iov, cnt, off, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags) {
  if (inject(fd, OP_WRITE, "pwritev64v2")) return -1;
  return real_pwritev64v2()(fd, iov, cnt, off, flags);
}

int fsync(int fd) {
  if (inject(fd, OP_SYNC, "fsync")) return -1;
  return real_fsync()(fd);
}

int fdatasync(int fd) {
  if (inject(fd, OP_SYNC, "fdatasync")) return -1;
  return real_fdatasync()(fd);
}

int ftruncate(int fd, off_t len) {
  if (inject(fd, OP_TRUNC, "ftruncate")) return -1;
  return real_ftruncate()(fd, len);
}

int ftruncate64(int fd, off64_t len) {
  if (inject(fd, OP_TRUNC, "ftruncate64")) return -1;
  return real_ftruncate64()(fd, len);
}
