/* The IETF resumable-upload draft over the upload engine (see ietf.h).
 *
 * Decisions where the draft leaves room:
 * - An upload is complete when a request says so (Upload-Complete: ?1) or
 *   when its offset reaches a known length, whatever Upload-Complete said:
 *   no byte can follow, and clients such as tus-js-client never send ?1 on
 *   the last chunk. The answer then carries Upload-Complete: ?1.
 * - An empty append at the end of a complete upload is answered as the
 *   completing request was (the editor's copy allows the replay).
 * - A Repr-Digest is checked when the upload completes; one given at
 *   creation is remembered until then. A digest that does not match drops
 *   the request's body, so the client may send it again. */
#include "ietf.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "metadata.h"
#include "sfv.h"
#include "upload_request.h"
#include "util.h"

#define PARTIAL_MEDIA_TYPE "application/partial-upload"
#define PROBLEM_BASE "https://iana.org/assignments/http-problem-types#"

enum ietf_method { I_HEAD, I_PATCH, I_DELETE, I_POST };

struct ireq {
  struct ureq r; /* first: the ureq owns the allocation */
  struct endpoint *ep;
  enum ietf_method method;
  int version;       /* interop version; 0 when the request sent none */
  int complete;      /* the request said it ends the upload */
  int64_t length;    /* Upload-Length the request sent, -1 */
  uint64_t offset;   /* Upload-Offset the request sent */
  char url[512];     /* Location of a creation */
};

/* ---------- request fields ---------- */

/* -1 malformed, 0 absent, 1 present. */
static int field_integer(struct http_request *req, const char *name, int64_t *out) {
  size_t n;
  const char *v = http_req_header(req, name, &n);
  if (!v) return 0;
  if (http_req_header_count(req, name) > 1 || sfv_integer(v, n, out) < 0 || *out < 0) return -1;
  return 1;
}

static int field_boolean(struct http_request *req, const char *name, int *out) {
  size_t n;
  const char *v = http_req_header(req, name, &n);
  if (!v) return 0;
  if (http_req_header_count(req, name) > 1 || sfv_boolean(v, n, out) < 0) return -1;
  return 1;
}

/* The interop version: 0 when absent, -1 when malformed or unsupported. */
static int request_version(struct http_request *req) {
  int64_t v;
  int rc = field_integer(req, "upload-draft-interop-version", &v);
  if (rc == 0) return 0;
  if (rc < 0 || v < IETF_VERSION_MIN || v > IETF_VERSION_MAX) return -1;
  return (int)v;
}

/* Whether the request ends the upload: Upload-Complete, or for interop
 * version 3 its inverse Upload-Incomplete. -1 when malformed, 0/1, and -2
 * when absent. */
static int request_complete(struct http_request *req, int version) {
  int b, rc;
  if (version == 3) {
    rc = field_boolean(req, "upload-incomplete", &b);
    b = !b;
  } else {
    rc = field_boolean(req, "upload-complete", &b);
  }
  return rc < 0 ? -1 : rc == 0 ? -2 : b;
}

/* Length of v before the first of stops (strcspn within n bytes). */
static size_t span(const char *v, size_t n, const char *stops) {
  size_t i = 0;
  while (i < n && !strchr(stops, v[i])) i++;
  return i;
}

struct digest_pick {
  struct body_check *ck;
  int bad;
};

/* RFC 9530 names we verify: the secure ones. */
static int digest_algo(const char *k, size_t kl) {
  if (kl == 7 && memcmp(k, "sha-256", 7) == 0) return CHECKSUM_SHA256;
  if (kl == 7 && memcmp(k, "sha-512", 7) == 0) return CHECKSUM_SHA512;
  return CHECKSUM_NONE;
}

static int pick_digest(void *arg, const char *k, size_t kl, const struct sfv_item *v) {
  struct digest_pick *p = arg;
  unsigned char d[CHECKSUM_MAX_SIZE];
  int algo = digest_algo(k, kl);
  if (algo == CHECKSUM_NONE) return 0; /* others may be ignored (RFC 9530 §2) */
  ssize_t len = v->type == SFV_BYTES ? base64_decode(v->s, v->len, d, sizeof(d)) : -1;
  if (len < 0 || (size_t)len != checksum_size(algo)) {
    p->bad = 1;
    return 1;
  }
  if (p->ck->algo == CHECKSUM_SHA512 && algo != CHECKSUM_SHA512) return 0; /* the stronger wins */
  p->ck->algo = algo;
  memcpy(p->ck->digest, d, (size_t)len);
  p->ck->dlen = (size_t)len;
  return 0;
}

