/* Upload engine (see upload.h). */
#include "upload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checksum.h"
#include "log.h"

#define BUCKETS 1024

/* Unfinished uploads per owner (--max-unfinished). */
struct owner_count {
  struct owner_count *next;
  uint32_t n;
  char owner[STORE_OWNER_MAX + 1];
};

struct upload {
  struct upload_engine *e;
  struct upload *hnext;
  struct store_upload *su;
  struct upload_info info; /* info.offset: durable; info.length: declared */
  uint64_t written;
  int refs;
  int info_dirty;             /* info changed in memory since the last save */
  int saving;                 /* a job that records metadata is in flight */
  int unlock_commit;          /* engine committing for a holder that left */
  int broken;                 /* a write or flush failed (its error): durable and
                                 written disagree until a repair cuts back */
  int repairing;              /* that repair is in flight */
  int removed;                /* deleted from the store */
  struct job *deferred;       /* save-type job waiting for the one in flight */
  struct upload_writer *holder, *wait_head, *wait_tail;
};

struct upload_engine {
  uv_loop_t *loop;
  struct store *st;
  struct upload_engine_config cfg;
  struct upload *table[BUCKETS];
  struct owner_count *owners[BUCKETS];
  struct job *free_jobs; /* recycled: one job per body read would churn the heap */
  unsigned nfree_jobs;
  uv_timer_t sweep_timer;
  int sweeper_on, sweeping;
};

enum job_kind {
  J_WRITE, J_COPY, J_FLUSH, J_FINISH, J_RESTART, J_CREATE, J_HASH, J_DISCARD, J_REMOVE, J_SCAN,
  J_REPAIR
};

struct job {
  uv_work_t work;
  struct upload_engine *e;
  struct upload *u;
  enum job_kind kind;
  int background; /* periodic flush or engine commit: no caller callback */
  int unlock_job; /* the commit for a holder that unlocked */
  const char *data;
  size_t len;
  uint64_t offset;
  struct upload_info info;
  char alias[65];
  int mark_unverified;       /* J_WRITE: record "unverified" before writing */
  int marked;                /* ... and it was recorded */
  int algo;                  /* J_HASH: of the bytes from `from` on, into hash_out */
  uint64_t from;
  unsigned char *hash_out;
  struct upload *src;        /* J_COPY: a finished upload, referenced */
  char (*keys)[STORE_KEY_LEN + 1]; /* J_SCAN: expired uploads found */
  size_t nkeys, capkeys;
  int64_t result;
  int err;                   /* J_WRITE: why it stopped short */
  int was_finished;          /* J_FINISH: the upload was finished before */
  struct store_upload *su;
  upload_cb cb;
  upload_create_cb ccb;
  void *arg;
};

static void grant_next(struct upload *u);
static void sweep_found(struct upload_engine *e, const char *key);

#define FREE_JOBS_MAX 256

static struct job *job_alloc(struct upload_engine *e) {
  struct job *j = e->free_jobs;
  if (j) {
    e->free_jobs = *(struct job **)j;
    e->nfree_jobs--;
    memset(j, 0, sizeof(*j));
    return j;
  }
  return calloc(1, sizeof(*j));
}

static void job_release(struct upload_engine *e, struct job *j) {
  if (e->nfree_jobs >= FREE_JOBS_MAX) {
    free(j);
    return;
  }
  *(struct job **)j = e->free_jobs;
  e->free_jobs = j;
  e->nfree_jobs++;
}

/* ---------- table ---------- */

static unsigned bucket_of(const char *key) {
  unsigned h = 2166136261u;
  for (; *key; key++) h = (h ^ (unsigned char)*key) * 16777619u;
  return h % BUCKETS;
}

static struct upload *table_find(struct upload_engine *e, const char *key) {
  for (struct upload *u = e->table[bucket_of(key)]; u; u = u->hnext)
    if (strcmp(u->info.key, key) == 0) return u;
  return NULL;
}

static void table_insert(struct upload_engine *e, struct upload *u) {
  unsigned b = bucket_of(u->info.key);
  u->hnext = e->table[b];
  e->table[b] = u;
}

