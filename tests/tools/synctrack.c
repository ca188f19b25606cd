/* synctrack: an LD_PRELOAD shim that records what a process made durable.
 *
 * For every fsync, fdatasync, syncfs and sync_file_range (and every
 * ftruncate, which can make a file shorter than what was synced), the file's
 * size and path are taken BEFORE the real call (fstat + readlink of
 * /proc/self/fd/N): the bytes present when a successful sync starts are the
 * ones it made durable. One line per call is appended, after the call so that
 * it can carry the result, to the file named by SYNCTRACK_LOG:
 *
 *   <op> <rc> <size> <seq> <path>[\t<extra>]\n
 *
 * op: fsync fdatasync syncfs sfr (sync_file_range) ftruncate renameat.
 * rc: 0, or the errno of a failed call. size: the file's size when the call
 * began; for ftruncate the new length; -1 for renameat. seq: a process-wide
 * counter, taken when a sync BEGINS and when a rename or ftruncate has ENDED,
 * so that a reader can tell which renames an fsync of their directory covers
 * (those with a smaller seq). For renameat, path is the new name (its
 * directory's path joined with it), and extra says what that name held
 * before, which a power cut before the directory's fsync may bring back:
 * "none", "link:<target>" for a symlink, "copy:<file>" for a regular file
 * whose bytes were copied to <file> (with SYNCTRACK_PREV_DIR set; else "?").
 * For sfr, extra is "flags=N" (sync_file_range makes nothing durable on its
 * own: it flushes no metadata and no disk cache).
 *
 * A process killed during a call writes no line for it: a sync then counts as
 * not done, which is one of the outcomes a power cut allows.
 *
 * The log is opened once with O_APPEND, and each line goes out in one write(),
 * so lines from libuv's thread-pool threads never interleave.
 *
 * SYNCTRACK_BREAK=fdatasync turns fdatasync into a no-op that returns 0 and
 * logs nothing: a server that acknowledges bytes it never made durable.
 * SYNCTRACK_BREAK=dirfsync does the same to fsync of a directory: a server
 * whose renames may all be lost. The crash-trial self-test runs the server so
 * and expects violations.
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

#define PREV_MAX (1 << 20) /* larger files are not copied ("?") */

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static int (*real_sync_file_range)(int, off64_t, off64_t, unsigned int);
static int (*real_ftruncate)(int, off_t);
static int (*real_renameat)(int, const char *, int, const char *);
static int log_fd = -1;
static int break_fdatasync, break_dirfsync;
static const char *prev_dir;
static unsigned long seq_counter, prev_counter;
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
  break_dirfsync = brk && strcmp(brk, "dirfsync") == 0;
  prev_dir = getenv("SYNCTRACK_PREV_DIR");
  if (prev_dir && !*prev_dir) prev_dir = NULL;
}

static unsigned long next_seq(void) { return __atomic_add_fetch(&seq_counter, 1, __ATOMIC_SEQ_CST); }

struct probe {
  int64_t size;
  unsigned long seq;
  char path[PATH_MAX];
  char extra[PATH_MAX + 16];
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
  p->extra[0] = 0;
}

static void record(const char *op, int rc_errno, const struct probe *p) {
  if (log_fd < 0) return;
  char line[2 * PATH_MAX + 128];
  int n = snprintf(line, sizeof(line), "%s %d %lld %lu %s%s%s\n", op, rc_errno, (long long)p->size,
                   p->seq, p->path, p->extra[0] ? "\t" : "", p->extra);
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
  p.seq = next_seq();                            \
  errno = saved;                                 \
  int rc = real(__VA_ARGS__);                    \
  int err = rc < 0 ? errno : 0;                  \
  record(name, err, &p);                         \
  errno = err ? err : saved;                     \
  return rc;

int fsync(int fd) {
  pthread_once(&once, init);
  struct stat sb;
  if (break_dirfsync && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
  WRAP_SYNC("fsync", real_fsync, fd)
}

int syncfs(int fd) { WRAP_SYNC("syncfs", real_syncfs, fd) }

int fdatasync(int fd) {
  pthread_once(&once, init);
  if (break_fdatasync) return 0;
  WRAP_SYNC("fdatasync", real_fdatasync, fd)
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
  pthread_once(&once, init);
  struct probe p;
  int saved = errno;
  probe(fd, &p);
  p.seq = next_seq();
  snprintf(p.extra, sizeof(p.extra), "flags=%u", flags);
  errno = saved;
  int rc = real_sync_file_range(fd, offset, nbytes, flags);
  int err = rc < 0 ? errno : 0;
  record("sfr", err, &p);
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
  p.size = (int64_t)length;
  p.seq = next_seq();
  record("ftruncate", err, &p);
  errno = err ? err : saved;
  return rc;
}

/* What dirfd/name holds now, into p->extra (see the header). */
static void describe_previous(int dirfd, const char *name, struct probe *p) {
  struct stat sb;
  if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
    snprintf(p->extra, sizeof(p->extra), "%s", errno == ENOENT ? "none" : "?");
    return;
  }
  if (S_ISLNK(sb.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n < 0) {
      snprintf(p->extra, sizeof(p->extra), "?");
      return;
    }
    target[n] = 0;
    snprintf(p->extra, sizeof(p->extra), "link:%s", target);
    return;
  }
  snprintf(p->extra, sizeof(p->extra), "?");
  if (!prev_dir || !S_ISREG(sb.st_mode) || sb.st_size > PREV_MAX) return;
  char copy[PATH_MAX], *buf = malloc((size_t)sb.st_size + 1);
  if (!buf) return;
  snprintf(copy, sizeof(copy), "%s/%d-%lu", prev_dir, (int)getpid(),
           __atomic_add_fetch(&prev_counter, 1, __ATOMIC_SEQ_CST));
  int in = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ssize_t n = in >= 0 ? read(in, buf, (size_t)sb.st_size + 1) : -1;
  if (in >= 0 && out >= 0 && n >= 0 && n <= sb.st_size && write(out, buf, (size_t)n) == n)
    snprintf(p->extra, sizeof(p->extra), "copy:%s", copy);
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  free(buf);
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
  describe_previous(newdirfd, newpath, &p);
  errno = saved;
  int rc = real_renameat(olddirfd, oldpath, newdirfd, newpath);
  int err = rc < 0 ? errno : 0;
  p.size = -1;
  p.seq = next_seq();
  record("renameat", err, &p);
  errno = err ? err : saved;
  return rc;
}
