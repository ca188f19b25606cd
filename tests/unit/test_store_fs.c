/* Filesystem store: metadata record, operations, recovery rules. */
#include "store_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "util.h"

static char tmpdir[64];

static void rmrf(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "rm failed\n");
}

static void fresh_dir(void) {
  if (tmpdir[0]) rmrf(tmpdir);
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/resumed-unit-XXXXXX");
  CHECK(mkdtemp(tmpdir) != NULL);
}

static off_t file_size(const char *key) {
  char p[256];
  struct stat sb;
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, key);
  return stat(p, &sb) == 0 ? sb.st_size : -1;
}

static int path_exists(const char *rel) {
  char p[256];
  struct stat sb;
  snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
  return lstat(p, &sb) == 0;
}

static void append_raw(const char *key, const char *bytes, size_t n) {
  char p[256];
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, key);
  int fd = open(p, O_WRONLY | O_APPEND);
  CHECK(fd >= 0);
  CHECK(write(fd, bytes, n) == (ssize_t)n);
  close(fd);
}

static void test_info_roundtrip(void) {
  struct upload_info a = {0}, b;
  snprintf(a.key, sizeof(a.key), "0123456789abcdef0123456789abcdef");
  a.length = 1000;
  a.offset = 300;
  a.finished = 0;
  a.created = 1700000000;
  snprintf(a.boot_id, sizeof(a.boot_id), "abc-123");
  char buf[1024];
  int n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(n > 0);
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) == 0);
  CHECK(strcmp(a.key, b.key) == 0 && b.length == 1000 && b.offset == 300 && b.finished == 0);
  CHECK(b.created == 1700000000 && strcmp(b.boot_id, "abc-123") == 0);
  CHECK(strcmp(b.kind, "article") == 0 && b.metadata == NULL);
  a.length = -1;
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) == 0 && b.length == -1);
  /* a tus upload's kind and metadata survive; a newline in metadata is refused */
  snprintf(a.kind, sizeof(a.kind), "tus");
  a.metadata = "filename d29ybGQ=,empty";
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) == 0);
  CHECK(strcmp(b.kind, "tus") == 0 && b.metadata && strcmp(b.metadata, a.metadata) == 0);
  store_info_release(&b);
  a.metadata = "a YQ==\nkey ffff";
  CHECK(store_fs_format_info(&a, buf, sizeof(buf)) < 0);
}

static void test_info_rejects_damage(void) {
  struct upload_info a = {0}, b;
  snprintf(a.key, sizeof(a.key), "0123456789abcdef0123456789abcdef");
  a.length = 10;
  a.offset = 5;
  char buf[1024];
  int n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, 0, &b) < 0);               /* empty */
  for (int cut = 1; cut < n; cut += 7)                      /* torn */
    CHECK(store_fs_parse_info(buf, (size_t)cut, &b) < 0);
  char bad[1024];
  memcpy(bad, buf, (size_t)n);
  char *off = strstr(bad, "offset 5");
  off[7] = '4'; /* flipped digit: checksum catches it */
  CHECK(store_fs_parse_info(bad, (size_t)n, &b) < 0);
  CHECK(store_fs_parse_info("garbage\n", 8, &b) < 0);
  a.offset = 11; /* beyond length */
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) < 0);
}

/* A finished upload's length is its offset (fuzz_meta_file found records
 * saying otherwise accepted, and GET would announce that length). */
static void test_info_finished_length_is_offset(void) {
  struct upload_info a = {0}, b;
  char buf[1024];
  snprintf(a.key, sizeof(a.key), "0123456789abcdef0123456789abcdef");
  a.finished = 1;
  a.offset = 5;
  a.length = 5;
  int n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) == 0 && b.finished && b.length == 5);
  a.length = 6; /* short of its length */
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) < 0);
  a.length = -1; /* finished without a length */
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(store_fs_parse_info(buf, (size_t)n, &b) < 0);
  a.finished = 0; /* unfinished: both are fine */
  CHECK(store_fs_parse_info(buf, (size_t)store_fs_format_info(&a, buf, sizeof(buf)), &b) == 0);
  a.length = 6;
  CHECK(store_fs_parse_info(buf, (size_t)store_fs_format_info(&a, buf, sizeof(buf)), &b) == 0);
}