static void table_remove(struct upload_engine *e, struct upload *u) {
  struct upload **pp = &e->table[bucket_of(u->info.key)];
  while (*pp && *pp != u) pp = &(*pp)->hnext;
  if (*pp) *pp = u->hnext;
}

/* ---------- unfinished uploads per owner ---------- */

static struct owner_count *owner_find(struct upload_engine *e, const char *owner, int add) {
  struct owner_count **head = &e->owners[bucket_of(owner)], *oc;
  for (oc = *head; oc; oc = oc->next)
    if (strcmp(oc->owner, owner) == 0) return oc;
  if (!add || !(oc = calloc(1, sizeof(*oc)))) return NULL;
  snprintf(oc->owner, sizeof(oc->owner), "%s", owner);
  oc->next = *head;
  *head = oc;
  return oc;
}

static void owner_add(struct upload_engine *e, const char *owner, int delta) {
  if (!owner[0]) return;
  struct owner_count *oc = owner_find(e, owner, delta > 0);
  if (!oc) return;
  if (delta > 0) oc->n++;
  else if (oc->n && --oc->n == 0) {
    struct owner_count **pp = &e->owners[bucket_of(owner)];
    while (*pp != oc) pp = &(*pp)->next;
    *pp = oc->next;
    free(oc);
  }
}

/* At start: the store's unfinished uploads count against their owners. */
static int count_one(void *arg, const char *key) {
  struct upload_engine *e = arg;
  struct upload_info info;
  struct store_upload *su;
  if (e->st->ops->open(e->st, key, &info, &su) < 0) return 0;
  e->st->ops->close(su);
  if (!info.finished) owner_add(e, info.owner, 1);
  store_info_release(&info);
  return 0;
}

/* ---------- engine ---------- */

int upload_engine_new(struct upload_engine **out, uv_loop_t *loop, struct store *st,
                      const struct upload_engine_config *cfg) {
  struct upload_engine *e = calloc(1, sizeof(*e));
  if (!e) return -ENOMEM;
  e->loop = loop;
  e->st = st;
  e->cfg = *cfg;
  if (!e->cfg.sync_interval) e->cfg.sync_interval = 64u << 20;
  if (e->cfg.max_unfinished) e->st->ops->list(e->st, count_one, e);
  *out = e;
  return 0;
}

void upload_engine_free(struct upload_engine *e) {
  if (!e) return;
  while (e->free_jobs) {
    struct job *j = e->free_jobs;
    e->free_jobs = *(struct job **)j;
    free(j);
  }
  for (size_t i = 0; i < BUCKETS; i++)
    while (e->owners[i]) {
      struct owner_count *oc = e->owners[i];
      e->owners[i] = oc->next;
      free(oc);
    }
  free(e);
}

struct store *upload_engine_store(struct upload_engine *e) { return e->st; }

static struct upload *upload_wrap(struct upload_engine *e, struct store_upload *su,
                                  const struct upload_info *info) {
  struct upload *u = calloc(1, sizeof(*u));
  if (!u) return NULL;
  u->e = e;
  u->su = su;
  u->info = *info;
  u->written = info->offset;
  u->refs = 1;
  table_insert(e, u);
  return u;
}

int upload_get(struct upload_engine *e, const char *key, struct upload **out) {
  struct upload *u = table_find(e, key);
  if (u && u->removed) return -ENOENT;
  if (u) {
    u->refs++;
    *out = u;
    return 0;
  }
  struct upload_info info;
  struct store_upload *su;
  int rc = e->st->ops->open(e->st, key, &info, &su);
  if (rc < 0) return rc == -EBADMSG ? -ENOENT : rc;
  if (!(u = upload_wrap(e, su, &info))) {
    e->st->ops->close(su);
    return -ENOMEM;
  }
  *out = u;
  return 0;
}

int upload_get_alias(struct upload_engine *e, const char *alias, struct upload **out) {
  char key[STORE_KEY_LEN + 1];
  int rc = e->st->ops->alias_get(e->st, alias, key);
  if (rc < 0) return rc == -ENOENT || rc == -EBADMSG ? -ENOENT : rc;
  return upload_get(e, key, out);
}

