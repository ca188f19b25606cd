/* The life of one HTTP request that works on an upload, shared by the
 * protocols (tus, the IETF draft): waiting for the upload's lock, streaming
 * the body into the engine under a length limit, checking digests of it,
 * committing or finishing, and outliving the HTTP request while engine
 * operations still run. Protocols parse their headers and format answers
 * around it.
 *
 * A protocol embeds struct ureq as the first member of its own per-request
 * struct and allocates it with ureq_new(); the ureq frees it once both the
 * HTTP request and every engine operation are over. */
#ifndef RESUMED_UPLOAD_REQUEST_H
#define RESUMED_UPLOAD_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "http.h"
#include "upload.h"

/* A digest a body must match. */
struct body_check {
  int algo; /* enum checksum_algo; CHECKSUM_NONE: none (a trailer may bring one) */
  unsigned char digest[CHECKSUM_MAX_SIZE];
  size_t dlen;
  int whole;   /* of the whole upload (IETF Repr-Digest), else of this body */
  int trailer; /* the value arrives in a trailer */
};

#define UREQ_CHECKS 2

enum ureq_result {
  UREQ_STORED,      /* body committed, and the upload finished if it completed it */
  UREQ_OVERFLOW,    /* body went past the limit; bytes up to it are kept */
  UREQ_MISMATCH,    /* a digest did not match: the body was discarded */
  UREQ_BAD_TRAILER, /* an announced trailer digest was missing or malformed: discarded */
  UREQ_ERROR,       /* storage error (r->err) */
};

struct ureq;

struct ureq_proto {
  /* The outcome of a body; the lock is released. r->req may be NULL. */
  void (*body_done)(struct ureq *r, enum ureq_result res);
  /* A storage error outside a body (locking; -ENOENT: the upload was
   * deleted while the request waited). r->req is set. */
  void (*storage_error)(struct ureq *r, int err);
  /* Fills the checks announced as trailers, after the body; -1 if malformed. */
  int (*trailers)(struct ureq *r);
};

struct ureq {
  const struct ureq_proto *proto;
  struct http_request *req; /* NULL once the HTTP request is over */
  struct upload *u;         /* referenced; released with the ureq */
  struct upload_writer w;
  uint64_t start;  /* offset this request appends at */
  uint64_t limit;  /* no byte at or past this offset is kept */
  int err;         /* storage error to report */
  int pending;     /* engine operations in flight */
  struct body_check checks[UREQ_CHECKS];
  int complete;    /* the body ends the upload even if its length was unknown */
  int want_algo;   /* CHECKSUM_NONE, or hash the finished upload into wanted */
  unsigned char wanted[CHECKSUM_MAX_SIZE];
  int next_check;
  const struct body_check *checking; /* whose hash is being computed into got */
  unsigned char got[CHECKSUM_MAX_SIZE];
  unsigned locked : 1, overflow : 1, hashed : 1, ended : 1; /* ended: the body is all in */
};

/* Allocates size bytes (a struct starting with struct ureq) for req and takes
 * over its callbacks. NULL after answering 503 when out of memory. */
void *ureq_new(struct http_request *req, size_t size, const struct ureq_proto *proto);
/* Sets the digests the body must match (any present makes it provisional). */
void ureq_set_checks(struct ureq *r, const struct body_check *checks, int n);

/* Takes the upload's lock for r (r owns the reference u). A waiting request
 * that goes away cancels; a request holding the lock that another one wants
 * is aborted, unless it opted out with r->w.on_preempt = NULL. */
void ureq_lock(struct ureq *r, struct upload *u, upload_cb locked);
/* First thing in a lock callback: 0 to go on; -1 when the request cannot
 * (storage error answered through the proto, or the client left). */
int ureq_lock_taken(struct ureq *r, int status);
void ureq_unlock(struct ureq *r);
/* Frees r when its HTTP request is over and nothing is pending. */
void ureq_release(struct ureq *r);

/* With the lock held: take the body, keeping no byte at or past limit. */
void ureq_read_body(struct ureq *r, uint64_t limit);
/* With the lock held and no body: commit (or finish, when complete). */
void ureq_end(struct ureq *r);
/* Whether ending now finishes the upload. */
int ureq_completes(const struct ureq *r);

#endif
