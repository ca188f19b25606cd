/* The IETF "Resumable Uploads for HTTP" draft as a client, interop versions
 * 3 to 8: the first bytes go with the creating POST, whose 104 names the
 * upload at once, so even a first request cut short can be resumed. Offset
 * retrieval by HEAD, appends by PATCH. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "progress.h"
#include "util.h"

static int version_headers(struct job *j, struct curl_slist **h) {
  return http_header_add(h, "Upload-Draft-Interop-Version: %d", j->opts->ietf_version);
}

/* Interop version 3 says it inside out (Upload-Incomplete). */
static int complete_header(struct job *j, struct curl_slist **h, int complete) {
  if (j->opts->ietf_version == 3) return http_header_add(h, "Upload-Incomplete: ?%d", !complete);
  return http_header_add(h, "Upload-Complete: ?%d", complete);
}

/* 1, 0, or -1 when the answer does not say. */
static int answer_complete(struct job *j, const struct http_call *call) {
  char v[8];
  int v3 = j->opts->ietf_version == 3;
  if (!http_call_header(call, v3 ? "upload-incomplete" : "upload-complete", v, sizeof(v))) return -1;
  if (strcmp(v, "?1") == 0) return !v3;
  if (strcmp(v, "?0") == 0) return v3;
  return -1;
}

static int body_headers(struct job *j, struct curl_slist **h, const struct body *b, int last) {
  if (version_headers(j, h) < 0 || complete_header(j, h, last) < 0) return -ENOMEM;
  /* Upload-Length from draft -04 (interop 5) on; it lets the server refuse
   * an upload too large for it before a byte is sent. */
  if (j->opts->ietf_version >= 5 && j->src.size >= 0 && !j->length_declared &&
      http_header_add(h, "Upload-Length: %" PRId64, j->src.size) < 0)
    return -ENOMEM;
  return job_digest_header(j, b, h, 1);
}

/* After a 2xx to a request that carried b: the new offset and completeness. */
static void acknowledged(struct job *j, const struct http_call *call, const struct body *b, int last) {
  uint64_t end = j->offset + b->len, offset;
  if (http_call_number(call, "upload-offset", &offset) < 0 || offset < j->offset || offset > end) offset = end;
  job_acknowledged(j, offset);
  if (j->src.size >= 0) j->length_declared = 1;
  int c = answer_complete(j, call);
  j->complete = c >= 0 ? c : last && offset == end;
}

/* The 104 named the upload: remember it now, so that even a run killed
 * during this first request can be continued. */
static void early_location(void *arg, const char *location) {
  struct job *j = arg;
  if (job_set_url(j, location) < 0) progress_note(j->progress, "%s: a 104 with an unusable Location", j->src.arg);
}

static enum step ietf_create(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "POST", .url = j->opts->url};
  struct body b;
  int last, rc;
  enum step s;
  char loc[4096];
  if ((rc = job_next_body(j, &b, &last)) < 0) return job_body_failed(j, rc);
  if ((rc = body_headers(j, &h, &b, last)) < 0) {
    s = job_fail(j, "cannot prepare the request: %s", strerror(-rc));
    goto out;
  }
  call.headers = h;
  call.body = &b;
  job_watch_call(j, &call);
  call.on_location = early_location;
  http_call_perform(j->http, &call);
  /* A final Location, or the 104's: whatever happened, the upload can be resumed. */
  const char *location = call.code == CURLE_OK && http_call_header(&call, "location", loc, sizeof(loc))
                             ? loc : call.interim_location;
  if (location && job_set_url(j, location) < 0) {
    s = job_fail(j, "the server's Location is not a usable URL");
    goto out;
  }
  if ((s = job_transient(j, &call)) == STEP_RETRY) goto out;
  if (call.status < 200 || call.status > 299) {
    s = job_fail_answer(j, &call);
    goto out;
  }
  if (!location) {
    s = job_fail(j, "the server's answer to the creating POST named no upload (no Location)");
    goto out;
  }
  job_acknowledged(j, 0);
  acknowledged(j, &call, &b, last);
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

static enum step ietf_query(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "HEAD", .url = j->url};
  enum step s;
  if (version_headers(j, &h) < 0) return job_fail(j, "out of memory");
  call.headers = h;
  http_call_perform(j->http, &call);
  if ((s = job_offset_answer(j, &call)) == STEP_OK) j->complete = answer_complete(j, &call) == 1;
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

static enum step ietf_append(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "PATCH", .url = j->url};
  struct body b;
  int last, rc;
  enum step s;
  if ((rc = job_next_body(j, &b, &last)) < 0) return job_body_failed(j, rc);
  if ((rc = body_headers(j, &h, &b, last)) < 0 || http_header_add(&h, "Upload-Offset: %" PRIu64, j->offset) < 0 ||
      (j->opts->ietf_version >= 6 && http_header_add(&h, "Content-Type: application/partial-upload") < 0)) {
    s = job_fail(j, "cannot prepare the request: %s", strerror(rc < 0 ? -rc : ENOMEM));
    goto out;
  }
  call.headers = h;
  call.body = &b;
  job_watch_call(j, &call);
  http_call_perform(j->http, &call);
  if ((s = job_append_answer(j, &call)) != STEP_OK) goto out;
  acknowledged(j, &call, &b, last);
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

const struct upload_protocol ietf_protocol = {
    .name = "ietf", .create = ietf_create, .query = ietf_query, .append = ietf_append};
