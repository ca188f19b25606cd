#include "job.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

static const struct upload_protocol *protocol_of(const struct client_options *o) {
  switch (o->protocol) {
  case PROTO_IETF: return &ietf_protocol;
  case PROTO_ARTICLE: return &article_protocol;
  default: return &tus_protocol;
  }
}

int job_init(struct job *j, const struct client_options *o, struct progress *p, const char *arg) {
  *j = (struct job){.opts = o, .progress = p, .proto = protocol_of(o)};
  uint64_t chunk = o->chunk_size ? o->chunk_size : STDIN_CHUNK_DEFAULT;
  int rc = source_open(&j->src, arg, chunk);
  if (rc < 0) return rc;
  atomic_store(&j->total, j->src.size);
  if (o->resume_url) {
    if (!(j->url = strdup(o->resume_url))) return -ENOMEM;
  }
  /* Standard input cannot be read again by a later run; the article's ids
   * need no state, being made from the file itself. */
  if (!o->state_file || j->src.is_stdin || o->protocol == PROTO_ARTICLE) return 0;
  char abs[PATH_MAX];
  if (!realpath(arg, abs)) return -errno;
  rc = state_key(abs, &j->src.st, o->url, j->proto->name, j->key);
  if (rc < 0) return rc;
  if (!j->url) {
    char url[4096];
    if (state_lookup(o->state_file, j->key, url, sizeof(url)) == 0 && !(j->url = strdup(url))) return -ENOMEM;
  }
  return 0;
}

void job_release(struct job *j) {
  source_close(&j->src);
  free(j->url);
  j->url = NULL;
}

int job_next_body(struct job *j, struct body *b, int *last) {
  int rc = source_body(&j->src, j->offset, j->opts->chunk_size, b, last);
  atomic_store(&j->total, j->src.size);
  return rc;
}

/* Runs in the worker, inside the request, so j->offset is the request's start. */
static void on_sent(void *arg, uint64_t sent) {
  struct job *j = arg;
  atomic_store(&j->sent, j->offset + sent);
}

void job_watch_call(struct job *j, struct http_call *call) {
  atomic_store(&j->sent, j->offset);
  call->on_sent = on_sent;
  call->arg = j;
}

/* Seconds a Retry-After header asks for (RFC 9110 §10.2.3: delay-seconds or an
 * HTTP-date), 0 without one. */
static double retry_after(const struct http_call *call) {
  char v[64];
  uint64_t n;
  if (!http_call_header(call, "retry-after", v, sizeof(v))) return 0;
  if (http_call_number(call, "retry-after", &n) == 0) return n > 86400 ? 86400 : (double)n;
  time_t at = curl_getdate(v, NULL), now = time(NULL);
  return at > now ? (double)(at - now) : 0;
}

enum step job_transient(struct job *j, const struct http_call *call) {
  j->retry_after = 0;
  if (call->stalled) {
    snprintf(j->reason, sizeof(j->reason), "stalled: %s", call->error);
    return STEP_RETRY;
  }
  if (call->code != CURLE_OK) {
    switch (call->code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      snprintf(j->reason, sizeof(j->reason), "cannot connect to the server: %s", call->error);
      break;
    case CURLE_OPERATION_TIMEDOUT:
      snprintf(j->reason, sizeof(j->reason), "timed out: %s", call->error);
      break;
    default:
      snprintf(j->reason, sizeof(j->reason), "connection failed: %s", call->error);
    }
    return STEP_RETRY;
  }
  /* 501 and 505 say the server lacks what we ask for; trying again cannot change that. */
  if ((call->status >= 500 && call->status != 501 && call->status != 505) || call->status == 409 ||
      call->status == 423 || call->status == 429) {
    http_call_reason(call, j->reason, sizeof(j->reason));
    j->retry_after = retry_after(call);
    return STEP_RETRY;
  }
  return STEP_OK;
}

enum step job_fail_answer(struct job *j, const struct http_call *call) {
  http_call_reason(call, j->reason, sizeof(j->reason));
  return STEP_FAIL;
}

static enum step gone(struct job *j, const struct http_call *call) {
  http_call_reason(call, j->reason, sizeof(j->reason));
  return STEP_GONE;
}