/* A record with a valid checksum whose text the server could not have
 * written: a NUL byte (it cut the kind short, fuzz_meta_file), a CR in a
 * field store_fs_format_info refuses, so that every later save would fail. */
static void test_info_rejects_unwritable_text(void) {
  static const char head[] = "resumed-upload 1\nkey 0123456789abcdef0123456789abcdef\nlength 10\n"
                             "offset 3\nfinished 0\ncreated 1700000000\nboot -\n";
  static const struct {
    const char *line;
    size_t len;
    int ok;
  } cases[] = {
      {"kind tus\n", 9, 1},
      {"kind \0\0tus\n", 11, 0},
      {"owner a:1\n", 10, 1},
      {"owner a:1\r\n", 11, 0},
      {"metadata a YQ==\n", 16, 1},
      {"metadata a YQ==\r\n", 17, 0},
      {"concat partial\n", 15, 1},
      {"concat partial\r\n", 16, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[512];
    struct upload_info b;
    size_t n = sizeof(head) - 1;
    memcpy(buf, head, n);
    memcpy(buf + n, cases[i].line, cases[i].len);
    n += cases[i].len;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "crc %08x\n", (unsigned)crc32_update(0, buf, n));
    int rc = store_fs_parse_info(buf, n, &b);
    if (cases[i].ok) {
      CHECK(rc == 0);
      if (rc == 0) store_info_release(&b);
    } else {
      CHECK(rc == -EBADMSG);
    }
  }
}

static void test_create_write_open(void) {
  fresh_dir();
  struct store *st;
  uint64_t rec;
  CHECK(store_fs_open(&st, tmpdir, "boot-1", &rec) == 0);
  struct upload_info info = {.length = 10};
  struct store_upload *su;
  CHECK(st->ops->create(st, &info, &su) == 0);
  CHECK(store_key_valid(info.key));
  struct iovec iov[2] = {{"hello", 5}, {"world", 5}};
  CHECK(st->ops->write(su, iov, 2, 0) == 10);
  CHECK(st->ops->flush(su) == 0);
  info.offset = 10;
  CHECK(st->ops->save(su, &info) == 0);
  st->ops->close(su);
  struct upload_info got;
  CHECK(st->ops->open(st, info.key, &got, &su) == 0);
  CHECK(got.offset == 10 && got.length == 10 && strcmp(got.boot_id, "boot-1") == 0);
  st->ops->close(su);
  CHECK(file_size(info.key) == 10);
  CHECK(st->ops->open(st, "ffffffffffffffffffffffffffffffff", &got, &su) == -ENOENT);
  CHECK(st->ops->open(st, "../../etc/passwd", &got, &su) == -ENOENT);
  CHECK(st->ops->remove(st, info.key) == 0);
  CHECK(file_size(info.key) == -1);
  st->ops->free(st);
}

static void test_alias(void) {
  fresh_dir();
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "b", NULL) == 0);
  const char *name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  char key[STORE_KEY_LEN + 1];
  CHECK(st->ops->alias_get(st, name, key) == -ENOENT);
  CHECK(st->ops->alias_set(st, name, "0123456789abcdef0123456789abcdef") == 0);
  CHECK(st->ops->alias_get(st, name, key) == 0 && strcmp(key, "0123456789abcdef0123456789abcdef") == 0);
  CHECK(st->ops->alias_set(st, name, "fedcba9876543210fedcba9876543210") == 0); /* replace */
  CHECK(st->ops->alias_get(st, name, key) == 0 && strcmp(key, "fedcba9876543210fedcba9876543210") == 0);
  CHECK(st->ops->alias_set(st, "../x", "fedcba9876543210fedcba9876543210") < 0);
  CHECK(st->ops->alias_del(st, name) == 0);
  CHECK(st->ops->alias_get(st, name, key) == -ENOENT);
  st->ops->free(st);
}

