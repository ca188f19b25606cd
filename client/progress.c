#include "progress.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "util.h"

#define RATE_TAU 2.0 /* seconds: the rate shown follows the last few seconds */

int progress_init(struct progress *p, struct job *jobs, size_t n, int quiet, double interval) {
  *p = (struct progress){.err = stderr, .quiet = quiet, .interval = interval, .jobs = jobs, .n_jobs = n};
  p->tty = isatty(STDERR_FILENO);
  p->start = p->last_tick = p->last_plain = monotonic_seconds();
  p->rate = calloc(n ? n : 1, sizeof(*p->rate));
  p->last_sent = calloc(n ? n : 1, sizeof(*p->last_sent));
  if (!p->rate || !p->last_sent) {
    progress_release(p);
    return -ENOMEM;
  }
  return pthread_mutex_init(&p->lock, NULL) ? -ENOMEM : 0;
}

void progress_release(struct progress *p) {
  free(p->rate);
  free(p->last_sent);
  p->rate = NULL;
  p->last_sent = NULL;
}

void progress_bytes(double n, char *out, size_t cap) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) n /= 1024, u++;
  if (u == 0) snprintf(out, cap, "%.0f B", n);
  else snprintf(out, cap, "%.1f %s", n, units[u]);
}

static void duration(double s, char *out, size_t cap) {
  if (!isfinite(s) || s < 0 || s > 360000) {
    snprintf(out, cap, "--:--");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

/* UTF-8 continuation bytes: cutting before one would split a character. */
static int continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

static int width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

/* One job's progress: "name [####    ]  1.0 MiB / 4.0 MiB  25%  2.0 MiB/s  ETA 0:02",
 * fitted into cols columns; a bar only where there is room for one. */
static void describe(struct progress *p, size_t i, int cols, char *out, size_t cap) {
  struct job *j = &p->jobs[i];
  double sent = (double)atomic_load(&j->sent);
  int64_t total = atomic_load(&j->total);
  double f = total > 0 ? sent / (double)total : 0;
  char s[32], t[32], r[32], eta[32], pct[16] = "", tail[160], name[48];
  if (f > 1) f = 1;
  progress_bytes(sent, s, sizeof(s));
  if (total >= 0) progress_bytes((double)total, t, sizeof(t));
  else snprintf(t, sizeof(t), "?");
  if (total > 0) snprintf(pct, sizeof(pct), " %3d%%", (int)(f * 100));
  if (atomic_load(&j->state) == JOB_RETRYING) {
    double left = atomic_load(&j->retry_at) - monotonic_seconds();
    snprintf(tail, sizeof(tail), "%s / %s%s  retrying in %.0fs", s, t, pct, left > 0 ? left : 0);
  } else {
    progress_bytes(p->rate[i], r, sizeof(r));
    duration(total >= 0 && p->rate[i] > 0 ? ((double)total - sent) / p->rate[i] : NAN, eta, sizeof(eta));
    snprintf(tail, sizeof(tail), "%s / %s%s  %s/s  ETA %s", s, t, pct, r, eta);
  }
  size_t nl = strlen(j->src.arg);
  if (nl > 30) {
    const char *keep = j->src.arg + nl - 27;
    while (continuation(*keep)) keep++;
    snprintf(name, sizeof(name), "...%s", keep);
  } else {
    snprintf(name, sizeof(name), "%s", j->src.arg);
  }
  int room = cols - 1 - (int)strlen(name) - (int)strlen(tail) - 4;
  if (cols <= 0 || total <= 0 || room < 10) {
    snprintf(out, cap, "%s  %s", name, tail);
    return;
  }
  char bar[40];
  int w = room > 30 ? 30 : room, k = (int)(f * w);
  for (int b = 0; b < w; b++) bar[b] = b < k ? '#' : '-';
  bar[w] = 0;
  snprintf(out, cap, "%s [%s] %s", name, bar, tail);
}

static int active(struct job *j) {
  int st = atomic_load(&j->state);
  return st == JOB_RUNNING || st == JOB_RETRYING;
}

static void clear_live(struct progress *p) {
  if (p->live_lines) fprintf(p->err, "\033[%dA\r\033[J", p->live_lines);
  p->live_lines = 0;
}

static void draw_live(struct progress *p) {
  int w = width();
  char line[1024];
  for (size_t i = 0; i < p->n_jobs; i++) {
    if (!active(&p->jobs[i])) continue;
    describe(p, i, w, line, sizeof(line));
    /* A wrapped line would throw off the cursor arithmetic. Bytes are
     * never fewer than columns, so cutting by bytes is safe. */
    if ((int)strlen(line) > w - 1) {
      int cut = w - 1;
      while (cut > 0 && continuation(line[cut])) cut--;
      line[cut] = 0;
    }
    fprintf(p->err, "%s\033[K\n", line);
    p->live_lines++;
  }
  fflush(p->err);
}

static void message(struct progress *p, const char *fmt, va_list ap) {
  pthread_mutex_lock(&p->lock);
  if (p->tty) clear_live(p);
  fputs("resumed-upload: ", p->err);
  vfprintf(p->err, fmt, ap);
  fputc('\n', p->err);
  if (p->tty && !p->quiet) draw_live(p);
  fflush(p->err);
  pthread_mutex_unlock(&p->lock);
}

void progress_note(struct progress *p, const char *fmt, ...) {
  if (p->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  message(p, fmt, ap);
  va_end(ap);
}

void progress_error(struct progress *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  message(p, fmt, ap);
  va_end(ap);
}

void progress_stdout(struct progress *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&p->lock);
  vfprintf(stdout, fmt, ap);
  fflush(stdout);
  pthread_mutex_unlock(&p->lock);
  va_end(ap);
}

void progress_tick(struct progress *p) {
  pthread_mutex_lock(&p->lock);
  double t = monotonic_seconds(), dt = t - p->last_tick;
  if (dt > 0) {
    double a = 1 - exp(-dt / RATE_TAU);
    for (size_t i = 0; i < p->n_jobs; i++) {
      unsigned long long s = atomic_load(&p->jobs[i].sent);
      double inst = s >= p->last_sent[i] ? (double)(s - p->last_sent[i]) / dt : 0;
      /* The first sample sets the rate, so it does not climb from zero. */
      p->rate[i] = p->rate[i] == 0 ? inst : p->rate[i] + a * (inst - p->rate[i]);
      p->last_sent[i] = s;
    }
    p->last_tick = t;
  }
  if (!p->quiet && p->tty) {
    clear_live(p);
    draw_live(p);
  } else if (!p->quiet && t - p->last_plain >= p->interval) {
    char line[1024];
    for (size_t i = 0; i < p->n_jobs; i++) {
      if (!active(&p->jobs[i])) continue;
      describe(p, i, 0, line, sizeof(line));
      fprintf(p->err, "resumed-upload: %s\n", line);
    }
    fflush(p->err);
    p->last_plain = t;
  }
  pthread_mutex_unlock(&p->lock);
}

void progress_summary(struct progress *p) {
  pthread_mutex_lock(&p->lock);
  if (p->tty) clear_live(p);
  size_t done = 0, failed = 0, stopped = 0;
  double bytes = 0, elapsed = monotonic_seconds() - p->start;
  for (size_t i = 0; i < p->n_jobs; i++) {
    struct job *j = &p->jobs[i];
    int st = atomic_load(&j->state);
    done += st == JOB_DONE;
    stopped += st == JOB_STOPPED || st == JOB_QUEUED;
    failed += st == JOB_FAILED;
    if (j->offset > j->first_offset) bytes += (double)(j->offset - j->first_offset);
  }
  if (!p->quiet) {
    char b[32], r[32];
    progress_bytes(bytes, b, sizeof(b));
    progress_bytes(elapsed > 0 ? bytes / elapsed : 0, r, sizeof(r));
    fprintf(p->err, "resumed-upload: %zu uploaded, %zu failed", done, failed);
    if (stopped) fprintf(p->err, ", %zu interrupted", stopped);
    fprintf(p->err, ", %s in %.1fs (%s/s)\n", b, elapsed, r);
  }
  fflush(p->err);
  pthread_mutex_unlock(&p->lock);
}
