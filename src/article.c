/* The article's protocol over the upload engine. */
#include "article.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "util.h"

struct creating {
  char alias[65];
  struct creating *next;
};

struct article {
  struct upload_engine *eng;
  struct auth *auth;
  uint64_t max_size;
  struct creating *creating; /* aliases whose upload is being created */
};

/* Per-request state. Outlives the request while engine operations it started
 * are in flight (req is NULL once the request is over). */
struct areq {
  struct article *a;
  struct http_request *req;
  struct upload *u;
  struct upload_writer w;
  char alias[65];
  char owner[STORE_OWNER_MAX + 1]; /* for the upload it creates */
  uint64_t start;
  int64_t size;   /* X-File-Size, -1 if absent */
  uint64_t limit; /* no byte at or past this offset is kept */
  int pending;    /* engine operations in flight */
  int err;        /* storage error to report once the bytes before it are durable */
  unsigned locked : 1, creating : 1, overflow : 1, status_only : 1;
  const char *overflow_why;
};

static void on_body(struct http_request *req, const char *data, size_t len);
static void on_end(struct http_request *req);
static void on_close(struct http_request *req, int err);
static const struct http_handler upload_handler = {on_body, on_end, on_close};
static const struct http_handler status_handler = {NULL, NULL, on_close};

int article_new(struct article **out, struct upload_engine *eng, struct auth *auth,
                uint64_t max_size) {
  struct article *a = calloc(1, sizeof(*a));
  if (!a) return -ENOMEM;
  a->eng = eng;
  a->auth = auth;
  a->max_size = max_size;
  *out = a;
  return 0;
}

void article_free(struct article *a) { free(a); }

int article_alias(const char *token, size_t token_len, const char *id, size_t len,
                  char alias[65]) {
  /* A domain prefix keeps article ids apart from any other alias namespace, and scoped
   * ids apart from unscoped ones; a header value holds no newline, so the token cannot
   * run into the id. */
  static const char prefix[] = "article\n", scoped[] = "article-scoped\n";
  char buf[sizeof(scoped) + ARTICLE_TOKEN_MAX + 1 + ARTICLE_ID_MAX];
  size_t n = 0;
  if (len > ARTICLE_ID_MAX || token_len > ARTICLE_TOKEN_MAX) return -ENAMETOOLONG;
  if (token_len > 0) {
    memcpy(buf, scoped, sizeof(scoped) - 1);
    n = sizeof(scoped) - 1;
    memcpy(buf + n, token, token_len);
    n += token_len;
    buf[n++] = '\n';
  } else {
    memcpy(buf, prefix, sizeof(prefix) - 1);
    n = sizeof(prefix) - 1;
  }
  memcpy(buf + n, id, len);
  return sha256_hex(buf, n + len, alias);
}

/* ---------- request state ---------- */

static void creating_remove(struct article *a, const char *alias) {
  for (struct creating **pp = &a->creating; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->alias, alias) == 0) {
      struct creating *c = *pp;
      *pp = c->next;
      free(c);
      return;
    }
  }
}

static int creating_add(struct article *a, const char *alias) {
  for (struct creating *c = a->creating; c; c = c->next)
    if (strcmp(c->alias, alias) == 0) return -EBUSY;
  struct creating *c = calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  memcpy(c->alias, alias, sizeof(c->alias));
  c->next = a->creating;
  a->creating = c;
  return 0;
}

static void areq_release_if_done(struct areq *ar) {
  if (ar->req || ar->pending) return;
  /* Unlocking commits whatever this request delivered (engine rule). */
  if (ar->locked) upload_unlock(&ar->w);
  else if (ar->w.state == 1) upload_unlock(&ar->w); /* cancel a wait */
  if (ar->creating) creating_remove(ar->a, ar->alias);
  upload_put(ar->u);
  free(ar);
}

static void unlock(struct areq *ar) {
  if (ar->locked) {
    ar->locked = 0;
    upload_unlock(&ar->w);
  }
}

static void on_close(struct http_request *req, int err) {
  (void)err;
  struct areq *ar = http_req_data(req);
  ar->req = NULL;
  areq_release_if_done(ar);
}

/* Another request wants this upload: the client of this one gave up on it
 * (or it is stalled); end it now so the newcomer need not wait for a timeout. */
static void on_preempt(struct upload_writer *w) {
  struct areq *ar = (struct areq *)((char *)w - offsetof(struct areq, w));
  if (ar->req) http_req_abort(ar->req);
}

static void respond_error(struct areq *ar, int err) {
  if (!ar->req) return;
  if (err == -ENOSPC || err == -EDQUOT)
    http_res_text(ar->req, 507, NULL, "storage full");
  else if (err == -EUSERS)
    http_res_text(ar->req, 429, NULL, "too many unfinished uploads");
  else if (err == -EMFILE || err == -ENFILE)
    http_res_text(ar->req, 503, NULL, "server busy, retry");
  else
    http_res_text(ar->req, 500, NULL, "storage error");
}

