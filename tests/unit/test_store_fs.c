/* Filesystem store: metadata record, operations, recovery rules. */
#include "store_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

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

int main(void) {
  RUN(test_info_roundtrip);
  RUN(test_info_rejects_damage);
  RUN(test_create_write_open);
  RUN(test_alias);
  RUN(test_recover_same_boot_keeps_tail);
  RUN(test_recover_new_boot_cuts_tail);
  RUN(test_recover_unverified_cuts_tail);
  RUN(test_recover_sweeps_orphans);
  RUN(test_recover_missing_data);
  if (tmpdir[0]) rmrf(tmpdir);
  UNIT_DONE();
}