void upload_put(struct upload *u) {
  if (!u || --u->refs > 0) return;
  table_remove(u->e, u);
  u->e->st->ops->close(u->su);
  store_info_release(&u->info);
  free(u);
}

const struct upload_info *upload_info(const struct upload *u) { return &u->info; }

static int info_expired(const struct upload_info *info) {
  return !info->finished && info->expires && (int64_t)time(NULL) >= info->expires;
}

int upload_expired(const struct upload *u) { return info_expired(&u->info); }
int upload_removed(const struct upload *u) { return u->removed; }
uint64_t upload_written(const struct upload *u) { return u->written; }

/* ---------- jobs ---------- */

/* J_SCAN, on a pool thread: collects expired unfinished uploads. */
static int scan_one(void *arg, const char *key) {
  struct job *j = arg;
  struct upload_info info;
  struct store_upload *su;
  if (j->e->st->ops->open(j->e->st, key, &info, &su) < 0) return 0;
  j->e->st->ops->close(su);
  int expired = info_expired(&info);
  store_info_release(&info);
  if (!expired) return 0;
  if (j->nkeys == j->capkeys) {
    size_t cap = j->capkeys ? j->capkeys * 2 : 16;
    void *nk = realloc(j->keys, cap * sizeof(*j->keys));
    if (!nk) return -ENOMEM;
    j->keys = nk;
    j->capkeys = cap;
  }
  memcpy(j->keys[j->nkeys++], key, STORE_KEY_LEN + 1);
  return 0;
}