/* A Content-Digest or Repr-Digest value into ck; -1 when malformed. */
static int parse_digest(const char *v, size_t n, struct body_check *ck) {
  struct digest_pick p = {ck, 0};
  ck->algo = CHECKSUM_NONE;
  if (sfv_parse_dict(v, n, pick_digest, &p) < 0 || p.bad) return -1;
  return 0;
}

static int field_digest(struct http_request *req, const char *name, struct body_check *ck) {
  size_t n;
  const char *v = http_req_header(req, name, &n);
  if (!v) return 0;
  return http_req_header_count(req, name) > 1 || parse_digest(v, n, ck) < 0 ? -1 : 0;
}

struct want_pick {
  int algo, weight;
};

static int pick_want(void *arg, const char *k, size_t kl, const struct sfv_item *v) {
  struct want_pick *p = arg;
  int algo = digest_algo(k, kl);
  if (algo == CHECKSUM_NONE || v->type != SFV_INTEGER || v->integer <= 0) return 0;
  if (v->integer > p->weight || (v->integer == p->weight && algo == CHECKSUM_SHA512)) {
    p->algo = algo;
    p->weight = (int)v->integer;
  }
  return 0;
}

/* Want-Repr-Digest: the preferred algorithm we have, or CHECKSUM_NONE. */
static int want_digest(struct http_request *req) {
  size_t n;
  const char *v = http_req_header(req, "want-repr-digest", &n);
  struct want_pick p = {CHECKSUM_NONE, 0};
  if (v) sfv_parse_dict(v, n, pick_want, &p); /* a malformed preference is no preference */
  return p.algo;
}

/* ---------- responses ---------- */

static void add_complete(struct http_request *req, int version, int complete) {
  if (version == 3) http_res_header(req, "Upload-Incomplete", "?%d", !complete);
  else http_res_header(req, "Upload-Complete", "?%d", complete);
}

static int64_t seconds_left(const struct upload_info *info) {
  int64_t left = info->expires - (int64_t)time(NULL);
  return left > 0 ? left : 0;
}

/* Upload-Limit as a string (for interim responses too). */
static void limit_value(const struct endpoint *ep, int version, const struct upload_info *info,
                        char *out, size_t n) {
  size_t len = 0;
  out[0] = 0;
  if (ep->max_size) len += (size_t)snprintf(out + len, n - len, "max-size=%" PRIu64, ep->max_size);
  int64_t age = info ? (info->finished || !info->expires ? -1 : seconds_left(info))
                     : ep->expire_after ? (int64_t)ep->expire_after : -1;
  if (age >= 0 && len < n)
    /* interop 6 called the remaining lifetime "expires" */
    len += (size_t)snprintf(out + len, n - len, "%s%s=%" PRId64, len ? ", " : "",
                            version == 6 ? "expires" : "max-age", age);
  if (len == 0) snprintf(out, n, "min-size=0"); /* no limits: say so, never empty */
}

void ietf_add_limit(struct endpoint *ep, struct http_request *req, const struct upload_info *info) {
  char v[128];
  int version = request_version(req);
  limit_value(ep, version < 0 ? 0 : version, info, v, sizeof(v));
  http_res_header(req, "Upload-Limit", "%s", v);
}

static void json_escape(char *out, size_t n, const char *s) {
  size_t len = 0;
  for (; *s && len + 7 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') out[len++] = '\\', out[len++] = (char)c;
    else if (c < 0x20) len += (size_t)snprintf(out + len, n - len, "\\u%04x", c);
    else out[len++] = (char)c;
  }
  out[len] = 0;
}

/* Ends an answer already started as an RFC 9457 problem. type: a
 * registered problem type, or NULL (about:blank). extra: further JSON
 * members, starting with a comma. */
static void problem_send(struct http_request *req, int status, const char *type, const char *title,
                         const char *extra) {
  char body[768], esc[256];
  json_escape(esc, sizeof(esc), title);
  int n = snprintf(body, sizeof(body), "{\"type\":\"%s%s\",\"title\":\"%s\",\"status\":%d%s}\n",
                   type ? PROBLEM_BASE : "about:blank", type ? type : "", esc, status,
                   extra ? extra : "");
  if (n < 0 || (size_t)n >= sizeof(body)) n = (int)sizeof(body) - 1;
  http_res_header(req, "Content-Type", "application/problem+json");
  http_res_send(req, body, (size_t)n);
}

