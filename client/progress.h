/* What the user sees on stderr: on a terminal, one line per file being
 * uploaded, redrawn in place under the messages; otherwise plain lines every
 * --progress-interval. Messages from worker threads go through here so that
 * they never tear the live lines. */
#ifndef RESUMED_UPLOAD_PROGRESS_H
#define RESUMED_UPLOAD_PROGRESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

struct job;

struct progress {
  pthread_mutex_t lock;
  FILE *err;
  int tty, quiet;
  double interval, last_plain, start;
  struct job *jobs;
  size_t n_jobs;
  double *rate;      /* smoothed bytes/s per job */
  unsigned long long *last_sent;
  double last_tick;
  int live_lines; /* lines drawn below the messages */
};

int progress_init(struct progress *p, struct job *jobs, size_t n, int quiet, double interval);
void progress_release(struct progress *p);

/* A line that stays: retries, resumptions, completions. Not with --quiet. */
void progress_note(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, but printed even with --quiet. */
void progress_error(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a line to stdout without tearing stderr's live lines. */
void progress_stdout(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Called about five times a second by the main thread. */
void progress_tick(struct progress *p);
/* Clears the live lines and prints the summary. */
void progress_summary(struct progress *p);

/* "12.3 MiB" */
void progress_bytes(double n, char *out, size_t cap);

#endif
