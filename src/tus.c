/* tus 1.0.0 over the upload engine (see tus.h). */
#include "tus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checksum.h"
#include "util.h"

#define OFFSET_MEDIA_TYPE "application/offset+octet-stream"

struct tus {
  struct upload_engine *eng;
  uint64_t max_size;
  char base[256]; /* always ends in '/' */
  size_t base_len;
};

enum tus_method { M_HEAD, M_PATCH, M_DELETE, M_POST };

/* How a request body is to be checked (tus checksum / checksum-trailer). */
struct body_check {
  int algo; /* CHECKSUM_NONE: no header; the trailer may still bring one */
  unsigned char digest[CHECKSUM_MAX_SIZE];
  size_t dlen;
  int trailer; /* Trailer: Upload-Checksum announced */
};

/* Per-request state; outlives the request while engine operations run
 * (req is NULL once the request is over). */
struct treq {
  struct tus *t;
  struct http_request *req;
  struct upload *u;
  struct upload_writer w;
  enum tus_method method;
  uint64_t start;       /* offset this request appends at */
  int64_t new_length;   /* Upload-Length sent on a PATCH (deferred length), -1 */
  uint64_t limit;       /* no byte at or past this offset is kept */
  int pending;          /* engine operations in flight */
  int err;              /* storage error to report after committing */
  struct body_check check;
  unsigned locked : 1, overflow : 1;
};

static void on_body(struct http_request *req, const char *data, size_t len);
static void on_end(struct http_request *req);
static void on_close(struct http_request *req, int err);
static const struct http_handler body_handler = {on_body, on_end, on_close};
static const struct http_handler plain_handler = {NULL, NULL, on_close};

int tus_new(struct tus **out, struct upload_engine *eng, const char *base_path, uint64_t max_size) {
  size_t n = strlen(base_path);
  if (n == 0 || base_path[0] != '/' || n + 2 > sizeof(((struct tus *)0)->base)) return -EINVAL;
  struct tus *t = calloc(1, sizeof(*t));
  if (!t) return -ENOMEM;
  t->eng = eng;
  t->max_size = max_size;
  memcpy(t->base, base_path, n);
  if (t->base[n - 1] != '/') t->base[n++] = '/';
  t->base[n] = 0;
  t->base_len = n;
  *out = t;
  return 0;
}

void tus_free(struct tus *t) { free(t); }

int tus_owns(const struct tus *t, const char *path, size_t len) {
  if (len + 1 == t->base_len && memcmp(path, t->base, len) == 0) return 1; /* "/files" */
  return len >= t->base_len && memcmp(path, t->base, t->base_len) == 0;
}

/* ---------- header parsing ---------- */

