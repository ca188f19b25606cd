/* One HTTP request working on an upload (see upload_request.h). */
#include "upload_request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void on_body(struct http_request *req, const char *data, size_t len);
static void on_end(struct http_request *req);
static void on_close(struct http_request *req, int err);
static const struct http_handler handler = {on_body, on_end, on_close};

static void on_preempt(struct upload_writer *w) {
  struct ureq *r = (struct ureq *)((char *)w - offsetof(struct ureq, w));
  if (r->req) http_req_abort(r->req);
}

void *ureq_new(struct http_request *req, size_t size, const struct ureq_proto *proto) {
  struct ureq *r = calloc(1, size);
  if (!r) {
    http_res_text(req, 503, NULL, "out of memory");
    return NULL;
  }
  r->proto = proto;
  r->req = req;
  r->w.on_preempt = on_preempt;
  http_req_set_handler(req, &handler, r);
  return r;
}

void ureq_set_checks(struct ureq *r, const struct body_check *checks, int n) {
  for (int i = 0; i < n && i < UREQ_CHECKS; i++) {
    r->checks[i] = checks[i];
    /* A body that will be checked counts only once the check passes. */
    if (checks[i].algo != CHECKSUM_NONE || checks[i].trailer) r->w.provisional = 1;
  }
}

void ureq_release(struct ureq *r) {
  if (r->req || r->pending) return;
  /* Unlocking commits (or, for a provisional body, discards) what this
   * request wrote: engine rule. A waiter that never got the lock cancels. */
  if (r->locked || r->w.state == 1) upload_unlock(&r->w);
  if (r->u) upload_put(r->u);
  free(r);
}

void ureq_unlock(struct ureq *r) {
  if (!r->locked) return;
  r->locked = 0;
  upload_unlock(&r->w);
}

static void on_close(struct http_request *req, int err) {
  (void)err;
  struct ureq *r = http_req_data(req);
  r->req = NULL;
  ureq_release(r);
}

void ureq_lock(struct ureq *r, struct upload *u, upload_cb locked) {
  r->u = u;
  upload_lock(u, &r->w, locked, r);
}

int ureq_lock_taken(struct ureq *r, int status) {
  if (status == 0 && upload_removed(r->u)) { /* deleted while we waited */
    upload_unlock(&r->w);
    status = -ENOENT;
  }
  if (status < 0) {
    if (r->req) r->proto->storage_error(r, status);
    return -1;
  }
  r->locked = 1;
  if (!r->req) { /* went away while waiting */
    ureq_release(r);
    return -1;
  }
  return 0;
}

int ureq_completes(const struct ureq *r) {
  const struct upload_info *info = upload_info(r->u);
  if (r->overflow || r->err) return 0;
  if (info->length >= 0) return upload_written(r->u) == (uint64_t)info->length;
  return r->complete;
}

/* ---------- the end of a body ---------- */

static void done(struct ureq *r, enum ureq_result res) {
  r->proto->body_done(r, res);
  ureq_release(r);
}

static void after_commit(void *arg, int status) {
  struct ureq *r = arg;
  r->pending--;
  ureq_unlock(r);
  if (status < 0 && !r->err) r->err = status;
  done(r, r->err < 0 ? UREQ_ERROR : r->overflow ? UREQ_OVERFLOW : UREQ_STORED);
}

static void commit_or_finish(struct ureq *r) {
  const struct upload_info *info = upload_info(r->u);
  if (info->finished) { /* complete already (an empty append at its end): nothing to record */
    ureq_unlock(r);
    r->proto->body_done(r, r->overflow ? UREQ_OVERFLOW : UREQ_STORED);
    return;
  }
  r->pending++;
  if (ureq_completes(r)) {
    if (info->length < 0) upload_set_length(&r->w, (int64_t)upload_written(r->u));
    upload_finish(&r->w, NULL, after_commit, r);
  } else {
    upload_commit(&r->w, after_commit, r);
  }
}

