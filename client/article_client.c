/* The tutorial article's protocol as a client: the upload is named by the
 * file itself (name-size-lastModified, as the article's browser code does, so
 * a terminal can finish what a browser began), GET status asks how many bytes
 * the server holds, POST upload sends the rest from X-Start-Byte. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "util.h"

/* The endpoint URL's "status" or "upload" sibling, as the article's page
 * resolves its relative URLs. */
static int sibling(struct job *j, const char *name, char *out, size_t cap) {
  char *abs = http_url_resolve(j->opts->url, name);
  int rc = !abs ? -EINVAL : snprintf(out, cap, "%s", abs) < (int)cap ? 0 : -ENAMETOOLONG;
  free(abs);
  return rc;
}

/* The file id, from the url "<upload>#<id>". */
static const char *file_id(const struct job *j) {
  return strchr(j->url, '#') + 1;
}

static enum step article_create(struct job *j) {
  char upload[4096];
  const struct stat *st = &j->src.st;
  /* JavaScript's File.lastModified: whole milliseconds since the epoch. */
  int64_t ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
  if (sibling(j, "upload", upload, sizeof(upload)) < 0) return job_fail(j, "cannot make the upload URL");
  free(j->url);
  if (asprintf(&j->url, "%s#%s-%" PRId64 "-%" PRId64, upload, j->src.name, j->src.size, ms) < 0) {
    j->url = NULL;
    return job_fail(j, "out of memory");
  }
  j->created_here = 1;
  j->length_declared = 1;
  return STEP_OK;
}

static enum step article_query(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "GET"};
  char url[4096];
  uint64_t held;
  enum step s;
  if (sibling(j, "status", url, sizeof(url)) < 0) return job_fail(j, "cannot make the status URL");
  if (http_header_add(&h, "X-File-Id: %s", file_id(j)) < 0) return job_fail(j, "out of memory");
  call.url = url;
  call.headers = h;
  http_call_perform(j->http, &call);
  if ((s = job_transient(j, &call)) == STEP_RETRY) goto out;
  if (call.status != 200) {
    s = job_fail_answer(j, &call);
    goto out;
  }
  size_t n = strcspn(call.body_start, "\r\n");
  if (parse_u64_strict(call.body_start, n, &held) < 0) {
    s = job_fail(j, "the server's answer to GET status is not a byte count");
    goto out;
  }
  job_acknowledged(j, held);
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

static enum step article_append(struct job *j) {
  struct curl_slist *h = NULL;
  struct http_call call = {.method = "POST"};
  char url[4096];
  struct body b;
  int last, rc;
  enum step s;
  if (sibling(j, "upload", url, sizeof(url)) < 0) return job_fail(j, "cannot make the upload URL");
  if ((rc = job_next_body(j, &b, &last)) < 0) return job_body_failed(j, rc);
  /* X-File-Size is not sent by the article's page, but its server reads it
   * to know when the upload is complete. */
  if (http_header_add(&h, "X-File-Id: %s", file_id(j)) < 0 ||
      http_header_add(&h, "X-Start-Byte: %" PRIu64, j->offset) < 0 ||
      http_header_add(&h, "X-File-Size: %" PRId64, j->src.size) < 0 ||
      http_header_add(&h, "Content-Type: application/octet-stream") < 0) {
    s = job_fail(j, "out of memory");
    goto out;
  }
  call.url = url;
  call.headers = h;
  call.body = &b;
  job_watch_call(j, &call);
  http_call_perform(j->http, &call);
  if ((s = job_transient(j, &call)) == STEP_RETRY) goto out;
  /* Someone else moved the upload on: ask again rather than give up. */
  if (call.status == 400 && strstr(call.reason, "Wrong start byte")) {
    http_call_reason(&call, j->reason, sizeof(j->reason));
    s = STEP_RETRY;
    goto out;
  }
  if (call.status != 200) {
    s = job_fail_answer(j, &call);
    goto out;
  }
  job_acknowledged(j, j->offset + b.len);
  j->complete = strncmp(call.body_start, "Success", 7) == 0;
  if (last && !j->complete) {
    s = job_fail(j, "the server took every byte but did not say Success");
    goto out;
  }
  s = STEP_OK;
out:
  curl_slist_free_all(h);
  http_call_release(&call);
  return s;
}

const struct upload_protocol article_protocol = {
    .name = "article", .ask_first = 1, .create = article_create, .query = article_query, .append = article_append};