/* A problem answer about q's upload. */
static void problem(struct ireq *q, int status, const char *type, const char *title,
                    const char *extra, int with_offset) {
  struct http_request *req = q->r.req;
  if (!req) return;
  http_res_start(req, status, NULL);
  /* every answer to a creation names the upload its 104 announced */
  if (q->method == I_POST && q->url[0]) http_res_header(req, "Location", "%s", q->url);
  if (with_offset && q->r.u) {
    const struct upload_info *info = upload_info(q->r.u);
    http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
    add_complete(req, q->version, info->finished);
  }
  /* draft: a 413 names the limit it broke */
  if (status == 413) ietf_add_limit(q->ep, req, q->r.u ? upload_info(q->r.u) : NULL);
  problem_send(req, status, type, title, extra);
}

/* A problem answer before any upload is involved. */
static void bare_problem(struct http_request *req, int status, const char *type, const char *title) {
  http_res_start(req, status, NULL);
  problem_send(req, status, type, title, NULL);
}

static void storage_problem(struct ireq *q, int err) {
  if (err == -ENOENT) problem(q, 404, NULL, "no such upload", NULL, 0);
  else if (err == -ENOSPC || err == -EDQUOT) problem(q, 507, NULL, "storage full", NULL, 1);
  else if (err == -EUSERS) problem(q, 429, NULL, "too many unfinished uploads", NULL, 0);
  else if (err == -EMFILE || err == -ENFILE) problem(q, 503, NULL, "server busy, retry", NULL, 1);
  else problem(q, 500, NULL, "storage error", NULL, 1);
}

static void inconsistent(struct ireq *q, const char *title) {
  problem(q, 400, "inconsistent-upload-length", title, NULL, 1);
}

/* The answer to a creation or append whose body is stored. */
static void respond_stored(struct ireq *q) {
  struct http_request *req = q->r.req;
  const struct upload_info *info = upload_info(q->r.u);
  if (!req) return;
  if (q->complete && !info->finished) {
    inconsistent(q, "the upload ended before its Upload-Length");
    return;
  }
  /* Drafts -01 to -03 (interop 3-5) acknowledged an append that leaves the
   * upload incomplete with 201. */
  int early_ack = q->version >= 3 && q->version <= 5 && !info->finished;
  http_res_start(req, q->method == I_POST || early_ack ? 201 : 204, NULL);
  if (q->method == I_POST) http_res_header(req, "Location", "%s", q->url);
  http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
  add_complete(req, q->version, info->finished);
  if (info->length >= 0 && q->version != 3) http_res_header(req, "Upload-Length", "%" PRId64, info->length);
  if (!info->finished || q->method == I_POST) ietf_add_limit(q->ep, req, info);
  if (q->r.hashed) { /* Want-Repr-Digest */
    char b64[4 * CHECKSUM_MAX_SIZE / 3 + 4];
    EVP_EncodeBlock((unsigned char *)b64, q->r.wanted, (int)checksum_size(q->r.want_algo));
    http_res_header(req, "Repr-Digest", "%s=:%s:",
                    q->r.want_algo == CHECKSUM_SHA512 ? "sha-512" : "sha-256", b64);
  }
  http_res_header(req, "Cache-Control", "no-store");
  http_res_send(req, NULL, 0);
}

/* ---------- the shared request life ---------- */

static void invalidated(void *arg, int status) {
  struct ireq *q = arg;
  (void)status; /* nobody to tell: the answer went out */
  q->r.pending--;
  ureq_unlock(&q->r);
  ureq_release(&q->r);
}

static void invalidate_locked(void *arg, int status) {
  struct ireq *q = arg;
  if (status < 0) {
    q->r.pending--;
    ureq_release(&q->r);
    return;
  }
  q->r.locked = 1;
  upload_remove(&q->r.w, invalidated, q);
}