enum step job_offset_answer(struct job *j, const struct http_call *call) {
  uint64_t offset, length;
  if (job_transient(j, call) == STEP_RETRY) return STEP_RETRY;
  /* 403: tusd and others answer so for an upload that is not, or no longer, ours to see. */
  if (call->status == 404 || call->status == 410 || call->status == 403) return gone(j, call);
  if (call->status < 200 || call->status > 299) return job_fail_answer(j, call);
  if (http_call_number(call, "upload-offset", &offset) < 0)
    return job_fail(j, "the server's answer to HEAD had no valid Upload-Offset");
  if (http_call_number(call, "upload-length", &length) == 0) {
    j->length_declared = 1;
    if (j->src.size >= 0 && length != (uint64_t)j->src.size)
      return job_fail(j, "the upload at %s is %" PRIu64 " bytes long, not %" PRId64, j->url, length, j->src.size);
  }
  job_acknowledged(j, offset);
  return STEP_OK;
}

enum step job_append_answer(struct job *j, const struct http_call *call) {
  if (job_transient(j, call) == STEP_RETRY) return STEP_RETRY;
  if (call->status == 460) { /* tus checksum mismatch: the chunk was dropped; send it again */
    http_call_reason(call, j->reason, sizeof(j->reason));
    return STEP_RETRY;
  }
  if (call->status == 404 || call->status == 410) return gone(j, call);
  if (call->status < 200 || call->status > 299) return job_fail_answer(j, call);
  return STEP_OK;
}

enum step job_body_failed(struct job *j, int rc) {
  if (rc == -ESPIPE)
    return job_fail(j, "the server's offset %" PRIu64 " is outside the bytes still held from standard input",
                    j->offset);
  return job_fail(j, "cannot read %s: %s", j->src.arg, strerror(-rc));
}

enum step job_fail(struct job *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
  va_end(ap);
  return STEP_FAIL;
}

int job_set_url(struct job *j, const char *location) {
  /* A relative Location is resolved against the endpoint (RFC 9110 §10.2.2). */
  char *abs = http_url_resolve(j->opts->url, location);
  if (!abs) return -EINVAL;
  if (j->url && j->created_here && strcmp(j->url, abs) == 0) { /* a 104's, told again */
    free(abs);
    return 0;
  }
  free(j->url);
  j->url = abs;
  j->created_here = 1;
  if (j->key[0] && state_store(j->opts->state_file, j->key, j->url) < 0)
    progress_note(j->progress, "%s: cannot remember the upload in %s", j->src.arg, j->opts->state_file);
  return 0;
}

void job_acknowledged(struct job *j, uint64_t offset) {
  j->offset = offset;
  atomic_store(&j->sent, offset);
}

int job_digest_header(struct job *j, const struct body *b, struct curl_slist **headers, int ietf) {
  enum checksum_algo algo = j->opts->checksum;
  if (algo == CHECKSUM_NONE) return 0;
  unsigned char md[CHECKSUM_MAX_SIZE];
  char b64[2 * CHECKSUM_MAX_SIZE];
  int rc = body_digest(b, algo, md);
  if (rc < 0) return rc;
  EVP_EncodeBlock((unsigned char *)b64, md, (int)checksum_size(algo));
  if (ietf) /* RFC 9530 Content-Digest, a dictionary of byte sequences */
    return http_header_add(headers, "Content-Digest: %s=:%s:", algo == CHECKSUM_SHA512 ? "sha-512" : "sha-256", b64);
  return http_header_add(headers, "Upload-Checksum: %s %s", checksum_algo_name(algo), b64);
}

static int stopped(const struct job *j) {
  return j->http && j->http->stop && atomic_load(j->http->stop);
}