/* Creates an upload with `synced` bytes recorded durably, then appends `tail`
 * raw bytes behind the store's back (what a crash leaves in the page cache). */
static void make_upload(const char *boot, size_t synced, size_t tail, char key[33]) {
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, boot, NULL) == 0);
  struct upload_info info = {.length = -1};
  struct store_upload *su;
  CHECK(st->ops->create(st, &info, &su) == 0);
  char buf[4096];
  memset(buf, 'x', sizeof(buf));
  struct iovec iov = {buf, synced};
  CHECK(st->ops->write(su, &iov, 1, 0) == (int64_t)synced);
  CHECK(st->ops->flush(su) == 0);
  info.offset = synced;
  CHECK(st->ops->save(su, &info) == 0);
  st->ops->close(su);
  st->ops->free(st);
  append_raw(info.key, buf, tail);
  memcpy(key, info.key, 33);
}

static uint64_t reopen_offset(const char *boot, const char *key, uint64_t *recovered) {
  struct store *st;
  struct upload_info got = {0};
  struct store_upload *su;
  CHECK(store_fs_open(&st, tmpdir, boot, recovered) == 0);
  CHECK(st->ops->open(st, key, &got, &su) == 0);
  st->ops->close(su);
  st->ops->free(st);
  store_info_release(&got);
  return got.offset;
}

static void test_recover_same_boot_keeps_tail(void) {
  fresh_dir();
  char key[33];
  uint64_t rec = 0;
  make_upload("boot-A", 1000, 234, key);
  CHECK_EQ_U64(reopen_offset("boot-A", key, &rec), 1234);
  CHECK_EQ_U64(rec, 1);
  CHECK(file_size(key) == 1234);
}

static void test_recover_new_boot_cuts_tail(void) {
  fresh_dir();
  char key[33];
  make_upload("boot-A", 1000, 234, key);
  CHECK_EQ_U64(reopen_offset("boot-B", key, NULL), 1000);
  CHECK(file_size(key) == 1000);
  /* and the new boot is recorded: a later crash in this boot keeps its tail */
  append_raw(key, "yy", 2);
  CHECK_EQ_U64(reopen_offset("boot-B", key, NULL), 1002);
}

static void test_recover_unverified_cuts_tail(void) {
  fresh_dir();
  /* same boot, but the tail awaited a checksum when the process died */
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "boot-A", NULL) == 0);
  struct upload_info info = {.length = -1};
  struct store_upload *su;
  CHECK(st->ops->create(st, &info, &su) == 0);
  struct iovec iov = {"0123456789", 10};
  CHECK(st->ops->write(su, &iov, 1, 0) == 10);
  CHECK(st->ops->flush(su) == 0);
  info.offset = 10;
  info.unverified = 1;
  CHECK(st->ops->save(su, &info) == 0);
  CHECK(st->ops->write(su, &iov, 1, 10) == 10);
  st->ops->close(su);
  st->ops->free(st);
  CHECK_EQ_U64(reopen_offset("boot-A", info.key, NULL), 10);
  CHECK(file_size(info.key) == 10);
  /* and the mark is gone: a later crash in this boot keeps its tail again */
  append_raw(info.key, "yy", 2);
  CHECK_EQ_U64(reopen_offset("boot-A", info.key, NULL), 12);
}