static void body_done(struct ureq *r, enum ureq_result res) {
  struct ireq *q = (struct ireq *)r;
  switch (res) {
  case UREQ_STORED: respond_stored(q); break;
  case UREQ_OVERFLOW:
    /* Content past a known length: the draft has the resource invalidated
     * and every further request refused. */
    inconsistent(q, "content beyond the upload's length: the upload is cancelled");
    r->pending++;
    upload_lock(r->u, &r->w, invalidate_locked, q);
    break;
  case UREQ_MISMATCH: problem(q, 400, NULL, "digest mismatch: content not appended", NULL, 1); break;
  case UREQ_BAD_TRAILER: problem(q, 400, NULL, "bad digest trailer: content not appended", NULL, 1); break;
  case UREQ_ERROR: storage_problem(q, r->err); break;
  }
}

static void storage_error(struct ureq *r, int err) { storage_problem((struct ireq *)r, err); }

static int trailers(struct ureq *r) {
  size_t n;
  const char *v = http_req_header(r->req, "content-digest", &n);
  return v ? parse_digest(v, n, &r->checks[0]) : -1;
}

static const struct ureq_proto ietf_proto = {body_done, storage_error, trailers};

/* 104 with the durable offset during a long append (draft §Upload
 * Creation/Appending: progress; never a Location). */
static void on_durable(struct upload_writer *w, uint64_t offset) {
  struct ireq *q = (struct ireq *)((char *)w - offsetof(struct ureq, w));
  char h[96];
  /* the commit at the end of a body is answered by the final response */
  if (!q->r.req || !q->version || q->r.ended || http_res_started(q->r.req)) return;
  snprintf(h, sizeof(h), "Upload-Draft-Interop-Version: %d\r\nUpload-Offset: %" PRIu64 "\r\n",
           q->version, offset);
  http_send_interim(q->r.req, 104, "Upload Resumption Supported", h);
}

/* Reads what creation and append share; answers and returns -1 on error. */
static struct ireq *ireq_new(struct endpoint *ep, struct http_request *req, enum ietf_method m,
                             int version) {
  struct ireq *q = ureq_new(req, sizeof(*q), &ietf_proto);
  if (!q) return NULL;
  q->ep = ep;
  q->method = m;
  q->version = version;
  q->length = -1;
  q->r.w.on_durable = on_durable;
  return q;
}

/* Content-Digest, Repr-Digest and Want-Repr-Digest of a body. */
static int read_digests(struct http_request *req, struct body_check checks[2], int *want) {
  memset(checks, 0, 2 * sizeof(checks[0]));
  if (field_digest(req, "content-digest", &checks[0]) < 0 ||
      field_digest(req, "repr-digest", &checks[1]) < 0) {
    bare_problem(req, 400, NULL, "malformed Content-Digest or Repr-Digest");
    return -1;
  }
  checks[1].whole = 1;
  if (checks[0].algo == CHECKSUM_NONE)
    checks[0].trailer = http_req_header_has_token(req, "trailer", "content-digest");
  *want = want_digest(req);
  return 0;
}

/* Upload-Complete (required) and Upload-Length (optional) of a creation or
 * an append; -1 after answering. */
static int read_lengths(struct http_request *req, int version, int complete, int64_t *length) {
  if (complete < 0) {
    bare_problem(req, 400, NULL, version == 3 ? "Upload-Incomplete (?0 or ?1) is required"
                                             : "Upload-Complete (?0 or ?1) is required");
    return -1;
  }
  if (field_integer(req, "upload-length", length) < 0) {
    bare_problem(req, 400, NULL, "malformed Upload-Length");
    return -1;
  }
  return 0;
}

/* ---------- offset retrieval ---------- */

static void head_locked(void *arg, int status) {
  struct ireq *q = arg;
  if (ureq_lock_taken(&q->r, status) < 0) return;
  ureq_unlock(&q->r);
  const struct upload_info *info = upload_info(q->r.u);
  struct http_request *req = q->r.req;
  http_res_start(req, 204, NULL);
  http_res_header(req, "Upload-Offset", "%" PRIu64, info->offset);
  add_complete(req, q->version, info->finished);
  if (info->length >= 0) http_res_header(req, "Upload-Length", "%" PRId64, info->length);
  ietf_add_limit(q->ep, req, info);
  http_res_header(req, "Cache-Control", "no-store");
  http_res_send(req, NULL, 0);
}

/* ---------- append, and the body of a creation ---------- */