static int token_eq(const char *v, size_t n, const char *want) {
  return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

int tus_metadata_valid(const char *v, size_t n) {
  /* keys seen so far, as (offset, length) into v; metadata is small */
  struct {
    size_t off, len;
  } keys[128];
  size_t nkeys = 0, pos = 0;
  if (n == 0) return 0;
  while (pos <= n) {
    const char *comma = memchr(v + pos, ',', n - pos);
    size_t end = comma ? (size_t)(comma - v) : n;
    size_t a = pos, b = end;
    while (a < b && v[a] == ' ') a++; /* tolerate ", " between pairs */
    while (b > a && v[b - 1] == ' ') b--;
    const char *sp = memchr(v + a, ' ', b - a);
    size_t klen = sp ? (size_t)(sp - (v + a)) : b - a;
    if (klen == 0) return -EINVAL;
    for (size_t i = 0; i < klen; i++) {
      unsigned char ch = (unsigned char)v[a + i];
      if (ch <= 0x20 || ch == 0x7f || ch == ',') return -EINVAL;
    }
    for (size_t k = 0; k < nkeys; k++)
      if (keys[k].len == klen && memcmp(v + keys[k].off, v + a, klen) == 0) return -EINVAL;
    if (nkeys == sizeof(keys) / sizeof(keys[0])) return -EINVAL;
    keys[nkeys].off = a;
    keys[nkeys++].len = klen;
    if (sp && base64_decode(sp + 1, b - a - klen - 1, NULL, 0) < 0) return -EINVAL;
    if (!comma) break;
    pos = end + 1;
  }
  return 0;
}

/* "<algo> <base64>" into ck; -1 when malformed or of an unknown algorithm. */
static int parse_checksum(struct body_check *ck, const char *v, size_t n) {
  const char *sp = memchr(v, ' ', n);
  enum checksum_algo algo = sp ? checksum_algo_parse(v, (size_t)(sp - v)) : CHECKSUM_NONE;
  if (algo == CHECKSUM_NONE) return -1;
  ssize_t len = base64_decode(sp + 1, n - (size_t)(sp + 1 - v), ck->digest, sizeof(ck->digest));
  if (len < 0 || (size_t)len != checksum_size(algo)) return -1;
  ck->algo = algo;
  ck->dlen = (size_t)len;
  return 0;
}

/* Strict decimal header; *out -1 when absent; -1 when malformed or repeated. */
static int header_number(struct http_request *req, const char *name, int64_t *out) {
  size_t n;
  uint64_t u;
  *out = -1;
  if (http_req_header_count(req, name) > 1) return -1;
  const char *v = http_req_header(req, name, &n);
  if (!v) return 0;
  if (parse_u64_strict(v, n, &u) < 0) return -1;
  *out = (int64_t)u;
  return 0;
}

static int is_offset_media_type(struct http_request *req) {
  size_t n;
  const char *v = http_req_header(req, "content-type", &n);
  if (!v) return 0;
  const char *semi = memchr(v, ';', n); /* parameters are allowed and ignored */
  size_t m = semi ? (size_t)(semi - v) : n;
  while (m && (v[m - 1] == ' ' || v[m - 1] == '\t')) m--;
  return token_eq(v, m, OFFSET_MEDIA_TYPE);
}

/* Whether a Trailer header announces Upload-Checksum. */
static int trailer_announces_checksum(struct http_request *req) {
  size_t n;
  const char *v = http_req_header(req, "trailer", &n);
  while (v && n) {
    const char *comma = memchr(v, ',', n);
    size_t m = comma ? (size_t)(comma - v) : n;
    size_t a = 0, b = m;
    while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
    if (token_eq(v + a, b - a, "upload-checksum")) return 1;
    if (!comma) break;
    v += m + 1;
    n -= m + 1;
  }
  return 0;
}

/* ---------- responses ---------- */

static void start(struct http_request *req, int status, const char *reason) {
  http_res_start(req, status, reason);
  http_res_header(req, "Tus-Resumable", TUS_VERSION);
}

static void text(struct http_request *req, int status, const char *reason, const char *msg) {
  if (!req) return;
  start(req, status, reason);
  if (status == 412) http_res_header(req, "Tus-Version", TUS_VERSION);
  http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
  char buf[256];
  int n = snprintf(buf, sizeof(buf), "%s\n", msg);
  http_res_send(req, buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
}

static void respond_storage_error(struct treq *r, int err) {
  if (err == -ENOSPC || err == -EDQUOT) text(r->req, 507, NULL, "storage full");
  else text(r->req, 500, NULL, "storage error");
}

/* expiration: every response about an unfinished upload that will expire
 * says when (tus §Expiration: MUST on PATCH, SHOULD on POST). */
static void add_expires(struct http_request *req, const struct upload_info *info) {
  char date[32];
  if (info->finished || !info->expires) return;
  http_date(info->expires, date);
  http_res_header(req, "Upload-Expires", "%s", date);
}

static void respond_offset(struct treq *r, int status, uint64_t offset) {
  if (!r->req) return;
  start(r->req, status, NULL);
  if (r->method == M_POST) http_res_header(r->req, "Location", "%s%s", r->t->base, upload_info(r->u)->key);
  http_res_header(r->req, "Upload-Offset", "%" PRIu64, offset);
  add_expires(r->req, upload_info(r->u));
  http_res_send(r->req, NULL, 0);
}

/* ---------- request state ---------- */

static void release_if_done(struct treq *r) {
  if (r->req || r->pending) return;
  /* Unlocking commits (or, for a provisional body, discards) what this
   * request wrote: engine rule. */
  if (r->locked || r->w.state == 1) upload_unlock(&r->w);
  upload_put(r->u);
  free(r);
}

static void unlock(struct treq *r) {
  if (!r->locked) return;
  r->locked = 0;
  upload_unlock(&r->w);
}

static void on_close(struct http_request *req, int err) {
  (void)err;
  struct treq *r = http_req_data(req);
  r->req = NULL;
  release_if_done(r);
}

static void on_preempt(struct upload_writer *w) {
  struct treq *r = (struct treq *)((char *)w - offsetof(struct treq, w));
  if (r->req) http_req_abort(r->req);
}

static struct treq *treq_new(struct tus *t, struct http_request *req, enum tus_method m,
                             const struct http_handler *h, const struct body_check *ck) {
  struct treq *r = calloc(1, sizeof(*r));
  if (!r) {
    text(req, 503, NULL, "out of memory");
    return NULL;
  }
  r->t = t;
  r->req = req;
  r->method = m;
  r->new_length = -1;
  r->w.on_preempt = on_preempt;
  if (ck) {
    r->check = *ck;
    /* A body that will be checked counts only once the check passes. */
    r->w.provisional = ck->algo != CHECKSUM_NONE || ck->trailer;
  }
  http_req_set_handler(req, h, r);
  return r;
}

/* Common start of every lock callback: -1 when the request cannot go on. */
static int lock_taken(struct treq *r, int status) {
  if (status < 0) {
    respond_storage_error(r, status);
    return -1;
  }
  r->locked = 1;
  if (!r->req) { /* went away while waiting */
    release_if_done(r);
    return -1;
  }
  return 0;
}

/* Opens a tus upload by the path's id; answers 404 itself. */
static struct upload *open_upload(struct tus *t, struct http_request *req, const char *key) {
  struct upload *u;
  if (!store_key_valid(key) || upload_get(t->eng, key, &u) < 0) {
    text(req, 404, NULL, "no such upload");
    return NULL;
  }
  if (strcmp(upload_info(u)->kind, "tus") != 0) { /* an article upload: not ours */
    upload_put(u);
    text(req, 404, NULL, "no such upload");
    return NULL;
  }
  if (upload_expired(u)) { /* the sweeper will remove it */
    upload_put(u);
    text(req, 410, NULL, "upload expired");
    return NULL;
  }
  return u;
}

/* ---------- HEAD ---------- */

static void head_locked(void *arg, int status) {
  struct treq *r = arg;
  if (lock_taken(r, status) < 0) return;
  const struct upload_info *info = upload_info(r->u);
  struct http_request *req = r->req;
  unlock(r);
  start(req, 200, NULL);
  http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
  if (info->length >= 0) http_res_header(req, "Upload-Length", "%" PRId64, info->length);
  else http_res_header(req, "Upload-Defer-Length", "1");
  if (info->metadata) http_res_header(req, "Upload-Metadata", "%s", info->metadata);
  add_expires(req, info);
  http_res_header(req, "Cache-Control", "no-store");
  http_res_send(req, NULL, 0);
}

/* ---------- PATCH and the body of a creation POST ---------- */

static void after_commit(void *arg, int status) {
  struct treq *r = arg;
  r->pending--;
  uint64_t off = upload_info(r->u)->offset;
  unlock(r);
  if (r->err < 0) respond_storage_error(r, r->err);
  else if (status < 0) respond_storage_error(r, status);
  else if (r->overflow) text(r->req, 413, NULL, "body longer than Upload-Length allows");
  else respond_offset(r, r->method == M_POST ? 201 : 204, off);
  release_if_done(r);
}

static void commit_or_finish(struct treq *r) {
  const struct upload_info *info = upload_info(r->u);
  if (info->finished) { /* complete already (an empty PATCH at its end): nothing to record */
    uint64_t off = info->offset;
    unlock(r);
    if (r->overflow) text(r->req, 413, NULL, "body longer than Upload-Length allows");
    else respond_offset(r, r->method == M_POST ? 201 : 204, off);
    return;
  }
  r->pending++;
  if (info->length >= 0 && upload_written(r->u) == (uint64_t)info->length && !r->overflow && !r->err)
    upload_finish(&r->w, NULL, after_commit, r);
  else
    upload_commit(&r->w, after_commit, r);
}

static void after_discard(void *arg, int status) {
  struct treq *r = arg;
  r->pending--;
  unlock(r);
  if (status < 0) respond_storage_error(r, status);
  else if (r->err == -EBADMSG) text(r->req, 460, "Checksum Mismatch", "checksum mismatch: chunk discarded");
  else text(r->req, 400, NULL, "bad Upload-Checksum trailer: chunk discarded");
  release_if_done(r);
}

static void discard(struct treq *r, int why) {
  r->err = why;
  r->pending++;
  upload_discard(&r->w, after_discard, r);
}

static void after_verify(void *arg, int status) {
  struct treq *r = arg;
  r->pending--;
  if (status == -EBADMSG) discard(r, -EBADMSG);
  else if (status < 0) {
    r->err = status;
    r->pending++;
    upload_discard(&r->w, after_commit, r);
  } else commit_or_finish(r);
  release_if_done(r);
}

static void after_write(void *arg, int status) {
  struct treq *r = arg;
  r->pending--;
  if (!r->req) {
    release_if_done(r);
    return;
  }
  if (status < 0 || r->overflow) {
    r->err = status < 0 ? status : 0;
    if (r->w.provisional) {
      /* unverifiable: drop the chunk */
      r->pending++;
      upload_discard(&r->w, after_commit, r);
      return;
    }
    commit_or_finish(r);
    return;
  }
  http_req_body_consumed(r->req);
}

static void on_body(struct http_request *req, const char *data, size_t len) {
  struct treq *r = http_req_data(req);
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
  struct treq *r = http_req_data(req);
  struct body_check *ck = &r->check;
  if (ck->algo == CHECKSUM_NONE && ck->trailer) {
    /* checksum-trailer: the value arrives after the body (trailers join the
     * header list as they are parsed) */
    size_t n;
    const char *v = http_req_header(req, "upload-checksum", &n);
    if (!v || parse_checksum(ck, v, n) < 0) {
      discard(r, -EINVAL);
      return;
    }
  }
  if (ck->algo != CHECKSUM_NONE) {
    r->pending++;
    upload_verify(&r->w, ck->algo, r->start, ck->digest, ck->dlen, after_verify, r);
    return;
  }
  commit_or_finish(r);
}

/* The lock is held and the offset matches: take the body. */
static void begin_body(struct treq *r) {
  const struct upload_info *info = upload_info(r->u);
  uint64_t limit = info->length >= 0 ? (uint64_t)info->length : UINT64_MAX;
  if (r->t->max_size && r->t->max_size < limit) limit = r->t->max_size;
  r->limit = limit;
  int64_t cl = http_req_content_length(r->req);
  if (cl > 0 && r->start + (uint64_t)cl > limit) {
    unlock(r);
    text(r->req, 413, NULL, "body longer than Upload-Length allows");
    return;
  }
  http_req_read_body(r->req);
}

static void patch_locked(void *arg, int status) {
  struct treq *r = arg;
  if (lock_taken(r, status) < 0) return;
  const struct upload_info *info = upload_info(r->u);
  if (info->offset != r->start) {
    struct http_request *req = r->req;
    unlock(r);
    start(req, 409, NULL);
    http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
    http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
    static const char msg[] = "Upload-Offset does not match the upload's offset\n";
    http_res_send(req, msg, sizeof(msg) - 1);
    return;
  }
  if (r->new_length >= 0) {
    const char *why = NULL;
    if (info->length >= 0 && info->length != r->new_length) why = "Upload-Length differs from the upload's";
    else if ((uint64_t)r->new_length < info->offset) why = "Upload-Length below the upload's offset";
    else if (http_req_content_length(r->req) > 0 &&
             info->offset + (uint64_t)http_req_content_length(r->req) > (uint64_t)r->new_length)
      why = "Upload-Length smaller than Upload-Offset plus this body";
    else if (r->t->max_size && (uint64_t)r->new_length > r->t->max_size) why = "";
    if (why) {
      unlock(r);
      if (*why) text(r->req, 400, NULL, why);
      else text(r->req, 413, NULL, "Upload-Length exceeds the maximum size");
      return;
    }
    upload_set_length(&r->w, r->new_length);
  }
  begin_body(r);
}

/* Reads the headers PATCH and a creation body share; answers on error. */
static int read_body_headers(struct body_check *ck, struct http_request *req) {
  size_t n;
  if (!is_offset_media_type(req)) {
    text(req, 415, NULL, "Content-Type must be " OFFSET_MEDIA_TYPE);
    return -1;
  }
  if (http_req_header_count(req, "upload-checksum") > 1) {
    text(req, 400, NULL, "duplicate Upload-Checksum");
    return -1;
  }
  const char *v = http_req_header(req, "upload-checksum", &n);
  if (v && parse_checksum(ck, v, n) < 0) {
    text(req, 400, NULL, "Upload-Checksum: unsupported algorithm or bad digest (md5, sha1, sha256, crc32)");
    return -1;
  }
  ck->trailer = !v && trailer_announces_checksum(req);
  return 0;
}

static void handle_patch(struct tus *t, struct http_request *req, const char *key) {
  int64_t offset, length;
  struct body_check ck = {0};
  if (read_body_headers(&ck, req) < 0) return;
  if (header_number(req, "upload-offset", &offset) < 0 || offset < 0) {
    text(req, 400, NULL, "Upload-Offset must be a decimal byte count");
    return;
  }
  if (header_number(req, "upload-length", &length) < 0) {
    text(req, 400, NULL, "Upload-Length must be a decimal byte count");
    return;
  }
  struct upload *u = open_upload(t, req, key);
  if (!u) return;
  struct treq *r = treq_new(t, req, M_PATCH, &body_handler, &ck);
  if (!r) {
    upload_put(u);
    return;
  }
  r->u = u;
  r->start = (uint64_t)offset;
  r->new_length = length;
  upload_lock(u, &r->w, patch_locked, r);
}

/* ---------- POST (creation) ---------- */

static void created_locked(void *arg, int status) {
  struct treq *r = arg;
  if (lock_taken(r, status) < 0) return;
  if (http_req_content_length(r->req) != 0) {
    begin_body(r); /* creation-with-upload */
    return;
  }
  commit_or_finish(r); /* Upload-Length: 0 completes at once */
}

static void created(void *arg, struct upload *u, int status) {
  struct treq *r = arg;
  r->pending--;
  if (status < 0) {
    respond_storage_error(r, status);
    release_if_done(r);
    return;
  }
  r->u = u;
  if (!r->req) {
    release_if_done(r);
    return;
  }
  upload_lock(u, &r->w, created_locked, r);
}

static void handle_post(struct tus *t, struct http_request *req) {
  int64_t length;
  size_t n, mlen = 0;
  const char *v;
  if (http_req_header(req, "upload-concat", NULL)) {
    text(req, 400, NULL, "concatenation is not supported by this server");
    return;
  }
  if (header_number(req, "upload-length", &length) < 0) {
    text(req, 400, NULL, "Upload-Length must be a decimal byte count");
    return;
  }
  int deferred = 0;
  if ((v = http_req_header(req, "upload-defer-length", &n)) != NULL) {
    if (http_req_header_count(req, "upload-defer-length") > 1 || n != 1 || v[0] != '1') {
      text(req, 400, NULL, "Upload-Defer-Length must be 1");
      return;
    }
    deferred = 1;
  }
  if ((length >= 0) == deferred) {
    text(req, 400, NULL, "send exactly one of Upload-Length and Upload-Defer-Length: 1");
    return;
  }
  if (length >= 0 && t->max_size && (uint64_t)length > t->max_size) {
    text(req, 413, NULL, "Upload-Length exceeds the maximum size");
    return;
  }
  const char *meta = http_req_header(req, "upload-metadata", &mlen);
  if (meta && (http_req_header_count(req, "upload-metadata") > 1 || mlen > STORE_METADATA_MAX ||
               tus_metadata_valid(meta, mlen) < 0)) {
    text(req, 400, NULL, "bad Upload-Metadata (key base64value pairs, unique keys)");
    return;
  }
  struct body_check ck = {0};
  int64_t cl = http_req_content_length(req);
  if (cl != 0) {
    if (read_body_headers(&ck, req) < 0) return;
    if (length >= 0 && cl > 0 && cl > length) {
      text(req, 413, NULL, "body longer than Upload-Length allows");
      return;
    }
  }
  char *metadata = NULL;
  if (meta && mlen && !(metadata = strndup(meta, mlen))) {
    text(req, 503, NULL, "out of memory");
    return;
  }
  struct treq *r = treq_new(t, req, M_POST, &body_handler, &ck);
  if (!r) {
    free(metadata);
    return;
  }
  int rc = upload_create(t->eng, "tus", length, metadata, NULL, created, r);
  free(metadata);
  if (rc < 0) {
    respond_storage_error(r, rc);
    return;
  }
  r->pending++;
}

/* ---------- DELETE ---------- */

static void after_remove(void *arg, int status) {
  struct treq *r = arg;
  r->pending--;
  unlock(r);
  if (status < 0) respond_storage_error(r, status);
  else if (r->req) {
    start(r->req, 204, NULL);
    http_res_send(r->req, NULL, 0);
  }
  release_if_done(r);
}

static void delete_locked(void *arg, int status) {
  struct treq *r = arg;
  if (lock_taken(r, status) < 0) return;
  r->pending++;
  upload_remove(&r->w, after_remove, r);
}

/* ---------- dispatch ---------- */

static void handle_options(struct tus *t, struct http_request *req) {
  start(req, 204, NULL);
  http_res_header(req, "Tus-Version", TUS_VERSION);
  http_res_header(req, "Tus-Extension", TUS_EXTENSIONS);
  http_res_header(req, "Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS);
  if (t->max_size) http_res_header(req, "Tus-Max-Size", "%" PRIu64, t->max_size);
  http_res_send(req, NULL, 0);
}

static void method_not_allowed(struct http_request *req, const char *allow) {
  start(req, 405, NULL);
  http_res_header(req, "Allow", "%s", allow);
  http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
  http_res_send(req, "method not allowed\n", 19);
}

void tus_handle(struct http_request *req, struct tus *t) {
  size_t plen, n;
  const char *path = http_req_path(req, &plen);
  const char *m = http_req_method(req);
  char key[STORE_KEY_LEN + 1];
  const char *v;

  if (strcmp(m, "OPTIONS") == 0) {
    handle_options(t, req);
    return;
  }
  /* Every other request names the protocol version it speaks (tus §Headers). */
  v = http_req_header(req, "tus-resumable", &n);
  if (!v || !token_eq(v, n, TUS_VERSION)) {
    text(req, 412, NULL, "Tus-Resumable: 1.0.0 required");
    return;
  }
  /* For environments without PATCH/DELETE (tus §X-HTTP-Method-Override). */
  if (strcmp(m, "POST") == 0 && (v = http_req_header(req, "x-http-method-override", &n)) != NULL) {
    if (token_eq(v, n, "PATCH")) m = "PATCH";
    else if (token_eq(v, n, "DELETE")) m = "DELETE";
    else if (token_eq(v, n, "HEAD")) m = "HEAD";
    else if (!token_eq(v, n, "POST")) {
      text(req, 400, NULL, "X-HTTP-Method-Override must be PATCH, DELETE or HEAD");
      return;
    }
  }
  int collection = plen < t->base_len || plen == t->base_len;
  if (collection) {
    if (strcmp(m, "POST") == 0) handle_post(t, req);
    else method_not_allowed(req, "POST, OPTIONS");
    return;
  }
  size_t klen = plen - t->base_len;
  if (klen != STORE_KEY_LEN || memchr(path + t->base_len, '/', klen)) {
    text(req, 404, NULL, "no such upload");
    return;
  }
  memcpy(key, path + t->base_len, klen);
  key[klen] = 0;

  if (strcmp(m, "PATCH") == 0) {
    handle_patch(t, req, key);
    return;
  }
  enum tus_method tm;
  upload_cb locked;
  if (strcmp(m, "HEAD") == 0) tm = M_HEAD, locked = head_locked;
  else if (strcmp(m, "DELETE") == 0) tm = M_DELETE, locked = delete_locked;
  else {
    method_not_allowed(req, "HEAD, PATCH, DELETE, OPTIONS");
    return;
  }
  struct upload *u = open_upload(t, req, key);
  if (!u) return;
  struct treq *r = treq_new(t, req, tm, &plain_handler, NULL);
  if (!r) {
    upload_put(u);
    return;
  }
  r->u = u;
  /* HEAD and DELETE go through the lock: a hung PATCH is ended first and
   * what it delivered is durable before the offset is read or the upload
   * goes. A HEAD holds the lock only for a moment and never yields it. */
  if (tm == M_HEAD) r->w.on_preempt = NULL;
  upload_lock(u, &r->w, locked, r);
}