static void respond_count(struct http_request *req, int status, const char *reason,
                          const char *prefix, uint64_t n) {
  char body[48];
  int len = snprintf(body, sizeof(body), "%s%" PRIu64, prefix, n);
  http_res_start(req, status, reason);
  http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
  http_res_header(req, "Cache-Control", "no-store");
  http_res_send(req, body, (size_t)len);
}

/* ---------- header parsing ---------- */

/* Reads X-File-Id and derives the alias; answers the request on error.
 * owner receives the requester's owner id. */
static int read_id(struct article *a, struct http_request *req, char alias[65],
                   char owner[STORE_OWNER_MAX + 1]) {
  size_t n;
  unsigned count = http_req_header_count(req, "x-file-id");
  const char *id = http_req_header(req, "x-file-id", &n);
  if (count > 1) {
    http_res_text(req, 400, NULL, "duplicate X-File-Id");
    return -1;
  }
  if (!id || n == 0) {
    http_res_text(req, 400, "No file id", "missing X-File-Id");
    return -1;
  }
  if (n > ARTICLE_ID_MAX) {
    http_res_text(req, 431, NULL, "X-File-Id too long");
    return -1;
  }
  size_t tn = 0;
  const char *token = http_req_header(req, "x-upload-token", &tn);
  if (http_req_header_count(req, "x-upload-token") > 1) {
    http_res_text(req, 400, NULL, "duplicate X-Upload-Token");
    return -1;
  }
  if (token && tn > ARTICLE_TOKEN_MAX) {
    http_res_text(req, 431, NULL, "X-Upload-Token too long");
    return -1;
  }
  for (size_t i = 0; token && i < tn; i++) {
    if (token[i] < 0x21 || token[i] > 0x7e) {
      http_res_text(req, 400, NULL, "X-Upload-Token must be printable ASCII without spaces");
      return -1;
    }
  }
  owner[0] = 0;
  if (a->auth && auth_identify(a->auth, req, owner, NULL, NULL) < 0) owner[0] = 0;
  /* With --auth-tokens the ids are the token's own: two users' files with
   * the same id never meet, whatever X-Upload-Token says. */
  if (a->auth && auth_tokens_on(a->auth) && owner[0]) token = owner, tn = strlen(owner);
  if (article_alias(token, token ? tn : 0, id, n, alias) < 0) {
    http_res_text(req, 500, NULL, "hash failed");
    return -1;
  }
  return 0;
}

/* Strict decimal header; *out = -1 when absent. Answers on error. */
static int read_number(struct http_request *req, const char *name, int64_t *out) {
  size_t n;
  char why[80];
  *out = -1;
  if (http_req_header_count(req, name) > 1) {
    snprintf(why, sizeof(why), "duplicate %s", name);
    http_res_text(req, 400, NULL, why);
    return -1;
  }
  const char *v = http_req_header(req, name, &n);
  if (!v) return 0;
  uint64_t u;
  if (parse_u64_strict(v, n, &u) < 0) {
    snprintf(why, sizeof(why), "%s must be a decimal byte count", name);
    http_res_text(req, 400, NULL, why);
    return -1;
  }
  *out = (int64_t)u;
  return 0;
}

/* ---------- GET /status ---------- */

static void status_locked(void *arg, int status) {
  struct areq *ar = arg;
  if (status < 0) {
    respond_error(ar, status);
    return;
  }
  ar->locked = 1;
  const struct upload_info *info = upload_info(ar->u);
  uint64_t off = info->finished ? 0 : info->offset;
  unlock(ar);
  if (ar->req) respond_count(ar->req, 200, NULL, "", off);
}

void article_status(struct http_request *req, struct article *a) {
  const char *m = http_req_method(req);
  char alias[65], owner[STORE_OWNER_MAX + 1];
  struct upload *u;
  if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
    http_res_start(req, 405, NULL);
    http_res_header(req, "Allow", "GET, HEAD");
    http_res_send(req, "use GET\n", 8);
    return;
  }
  if (read_id(a, req, alias, owner) < 0) return;
  int rc = upload_get_alias(a->eng, alias, &u);
  if (rc == -ENOENT) {
    respond_count(req, 200, NULL, "", 0);
    return;
  }
  if (rc < 0) {
    http_res_text(req, 500, NULL, "storage error");
    return;
  }
  if (upload_info(u)->finished || upload_expired(u)) {
    upload_put(u);
    respond_count(req, 200, NULL, "", 0);
    return;
  }
  struct areq *ar = calloc(1, sizeof(*ar));
  if (!ar) {
    upload_put(u);
    http_res_text(req, 503, NULL, "out of memory");
    return;
  }
  ar->a = a;
  ar->req = req;
  ar->u = u;
  ar->status_only = 1;
  http_req_set_handler(req, &status_handler, ar);
  /* Through the lock: a hung upload on this id is ended and its bytes made
   * durable first, so the answer is everything that arrived. */
  upload_lock(u, &ar->w, status_locked, ar);
}