static void begin_body(struct ireq *q) {
  const struct upload_info *info = upload_info(q->r.u);
  uint64_t limit = info->length >= 0 ? (uint64_t)info->length : UINT64_MAX;
  if (q->ep->max_size && q->ep->max_size < limit) limit = q->ep->max_size;
  int64_t cl = http_req_content_length(q->r.req);
  if (cl > 0 && q->r.start + (uint64_t)cl > limit) {
    ureq_unlock(&q->r);
    if (info->length >= 0 && q->r.start + (uint64_t)cl > (uint64_t)info->length)
      inconsistent(q, "content beyond the upload's length");
    else
      problem(q, 413, NULL, "the upload would exceed the maximum size", NULL, 1);
    return;
  }
  q->r.complete = q->complete;
  if (cl == 0) ureq_end(&q->r);
  else ureq_read_body(&q->r, limit);
}

/* The length this request implies, checked against the upload's; -1 after
 * answering. */
static int settle_length(struct ireq *q) {
  const struct upload_info *info = upload_info(q->r.u);
  int64_t cl = http_req_content_length(q->r.req);
  int64_t implied = q->length;
  if (q->complete && cl >= 0) {
    int64_t end = (int64_t)q->r.start + cl;
    if (implied >= 0 && implied != end) {
      inconsistent(q, "Upload-Length disagrees with the content's end");
      return -1;
    }
    implied = end;
  }
  if (implied < 0) return 0;
  if ((info->length >= 0 && info->length != implied) || (uint64_t)implied < info->offset ||
      (cl > 0 && q->r.start + (uint64_t)cl > (uint64_t)implied)) {
    inconsistent(q, "lengths disagree with the upload's");
    return -1;
  }
  if (q->ep->max_size && (uint64_t)implied > q->ep->max_size) {
    problem(q, 413, NULL, "the upload would exceed the maximum size", NULL, 1);
    return -1;
  }
  if (info->length < 0) upload_set_length(&q->r.w, implied);
  return 0;
}

static void patch_locked(void *arg, int status) {
  struct ireq *q = arg;
  if (ureq_lock_taken(&q->r, status) < 0) return;
  const struct upload_info *info = upload_info(q->r.u);
  int64_t cl = http_req_content_length(q->r.req);
  if (info->offset != q->offset) {
    char extra[96];
    ureq_unlock(&q->r);
    snprintf(extra, sizeof(extra), ",\"expected-offset\":%" PRIu64 ",\"provided-offset\":%" PRIu64,
             info->offset, q->offset);
    problem(q, 409, "mismatching-upload-offset", "Upload-Offset does not match the upload's offset",
            extra, 1);
    return;
  }
  if (info->finished) {
    ureq_unlock(&q->r);
    if (cl == 0) respond_stored(q); /* a replay of the completing request */
    else inconsistent(q, "the upload is complete");
    return;
  }
  if (settle_length(q) < 0) {
    ureq_unlock(&q->r);
    return;
  }
  begin_body(q);
}

/* A Repr-Digest remembered from the creation, for the completing request. */
static void remembered_digest(struct upload *u, struct body_check *ck) {
  char v[160];
  ssize_t n = metadata_get(upload_info(u)->metadata, "repr-digest", v, sizeof(v) - 1);
  if (n > 0 && ck->algo == CHECKSUM_NONE) {
    parse_digest(v, (size_t)n, ck);
    ck->whole = 1;
  }
}

static int open_upload(struct endpoint *ep, struct http_request *req, const char *key,
                       struct upload **u) {
  int rc = endpoint_open(ep, req, key, "ietf", u);
  if (rc == -ETIMEDOUT) bare_problem(req, 410, NULL, "upload expired");
  else if (endpoint_denied(rc)) bare_problem(req, 403, NULL, endpoint_denied(rc));
  else if (rc < 0) bare_problem(req, 404, NULL, "no such upload");
  return rc;
}

static void handle_patch(struct endpoint *ep, struct http_request *req, const char *key, int version) {
  int64_t offset, length = -1;
  int complete = request_complete(req, version);
  struct body_check checks[2];
  int want;
  struct upload *u;
  if (field_integer(req, "upload-offset", &offset) != 1) {
    bare_problem(req, 400, NULL, "Upload-Offset (a non-negative integer) is required");
    return;
  }
  if (read_lengths(req, version, complete, &length) < 0) return;
  /* From interop 6 an append says what it is. */
  if ((version == 0 || version >= 6) && !http_req_content_type_is(req, PARTIAL_MEDIA_TYPE)) {
    bare_problem(req, 415, NULL, "Content-Type must be " PARTIAL_MEDIA_TYPE);
    return;
  }
  if (read_digests(req, checks, &want) < 0) return;
  if (open_upload(ep, req, key, &u) < 0) return;
  struct ireq *q = ireq_new(ep, req, I_PATCH, version);
  if (!q) {
    upload_put(u);
    return;
  }
  remembered_digest(u, &checks[1]);
  ureq_set_checks(&q->r, checks, 2);
  q->r.want_algo = want;
  q->complete = complete;
  q->length = length;
  q->offset = q->r.start = (uint64_t)offset;
  ureq_lock(&q->r, u, patch_locked);
}

