/* synctrack: an LD_PRELOAD shim that records what a process made durable.
 *
 * For every fsync, fdatasync, syncfs and sync_file_range (and every
 * ftruncate, which can make a file shorter than what was synced), the file's
 * size and path are taken BEFORE the real call (fstat + readlink of
 * /proc/self/fd/N): the bytes present when a successful sync starts are the
 * ones it made durable. One line per call is appended, after the call so that
 * it can carry the result, to the file named by SYNCTRACK_LOG:
 *
 *   <op> <rc> <size> <path>\n     (op: fsync fdatasync syncfs sfr ftruncate)
 *
 * and for every renameat, "renameat <rc> -1 <new path>" (the directory's
 * path joined with the new name), so that a reader can tell whether a rename
 * was followed by an fsync of its directory.
 *
 * rc is 0 or the errno of a failed call; for ftruncate, size is the new
 * length; for sfr (sync_file_range) it is the file size, and the flags
 * follow the path as " flags=N" (sync_file_range never makes anything durable
 * on its own: it flushes no metadata and no disk cache). A process killed
 * during a sync writes no line for it: that sync counts as not done, which is
 * one of the outcomes a power cut allows.
 *
 * The log is opened once with O_APPEND, and each line goes out in one write(),
 * so lines from libuv's thread-pool threads never interleave.
 *
 * SYNCTRACK_BREAK=fdatasync turns fdatasync into a no-op that returns 0 and
 * logs nothing: a server that acknowledges bytes it never made durable. The
 * crash-trial self-test runs the server so and expects violations.
 *
 * Build: cc -shared -fPIC -o synctrack.so synctrack.c -ldl -lpthread */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_ftruncate)(int, off_t);
static int (*real_renameat)(int, const char *, int, const char *);
static int log_fd = -1;
static int break_fdatasync;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  real_syncfs = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
  real_sync_file_range =
      (int (*)(int, off64_t, off64_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
  real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
  real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
  const char *path = getenv("SYNCTRACK_LOG");
  if (path && *path)
    log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const char *brk = getenv("SYNCTRACK_BREAK");
  break_fdatasync = brk && strcmp(brk, "fdatasync") == 0;
}

struct probe {
  int64_t size;
  char path[PATH_MAX];
};

/* Size and path of fd now; -1 and "?" when they cannot be had. */
static void probe(int fd, struct probe *p) {
  struct stat sb;
  char link[64];
  p->size = fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, p->path, sizeof(p->path) - 1);
  if (n < 0) n = 0, p->path[n++] = '?';
  p->path[n] = 0;
}

static void record(const char *op, int rc_errno, int64_t size, const struct probe *p,
                   const char *extra) {
  if (log_fd < 0) return;
  char line[PATH_MAX + 128];
  int n = snprintf(line, sizeof(line), "%s %d %lld %s%s\n", op, rc_errno, (long long)size,
                   p->path, extra ? extra : "");
  if (n <= 0) return;
  if ((size_t)n >= sizeof(line)) n = (int)sizeof(line) - 1, line[n - 1] = '\n';
  ssize_t w = write(log_fd, line, (size_t)n);
  (void)w; /* nothing sensible to do from inside someone else's fsync */
}

/* The wrappers keep errno as the real call left it. */
#define WRAP_SYNC(name, real, ...)               \
  pthread_once(&once, init);                     \
  struct probe p;                                \
  int saved = errno;                             \
  probe(fd, &p);                                 \
  errno = saved;                                 \
  int rc = real(__VA_ARGS__);                    \
  int err = rc < 0 ? errno : 0;                  \
  record(name, err, p.size, &p, NULL);           \
  errno = err ? err : saved;                     \
  return rc;

int fsync(int fd) { WRAP_SYNC("fsync", real_fsync, fd) }

int syncfs(int fd) { WRAP_SYNC("syncfs", real_syncfs, fd) }

int fdatasync(int fd) {
  pthread_once(&once, init);
  if (break_fdatasync) return 0;
  WRAP_SYNC("fdatasync", real_fdatasync, fd)
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  pthread_once(&once, init);
  struct probe p;
  char extra[32];
  int saved = errno;
  probe(fd, &p);
  errno = saved;
  int rc = real_sync_file_range(fd, offset, nbytes, flags);
  int err = rc < 0 ? errno : 0;
  snprintf(extra, sizeof(extra), " flags=%u", flags);
  record("sfr", err, p.size, &p, extra);
  errno = err ? err : saved;
  return rc;
}

int ftruncate(int fd, off_t length) {
  pthread_once(&once, init);
  struct probe p;
  int saved = errno;
  probe(fd, &p);
  errno = saved;
  int rc = real_ftruncate(fd, length);
  int err = rc < 0 ? errno : 0;
  record("ftruncate", err, (int64_t)length, &p, NULL);
  errno = err ? err : saved;
  return rc;
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
  pthread_once(&once, init);
  struct probe p;
  int saved = errno;
  if (newpath[0] == '/') {
    snprintf(p.path, sizeof(p.path), "%s", newpath);
  } else if (newdirfd == AT_FDCWD) {
    snprintf(p.path, sizeof(p.path), "./%s", newpath);
  } else {
    struct probe d;
    probe(newdirfd, &d);
    snprintf(p.path, sizeof(p.path), "%.*s/%s", PATH_MAX / 2, d.path, newpath);
  }
  errno = saved;
  int rc = real_renameat(olddirfd, oldpath, newdirfd, newpath);
  int err = rc < 0 ? errno : 0;
  record("renameat", err, -1, &p, NULL);
  errno = err ? err : saved;
  return rc;
}