static void job_run(uv_work_t *w) {
  struct job *j = w->data;
  const struct store_ops *ops = j->e->st->ops;
  struct store_upload *su = j->u ? j->u->su : NULL;
  int rc = 0;
  switch (j->kind) {
  case J_WRITE: {
    struct iovec iov = {(void *)j->data, j->len};
    /* Before the first unverified byte lands, say so durably: a crash
     * before the check must not leave them counted (recovery cuts them). */
    if (j->mark_unverified) {
      if ((rc = ops->save(su, &j->info)) < 0) {
        j->result = rc;
        return;
      }
      j->marked = 1;
    }
    /* A short count hides why: write the rest to learn it (ENOSPC answers
     * 507, anything else 500). */
    int64_t done = 0;
    while ((size_t)done < j->len) {
      iov.iov_base = (char *)j->data + done;
      iov.iov_len = j->len - (size_t)done;
      int64_t n = ops->write(su, &iov, 1, j->offset + (uint64_t)done);
      if (n <= 0) {
        j->err = n < 0 ? (int)n : -EIO;
        break;
      }
      done += n;
    }
    j->result = done ? done : j->err;
    return;
  }
  case J_COPY: {
    /* The source is finished, so nothing writes it while we read. */
    size_t bufsize = 1 << 20;
    char *buf = malloc(bufsize);
    uint64_t done = 0;
    if (!buf) {
      j->result = -ENOMEM;
      return;
    }
    while (done < j->len) {
      size_t want = j->len - done < bufsize ? (size_t)(j->len - done) : bufsize;
      int64_t n = ops->read(j->src->su, buf, want, done);
      if (n <= 0) {
        rc = n < 0 ? (int)n : -EIO;
        break;
      }
      struct iovec iov = {buf, (size_t)n};
      int64_t wr = ops->write(su, &iov, 1, j->offset + done);
      if (wr > 0) done += (uint64_t)wr;
      if (wr != n) {
        rc = wr < 0 ? (int)wr : -EIO;
        break;
      }
    }
    free(buf);
    /* On error, bytes copied so far are past `written`: the next write or
     * a discard goes over them. */
    j->result = rc < 0 ? rc : (int64_t)done;
    return;
  }
  case J_FLUSH:
    if ((rc = ops->flush(su)) == 0) rc = ops->save(su, &j->info);
    break;
  case J_FINISH:
    if ((rc = ops->flush(su)) == 0) rc = ops->save(su, &j->info);
    /* The alias goes only after the upload is durably finished: a crash in
     * between leaves an alias to a finished upload, which recovery drops. */
    if (rc == 0 && j->alias[0]) rc = ops->alias_del(j->e->st, j->alias);
    break;
  case J_RESTART:
    if ((rc = ops->truncate(su, 0)) == 0 && (rc = ops->flush(su)) == 0)
      rc = ops->save(su, &j->info);
    break;
  case J_HASH: {
    struct checksum ck;
    size_t bufsize = 256 * 1024;
    char *buf = malloc(bufsize);
    if (!buf) {
      rc = -ENOMEM;
      break;
    }
    if ((rc = checksum_init(&ck, (enum checksum_algo)j->algo)) < 0) {
      free(buf);
      break;
    }
    /* Read back from the store: the bytes checked are the bytes kept. */
    for (uint64_t off = j->from; off < j->offset && rc == 0;) {
      size_t want = j->offset - off < bufsize ? (size_t)(j->offset - off) : bufsize;
      int64_t n = ops->read(su, buf, want, off);
      if (n <= 0) rc = n < 0 ? (int)n : -EIO;
      else rc = checksum_update(&ck, buf, (size_t)n), off += (uint64_t)n;
    }
    free(buf);
    if (rc < 0) {
      checksum_release(&ck);
      break;
    }
    rc = checksum_final(&ck, j->hash_out);
    break;
  }
  case J_DISCARD:
    rc = ops->truncate(su, j->offset);
    break;
  case J_REPAIR:
    /* After a failed write or flush nothing past the durable offset can be
     * vouched for (a failed fsync may have dropped dirty pages): cut it. */
    if ((rc = ops->truncate(su, j->offset)) == 0) rc = ops->flush(su);
    break;
  case J_REMOVE:
    rc = ops->remove(j->e->st, j->u->info.key);
    break;
  case J_SCAN:
    rc = ops->list(j->e->st, scan_one, j);
    break;
  case J_CREATE:
    rc = ops->create(j->e->st, &j->info, &j->su);
    if (rc == 0 && j->alias[0]) {
      rc = ops->alias_set(j->e->st, j->alias, j->info.key);
      if (rc < 0) {
        ops->close(j->su);
        ops->remove(j->e->st, j->info.key);
        j->su = NULL;
      }
    }
    break;
  }
  j->result = rc;
}

static void job_done(uv_work_t *w, int status);

/* Flush-type jobs record the state at the moment they start, which for a
 * deferred job is later than when it was asked for. */
static void job_prepare(struct job *j) {
  struct upload *u = j->u;
  if (j->kind != J_FLUSH && j->kind != J_FINISH) return;
  j->info = u->info;
  j->info.offset = u->written;
  /* Activity keeps an upload alive; a finished one never expires. */
  if (u->e->cfg.expire_after) j->info.expires = (int64_t)time(NULL) + (int64_t)u->e->cfg.expire_after;
  j->info.unverified = 0; /* what is recorded now is checked or needs no check */
  if (j->kind == J_FINISH) {
    j->was_finished = u->info.finished;
    j->info.finished = 1;
    j->info.length = (int64_t)u->written;
    j->info.expires = 0;
  }
}

/* Jobs that record metadata or change the data's length: never two at once. */
static int job_saves(const struct job *j) {
  return j->kind != J_WRITE && j->kind != J_COPY && j->kind != J_CREATE && j->kind != J_HASH;
}

static void job_submit(struct job *j) {
  j->work.data = j;
  if (j->u) job_prepare(j);
  if (j->u && job_saves(j)) j->u->saving = 1;
  if (j->u) j->u->refs++;
  int rc = uv_queue_work(j->e->loop, &j->work, job_run, job_done);
  if (rc < 0) { /* only fails on invalid arguments; report, never hang */
    j->result = rc;
    job_done(&j->work, 0);
  }
}

