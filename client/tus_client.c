/* tus 1.0.0 as a client: creation (with defer-length for standard input),
 * offset retrieval by HEAD, appends by PATCH, optional Upload-Checksum. Only
 * the core protocol and those extensions, so that any tus server will do. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"
#include "metadata.h"
#include "util.h"

#define TUS_VERSION "Tus-Resumable: 1.0.0"

static const struct {
  const char *ext, *type;
} types[] = {
    {"txt", "text/plain"},       {"html", "text/html"},       {"css", "text/css"},
    {"csv", "text/csv"},         {"json", "application/json"}, {"pdf", "application/pdf"},
    {"zip", "application/zip"},  {"gz", "application/gzip"},  {"tar", "application/x-tar"},
    {"png", "image/png"},        {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},        {"webp", "image/webp"},      {"svg", "image/svg+xml"},
    {"mp4", "video/mp4"},        {"webm", "video/webm"},      {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},       {"wav", "audio/wav"},        {"ogg", "audio/ogg"},
    {"iso", "application/x-iso9660-image"},
};

static const char *guess_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot)
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot + 1, types[i].ext) == 0) return types[i].type;
  return "application/octet-stream";
}

static int given(const struct client_options *o, const char *key) {
  size_t n = strlen(key);
  for (size_t i = 0; i < o->n_metadata; i++)
    if (strncmp(o->metadata[i], key, n) == 0 && o->metadata[i][n] == '=') return 1;
  return 0;
}

static int metadata_header(struct job *j, struct curl_slist **headers) {
  const struct client_options *o = j->opts;
  char buf[8192], key[256];
  size_t len = 0;
  int rc = 0;
  buf[0] = 0;
  if (!given(o, "filename") && !j->src.is_stdin)
    rc = metadata_append(buf, &len, sizeof(buf), "filename", j->src.name, strlen(j->src.name));
  const char *type = guess_type(j->src.name);
  if (!rc && !given(o, "filetype") && !j->src.is_stdin)
    rc = metadata_append(buf, &len, sizeof(buf), "filetype", type, strlen(type));
  for (size_t i = 0; !rc && i < o->n_metadata; i++) {
    const char *eq = strchr(o->metadata[i], '=');
    size_t klen = (size_t)(eq - o->metadata[i]);
    if (klen >= sizeof(key)) return -E2BIG;
    memcpy(key, o->metadata[i], klen);
    key[klen] = 0;
    rc = metadata_append(buf, &len, sizeof(buf), key, eq + 1, strlen(eq + 1));
  }
  if (rc < 0) return rc;
  return len ? http_header_add(headers, "Upload-Metadata: %s", buf) : 0;
}

static enum step not_tus(struct job *j, const struct http_call *call) {
  return job_fail(j, "the server at %s does not speak tus (its answer, %ld, had no Tus-Resumable header)",
                  call->url, call->status);
}

static enum step tus_create(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "POST", .url = j->opts->url};
  struct body b;
  int last, rc;
  enum step s;
  char tr[32], loc[4096];
  /* Standard input: read the first chunk to learn whether the length is known. */
  if ((rc = job_next_body(j, &b, &last)) < 0) return job_body_failed(j, rc);
  if (http_header_add(&h, TUS_VERSION) < 0 || metadata_header(j, &h) < 0 ||
      (j->src.size >= 0 ? http_header_add(&h, "Upload-Length: %" PRId64, j->src.size)
                        : http_header_add(&h, "Upload-Defer-Length: 1")) < 0) {
    s = job_fail(j, "out of memory");
    goto out;
  }
  call.headers = h;
  http_call_perform(j->http, &call);
  /* Every tus answer names the version. One without it comes from something
   * else: a proxy whose tus server is down or failing (retried), one that
   * refuses our credentials (its reason is the news), or not a tus server. */
  if (call.code == CURLE_OK && !http_call_header(&call, "tus-resumable", tr, sizeof(tr))) {
    long st = call.status;
    if (st == 401 || st == 403 || st == 407) s = job_fail_answer(j, &call);
    else if (!(st == 500 || st == 502 || st == 503 || st == 504)) s = not_tus(j, &call);
    else s = job_transient(j, &call);
    goto out;
  }
  if ((s = job_transient(j, &call)) == STEP_RETRY) goto out;
  if (call.status != 201) {
    s = job_fail_answer(j, &call);
    goto out;
  }
  if (!http_call_header(&call, "location", loc, sizeof(loc)) || job_set_url(j, loc) < 0) {
    s = job_fail(j, "the server's 201 Created had no usable Location");
    goto out;
  }
  j->length_declared = j->src.size >= 0;
  job_acknowledged(j, 0);
  j->complete = j->src.size == 0;
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

static enum step tus_query(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "HEAD", .url = j->url};
  char tr[32];
  enum step s;
  if (http_header_add(&h, TUS_VERSION) < 0) return job_fail(j, "out of memory");
  call.headers = h;
  http_call_perform(j->http, &call);
  s = job_offset_answer(j, &call);
  if (s == STEP_OK && !http_call_header(&call, "tus-resumable", tr, sizeof(tr))) s = not_tus(j, &call);
  /* Without Upload-Length the length is deferred and not yet declared. */
  if (s == STEP_OK) j->complete = j->length_declared && j->offset == (uint64_t)j->src.size;
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

static enum step tus_append(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "PATCH", .url = j->url};
  struct body b;
  int last, rc;
  uint64_t offset;
  enum step s;
  if ((rc = job_next_body(j, &b, &last)) < 0) return job_body_failed(j, rc);
  if (http_header_add(&h, TUS_VERSION) < 0 || http_header_add(&h, "Upload-Offset: %" PRIu64, j->offset) < 0 ||
      http_header_add(&h, "Content-Type: application/offset+octet-stream") < 0 ||
      (last && !j->length_declared && http_header_add(&h, "Upload-Length: %" PRId64, j->src.size) < 0)) {
    s = job_fail(j, "out of memory");
    goto out;
  }
  if ((rc = job_digest_header(j, &b, &h, 0)) < 0) {
    s = job_fail(j, "cannot checksum %s: %s", j->src.arg, strerror(-rc));
    goto out;
  }
  call.headers = h;
  call.body = &b;
  job_watch_call(j, &call);
  http_call_perform(j->http, &call);
  if ((s = job_append_answer(j, &call)) != STEP_OK) goto out;
  if (http_call_number(&call, "upload-offset", &offset) < 0 || offset < j->offset || offset > j->offset + b.len) {
    snprintf(j->reason, sizeof(j->reason), "the server's answer to PATCH had no valid Upload-Offset");
    s = STEP_RETRY;
    goto out;
  }
  if (last && !j->length_declared) j->length_declared = 1;
  job_acknowledged(j, offset);
  j->complete = j->length_declared && j->src.size >= 0 && offset == (uint64_t)j->src.size;
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

const struct upload_protocol tus_protocol = {
    .name = "tus", .create = tus_create, .query = tus_query, .append = tus_append};
