/* resumed-upload: uploads files with tus, the IETF draft or the article's
 * protocol, resuming after any failure. See docs/resumed-upload.1. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "options.h"
#include "progress.h"
#include "util.h"

/* The signal that asked us to stop, or 0: written by the handler, read by
 * the workers through struct run's stop (a handler reaches nothing else). */
static _Atomic int stop_signal;

static void on_stop_signal(int sig) { atomic_store(&stop_signal, sig); }

struct run {
  const struct client_options *opts;
  const _Atomic int *stop;
  struct progress progress;
  struct job *jobs;
  size_t n_jobs;
  _Atomic size_t next; /* the next job a worker takes */
  pthread_mutex_t lock;
  pthread_cond_t workers_done;
  size_t running_workers;
};

static void report(struct run *r, struct job *j, int rc) {
  char b[32], rate[32];
  double secs = j->finished - j->started;
  if (rc < 0 && atomic_load(&j->state) == JOB_STOPPED) {
    const char *hint = j->src.is_stdin ? ""
                       : j->key[0] || r->opts->protocol == PROTO_ARTICLE ? "; the same command continues it"
                       : j->url ? "; --resume with this URL continues it" : "";
    /* offset is what the server last acknowledged; it may hold more of the cut request. */
    progress_bytes((double)j->offset, b, sizeof(b));
    progress_error(&r->progress, "%s: interrupted with at least %s stored%s%s%s", j->src.arg, b, j->url ? " at " : "",
                   j->url ? j->url : "", hint);
    return;
  }
  if (rc < 0) {
    progress_error(&r->progress, "%s: failed: %s", j->src.arg, j->reason);
    return;
  }
  progress_stdout(&r->progress, "%s\t%s\n", j->url, j->src.arg);
  progress_bytes((double)j->offset, b, sizeof(b));
  progress_bytes(secs > 0 ? (double)(j->offset - j->first_offset) / secs : 0, rate, sizeof(rate));
  progress_note(&r->progress, "%s: uploaded %s in %.1fs (%s/s)", j->src.arg, b, secs, rate);
}

static void *worker(void *arg) {
  struct run *r = arg;
  struct http_client http;
  int ready = http_client_init(&http, r->opts);
  http.stop = r->stop;
  for (;;) {
    size_t i = atomic_fetch_add(&r->next, 1);
    if (i >= r->n_jobs || atomic_load(r->stop)) break;
    struct job *j = &r->jobs[i];
    if (atomic_load(&j->state) == JOB_FAILED) { /* could not even open */
      report(r, j, -1);
      continue;
    }
    int rc = ready < 0 ? (snprintf(j->reason, sizeof(j->reason), "out of memory"), -1) : job_run(j, &http);
    if (rc < 0 && atomic_load(&j->state) != JOB_STOPPED) atomic_store(&j->state, JOB_FAILED);
    report(r, j, rc);
  }
  if (ready == 0) http_client_release(&http);
  pthread_mutex_lock(&r->lock);
  if (--r->running_workers == 0) pthread_cond_signal(&r->workers_done);
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

int main(int argc, char **argv) {
  struct client_options o;
  struct run r = {
      .opts = &o, .stop = &stop_signal, .lock = PTHREAD_MUTEX_INITIALIZER, .workers_done = PTHREAD_COND_INITIALIZER};
  pthread_t threads[64];
  size_t started = 0;
  int status = 1;

  /* A cut connection must come back as an error from send(), not kill us. */
  signal(SIGPIPE, SIG_IGN);
  /* Ctrl-C, a closed terminal or SIGTERM end the requests in flight, keep the
   * uploads remembered and say so; a second signal ends us at once. */
  struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND}, was;
  sigemptyset(&sa.sa_mask);
  const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
  for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
    /* One ignored when we started (nohup, a background job) stays ignored. */
    if (sigaction(stop_signals[i], NULL, &was) == 0 && was.sa_handler != SIG_IGN)
      sigaction(stop_signals[i], &sa, NULL);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || util_init() < 0) {
    fputs("resumed-upload: cannot initialise libcurl or OpenSSL\n", stderr);
    return 1;
  }
  int prc = options_parse(&o, argc, argv);
  if (prc != OPTIONS_OK) {
    options_release(&o);
    curl_global_cleanup();
    return prc == OPTIONS_EXIT ? 0 : 2;
  }
  r.n_jobs = o.n_files;
  r.jobs = calloc(r.n_jobs, sizeof(*r.jobs));
  if (!r.jobs || progress_init(&r.progress, r.jobs, r.n_jobs, o.quiet, o.progress_interval) < 0) {
    fputs("resumed-upload: out of memory\n", stderr);
    goto out;
  }
  for (size_t i = 0; i < r.n_jobs; i++) {
    int rc = job_init(&r.jobs[i], &o, &r.progress, o.files[i]);
    if (rc < 0) {
      snprintf(r.jobs[i].reason, sizeof(r.jobs[i].reason), "cannot start: %s", strerror(-rc));
      atomic_store(&r.jobs[i].state, JOB_FAILED);
    }
  }
  size_t workers = (size_t)o.parallel < r.n_jobs ? (size_t)o.parallel : r.n_jobs;
  pthread_mutex_lock(&r.lock);
  for (; started < workers; started++)
    if (pthread_create(&threads[started], NULL, worker, &r) != 0) break;
  r.running_workers = started;
  /* Redraw progress five times a second until the last worker is done. */
  while (r.running_workers > 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    if (pthread_cond_timedwait(&r.workers_done, &r.lock, &ts) == ETIMEDOUT) {
      pthread_mutex_unlock(&r.lock);
      progress_tick(&r.progress);
      pthread_mutex_lock(&r.lock);
    }
  }
  pthread_mutex_unlock(&r.lock);
  if (!started) {
    fputs("resumed-upload: cannot start a thread\n", stderr);
    goto out;
  }
  for (size_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
  progress_summary(&r.progress);
  status = 0;
  for (size_t i = 0; i < r.n_jobs; i++)
    if (atomic_load(&r.jobs[i].state) != JOB_DONE) status = 1;
  /* As a shell reports a command its signal ended. */
  if (status && atomic_load(&stop_signal)) status = 128 + atomic_load(&stop_signal);
out:
  for (size_t i = 0; r.jobs && i < r.n_jobs; i++) job_release(&r.jobs[i]);
  free(r.jobs);
  progress_release(&r.progress);
  options_release(&o);
  curl_global_cleanup();
  return status;
}