/* ---------- POST /upload ---------- */

static void begin_body(struct areq *ar) {
  if (!ar->req) return;
  const struct upload_info *info = upload_info(ar->u);
  uint64_t limit = UINT64_MAX;
  if (info->length >= 0) limit = (uint64_t)info->length;
  if (ar->a->max_size && ar->a->max_size < limit) limit = ar->a->max_size;
  ar->limit = limit;
  ar->overflow_why = info->length >= 0 && (uint64_t)info->length == limit
                         ? "body longer than X-File-Size allows"
                         : "upload larger than the maximum size";
  int64_t cl = http_req_content_length(ar->req);
  if (cl > 0 && upload_written(ar->u) + (uint64_t)cl > limit) {
    unlock(ar);
    http_res_text(ar->req, 413, NULL, ar->overflow_why);
    return;
  }
  http_req_read_body(ar->req);
}

static void after_restart(void *arg, int status) {
  struct areq *ar = arg;
  ar->pending--;
  if (status < 0) {
    unlock(ar);
    respond_error(ar, status);
  } else {
    begin_body(ar);
  }
  areq_release_if_done(ar);
}

static void start_fresh(struct areq *ar);

static void locked_fresh(void *arg, int status) {
  struct areq *ar = arg;
  if (status < 0) {
    respond_error(ar, status);
    return;
  }
  ar->locked = 1;
  if (!ar->req) {
    areq_release_if_done(ar);
    return;
  }
  const struct upload_info *info = upload_info(ar->u);
  if (info->finished) { /* completed while we waited: a new upload */
    unlock(ar);
    upload_put(ar->u);
    ar->u = NULL;
    start_fresh(ar);
    return;
  }
  if (upload_written(ar->u) == 0 && info->length == ar->size) {
    begin_body(ar);
    return;
  }
  ar->pending++;
  upload_restart(&ar->w, ar->size, after_restart, ar);
}

static void created(void *arg, struct upload *u, int status) {
  struct areq *ar = arg;
  ar->pending--;
  creating_remove(ar->a, ar->alias);
  ar->creating = 0;
  if (status < 0) {
    respond_error(ar, status);
    areq_release_if_done(ar);
    return;
  }
  ar->u = u;
  if (!ar->req) {
    areq_release_if_done(ar);
    return;
  }
  upload_lock(u, &ar->w, locked_fresh, ar);
}

static void start_fresh(struct areq *ar) {
  int rc = creating_add(ar->a, ar->alias);
  if (rc == -EBUSY) {
    http_res_text(ar->req, 409, NULL, "this X-File-Id is being created by another request; retry");
    return;
  }
  if (rc == 0) {
    ar->creating = 1;
    struct upload_spec spec = {
        .kind = "article", .length = ar->size, .alias = ar->alias, .owner = ar->owner};
    rc = upload_create(ar->a->eng, &spec, created, ar);
    if (rc == 0) {
      ar->pending++;
      return;
    }
    creating_remove(ar->a, ar->alias);
    ar->creating = 0;
  }
  respond_error(ar, rc);
}

static void locked_resume(void *arg, int status) {
  struct areq *ar = arg;
  if (status < 0) {
    respond_error(ar, status);
    return;
  }
  ar->locked = 1;
  if (!ar->req) {
    areq_release_if_done(ar);
    return;
  }
  const struct upload_info *info = upload_info(ar->u);
  uint64_t held = info->finished ? 0 : info->offset;
  if (held != ar->start) {
    unlock(ar);
    respond_count(ar->req, 400, "Wrong start byte", "", held);
    return;
  }
  if (ar->size >= 0) {
    if (info->length >= 0 && info->length != ar->size) {
      unlock(ar);
      http_res_text(ar->req, 400, NULL, "X-File-Size differs from the size given before");
      return;
    }
    if (ar->start > (uint64_t)ar->size) {
      unlock(ar);
      http_res_text(ar->req, 400, NULL, "X-Start-Byte beyond X-File-Size");
      return;
    }
    upload_set_length(&ar->w, ar->size);
  }
  begin_body(ar);
}

static void after_final_commit(void *arg, int status) {
  struct areq *ar = arg;
  ar->pending--;
  unlock(ar);
  if (ar->req) {
    if (ar->err < 0) respond_error(ar, ar->err);
    else if (status < 0) respond_error(ar, status);
    else if (ar->overflow) http_res_text(ar->req, 413, NULL, ar->overflow_why);
    else http_res_send(ar->req, NULL, 0);
  }
  areq_release_if_done(ar);
}

