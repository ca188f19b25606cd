/* tus 1.0.0 over the upload engine (see tus.h). */
#include "tus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checksum.h"
#include "concat.h"
#include "metadata.h"
#include "upload_request.h"
#include "util.h"

#define OFFSET_MEDIA_TYPE "application/offset+octet-stream"

enum tus_method { M_HEAD, M_PATCH, M_DELETE, M_POST };

struct treq {
  struct ureq r; /* first: the ureq owns the allocation */
  struct endpoint *ep;
  enum tus_method method;
  int64_t new_length; /* Upload-Length on a PATCH (deferred length), -1 */
};

/* ---------- header parsing ---------- */

static int token_eq(const char *v, size_t n, const char *want) {
  return n == strlen(want) && strncasecmp(v, want, n) == 0;
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
  if (parse_u64_strict(v, n, &u) < 0 || u > INT64_MAX) return -1;
  *out = (int64_t)u;
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

static void respond_storage_error(struct http_request *req, int err) {
  if (err == -ENOENT) text(req, 404, NULL, "no such upload");
  else if (err == -ENOSPC || err == -EDQUOT) text(req, 507, NULL, "storage full");
  else if (err == -EUSERS) text(req, 429, NULL, "too many unfinished uploads");
  else if (err == -EMFILE || err == -ENFILE) text(req, 503, NULL, "server busy, retry");
  else text(req, 500, NULL, "storage error");
}

static int is_final(const struct upload_info *info) {
  return info->concat && strncmp(info->concat, "final", 5) == 0;
}

/* expiration: every response about an unfinished upload that will expire
 * says when (tus §Expiration: MUST on PATCH, SHOULD on POST). */
static void add_expires(struct http_request *req, const struct upload_info *info) {
  char date[32];
  if (info->finished || !info->expires) return;
  http_date(info->expires, date);
  http_res_header(req, "Upload-Expires", "%s", date);
}

static void add_location(struct treq *t) {
  char url[512];
  endpoint_url(t->ep, t->r.req, upload_info(t->r.u)->key, url, sizeof(url));
  http_res_header(t->r.req, "Location", "%s", url);
}

static void respond_offset(struct treq *t, int status) {
  const struct upload_info *info = upload_info(t->r.u);
  if (!t->r.req) return;
  start(t->r.req, status, NULL);
  if (t->method == M_POST) add_location(t);
  if (!is_final(info) || info->finished) http_res_header(t->r.req, "Upload-Offset", "%" PRIu64, info->offset);
  add_expires(t->r.req, info);
  http_res_send(t->r.req, NULL, 0);
}

/* Answers for an upload that could not be opened. */
static void respond_open_error(struct http_request *req, int err) {
  if (err == -ETIMEDOUT) text(req, 410, NULL, "upload expired");
  else if (endpoint_denied(err)) text(req, 403, NULL, endpoint_denied(err));
  else text(req, 404, NULL, "no such upload");
}

/* ---------- the shared request life ---------- */

static void body_done(struct ureq *r, enum ureq_result res) {
  struct treq *t = (struct treq *)r;
  const struct upload_info *info = upload_info(r->u);
  /* A partial upload that completes may complete a final one waiting for it
   * (concatenation-unfinished). */
  if (info->finished && info->concat && strcmp(info->concat, "partial") == 0)
    concat_partial_finished(t->ep);
  switch (res) {
  case UREQ_STORED: respond_offset(t, t->method == M_POST ? 201 : 204); break;
  case UREQ_OVERFLOW: text(r->req, 413, NULL, "body longer than Upload-Length allows"); break;
  case UREQ_MISMATCH: text(r->req, 460, "Checksum Mismatch", "checksum mismatch: chunk discarded"); break;
  case UREQ_BAD_TRAILER: text(r->req, 400, NULL, "bad Upload-Checksum trailer: chunk discarded"); break;
  case UREQ_ERROR: respond_storage_error(r->req, r->err); break;
  }
}

static void storage_error(struct ureq *r, int err) { respond_storage_error(r->req, err); }

/* checksum-trailer: the value arrives after the body. */
static int trailers(struct ureq *r) {
  size_t n;
  const char *v = http_req_header(r->req, "upload-checksum", &n);
  return v ? parse_checksum(&r->checks[0], v, n) : -1;
}

static const struct ureq_proto tus_proto = {body_done, storage_error, trailers};

static struct treq *treq_new(struct endpoint *ep, struct http_request *req, enum tus_method m) {
  struct treq *t = ureq_new(req, sizeof(*t), &tus_proto);
  if (!t) return NULL;
  t->ep = ep;
  t->method = m;
  t->new_length = -1;
  return t;
}

/* ---------- HEAD ---------- */

static void head_answer(struct treq *t) {
  const struct upload_info *info = upload_info(t->r.u);
  struct http_request *req = t->r.req;
  start(req, 200, NULL);
  /* concatenation: a final upload has no offset until it is whole */
  if (!is_final(info) || info->finished) http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
  if (info->length >= 0) http_res_header(req, "Upload-Length", "%" PRId64, info->length);
  else if (!is_final(info)) http_res_header(req, "Upload-Defer-Length", "1");
  if (info->metadata) http_res_header(req, "Upload-Metadata", "%s", info->metadata);
  if (info->concat) concat_add_header(t->ep, req, info->concat);
  add_expires(req, info);
  http_res_header(req, "Cache-Control", "no-store");
  http_res_send(req, NULL, 0);
}

static void after_settle(void *arg, int status) {
  struct treq *t = arg;
  t->r.pending--;
  /* Not ready yet, or done: the answer says which. A final that can never
   * be built says why, so that the client stops waiting. */
  if (status == -ENOENT) text(t->r.req, 410, NULL, "a partial upload of this final upload is gone");
  else if (status == -EFBIG) text(t->r.req, 413, NULL, "the partial uploads together exceed the maximum size");
  else if (t->r.req) head_answer(t);
  ureq_release(&t->r);
}

static void head_locked(void *arg, int status) {
  struct treq *t = arg;
  if (ureq_lock_taken(&t->r, status) < 0) return;
  ureq_unlock(&t->r);
  const struct upload_info *info = upload_info(t->r.u);
  if (is_final(info) && !info->finished) {
    /* Its partials may have finished while we were not looking (after a
     * restart nothing remembers the final waits for them). */
    t->r.pending++;
    concat_settle(t->ep, t->r.u, after_settle, t);
    return;
  }
  head_answer(t);
}

/* ---------- PATCH and the body of a creation POST ---------- */

/* The lock is held and the offset matches: take the body. */
static void begin_body(struct treq *t) {
  const struct upload_info *info = upload_info(t->r.u);
  uint64_t limit = info->length >= 0 ? (uint64_t)info->length : UINT64_MAX;
  if (t->ep->max_size && t->ep->max_size < limit) limit = t->ep->max_size;
  int64_t cl = http_req_content_length(t->r.req);
  if (cl > 0 && t->r.start + (uint64_t)cl > limit) {
    ureq_unlock(&t->r);
    text(t->r.req, 413, NULL, "body longer than Upload-Length allows");
    return;
  }
  ureq_read_body(&t->r, limit);
}

static void patch_locked(void *arg, int status) {
  struct treq *t = arg;
  if (ureq_lock_taken(&t->r, status) < 0) return;
  const struct upload_info *info = upload_info(t->r.u);
  struct http_request *req = t->r.req;
  if (info->offset != t->r.start) {
    ureq_unlock(&t->r);
    start(req, 409, NULL);
    http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
    http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
    static const char msg[] = "Upload-Offset does not match the upload's offset\n";
    http_res_send(req, msg, sizeof(msg) - 1);
    return;
  }
  if (t->new_length >= 0) {
    const char *why = NULL;
    int64_t cl = http_req_content_length(req);
    if (info->length >= 0 && info->length != t->new_length) why = "Upload-Length differs from the upload's";
    else if ((uint64_t)t->new_length < info->offset) why = "Upload-Length below the upload's offset";
    else if (cl > 0 && info->offset + (uint64_t)cl > (uint64_t)t->new_length)
      why = "Upload-Length smaller than Upload-Offset plus this body";
    else if (t->ep->max_size && (uint64_t)t->new_length > t->ep->max_size) why = "";
    if (why) {
      ureq_unlock(&t->r);
      if (*why) text(req, 400, NULL, why);
      else text(req, 413, NULL, "Upload-Length exceeds the maximum size");
      return;
    }
    upload_set_length(&t->r.w, t->new_length);
  }
  begin_body(t);
}

/* Reads the headers PATCH and a creation body share; answers on error. */
static int read_body_headers(struct body_check *ck, struct http_request *req) {
  size_t n;
  if (!http_req_content_type_is(req, OFFSET_MEDIA_TYPE)) {
    text(req, 415, NULL, "Content-Type must be " OFFSET_MEDIA_TYPE);
    return -1;
  }
  if (http_req_header_count(req, "upload-checksum") > 1) {
    text(req, 400, NULL, "duplicate Upload-Checksum");
    return -1;
  }
  const char *v = http_req_header(req, "upload-checksum", &n);
  if (v && parse_checksum(ck, v, n) < 0) {
    text(req, 400, NULL, "Upload-Checksum: unsupported algorithm or bad digest (md5, sha1, sha256, sha512, crc32)");
    return -1;
  }
  ck->trailer = !v && http_req_header_has_token(req, "trailer", "upload-checksum");
  return 0;
}

static void handle_patch(struct endpoint *ep, struct http_request *req, const char *key) {
  int64_t offset, length;
  struct body_check ck = {0};
  struct upload *u;
  if (read_body_headers(&ck, req) < 0) return;
  if (header_number(req, "upload-offset", &offset) < 0 || offset < 0) {
    text(req, 400, NULL, "Upload-Offset must be a decimal byte count");
    return;
  }
  if (header_number(req, "upload-length", &length) < 0) {
    text(req, 400, NULL, "Upload-Length must be a decimal byte count");
    return;
  }
  int rc = endpoint_open(ep, req, key, "tus", &u);
  if (rc < 0) {
    respond_open_error(req, rc);
    return;
  }
  if (is_final(upload_info(u))) { /* concatenation: its data comes from the partials */
    upload_put(u);
    text(req, 403, NULL, "a final upload cannot be patched");
    return;
  }
  struct treq *t = treq_new(ep, req, M_PATCH);
  if (!t) {
    upload_put(u);
    return;
  }
  ureq_set_checks(&t->r, &ck, 1);
  t->r.start = (uint64_t)offset;
  t->new_length = length;
  ureq_lock(&t->r, u, patch_locked);
}

/* ---------- POST (creation) ---------- */

static void created_locked(void *arg, int status) {
  struct treq *t = arg;
  if (ureq_lock_taken(&t->r, status) < 0) return;
  if (http_req_content_length(t->r.req) != 0) {
    begin_body(t); /* creation-with-upload */
    return;
  }
  ureq_end(&t->r); /* Upload-Length: 0 completes at once */
}

static void final_settled(void *arg, int status) {
  struct treq *t = arg;
  t->r.pending--;
  if (status == -EAGAIN) concat_wait(t->ep, upload_info(t->r.u)->key); /* concatenation-unfinished */
  if (status == -EFBIG) text(t->r.req, 413, NULL, "the partial uploads together exceed the maximum size");
  else if (status < 0 && status != -EAGAIN && status != -ENOENT) respond_storage_error(t->r.req, status);
  else respond_offset(t, 201);
  ureq_release(&t->r);
}

static void created(void *arg, struct upload *u, int status) {
  struct treq *t = arg;
  t->r.pending--;
  if (status < 0) {
    respond_storage_error(t->r.req, status);
    ureq_release(&t->r);
    return;
  }
  if (!t->r.req) {
    upload_put(u);
    ureq_release(&t->r);
    return;
  }
  if (is_final(upload_info(u))) {
    t->r.u = u;
    t->r.pending++;
    concat_settle(t->ep, u, final_settled, t);
    return;
  }
  ureq_lock(&t->r, u, created_locked);
}

/* Upload-Concat on a POST: *concat set to what the new upload records
 * ("partial" or "final <keys>", malloc'd) and *length to a final's; -1
 * after answering. */
static int read_concat(struct endpoint *ep, struct http_request *req, char **concat, int64_t *length) {
  size_t n;
  const char *v = http_req_header(req, "upload-concat", &n);
  *concat = NULL;
  if (!v) return 0;
  if (http_req_header_count(req, "upload-concat") > 1) {
    text(req, 400, NULL, "duplicate Upload-Concat");
    return -1;
  }
  if (token_eq(v, n, "partial")) {
    if (!(*concat = strdup("partial"))) goto nomem;
    return 0;
  }
  if (http_req_header(req, "upload-length", NULL) || http_req_header(req, "upload-defer-length", NULL)) {
    text(req, 400, NULL, "a final upload takes its length from its partial uploads");
    return -1;
  }
  if (http_req_content_length(req) != 0) {
    text(req, 403, NULL, "a final upload takes no data");
    return -1;
  }
  const char *why = NULL;
  int rc = concat_final_spec(ep, req, v, n, concat, length, &why);
  if (rc == -ENOMEM) goto nomem;
  if (rc < 0) {
    text(req, rc == -EINVAL ? 400 : 403, NULL, why);
    return -1;
  }
  if (*length >= 0 && ep->max_size && (uint64_t)*length > ep->max_size) {
    free(*concat);
    text(req, 413, NULL, "the partial uploads together exceed the maximum size");
    return -1;
  }
  return 0;
nomem:
  text(req, 503, NULL, "out of memory");
  return -1;
}

static void handle_post(struct endpoint *ep, struct http_request *req) {
  int64_t length;
  size_t n, mlen = 0;
  const char *v;
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
  char *concat = NULL;
  int64_t final_length = -1;
  if (read_concat(ep, req, &concat, &final_length) < 0) return;
  int final = concat && concat[0] == 'f';
  if (!final && (length >= 0) == deferred) {
    free(concat);
    text(req, 400, NULL, "send exactly one of Upload-Length and Upload-Defer-Length: 1");
    return;
  }
  if (final) length = final_length;
  else if (length >= 0 && ep->max_size && (uint64_t)length > ep->max_size) {
    free(concat);
    text(req, 413, NULL, "Upload-Length exceeds the maximum size");
    return;
  }
  const char *meta = http_req_header(req, "upload-metadata", &mlen);
  if (meta && (http_req_header_count(req, "upload-metadata") > 1 || mlen > STORE_METADATA_MAX ||
               metadata_valid(meta, mlen) < 0)) {
    free(concat);
    text(req, 400, NULL, "bad Upload-Metadata (key base64value pairs, unique keys)");
    return;
  }
  struct body_check ck = {0};
  int64_t cl = http_req_content_length(req);
  if (cl != 0) {
    if (read_body_headers(&ck, req) < 0) goto out;
    if (length >= 0 && cl > 0 && cl > length) {
      text(req, 413, NULL, "body longer than Upload-Length allows");
      goto out;
    }
  }
  char *metadata = NULL;
  if (meta && mlen && !(metadata = strndup(meta, mlen))) {
    text(req, 503, NULL, "out of memory");
    goto out;
  }
  struct treq *t = treq_new(ep, req, M_POST);
  if (!t) {
    free(metadata);
    goto out;
  }
  ureq_set_checks(&t->r, &ck, 1);
  char owner[STORE_OWNER_MAX + 1];
  endpoint_owner(ep, req, owner);
  struct upload_spec spec = {
      .kind = "tus", .length = length, .metadata = metadata, .concat = concat, .owner = owner};
  int rc = upload_create(ep->eng, &spec, created, t);
  free(metadata);
  if (rc < 0) respond_storage_error(req, rc);
  else t->r.pending++;
out:
  free(concat);
}

/* ---------- DELETE ---------- */

static void after_remove(void *arg, int status) {
  struct treq *t = arg;
  t->r.pending--;
  ureq_unlock(&t->r);
  if (status < 0) respond_storage_error(t->r.req, status);
  else if (t->r.req) {
    start(t->r.req, 204, NULL);
    http_res_send(t->r.req, NULL, 0);
  }
  ureq_release(&t->r);
}

static void delete_locked(void *arg, int status) {
  struct treq *t = arg;
  if (ureq_lock_taken(&t->r, status) < 0) return;
  t->r.pending++;
  upload_remove(&t->r.w, after_remove, t);
}

/* ---------- dispatch ---------- */

void tus_add_discovery(struct endpoint *ep, struct http_request *req) {
  http_res_header(req, "Tus-Resumable", TUS_VERSION);
  http_res_header(req, "Tus-Version", TUS_VERSION);
  http_res_header(req, "Tus-Extension", TUS_EXTENSIONS);
  http_res_header(req, "Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS);
  if (ep->max_size) http_res_header(req, "Tus-Max-Size", "%" PRIu64, ep->max_size);
}

static void method_not_allowed(struct http_request *req, const char *allow) {
  start(req, 405, NULL);
  http_res_header(req, "Allow", "%s", allow);
  http_res_header(req, "Content-Type", "text/plain; charset=utf-8");
  http_res_send(req, "method not allowed\n", 19);
}

void tus_handle(struct endpoint *ep, struct http_request *req) {
  size_t n;
  const char *m = http_req_method(req);
  char key[STORE_KEY_LEN + 1];
  const char *v;

  /* Every request names the protocol version it speaks (tus §Headers). */
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
  int rc = endpoint_path_key(ep, req, key);
  if (rc == -ENOENT) { /* the collection */
    if (strcmp(m, "POST") == 0) handle_post(ep, req);
    else method_not_allowed(req, "POST, OPTIONS");
    return;
  }
  if (rc < 0) {
    respond_open_error(req, rc);
    return;
  }
  if (strcmp(m, "PATCH") == 0) {
    handle_patch(ep, req, key);
    return;
  }
  enum tus_method tm;
  upload_cb locked;
  if (strcmp(m, "HEAD") == 0) tm = M_HEAD, locked = head_locked;
  else if (strcmp(m, "DELETE") == 0) tm = M_DELETE, locked = delete_locked;
  else {
    method_not_allowed(req, "HEAD, PATCH, DELETE, OPTIONS, GET");
    return;
  }
  struct upload *u;
  if ((rc = endpoint_open(ep, req, key, "tus", &u)) < 0) {
    respond_open_error(req, rc);
    return;
  }
  struct treq *t = treq_new(ep, req, tm);
  if (!t) {
    upload_put(u);
    return;
  }
  /* HEAD and DELETE go through the lock: a hung PATCH is ended first and
   * what it delivered is durable before the offset is read or the upload
   * goes. A HEAD holds the lock only for a moment and never yields it. */
  if (tm == M_HEAD) t->r.w.on_preempt = NULL;
  ureq_lock(&t->r, u, locked);
}