static struct job *job_new(struct upload *u, enum job_kind kind, upload_cb cb, void *arg) {
  struct job *j = job_alloc(u->e);
  if (!j) return NULL;
  j->e = u->e;
  j->u = u;
  j->kind = kind;
  j->cb = cb;
  j->arg = arg;
  return j;
}

/* Jobs that record metadata never overlap (two saves of one record would
 * race on its temp file and could go back in time); a second one waits for
 * the first. Writes may overlap a flush. */
static void save_submit(struct upload *u, struct job *j) {
  if (u->saving && job_saves(j)) {
    u->deferred = j;
    return;
  }
  job_submit(j);
}

/* The repair failed: those waiting for it get the upload's error. */
static void fail_waiters(struct upload *u) {
  while (u->wait_head && !u->holder) {
    struct upload_writer *w = u->wait_head;
    u->wait_head = w->next;
    if (!u->wait_head) u->wait_tail = NULL;
    w->next = NULL;
    w->state = 0;
    w->u = NULL;
    w->lock_cb(w->lock_arg, u->broken ? u->broken : -EIO);
    upload_put(u);
  }
}

/* Cuts an upload whose write or flush failed back to its durable offset,
 * in the background; once done it is usable again. */
static void repair_submit(struct upload *u) {
  if (u->repairing || u->removed || u->info.finished || u->deferred) return;
  struct job *j = job_new(u, J_REPAIR, NULL, NULL);
  if (!j) return;
  j->background = 1;
  j->offset = u->info.offset;
  u->repairing = 1;
  save_submit(u, j);
}

static void maybe_background_flush(struct upload *u) {
  if (u->saving || u->deferred || !u->holder || u->holder->provisional || u->info.finished) return;
  if (u->written - u->info.offset < u->e->cfg.sync_interval) return;
  struct job *j = job_new(u, J_FLUSH, NULL, NULL);
  if (!j) return;
  j->background = 1;
  job_submit(j);
}

static void job_done(uv_work_t *w, int status) {
  struct job *j = w->data;
  struct upload *u = j->u;
  int rc = status < 0 ? status : (int)(j->result < 0 ? j->result : 0);

  switch (j->kind) {
  case J_WRITE:
    if (status == 0 && j->marked) u->info.unverified = 1;
    if (status == 0 && j->result > 0) u->written += (uint64_t)j->result;
    if (status == 0 && j->result >= 0 && (size_t)j->result < j->len) rc = j->err ? j->err : -EIO;
    if (rc < 0 && rc != -ENOMEM) u->broken = rc;
    break;
  case J_COPY:
    if (status == 0 && j->result > 0) u->written += (uint64_t)j->result;
    upload_put(j->src);
    break;
  case J_FLUSH:
  case J_FINISH:
  case J_RESTART:
    if (rc == 0) {
      uint64_t before = u->info.offset;
      if (j->kind == J_FLUSH) {
        /* a periodic flush may finish while the holder changed the length */
        if (j->info.offset > u->info.offset) u->info.offset = j->info.offset;
        if (j->info.length == u->info.length) u->info_dirty = 0;
        u->info.expires = j->info.expires;
        u->info.unverified = j->info.unverified;
      } else {
        u->info = j->info;
        u->info_dirty = 0;
      }
      if (j->kind == J_RESTART) u->written = 0;
      if (u->info.offset > before && u->holder && u->holder->on_durable)
        u->holder->on_durable(u->holder, u->info.offset);
    } else {
      /* Bytes past the durable offset are in an unknown state: refuse the
       * upload until a repair cuts them off, rather than let a client append
       * after bytes we could not vouch for. */
      u->broken = rc;
      log_warn("upload %s: %s failed: %s", u->info.key,
               j->kind == J_RESTART ? "restart" : "flush", strerror(-rc));
    }
    if (rc == 0 && j->kind == J_FINISH && !j->was_finished) owner_add(u->e, u->info.owner, -1);
    break;
  case J_REPAIR:
    u->repairing = 0;
    if (rc == 0) {
      u->broken = 0;
      u->written = u->info.offset;
      log_info("upload %s: repaired at offset %llu", u->info.key, (unsigned long long)u->info.offset);
      grant_next(u);
    } else {
      log_warn("upload %s: repair failed: %s", u->info.key, strerror(-rc));
      fail_waiters(u);
    }
    break;
  case J_HASH:
    break;
  case J_DISCARD:
    if (rc == 0) u->written = j->offset;
    else u->broken = rc; /* bytes we refused are still there: keep clients away */
    break;
  case J_REMOVE:
    if (rc == 0 && !u->removed && !u->info.finished) owner_add(u->e, u->info.owner, -1);
    if (rc == 0) u->removed = 1;
    break;
  case J_SCAN:
    j->e->sweeping = 0;
    for (size_t i = 0; i < j->nkeys; i++) sweep_found(j->e, j->keys[i]);
    free(j->keys);
    job_release(j->e, j);
    return;
  case J_CREATE:
    /* The alias existed on disk before this callback: a request for it may
     * have opened the upload already. One key, one object (one lock). */
    if (rc == 0 && (u = table_find(j->e, j->info.key)) != NULL) {
      u->refs++;
      j->e->st->ops->close(j->su);
      store_info_release(&j->info);
    } else if (rc == 0) {
      u = upload_wrap(j->e, j->su, &j->info);
      if (!u) {
        j->e->st->ops->close(j->su);
        rc = -ENOMEM;
      }
    }
    if (!u) store_info_release(&j->info);
    if (rc < 0) owner_add(j->e, j->info.owner, -1);
    j->ccb(j->arg, rc == 0 ? u : NULL, rc);
    job_release(j->e, j);
    return;
  }

  if (job_saves(j)) {
    u->saving = 0;
    struct job *d = u->deferred;
    u->deferred = NULL;
    if (d) job_submit(d);
  }
  if (j->unlock_job) {
    u->unlock_commit = 0;
    grant_next(u);
  } else if (!j->background) {
    /* Before the callback: it may ask for a commit, which then queues
     * behind this flush instead of racing it. */
    if (j->kind == J_WRITE && rc == 0) maybe_background_flush(u);
    if (j->cb) j->cb(j->arg, rc);
  }
  job_release(u->e, j);
  upload_put(u);
}

