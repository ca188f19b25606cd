/* One file's upload: its source, the upload's URL and acknowledged offset,
 * and the loop that drives a protocol through failures: back off, ask the
 * server for its offset, send the rest. */
#ifndef RESUMED_UPLOAD_JOB_H
#define RESUMED_UPLOAD_JOB_H

#include <stdatomic.h>
#include <stdint.h>

#include "http_client.h"
#include "options.h"
#include "source.h"
#include "state.h"

struct progress;
struct upload_protocol;

/* JOB_STOPPED: interrupted by a signal; the upload stays remembered for the next run. */
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_RETRYING, JOB_DONE, JOB_FAILED, JOB_STOPPED };

struct job {
  const struct client_options *opts;
  struct progress *progress;
  const struct upload_protocol *proto;
  struct http_client *http; /* the worker's, while running */
  struct source src;
  char key[STATE_KEY_LEN + 1]; /* state file key; empty when not remembered */

  char *url;       /* the upload's URL once known */
  uint64_t offset; /* what the server holds, as it last said */
  int complete;    /* the server said the upload is complete */
  int length_declared; /* the server knows the length (not so for stdin at first) */
  int created_here; /* url came from this run's creation, not from state */
  char reason[512]; /* why the last step failed */
  double retry_after; /* seconds the last transient answer's Retry-After asked for, or 0 */

  /* read by the progress display */
  _Atomic int state;
  _Atomic uint64_t sent;    /* bytes handed to the socket, from the start */
  _Atomic int64_t total;    /* -1 until known */
  _Atomic double retry_at;  /* monotonic seconds of the next attempt */
  double started, finished;
  uint64_t first_offset; /* where this run began, for the rate in the summary */
};

/* What a protocol step came to. */
enum step {
  STEP_OK,    /* done what was asked; look at offset/complete */
  STEP_RETRY, /* a transient failure: back off, ask for the offset, go on */
  STEP_FAIL,  /* a permanent failure: reason says why */
  STEP_GONE,  /* the upload at url no longer exists */
};

struct upload_protocol {
  const char *name;
  /* The upload's identity comes from the file (the article's ids): create
   * only names it, and the server is asked for its offset before sending. */
  int ask_first;
  /* Create the upload, set url; may send the first bytes with it. */
  enum step (*create)(struct job *j);
  /* Ask the server for offset and complete. */
  enum step (*query)(struct job *j);
  /* Send bytes from offset; advance offset, set complete at the end. */
  enum step (*append)(struct job *j);
};

extern const struct upload_protocol tus_protocol, ietf_protocol, article_protocol;

int job_init(struct job *j, const struct client_options *o, struct progress *p, const char *arg);
void job_release(struct job *j);
/* Runs the upload to its end; 0 when uploaded, -1 when failed (reason set)
 * or stopped (http->stop came true). */
int job_run(struct job *j, struct http_client *http);

/* For protocols. */
/* The bytes to send next (at most --chunk-size), from offset. */
int job_next_body(struct job *j, struct body *b, int *last);
/* Points call's progress reports at this job, counting from its offset. */
void job_watch_call(struct job *j, struct http_call *call);
/* STEP_RETRY with reason (and retry_after) set for a failed exchange, a 5xx
 * other than 501 and 505, 409, 423 or 429; else STEP_OK. */
enum step job_transient(struct job *j, const struct http_call *call);
/* What an answer to HEAD says: STEP_RETRY (transient), STEP_GONE (404, 410,
 * 403), STEP_FAIL (other non-2xx, no Upload-Offset, a length that is not the
 * source's), or STEP_OK with the offset acknowledged and length_declared set. */
enum step job_offset_answer(struct job *j, const struct http_call *call);
/* What an answer to a request with a body says: STEP_RETRY (transient, or a
 * 460 checksum mismatch), STEP_GONE (404, 410), STEP_FAIL (other non-2xx) or STEP_OK. */
enum step job_append_answer(struct job *j, const struct http_call *call);
/* STEP_FAIL for a source that cannot give the next bytes (source_body's error). */
enum step job_body_failed(struct job *j, int rc);
/* STEP_FAIL with reason set from a non-2xx answer. */
enum step job_fail_answer(struct job *j, const struct http_call *call);
enum step job_fail(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resolves location against the endpoint, keeps it as url and remembers it in the state file. */
int job_set_url(struct job *j, const char *location);
/* Sets offset after the server acknowledged it. */
void job_acknowledged(struct job *j, uint64_t offset);
/* Adds "Upload-Checksum"-style digest headers when --checksum asks for them. */
int job_digest_header(struct job *j, const struct body *b, struct curl_slist **headers, int ietf);

#endif