static void after_discard(void *arg, int status) {
  struct ureq *r = arg;
  r->pending--;
  ureq_unlock(r);
  if (status < 0) {
    r->err = status;
    done(r, UREQ_ERROR);
  } else {
    done(r, r->err == -EBADMSG ? UREQ_MISMATCH : UREQ_BAD_TRAILER);
  }
}

static void discard(struct ureq *r, int why) {
  r->err = why;
  r->pending++;
  upload_discard(&r->w, after_discard, r);
}

/* Storage failed in the middle: drop a provisional body, keep a plain one. */
static void fail(struct ureq *r, int err) {
  r->err = err;
  r->pending++;
  if (r->w.provisional) upload_discard(&r->w, after_commit, r);
  else upload_commit(&r->w, after_commit, r);
}

static void after_hash(void *arg, int status);

/* Hashes for the digest checks one after another, then for the wanted
 * digest, then commits or finishes. */
static void run_checks(struct ureq *r) {
  int completes = ureq_completes(r);
  while (r->next_check < UREQ_CHECKS) {
    const struct body_check *ck = &r->checks[r->next_check++];
    if (ck->algo == CHECKSUM_NONE) continue;
    if (ck->whole && !completes) continue; /* the representation is not whole yet */
    r->checking = ck;
    r->pending++;
    upload_hash(&r->w, ck->algo, ck->whole ? 0 : r->start, r->got, after_hash, r);
    return;
  }
  r->checking = NULL;
  if (r->want_algo != CHECKSUM_NONE && !r->hashed && completes) {
    r->hashed = 1;
    r->pending++;
    upload_hash(&r->w, r->want_algo, 0, r->wanted, after_hash, r);
    return;
  }
  commit_or_finish(r);
}

static void after_hash(void *arg, int status) {
  struct ureq *r = arg;
  const struct body_check *ck = r->checking;
  r->pending--;
  if (status < 0) fail(r, status);
  else if (ck && (ck->dlen != checksum_size(ck->algo) || memcmp(r->got, ck->digest, ck->dlen) != 0))
    discard(r, -EBADMSG);
  else run_checks(r);
  ureq_release(r);
}

void ureq_end(struct ureq *r) {
  r->ended = 1;
  r->next_check = 0;
  run_checks(r);
}

static void after_write(void *arg, int status) {
  struct ureq *r = arg;
  r->pending--;
  if (!r->req) {
    ureq_release(r);
    return;
  }
  if (status < 0) {
    fail(r, status);
    return;
  }
  if (r->overflow) {
    /* an unverifiable body is dropped; a plain one keeps what fitted */
    if (r->w.provisional) {
      r->pending++;
      upload_discard(&r->w, after_commit, r);
    } else {
      commit_or_finish(r);
    }
    return;
  }
  http_req_body_consumed(r->req);
}

static void on_body(struct http_request *req, const char *data, size_t len) {
  struct ureq *r = http_req_data(req);
  uint64_t written = upload_written(r->u);
  size_t n = len;
  if (written + len > r->limit) {
    n = written >= r->limit ? 0 : (size_t)(r->limit - written);
    r->overflow = 1;
  }
  r->pending++;
  if (n == 0) {
    after_write(r, 0);
    return;
  }
  upload_write(&r->w, data, n, after_write, r);
}

static void on_end(struct http_request *req) {
  struct ureq *r = http_req_data(req);
  int trailer = 0;
  for (int i = 0; i < UREQ_CHECKS; i++)
    if (r->checks[i].trailer && r->checks[i].algo == CHECKSUM_NONE) trailer = 1;
  /* Trailers join the header list as they are parsed. */
  if (trailer && (!r->proto->trailers || r->proto->trailers(r) < 0)) {
    discard(r, -EINVAL);
    return;
  }
  ureq_end(r);
}

void ureq_read_body(struct ureq *r, uint64_t limit) {
  r->limit = limit;
  http_req_read_body(r->req);
}