int upload_create(struct upload_engine *e, const struct upload_spec *spec, upload_create_cb cb,
                  void *arg) {
  if (e->cfg.max_unfinished && spec->owner && spec->owner[0]) {
    struct owner_count *oc = owner_find(e, spec->owner, 0);
    if (oc && oc->n >= e->cfg.max_unfinished) return -EUSERS;
  }
  struct job *j = job_alloc(e);
  if (!j) return -ENOMEM;
  j->e = e;
  j->kind = J_CREATE;
  j->ccb = cb;
  j->arg = arg;
  j->info.length = spec->length;
  j->info.created = (int64_t)time(NULL);
  j->info.expires = e->cfg.expire_after ? j->info.created + (int64_t)e->cfg.expire_after : 0;
  snprintf(j->info.kind, sizeof(j->info.kind), "%s", spec->kind);
  if ((spec->metadata && !(j->info.metadata = strdup(spec->metadata))) ||
      (spec->concat && !(j->info.concat = strdup(spec->concat)))) {
    store_info_release(&j->info);
    job_release(e, j);
    return -ENOMEM;
  }
  if (spec->alias) snprintf(j->alias, sizeof(j->alias), "%s", spec->alias);
  if (spec->owner) snprintf(j->info.owner, sizeof(j->info.owner), "%s", spec->owner);
  /* Counted from now on, so creations in flight count too. */
  owner_add(e, j->info.owner, 1);
  job_submit(j);
  return 0;
}

/* ---------- lock ---------- */

static void grant_next(struct upload *u) {
  if (u->holder || u->unlock_commit || u->repairing || !u->wait_head) return;
  struct upload_writer *w = u->wait_head;
  u->wait_head = w->next;
  if (!u->wait_head) u->wait_tail = NULL;
  w->next = NULL;
  w->state = 2;
  w->preempted = 0;
  u->holder = w;
  /* Several waiters: the new holder is asked to yield at once. */
  if (u->wait_head) {
    w->preempted = 1;
    if (w->on_preempt) w->on_preempt(w);
  }
  w->lock_cb(w->lock_arg, 0);
}

