/* Upload engine on a real loop and filesystem store: durable offsets,
 * lock hand-over, periodic flush. */
#include "upload.h"

#include <unistd.h>

#include "store_fs.h"
#include "unit.h"

static char tmpdir[64];
static uv_loop_t *loop;
static struct store *st;
static struct upload_engine *eng;

struct ctx {
  struct upload *u;
  int created, locked, written, committed, preempted, durable_calls;
  int status;
  uint64_t durable;
  struct upload_writer w;
};

static void setup(uint64_t sync_interval) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/resumed-unit-XXXXXX");
  CHECK(mkdtemp(tmpdir) != NULL);
  loop = uv_default_loop();
  CHECK(store_fs_open(&st, tmpdir, "boot", NULL) == 0);
  struct upload_engine_config cfg = {.sync_interval = sync_interval};
  CHECK(upload_engine_new(&eng, loop, st, &cfg) == 0);
}

static void teardown(void) {
  uv_run(loop, UV_RUN_DEFAULT);
  upload_engine_free(eng);
  st->ops->free(st);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}

static void on_created(void *arg, struct upload *u, int status) {
  struct ctx *c = arg;
  c->u = u;
  c->status = status;
  c->created = 1;
}
static void on_locked(void *arg, int status) {
  struct ctx *c = arg;
  c->status = status;
  c->locked++;
}
static void on_written(void *arg, int status) {
  struct ctx *c = arg;
  c->status = status;
  c->written++;
}
static void on_committed(void *arg, int status) {
  struct ctx *c = arg;
  c->status = status;
  c->committed++;
}
static void on_preempt(struct upload_writer *w) {
  struct ctx *c = (struct ctx *)((char *)w - offsetof(struct ctx, w));
  c->preempted++;
}
static void on_durable(struct upload_writer *w, uint64_t off) {
  struct ctx *c = (struct ctx *)((char *)w - offsetof(struct ctx, w));
  c->durable_calls++;
  c->durable = off;
}

static void run_until(int *flag, int want) {
  for (int i = 0; i < 10000 && *flag < want; i++) uv_run(loop, UV_RUN_ONCE);
}