/* ---------- creation ---------- */

static void created_locked(void *arg, int status) {
  struct ireq *q = arg;
  if (ureq_lock_taken(&q->r, status) < 0) return;
  if (settle_length(q) < 0) {
    ureq_unlock(&q->r);
    return;
  }
  begin_body(q);
}

static void created(void *arg, struct upload *u, int status) {
  struct ireq *q = arg;
  q->r.pending--;
  if (status < 0) {
    if (q->r.req) storage_problem(q, status);
    ureq_release(&q->r);
    return;
  }
  if (!q->r.req) {
    upload_put(u);
    ureq_release(&q->r);
    return;
  }
  endpoint_url(q->ep, q->r.req, upload_info(u)->key, q->url, sizeof(q->url));
  if (q->version) {
    /* The upload exists: tell the client where before the body arrives,
     * so that it can resume even if this request never completes. */
    char h[768], limit[128];
    limit_value(q->ep, q->version, upload_info(u), limit, sizeof(limit));
    snprintf(h, sizeof(h), "Location: %s\r\nUpload-Draft-Interop-Version: %d\r\nUpload-Limit: %s\r\n",
             q->url, q->version, limit);
    http_send_interim(q->r.req, 104, "Upload Resumption Supported", h);
  }
  ureq_lock(&q->r, u, created_locked);
}

/* Metadata of a new upload: the client's Upload-Metadata (tus-js-client
 * sends it in IETF mode too), else the representation's Content-Type and
 * Content-Disposition filename; plus a Repr-Digest to check at the end. */
static int build_metadata(struct http_request *req, char *out, size_t cap) {
  size_t n, len = 0;
  const char *v = http_req_header(req, "upload-metadata", &n);
  out[0] = 0;
  if (v) {
    if (n >= cap || http_req_header_count(req, "upload-metadata") > 1 || metadata_valid(v, n) < 0)
      return -1;
    memcpy(out, v, n);
    out[len = n] = 0;
  } else {
    if ((v = http_req_header(req, "content-type", &n)) && !http_req_content_type_is(req, PARTIAL_MEDIA_TYPE) &&
        !http_req_content_type_is(req, "application/offset+octet-stream"))
      metadata_append(out, &len, cap, "filetype", v, span(v, n, "; \t"));
    if ((v = http_req_header(req, "content-disposition", &n))) {
      /* the filename parameter, quoted or a token */
      for (size_t i = 0; i + 9 <= n; i++) {
        if (strncasecmp(v + i, "filename=", 9) != 0 || (i && v[i - 1] != ';' && v[i - 1] != ' ')) continue;
        const char *f = v + i + 9;
        size_t fl = n - i - 9;
        if (fl && *f == '"') {
          f++, fl--;
          fl = span(f, fl, "\"");
        } else {
          fl = span(f, fl, "; \t");
        }
        if (fl) metadata_append(out, &len, cap, "filename", f, fl);
        break;
      }
    }
  }
  if ((v = http_req_header(req, "repr-digest", &n)) && n < 120)
    metadata_append(out, &len, cap, "repr-digest", v, n);
  return 0;
}