static void test_recover_sweeps_orphans(void) {
  fresh_dir();
  char key[33];
  make_upload("b", 10, 0, key);
  char p[256];
  /* a temp metadata file and a data file that never got metadata */
  snprintf(p, sizeof(p), "%s/uploads/.%s.meta.tmp", tmpdir, key);
  close(open(p, O_CREAT | O_WRONLY, 0600));
  snprintf(p, sizeof(p), "%s/uploads/ffffffffffffffffffffffffffffffff", tmpdir);
  close(open(p, O_CREAT | O_WRONLY, 0600));
  /* an alias to nowhere */
  snprintf(p, sizeof(p), "%s/article/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", tmpdir);
  CHECK(symlink("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", p) == 0);
  /* corrupt metadata is left aside, not deleted with its data */
  char bad[64];
  snprintf(bad, sizeof(bad), "uploads/%s.meta", key);
  snprintf(p, sizeof(p), "%s/%s", tmpdir, bad);
  int fd = open(p, O_WRONLY | O_TRUNC);
  CHECK(write(fd, "garbage", 7) == 7);
  close(fd);
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "b", NULL) == 0);
  char tmpname[80];
  snprintf(tmpname, sizeof(tmpname), "uploads/.%s.meta.tmp", key);
  CHECK(!path_exists(tmpname));
  CHECK(!path_exists("uploads/ffffffffffffffffffffffffffffffff"));
  CHECK(!path_exists("article/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
  CHECK(path_exists(bad));
  CHECK(file_size(key) == 10);
  struct upload_info got;
  struct store_upload *su;
  CHECK(st->ops->open(st, key, &got, &su) == -EBADMSG);
  st->ops->free(st);
}

static void test_recover_missing_data(void) {
  fresh_dir();
  char key[33], p[256];
  make_upload("b", 10, 0, key);
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, key);
  CHECK(unlink(p) == 0);
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "b", NULL) == 0);
  char meta[64];
  snprintf(meta, sizeof(meta), "uploads/%s.meta", key);
  CHECK(!path_exists(meta));
  st->ops->free(st);
}

/* ---------- damaged metadata files, orphans (store_fs_open at start) ---------- */

static void write_rel(const char *rel, const void *bytes, size_t n) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
  CHECK(fd >= 0);
  if (fd < 0) return;
  CHECK(n == 0 || write(fd, bytes, n) == (ssize_t)n);
  close(fd);
}

static size_t read_rel(const char *rel, char *buf, size_t cap) {
  char p[256];
  snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
  int fd = open(p, O_RDONLY);
  if (fd < 0) return (size_t)-1;
  ssize_t n = read(fd, buf, cap);
  close(fd);
  return n < 0 ? (size_t)-1 : (size_t)n;
}

/* An unfinished upload of `n` bytes ('a' + i % 26) recorded as held durably. */
static void make_pattern_upload(const char *boot, size_t n, char key[33]) {
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, boot, NULL) == 0);
  struct upload_info info = {.length = 100000};
  snprintf(info.kind, sizeof(info.kind), "tus");
  snprintf(info.owner, sizeof(info.owner), "t:abc");
  info.metadata = "filename YS50eHQ=,filetype dGV4dC9wbGFpbg==";
  struct store_upload *su;
  CHECK(st->ops->create(st, &info, &su) == 0);
  char buf[4096];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (char)('a' + i % 26);
  struct iovec iov = {buf, n};
  CHECK(st->ops->write(su, &iov, 1, 0) == (int64_t)n);
  CHECK(st->ops->flush(su) == 0);
  info.offset = n;
  CHECK(st->ops->save(su, &info) == 0);
  st->ops->close(su);
  st->ops->free(st);
  memcpy(key, info.key, 33);
}