void upload_lock(struct upload *u, struct upload_writer *w, upload_cb cb, void *arg) {
  w->u = u;
  w->lock_cb = cb;
  w->lock_arg = arg;
  w->next = NULL;
  u->refs++;
  if (u->broken && !u->holder && !u->unlock_commit) repair_submit(u);
  if (u->broken && !u->repairing) {
    w->state = 0;
    w->u = NULL;
    upload_put(u);
    cb(arg, u->broken);
    return;
  }
  /* A repair in flight: wait for it like for a holder. */
  if (!u->repairing && !u->holder && !u->unlock_commit && !u->wait_head) {
    w->state = 2;
    w->preempted = 0;
    u->holder = w;
    cb(arg, 0);
    return;
  }
  w->state = 1;
  if (u->wait_tail) u->wait_tail->next = w;
  else u->wait_head = w;
  u->wait_tail = w;
  struct upload_writer *h = u->holder;
  if (h && !h->preempted) {
    h->preempted = 1;
    if (h->on_preempt) h->on_preempt(h);
  }
}

void upload_unlock(struct upload_writer *w) {
  struct upload *u = w->u;
  if (!u || w->state == 0) return;
  if (w->state == 1) {
    struct upload_writer **pp = &u->wait_head;
    struct upload_writer *prev = NULL;
    while (*pp && *pp != w) prev = *pp, pp = &(*pp)->next;
    if (*pp) *pp = w->next;
    if (u->wait_tail == w) u->wait_tail = prev;
    w->state = 0;
    w->u = NULL;
    upload_put(u);
    return;
  }
  int provisional = w->provisional;
  w->state = 0;
  w->u = NULL;
  u->holder = NULL;
  if (u->broken && !u->removed) {
    repair_submit(u);
    grant_next(u);
    upload_put(u);
    return;
  }
  /* Whatever the holder delivered becomes durable before anyone else looks:
   * the next holder is told an offset, and that must be on disk. A
   * provisional holder's unconfirmed bytes are dropped instead. */
  if ((u->written > u->info.offset || u->info_dirty) && !u->info.finished && !u->removed) {
    int discard = provisional && u->written > u->info.offset;
    struct job *j = job_new(u, discard ? J_DISCARD : J_FLUSH, NULL, NULL);
    if (j && discard) j->offset = u->info.offset;
    if (j) {
      j->unlock_job = 1;
      u->unlock_commit = 1;
      save_submit(u, j);
      upload_put(u);
      return;
    }
  }
  grant_next(u);
  upload_put(u);
}

/* ---------- holder operations ---------- */

/* A job for an operation that writes or records; NULL once cb has the error
 * (the upload awaits its repair, or out of memory). */
static struct job *holder_job(struct upload *u, enum job_kind kind, upload_cb cb, void *arg) {
  struct job *j = u->broken ? NULL : job_new(u, kind, cb, arg);
  if (!j) cb(arg, u->broken ? u->broken : -ENOMEM);
  return j;
}

void upload_write(struct upload_writer *w, const char *data, size_t len, upload_cb cb,
                  void *arg) {
  struct upload *u = w->u;
  struct job *j = holder_job(u, J_WRITE, cb, arg);
  if (!j) return;
  j->data = data;
  j->len = len;
  j->offset = u->written;
  if (w->provisional && !u->info.unverified) {
    j->mark_unverified = 1;
    j->info = u->info;
    j->info.unverified = 1;
  }
  save_submit(u, j);
}

void upload_copy(struct upload_writer *w, struct upload *src, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j;
  if (!src->info.finished || !(j = job_new(u, J_COPY, cb, arg))) {
    cb(arg, src->info.finished ? -ENOMEM : -EINVAL);
    return;
  }
  src->refs++;
  j->src = src;
  j->len = (size_t)src->info.length;
  j->offset = u->written;
  save_submit(u, j);
}