static void test_write_commit_durable(void) {
  setup(64 << 20);
  struct ctx a = {0};
  CHECK(upload_create(eng, &(struct upload_spec){.kind = "article", .length = 11, .alias = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                      on_created, &a) == 0);
  run_until(&a.created, 1);
  CHECK(a.status == 0 && a.u);
  upload_lock(a.u, &a.w, on_locked, &a);
  CHECK(a.locked == 1); /* free lock: granted at once */
  upload_write(&a.w, "hello world", 11, on_written, &a);
  run_until(&a.written, 1);
  CHECK(a.status == 0);
  CHECK_EQ_U64(upload_written(a.u), 11);
  CHECK_EQ_U64(upload_info(a.u)->offset, 0); /* written, not yet durable */
  upload_finish(&a.w, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", on_committed, &a);
  run_until(&a.committed, 1);
  CHECK(a.status == 0);
  CHECK_EQ_U64(upload_info(a.u)->offset, 11);
  CHECK(upload_info(a.u)->finished == 1);
  upload_unlock(&a.w);
  struct upload *again;
  CHECK(upload_get_alias(eng, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &again) == -ENOENT);
  upload_put(a.u);
  teardown();
}

static void test_handover(void) {
  setup(64 << 20);
  struct ctx a = {0}, b = {0};
  a.w.on_preempt = on_preempt;
  CHECK(upload_create(eng, &(struct upload_spec){.kind = "article", .length = -1}, on_created, &a) == 0);
  run_until(&a.created, 1);
  upload_lock(a.u, &a.w, on_locked, &a);
  upload_write(&a.w, "0123456789", 10, on_written, &a);
  run_until(&a.written, 1);
  /* B asks while A holds: A is asked to yield, B waits. */
  upload_get(eng, upload_info(a.u)->key, &b.u);
  upload_lock(b.u, &b.w, on_locked, &b);
  CHECK(a.preempted == 1);
  CHECK(b.locked == 0);
  /* A leaves without committing; the engine commits before B gets the lock. */
  upload_unlock(&a.w);
  CHECK(b.locked == 0);
  run_until(&b.locked, 1);
  CHECK(b.status == 0);
  CHECK_EQ_U64(upload_info(b.u)->offset, 10);
  /* a third waiter makes the holder yield too */
  struct ctx c = {0};
  b.w.on_preempt = on_preempt;
  upload_lock(b.u, &c.w, on_locked, &c);
  CHECK(b.preempted == 1);
  upload_unlock(&c.w); /* a waiter may give up */
  upload_unlock(&b.w);
  CHECK(c.locked == 0);
  uv_run(loop, UV_RUN_DEFAULT);
  CHECK(c.locked == 0);
  upload_put(a.u);
  upload_put(b.u);
  teardown();
}

static void test_periodic_flush(void) {
  setup(4096);
  struct ctx a = {0};
  a.w.on_durable = on_durable;
  CHECK(upload_create(eng, &(struct upload_spec){.kind = "article", .length = -1}, on_created, &a) == 0);
  run_until(&a.created, 1);
  upload_lock(a.u, &a.w, on_locked, &a);
  static char buf[1000];
  for (int i = 0; i < 10; i++) {
    upload_write(&a.w, buf, sizeof(buf), on_written, &a);
    run_until(&a.written, i + 1);
  }
  /* 10000 bytes with a 4096-byte interval: at least one flush ran on its own */
  for (int i = 0; i < 1000 && a.durable_calls == 0; i++) uv_run(loop, UV_RUN_ONCE);
  CHECK(a.durable_calls >= 1);
  CHECK(a.durable >= 4096 && a.durable <= 10000);
  CHECK(upload_info(a.u)->offset == a.durable);
  upload_commit(&a.w, on_committed, &a);
  run_until(&a.committed, 1);
  CHECK_EQ_U64(upload_info(a.u)->offset, 10000);
  upload_unlock(&a.w);
  upload_put(a.u);
  teardown();
}

/* A commit asked for from the write callback, just as a periodic flush
 * starts, must queue behind it: two metadata saves at once used to race on
 * the temp file and fail. */
struct race {
  struct ctx c;
  int commits_ok, commits_failed, round;
};

static void race_committed(void *arg, int status) {
  struct race *r = arg;
  if (status == 0) r->commits_ok++;
  else r->commits_failed++;
}

static void race_written(void *arg, int status) {
  struct race *r = arg;
  CHECK(status == 0);
  r->c.written++;
  upload_commit(&r->c.w, race_committed, r);
}

static void test_commit_during_periodic_flush(void) {
  setup(4096);
  static struct race r;
  memset(&r, 0, sizeof(r));
  CHECK(upload_create(eng, &(struct upload_spec){.kind = "article", .length = -1}, on_created, &r.c) == 0);
  run_until(&r.c.created, 1);
  upload_lock(r.c.u, &r.c.w, on_locked, &r.c);
  static char buf[5000];
  for (int i = 0; i < 40; i++) {
    upload_write(&r.c.w, buf, sizeof(buf), race_written, &r);
    int want = i + 1;
    for (int k = 0; k < 10000 && r.commits_ok + r.commits_failed < want; k++) uv_run(loop, UV_RUN_ONCE);
  }
  CHECK(r.commits_failed == 0);
  CHECK(r.commits_ok == 40);
  CHECK_EQ_U64(upload_info(r.c.u)->offset, 40 * sizeof(buf));
  upload_unlock(&r.c.w);
  upload_put(r.c.u);
  teardown();
}

/* A request for an article id may open the upload between the moment its
 * alias lands on disk (on the pool) and the creation callback (on the loop):
 * both must get the same object, or there would be two locks and two offsets
 * for one file. */
static void test_alias_opened_before_creation_completes(void) {
  setup(1 << 20);
  static const char alias[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  struct ctx a = {0};
  struct upload *early = NULL;
  CHECK(upload_create(eng, &(struct upload_spec){.kind = "article", .length = 5, .alias = alias},
                      on_created, &a) == 0);
  /* Not running the loop: the job finishes on the pool, its callback waits. */
  for (int i = 0; i < 5000 && upload_get_alias(eng, alias, &early) < 0; i++) usleep(1000);
  CHECK(early != NULL);
  CHECK(a.created == 0);
  run_until(&a.created, 1);
  CHECK(a.status == 0);
  CHECK(a.u == early);
  upload_put(early);
  upload_put(a.u);
  teardown();
}

static void on_created_count(void *arg, struct upload *u, int status) {
  int *n = arg;
  if (status == 0) upload_put(u);
  (*n)++;
}

/* --max-unfinished: an owner at the limit gets -EUSERS at once, counting
 * creations still in flight; others are not affected; finishing frees one. */
static void test_unfinished_limit_per_owner(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/resumed-unit-XXXXXX");
  CHECK(mkdtemp(tmpdir) != NULL);
  loop = uv_default_loop();
  CHECK(store_fs_open(&st, tmpdir, "boot", NULL) == 0);
  struct upload_engine_config cfg = {.sync_interval = 1 << 20, .max_unfinished = 3};
  CHECK(upload_engine_new(&eng, loop, st, &cfg) == 0);
  struct upload_spec mine = {.kind = "tus", .length = 1, .owner = "a:192.0.2.1"};
  struct upload_spec other = {.kind = "tus", .length = 1, .owner = "a:192.0.2.2"};
  int done = 0;
  for (int i = 0; i < 3; i++) CHECK(upload_create(eng, &mine, on_created_count, &done) == 0);
  CHECK(upload_create(eng, &mine, on_created_count, &done) == -EUSERS); /* 3 in flight count */
  CHECK(upload_create(eng, &other, on_created_count, &done) == 0);
  run_until(&done, 4);
  CHECK(upload_create(eng, &mine, on_created_count, &done) == -EUSERS);

  struct ctx a = {0};
  CHECK(upload_create(eng, &other, on_created, &a) == 0);
  run_until(&a.created, 1);
  upload_lock(a.u, &a.w, on_locked, &a);
  upload_write(&a.w, "x", 1, on_written, &a);
  run_until(&a.written, 1);
  upload_finish(&a.w, NULL, on_committed, &a);
  run_until(&a.committed, 1);
  CHECK(a.status == 0);
  upload_unlock(&a.w);
  upload_put(a.u);
  CHECK(upload_create(eng, &mine, on_created_count, &done) == -EUSERS);
  uv_run(loop, UV_RUN_DEFAULT); /* a restart: the store stays */
  upload_engine_free(eng);
  st->ops->free(st);

  /* A restart counts what the store holds: the owner is still at its limit. */
  CHECK(store_fs_open(&st, tmpdir, "boot", NULL) == 0);
  CHECK(upload_engine_new(&eng, loop, st, &cfg) == 0);
  CHECK(upload_create(eng, &mine, on_created_count, &done) == -EUSERS);
  CHECK(upload_create(eng, &other, on_created_count, &done) == 0);
  teardown();
}

int main(void) {
  RUN(test_write_commit_durable);
  RUN(test_handover);
  RUN(test_periodic_flush);
  RUN(test_commit_during_periodic_flush);
  RUN(test_alias_opened_before_creation_completes);
  RUN(test_unfinished_limit_per_owner);
  UNIT_DONE();
}