static int pattern_intact(const char *key, size_t n) {
  char rel[128], buf[4096];
  snprintf(rel, sizeof(rel), "uploads/%s", key);
  if (read_rel(rel, buf, sizeof(buf)) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (buf[i] != (char)('a' + i % 26)) return 0;
  return 1;
}

/* store_fs_open with what it logs captured into log_out. */
static int open_logged(struct store **st, const char *boot, char *log_out, size_t cap) {
  char p[256];
  snprintf(p, sizeof(p), "%s/stderr.log", tmpdir);
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
  CHECK(fd >= 0 && saved >= 0);
  fflush(stderr);
  dup2(fd, 2);
  int rc = store_fs_open(st, tmpdir, boot, NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, log_out, cap - 1, 0);
  log_out[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(p);
  return rc;
}

/* Opens the store (recovery runs) and checks: it opens and says which record
 * it left aside; `bad` cannot be opened (rc < 0) and its data file is left as
 * it was; `good` is recovered intact. */
static void open_expect_bad(const char *what, const char *boot, const char *bad, size_t bad_n,
                            const char *good, size_t good_n) {
  struct store *st;
  struct upload_info got;
  struct store_upload *su;
  char log[4096], want[128];
  int rc = open_logged(&st, boot, log, sizeof(log));
  CHECK(rc == 0);
  if (rc != 0) return;
  snprintf(want, sizeof(want), "%s.meta unreadable", bad);
  if (!strstr(log, want)) fprintf(stderr, "  %s: not logged; the log was: %s\n", what, log);
  CHECK(strstr(log, want) != NULL);
  rc = st->ops->open(st, bad, &got, &su);
  if (rc == 0) {
    fprintf(stderr, "  %s: the damaged record was accepted (offset %llu)\n", what,
            (unsigned long long)got.offset);
    store_info_release(&got);
    st->ops->close(su);
  }
  CHECK(rc < 0);
  if (!pattern_intact(bad, bad_n)) fprintf(stderr, "  %s: data of the damaged upload changed\n", what);
  CHECK(pattern_intact(bad, bad_n));
  rc = st->ops->open(st, good, &got, &su);
  CHECK(rc == 0);
  if (rc == 0) {
    CHECK_EQ_U64(got.offset, good_n);
    CHECK(got.metadata && strcmp(got.metadata, "filename YS50eHQ=,filetype dGV4dC9wbGFpbg==") == 0);
    CHECK(strcmp(got.owner, "t:abc") == 0 && strcmp(got.kind, "tus") == 0);
    store_info_release(&got);
    st->ops->close(su);
  }
  CHECK(pattern_intact(good, good_n));
  st->ops->free(st);
}

/* A .meta torn at every length, from empty to one byte short (the final
 * newline missing), with a same-boot and a new-boot start: never accepted,
 * its data never touched, the other upload unharmed. The whole record then
 * recovers: the cuts, not the record, are what the store refuses. */
static void test_meta_torn_at_every_length(void) {
  fresh_dir();
  char good[33], bad[33], rel[128], full[2048];
  make_pattern_upload("boot-A", 3000, good);
  make_pattern_upload("boot-A", 1234, bad);
  snprintf(rel, sizeof(rel), "uploads/%s.meta", bad);
  size_t n = read_rel(rel, full, sizeof(full));
  CHECK(n > 100 && n < sizeof(full));
  if (n == (size_t)-1 || n >= sizeof(full)) return;
  int before = unit_failed_checks;
  for (size_t cut = 0; cut < n && unit_failed_checks == before; cut++) {
    char what[96];
    snprintf(what, sizeof(what), "record cut to %zu of %zu bytes", cut, n);
    write_rel(rel, full, cut);
    open_expect_bad(what, cut % 2 ? "boot-A" : "boot-B", bad, 1234, good, 3000);
  }
  write_rel(rel, full, n);
  CHECK_EQ_U64(reopen_offset("boot-A", bad, NULL), 1234);
}

/* A record naming record_key, valid in every way (checksum included). */
static int record_for(const char *record_key, uint64_t offset, char *buf, size_t cap) {
  struct upload_info a = {.length = 100000, .offset = offset, .created = 1700000000};
  snprintf(a.key, sizeof(a.key), "%s", record_key);
  snprintf(a.boot_id, sizeof(a.boot_id), "boot-A");
  snprintf(a.kind, sizeof(a.kind), "tus");
  return store_fs_format_info(&a, buf, cap);
}

static void test_meta_damaged_left_aside(void) {
  fresh_dir();
  char good[33], bad[33], rel[128], buf[4096];
  make_pattern_upload("boot-A", 3000, good);
  make_pattern_upload("boot-A", 1234, bad);
  snprintf(rel, sizeof(rel), "uploads/%s.meta", bad);

  write_rel(rel, "", 0);
  open_expect_bad("empty record", "boot-A", bad, 1234, good, 3000);

  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (char)(i * 131 + 7); /* binary, NULs included */
  write_rel(rel, buf, 700);
  open_expect_bad("binary garbage", "boot-A", bad, 1234, good, 3000);

  /* starts like a record, then goes on past any record's size */
  memset(buf, 'x', sizeof(buf));
  memcpy(buf, "resumed-upload 1\n", 17);
  write_rel(rel, buf, sizeof(buf));
  { /* 68 KiB in all, past the largest record the store writes */
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    int fd = open(p, O_WRONLY | O_APPEND);
    for (int i = 0; i < 16; i++) CHECK(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
    close(fd);
  }
  open_expect_bad("oversized record", "boot-A", bad, 1234, good, 3000);

  /* a right record with one digit changed: only the checksum can tell */
  int n = record_for(bad, 1234, buf, sizeof(buf));
  char *d = strstr(buf, "offset 1234");
  CHECK(n > 0 && d != NULL);
  if (n <= 0 || !d) return;
  d[7] = '0'; /* offset 0234 would be a smaller, plausible offset */
  write_rel(rel, buf, (size_t)n);
  open_expect_bad("wrong crc", "boot-A", bad, 1234, good, 3000);

  /* a record whose crc line itself is damaged */
  n = record_for(bad, 1234, buf, sizeof(buf));
  char *c = strstr(buf, "\ncrc ");
  CHECK(c != NULL);
  if (!c) return;
  c[5] = c[5] == '0' ? '1' : '0';
  write_rel(rel, buf, (size_t)n);
  open_expect_bad("damaged crc line", "boot-A", bad, 1234, good, 3000);

  /* valid-looking, checksum right, but about another upload (a foreign or
   * misplaced file): the key inside must match the file name */
  n = record_for(good, 1234, buf, sizeof(buf));
  write_rel(rel, buf, (size_t)n);
  open_expect_bad("record names another key", "boot-A", bad, 1234, good, 3000);

  /* valid-looking, checksum right, with a key that is no key */
  struct upload_info a = {.length = 100000, .offset = 1234, .created = 1};
  snprintf(a.key, sizeof(a.key), "../../../../etc/passwd_xxxxxxxxx");
  n = store_fs_format_info(&a, buf, sizeof(buf));
  CHECK(n > 0);
  write_rel(rel, buf, (size_t)n);
  open_expect_bad("key with path characters", "boot-A", bad, 1234, good, 3000);
  snprintf(a.key, sizeof(a.key), "%s", bad);
  for (char *k = a.key; *k; k++)
    if (*k >= 'a' && *k <= 'f') *k = (char)(*k - 'a' + 'A'); /* upper-case hex is not a key */
  n = store_fs_format_info(&a, buf, sizeof(buf));
  write_rel(rel, buf, (size_t)n);
  open_expect_bad("upper-case key", "boot-A", bad, 1234, good, 3000);

  /* a symlink to a record that would be right: not followed (O_NOFOLLOW) */
  char p[256], target[256];
  n = record_for(bad, 1234, buf, sizeof(buf));
  snprintf(target, sizeof(target), "%s/elsewhere.meta", tmpdir);
  int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && write(fd, buf, (size_t)n) == n);
  close(fd);
  snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
  CHECK(unlink(p) == 0 && symlink(target, p) == 0);
  open_expect_bad("symlinked record", "boot-B", bad, 1234, good, 3000);
  char back[4096];
  CHECK(read_rel("elsewhere.meta", back, sizeof(back)) == (size_t)n && memcmp(back, buf, (size_t)n) == 0);

  /* a directory where the record should be */
  CHECK(unlink(p) == 0 && mkdir(p, 0700) == 0);
  open_expect_bad("directory as record", "boot-B", bad, 1234, good, 3000);
  CHECK(rmdir(p) == 0);

  /* and the right record, written back, recovers the upload whole */
  n = record_for(bad, 1234, buf, sizeof(buf));
  write_rel(rel, buf, (size_t)n);
  CHECK_EQ_U64(reopen_offset("boot-A", bad, NULL), 1234);
  CHECK(pattern_intact(bad, 1234));
}

/* A data file that is a symlink is never followed: recovery after a reboot
 * must not cut whatever it points at. */
static void test_recover_data_symlink_not_followed(void) {
  fresh_dir();
  char good[33], bad[33], p[256], outside[256];
  make_pattern_upload("boot-A", 3000, good);
  make_pattern_upload("boot-A", 1234, bad);
  snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
  int fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char buf[4000];
  memset(buf, 'o', sizeof(buf));
  CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
  close(fd);
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, bad);
  CHECK(unlink(p) == 0 && symlink(outside, p) == 0);
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "boot-B", NULL) == 0); /* a reboot: tails are cut */
  struct stat sb;
  CHECK(stat(outside, &sb) == 0 && sb.st_size == 4000);
  struct upload_info got;
  struct store_upload *su;
  CHECK(st->ops->open(st, bad, &got, &su) < 0);
  CHECK(st->ops->open(st, good, &got, &su) == 0 && got.offset == 3000);
  store_info_release(&got);
  st->ops->close(su);
  st->ops->free(st);
  CHECK(stat(outside, &sb) == 0 && sb.st_size == 4000);
}