/* Sleeps s seconds, in slices, so that a stop is noticed within a tenth of a second. */
static void sleep_seconds(const struct job *j, double s) {
  double end = monotonic_seconds() + s;
  for (double left = s; left > 0 && !stopped(j); left = end - monotonic_seconds()) {
    if (left > 0.1) left = 0.1;
    struct timespec ts = {.tv_sec = (time_t)left, .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
  }
}

/* Exponential backoff with jitter: half the doubled delay for sure, the other
 * half at random, so clients cut off together do not return together. */
static double backoff(const struct client_options *o, int failures, unsigned *seed) {
  double d = o->retry_delay;
  for (int i = 1; i < failures && d < o->retry_max_delay; i++) d *= 2;
  if (d > o->retry_max_delay) d = o->retry_max_delay;
  return d / 2 + d / 2 * ((double)rand_r(seed) / RAND_MAX);
}

static void forget(struct job *j) {
  if (j->key[0]) state_remove(j->opts->state_file, j->key);
}

int job_run(struct job *j, struct http_client *http) {
  const struct client_options *o = j->opts;
  const struct upload_protocol *p = j->proto;
  unsigned seed = (unsigned)(getpid() ^ (uintptr_t)j ^ (unsigned)(monotonic_seconds() * 1e6));
  int failures = 0, query = j->url != NULL, first_known = 0;
  uint64_t best = 0;
  j->http = http;
  j->started = monotonic_seconds();
  atomic_store(&j->state, JOB_RUNNING);
  if (!j->url && p->ask_first) {
    if (p->create(j) != STEP_OK) goto failed;
    query = 1;
  }
  for (;;) {
    enum step s;
    int was_query = query;
    if (stopped(j)) goto stop;
    if (query) s = p->query(j);
    else if (!j->url) s = p->create(j);
    else if (j->complete) break;
    else s = p->append(j);

    if (s == STEP_OK) {
      if (j->src.size >= 0 && j->offset > (uint64_t)j->src.size) {
        job_fail(j, "the server holds %" PRIu64 " bytes, more than the %" PRId64 " there are", j->offset,
                     j->src.size);
        goto failed;
      }
      if (was_query && j->offset > 0 && !j->complete)
        progress_note(j->progress, "%s: resuming at %" PRIu64 " of %" PRId64 " bytes", j->src.arg, j->offset,
                      j->src.size);
      if (j->offset > best) best = j->offset, failures = 0;
      if (!first_known) j->first_offset = was_query ? j->offset : 0, first_known = 1;
      query = 0;
      if (j->complete) break;
      continue;
    }
    /* An upload remembered in the state file, not one this run created nor one the user named. */
    if (s == STEP_GONE && !j->created_here && !o->resume_url) {
      progress_note(j->progress, "%s: the remembered upload is gone (%s); starting again", j->src.arg, j->reason);
      forget(j);
      free(j->url);
      j->url = NULL;
      job_acknowledged(j, 0);
      query = 0;
      best = 0;
      continue;
    }
    if (stopped(j)) goto stop;
    if (s != STEP_RETRY) goto failed;
    if (++failures > o->retries) {
      size_t n = strlen(j->reason);
      snprintf(j->reason + n, sizeof(j->reason) - n, " (gave up after %d attempts)", failures);
      goto failed;
    }
    /* What was sent but not acknowledged may be lost: show only what the server holds. */
    atomic_store(&j->sent, j->offset);
    double d = backoff(o, failures, &seed);
    /* The server knows better when it will be ready, within the user's limit. */
    double asked = j->retry_after < o->retry_max_delay ? j->retry_after : o->retry_max_delay;
    if (asked > d) d = asked;
    progress_note(j->progress, "%s: %s; retrying in %.1fs (attempt %d of %d)", j->src.arg, j->reason, d,
                  failures + 1, o->retries + 1);
    atomic_store(&j->retry_at, monotonic_seconds() + d);
    atomic_store(&j->state, JOB_RETRYING);
    sleep_seconds(j, d);
    atomic_store(&j->state, JOB_RUNNING);
    query = j->url != NULL;
  }
  j->finished = monotonic_seconds();
  forget(j);
  atomic_store(&j->state, JOB_DONE);
  return 0;
failed:
  j->finished = monotonic_seconds();
  atomic_store(&j->state, JOB_FAILED);
  return -1;
stop:
  j->finished = monotonic_seconds();
  snprintf(j->reason, sizeof(j->reason), "interrupted");
  atomic_store(&j->state, JOB_STOPPED);
  return -1;
}