static void handle_post(struct endpoint *ep, struct http_request *req, int version) {
  int64_t length = -1;
  int complete = request_complete(req, version);
  struct body_check checks[2];
  int want;
  if (read_lengths(req, version, complete, &length) < 0) return;
  int64_t cl = http_req_content_length(req);
  if (complete && cl >= 0) {
    if (length >= 0 && length != cl) {
      bare_problem(req, 400, "inconsistent-upload-length", "Upload-Length disagrees with Content-Length");
      return;
    }
    length = cl;
  }
  if (length >= 0 && cl > length) {
    bare_problem(req, 400, "inconsistent-upload-length", "content longer than Upload-Length");
    return;
  }
  if (length >= 0 && ep->max_size && (uint64_t)length > ep->max_size) {
    http_res_start(req, 413, NULL);
    ietf_add_limit(ep, req, NULL); /* the limit it broke */
    problem_send(req, 413, NULL, "the upload exceeds the maximum size", NULL);
    return;
  }
  if (read_digests(req, checks, &want) < 0) return;
  char *meta = malloc(STORE_METADATA_MAX + 1);
  if (!meta) {
    bare_problem(req, 503, NULL, "out of memory");
    return;
  }
  if (build_metadata(req, meta, STORE_METADATA_MAX + 1) < 0) {
    free(meta);
    bare_problem(req, 400, NULL, "bad Upload-Metadata");
    return;
  }
  struct ireq *q = ireq_new(ep, req, I_POST, version);
  if (!q) {
    free(meta);
    return;
  }
  ureq_set_checks(&q->r, checks, 2);
  q->r.want_algo = want;
  q->complete = complete;
  q->length = length;
  char owner[STORE_OWNER_MAX + 1];
  endpoint_owner(ep, req, owner);
  struct upload_spec spec = {
      .kind = "ietf", .length = length, .metadata = meta[0] ? meta : NULL, .owner = owner};
  int rc = upload_create(ep->eng, &spec, created, q);
  free(meta);
  if (rc < 0) storage_problem(q, rc);
  else q->r.pending++;
}

/* ---------- cancellation ---------- */

static void after_remove(void *arg, int status) {
  struct ireq *q = arg;
  q->r.pending--;
  ureq_unlock(&q->r);
  if (status < 0) storage_problem(q, status);
  else if (q->r.req) {
    http_res_start(q->r.req, 204, NULL);
    http_res_send(q->r.req, NULL, 0);
  }
  ureq_release(&q->r);
}

static void delete_locked(void *arg, int status) {
  struct ireq *q = arg;
  if (ureq_lock_taken(&q->r, status) < 0) return;
  q->r.pending++;
  upload_remove(&q->r.w, after_remove, q);
}

/* ---------- dispatch ---------- */

void ietf_handle(struct endpoint *ep, struct http_request *req) {
  const char *m = http_req_method(req);
  char key[STORE_KEY_LEN + 1];
  int version = request_version(req);
  if (version < 0) {
    bare_problem(req, 400, NULL, "unsupported Upload-Draft-Interop-Version (this server speaks 3 to 8)");
    return;
  }
  int rc = endpoint_path_key(ep, req, key);
  if (rc == -ENOENT) {
    if (strcmp(m, "POST") == 0) handle_post(ep, req, version);
    else {
      http_res_start(req, 405, NULL);
      http_res_header(req, "Allow", "POST, OPTIONS");
      http_res_send(req, NULL, 0);
    }
    return;
  }
  if (rc < 0) {
    if (endpoint_denied(rc)) bare_problem(req, 403, NULL, endpoint_denied(rc));
    else bare_problem(req, 404, NULL, "no such upload");
    return;
  }
  if (strcmp(m, "PATCH") == 0) {
    handle_patch(ep, req, key, version);
    return;
  }
  enum ietf_method im;
  upload_cb locked;
  if (version >= 3 && version <= 5 &&
      (http_req_header(req, "upload-offset", NULL) || http_req_header(req, "upload-complete", NULL) ||
       http_req_header(req, "upload-incomplete", NULL))) {
    /* drafts -01 to -03: offset retrieval and cancellation carry neither */
    bare_problem(req, 400, NULL, "Upload-Offset and Upload-Complete have no place in this request");
    return;
  }
  if (strcmp(m, "HEAD") == 0 || strcmp(m, "GET") == 0) im = I_HEAD, locked = head_locked;
  else if (strcmp(m, "DELETE") == 0) im = I_DELETE, locked = delete_locked;
  else {
    http_res_start(req, 405, NULL);
    http_res_header(req, "Allow", "HEAD, PATCH, DELETE, OPTIONS");
    http_res_send(req, NULL, 0);
    return;
  }
  struct upload *u;
  if (open_upload(ep, req, key, &u) < 0) return;
  struct ireq *q = ireq_new(ep, req, im, version);
  if (!q) {
    upload_put(u);
    return;
  }
  /* An offset retrieval ends a hung append first (draft §Concurrency), and
   * holds the lock only for a moment, never yielding it. */
  if (im == I_HEAD) q->r.w.on_preempt = NULL;
  ureq_lock(&q->r, u, locked);
}