/* Data shorter than the record says (cut behind the store's back): the
 * offset becomes what is there, in the same boot and after a reboot. */
static void test_recover_data_shorter_than_recorded(void) {
  fresh_dir();
  char k1[33], k2[33], p[256];
  make_pattern_upload("boot-A", 3000, k1);
  make_pattern_upload("boot-A", 3000, k2);
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, k1);
  CHECK(truncate(p, 1800) == 0);
  snprintf(p, sizeof(p), "%s/uploads/%s", tmpdir, k2);
  CHECK(truncate(p, 700) == 0);
  CHECK_EQ_U64(reopen_offset("boot-A", k1, NULL), 1800);
  CHECK_EQ_U64(reopen_offset("boot-B", k2, NULL), 700);
  CHECK(pattern_intact(k1, 1800) && pattern_intact(k2, 700));
}

/* What a crash leaves in the middle of things, removed at start: the temp
 * record of a creation that never got its rename (with its data file), a
 * temp record next to a real one, an alias's temp link, an alias to a
 * finished upload, an alias to an upload whose record is damaged. Kept: the
 * live alias, and files that are not the store's (never delete those). */
static void test_recover_sweeps_crash_leftovers(void) {
  fresh_dir();
  char live[33], done[33], broken[33], p[256], rel[128], buf[1024];
  make_pattern_upload("b", 100, live);
  make_pattern_upload("b", 100, done);
  make_pattern_upload("b", 100, broken);
  struct store *st;
  CHECK(store_fs_open(&st, tmpdir, "b", NULL) == 0);
  struct upload_info info;
  struct store_upload *su;
  CHECK(st->ops->open(st, done, &info, &su) == 0);
  info.length = (int64_t)info.offset; /* as the engine finishes an upload */
  info.finished = 1;
  CHECK(st->ops->save(su, &info) == 0);
  store_info_release(&info);
  st->ops->close(su);
  const char *a_live = "1111111111111111111111111111111111111111111111111111111111111111";
  const char *a_done = "2222222222222222222222222222222222222222222222222222222222222222";
  const char *a_broken = "3333333333333333333333333333333333333333333333333333333333333333";
  CHECK(st->ops->alias_set(st, a_live, live) == 0);
  CHECK(st->ops->alias_set(st, a_done, done) == 0);
  CHECK(st->ops->alias_set(st, a_broken, broken) == 0);
  st->ops->free(st);

  /* a creation cut between the data file and the rename of its record */
  const char *half = "abcdefabcdefabcdefabcdefabcdef01";
  int n = record_for(half, 0, buf, sizeof(buf));
  snprintf(rel, sizeof(rel), "uploads/.%s.meta.tmp", half);
  write_rel(rel, buf, (size_t)n);
  snprintf(rel, sizeof(rel), "uploads/%s", half);
  write_rel(rel, "", 0);
  /* a save cut before its rename: the temp goes, the real record stays */
  n = record_for(live, 100, buf, sizeof(buf));
  snprintf(rel, sizeof(rel), "uploads/.%s.meta.tmp", live);
  write_rel(rel, buf, (size_t)n / 2);
  /* an alias replacement cut before its rename */
  snprintf(p, sizeof(p), "%s/article/.%s.tmp", tmpdir, a_live);
  CHECK(symlink(done, p) == 0);
  /* damage */
  snprintf(rel, sizeof(rel), "uploads/%s.meta", broken);
  write_rel(rel, "resumed-upload 1\nkey", 20);
  /* not the store's */
  write_rel("uploads/README", "mine", 4);
  write_rel("uploads/ABCDEFABCDEFABCDEFABCDEFABCDEF01", "mine", 4);
  write_rel("article/notes.txt", "mine", 4);

  char log[4096], want[128];
  CHECK(open_logged(&st, "b", log, sizeof(log)) == 0);
  snprintf(want, sizeof(want), "%s.meta unreadable", broken);
  CHECK(strstr(log, want) != NULL);
  snprintf(rel, sizeof(rel), "uploads/.%s.meta.tmp", half);
  CHECK(!path_exists(rel));
  snprintf(rel, sizeof(rel), "uploads/%s", half);
  CHECK(!path_exists(rel));
  snprintf(rel, sizeof(rel), "uploads/.%s.meta.tmp", live);
  CHECK(!path_exists(rel));
  snprintf(rel, sizeof(rel), "article/.%s.tmp", a_live);
  CHECK(!path_exists(rel));
  char key[STORE_KEY_LEN + 1];
  CHECK(st->ops->alias_get(st, a_live, key) == 0 && strcmp(key, live) == 0);
  CHECK(st->ops->alias_get(st, a_done, key) == -ENOENT);
  CHECK(st->ops->alias_get(st, a_broken, key) == -ENOENT);
  CHECK(st->ops->open(st, done, &info, &su) == 0 && info.finished && info.offset == 100);
  store_info_release(&info);
  st->ops->close(su);
  CHECK(st->ops->open(st, live, &info, &su) == 0 && info.offset == 100);
  store_info_release(&info);
  st->ops->close(su);
  CHECK(pattern_intact(broken, 100)); /* left aside, data kept */
  CHECK(path_exists("uploads/README"));
  CHECK(path_exists("uploads/ABCDEFABCDEFABCDEFABCDEFABCDEF01"));
  /* DIR/article is the store's alone: whatever there is not a live alias goes */
  CHECK(!path_exists("article/notes.txt"));
  st->ops->free(st);
}

int main(void) {
  RUN(test_info_roundtrip);
  RUN(test_info_rejects_damage);
  RUN(test_info_finished_length_is_offset);
  RUN(test_info_rejects_unwritable_text);
  RUN(test_create_write_open);
  RUN(test_alias);
  RUN(test_recover_same_boot_keeps_tail);
  RUN(test_recover_new_boot_cuts_tail);
  RUN(test_recover_unverified_cuts_tail);
  RUN(test_recover_sweeps_orphans);
  RUN(test_recover_missing_data);
  RUN(test_meta_torn_at_every_length);
  RUN(test_meta_damaged_left_aside);
  RUN(test_recover_data_symlink_not_followed);
  RUN(test_recover_data_shorter_than_recorded);
  RUN(test_recover_sweeps_crash_leftovers);
  if (tmpdir[0]) rmrf(tmpdir);
  UNIT_DONE();
}