static void after_finish(void *arg, int status) {
  struct areq *ar = arg;
  ar->pending--;
  uint64_t n = upload_info(ar->u)->offset;
  unlock(ar);
  if (ar->req) {
    if (status < 0) respond_error(ar, status);
    else respond_count(ar->req, 200, NULL, "Success ", n);
  }
  areq_release_if_done(ar);
}

static void after_write(void *arg, int status) {
  struct areq *ar = arg;
  ar->pending--;
  if (!ar->req) {
    areq_release_if_done(ar);
    return;
  }
  if (status < 0 || ar->overflow) {
    /* Keep what was written up to the error or the limit, durably, then say so. */
    ar->err = status;
    ar->pending++;
    upload_commit(&ar->w, after_final_commit, ar);
    return;
  }
  http_req_body_consumed(ar->req);
}

static void on_body(struct http_request *req, const char *data, size_t len) {
  struct areq *ar = http_req_data(req);
  uint64_t written = upload_written(ar->u);
  size_t n = len;
  if (written + len > ar->limit) {
    n = written >= ar->limit ? 0 : (size_t)(ar->limit - written);
    ar->overflow = 1;
  }
  ar->pending++;
  if (n == 0) {
    after_write(ar, 0);
    return;
  }
  upload_write(&ar->w, data, n, after_write, ar);
}

static void on_end(struct http_request *req) {
  struct areq *ar = http_req_data(req);
  const struct upload_info *info = upload_info(ar->u);
  /* With a known size the upload completes when it is reached; without one
   * (the article's own client), a body received in full completes it. */
  int complete = info->length >= 0 ? upload_written(ar->u) == (uint64_t)info->length : 1;
  ar->pending++;
  if (complete) upload_finish(&ar->w, ar->alias, after_finish, ar);
  else upload_commit(&ar->w, after_final_commit, ar);
}

void article_upload(struct http_request *req, struct article *a) {
  char alias[65], owner[STORE_OWNER_MAX + 1];
  int64_t start, size;
  struct upload *u = NULL;
  if (strcmp(http_req_method(req), "POST") != 0) {
    http_res_start(req, 405, NULL);
    http_res_header(req, "Allow", "POST");
    http_res_send(req, "use POST\n", 9);
    return;
  }
  if (read_id(a, req, alias, owner) < 0) return;
  if (read_number(req, "x-start-byte", &start) < 0) return;
  if (read_number(req, "x-file-size", &size) < 0) return;
  if (start < 0) start = 0;
  int64_t cl = http_req_content_length(req);
  if (size >= 0) {
    if (a->max_size && (uint64_t)size > a->max_size) {
      http_res_text(req, 413, NULL, "X-File-Size exceeds the maximum upload size");
      return;
    }
    if (start > size) {
      http_res_text(req, 400, NULL, "X-Start-Byte beyond X-File-Size");
      return;
    }
    if (cl > 0 && (uint64_t)start + (uint64_t)cl > (uint64_t)size) {
      http_res_text(req, 413, NULL, "body longer than X-File-Size allows");
      return;
    }
  }
  if (cl > 0 && a->max_size && (uint64_t)start + (uint64_t)cl > a->max_size) {
    http_res_text(req, 413, NULL, "upload larger than the maximum size");
    return;
  }

  int rc = upload_get_alias(a->eng, alias, &u);
  if (rc < 0 && rc != -ENOENT) {
    http_res_text(req, 500, NULL, "storage error");
    return;
  }
  if (u && (upload_info(u)->finished || upload_expired(u))) { /* forgotten: a new upload */
    upload_put(u);
    u = NULL;
  }
  if (!u && start > 0) {
    respond_count(req, 400, "Wrong start byte", "", 0);
    return;
  }
  struct areq *ar = calloc(1, sizeof(*ar));
  if (!ar) {
    upload_put(u);
    http_res_text(req, 503, NULL, "out of memory");
    return;
  }
  ar->a = a;
  ar->req = req;
  ar->u = u;
  ar->start = (uint64_t)start;
  ar->size = size;
  ar->w.on_preempt = on_preempt;
  memcpy(ar->alias, alias, sizeof(alias));
  memcpy(ar->owner, owner, sizeof(owner));
  http_req_set_handler(req, &upload_handler, ar);
  if (start == 0) {
    /* The article's rule: no or zero start byte begins the upload afresh. */
    if (u) upload_lock(u, &ar->w, locked_fresh, ar);
    else start_fresh(ar);
  } else {
    upload_lock(u, &ar->w, locked_resume, ar);
  }
}