void upload_commit(struct upload_writer *w, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = holder_job(u, J_FLUSH, cb, arg);
  if (!j) return;
  save_submit(u, j);
}

void upload_finish(struct upload_writer *w, const char *alias, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = holder_job(u, J_FINISH, cb, arg);
  if (!j) return;
  if (alias) snprintf(j->alias, sizeof(j->alias), "%s", alias);
  save_submit(u, j);
}

void upload_restart(struct upload_writer *w, int64_t length, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = holder_job(u, J_RESTART, cb, arg);
  if (!j) return;
  j->info = u->info;
  j->info.offset = 0;
  j->info.length = length;
  save_submit(u, j);
}

void upload_hash(struct upload_writer *w, int algo, uint64_t from, unsigned char *out,
                 upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = job_new(u, J_HASH, cb, arg);
  if (!j) {
    cb(arg, -ENOMEM);
    return;
  }
  j->algo = algo;
  j->from = from;
  j->offset = u->written;
  j->hash_out = out;
  save_submit(u, j);
}

void upload_discard(struct upload_writer *w, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = job_new(u, J_DISCARD, cb, arg);
  if (!j) {
    cb(arg, -ENOMEM);
    return;
  }
  j->offset = u->info.offset;
  save_submit(u, j);
}

void upload_remove(struct upload_writer *w, upload_cb cb, void *arg) {
  struct upload *u = w->u;
  struct job *j = job_new(u, J_REMOVE, cb, arg);
  if (!j) {
    cb(arg, -ENOMEM);
    return;
  }
  save_submit(u, j);
}

void upload_set_length(struct upload_writer *w, int64_t length) {
  struct upload *u = w->u;
  if (u->info.length == length) return;
  u->info.length = length;
  u->info_dirty = 1;
}

/* ---------- expiry sweeper ---------- */

struct sweep {
  struct upload_writer w;
  struct upload *u;
};

static void sweep_removed(void *arg, int status) {
  struct sweep *s = arg;
  if (status == 0) log_info("removed expired upload %s", s->u->info.key);
  upload_unlock(&s->w);
  upload_put(s->u);
  free(s);
}

static void sweep_locked(void *arg, int status) {
  struct sweep *s = arg;
  if (status < 0) {
    upload_put(s->u);
    free(s);
    return;
  }
  upload_remove(&s->w, sweep_removed, s);
}

/* On the loop: an upload the scan found expired. One in use is left alone
 * (a long request may outlive the expiry its last commit set). */
static void sweep_found(struct upload_engine *e, const char *key) {
  struct upload *u;
  if (upload_get(e, key, &u) < 0) return;
  struct sweep *s = NULL;
  if (!upload_expired(u) || u->holder || u->wait_head || u->unlock_commit ||
      !(s = calloc(1, sizeof(*s)))) {
    upload_put(u);
    return;
  }
  s->u = u;
  upload_lock(u, &s->w, sweep_locked, s);
}

static void on_sweep_timer(uv_timer_t *t) {
  struct upload_engine *e = t->data;
  if (e->sweeping) return;
  struct job *j = job_alloc(e);
  if (!j) return;
  j->e = e;
  j->kind = J_SCAN;
  e->sweeping = 1;
  job_submit(j);
}

int upload_engine_start_sweeper(struct upload_engine *e) {
  if (!e->cfg.expire_after || e->sweeper_on) return 0;
  uint64_t ms = e->cfg.expire_after * 1000 / 4;
  if (ms < 250) ms = 250;
  if (ms > 60000) ms = 60000;
  int rc = uv_timer_init(e->loop, &e->sweep_timer);
  if (rc < 0) return rc;
  e->sweep_timer.data = e;
  e->sweeper_on = 1;
  return uv_timer_start(&e->sweep_timer, on_sweep_timer, ms, ms);
}

void upload_engine_stop_sweeper(struct upload_engine *e) {
  if (!e->sweeper_on) return;
  e->sweeper_on = 0;
  uv_close((uv_handle_t *)&e->sweep_timer, NULL);
}
