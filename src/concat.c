/* tus concatenation (see concat.h). */
#include "concat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int concat_final_spec(struct endpoint *ep, struct http_request *req, const char *v, size_t n,
                      char **concat, int64_t *length, const char **why) {
  int rc = -EINVAL;
  *why = "Upload-Concat must be \"partial\" or \"final;\" and the partial uploads' URLs";
  if (n < 6 || memcmp(v, "final;", 6) != 0) return -EINVAL;
  size_t pos = 6, parts = 0;
  char *rec = malloc(STORE_CONCAT_MAX + 1);
  if (!rec) return -ENOMEM;
  size_t len = (size_t)snprintf(rec, STORE_CONCAT_MAX + 1, "final");
  int64_t total = 0;
  while (pos < n) {
    while (pos < n && v[pos] == ' ') pos++;
    if (pos == n) break;
    const char *sp = memchr(v + pos, ' ', n - pos);
    size_t end = sp ? (size_t)(sp - v) : n;
    char key[STORE_KEY_LEN + 1];
    struct upload *u;
    if ((rc = endpoint_url_key(ep, v + pos, end - pos, key)) < 0) {
      if (rc == -EACCES) *why = endpoint_denied(rc);
      else rc = -EINVAL;
      goto bad;
    }
    rc = -EINVAL;
    if (parts == STORE_CONCAT_PARTS_MAX) {
      *why = "too many partial uploads";
      goto bad;
    }
    if ((rc = endpoint_open(ep, req, key, "tus", &u)) < 0) {
      if (rc == -EPERM) {
        *why = endpoint_denied(rc);
        goto bad;
      }
      rc = -EINVAL;
      *why = "Upload-Concat names an unknown or expired upload";
      goto bad;
    }
    const struct upload_info *info = upload_info(u);
    int partial = info->concat && strcmp(info->concat, "partial") == 0;
    if (total >= 0) total = info->length < 0 ? -1 : total + info->length;
    upload_put(u);
    if (!partial) {
      *why = "Upload-Concat names an upload that is not partial";
      goto bad;
    }
    len += (size_t)snprintf(rec + len, STORE_CONCAT_MAX + 1 - len, " %s", key);
    parts++;
    pos = end;
  }
  if (parts == 0) goto bad;
  *concat = rec;
  *length = total;
  return 0;
bad:
  free(rec);
  return rc;
}

void concat_add_header(const struct endpoint *ep, struct http_request *req, const char *concat) {
  if (strncmp(concat, "final", 5) != 0) {
    http_res_header(req, "Upload-Concat", "%s", concat);
    return;
  }
  enum { URL_MAX = 512 };
  size_t parts = strlen(concat + 5) / (STORE_KEY_LEN + 1), n = 8 + parts * (URL_MAX + 1), len;
  char *out = malloc(n);
  if (!out) return;
  len = (size_t)snprintf(out, n, "final;");
  for (const char *p = concat + 5; *p == ' '; p += 1 + STORE_KEY_LEN) {
    char key[STORE_KEY_LEN + 1];
    memcpy(key, p + 1, STORE_KEY_LEN);
    key[STORE_KEY_LEN] = 0;
    if (len > 6) out[len++] = ' ';
    endpoint_url(ep, req, key, out + len, URL_MAX);
    len += strlen(out + len);
  }
  http_res_header(req, "Upload-Concat", "%s", out);
  free(out);
}

/* ---------- building a final upload ---------- */

struct settle {
  struct upload *final;
  struct upload_writer w;
  size_t n, next;
  void (*cb)(void *arg, int status);
  void *arg;
  int locked;
  struct upload *parts[];
};

static void settle_end(struct settle *s, int status) {
  if (s->locked) upload_unlock(&s->w);
  for (size_t i = 0; i < s->n; i++) upload_put(s->parts[i]);
  upload_put(s->final);
  s->cb(s->arg, status);
  free(s);
}

static void finished(void *arg, int status) { settle_end(arg, status); }

static void copy_next(void *arg, int status) {
  struct settle *s = arg;
  if (status < 0) {
    /* what was copied stays past the durable offset; the next try restarts */
    settle_end(s, status);
    return;
  }
  if (s->next < s->n) upload_copy(&s->w, s->parts[s->next++], copy_next, s);
  else upload_finish(&s->w, NULL, finished, s);
}

static void settle_locked(void *arg, int status) {
  struct settle *s = arg;
  if (status < 0) {
    settle_end(s, status);
    return;
  }
  s->locked = 1;
  const struct upload_info *info = upload_info(s->final);
  if (info->finished) { /* another settle got there first */
    settle_end(s, 0);
    return;
  }
  /* A build cut short by a crash or an error left bytes behind: start over. */
  if (upload_written(s->final) != 0) upload_restart(&s->w, info->length, copy_next, s);
  else copy_next(s, 0);
}

void concat_settle(struct endpoint *ep, struct upload *final, void (*cb)(void *arg, int status),
                   void *arg) {
  const struct upload_info *info = upload_info(final);
  if (info->finished) {
    cb(arg, 0);
    return;
  }
  const char *p = info->concat ? info->concat + 5 : "";
  size_t n = strlen(p) / (STORE_KEY_LEN + 1);
  struct settle *s = calloc(1, sizeof(*s) + n * sizeof(s->parts[0]));
  if (!s) {
    cb(arg, -ENOMEM);
    return;
  }
  s->cb = cb;
  s->arg = arg;
  int rc = upload_get(ep->eng, info->key, &s->final);
  for (size_t i = 0; rc == 0 && i < n; i++, p += STORE_KEY_LEN + 1) {
    char key[STORE_KEY_LEN + 1];
    memcpy(key, p + 1, STORE_KEY_LEN);
    key[STORE_KEY_LEN] = 0;
    if ((rc = upload_get(ep->eng, key, &s->parts[s->n])) < 0) break;
    s->n++;
    if (!upload_info(s->parts[i])->finished) rc = -EAGAIN;
  }
  /* Lengths deferred at creation are known now: the maximum holds for the whole. */
  uint64_t total = 0;
  for (size_t i = 0; rc == 0 && i < s->n; i++) total += (uint64_t)upload_info(s->parts[i])->length;
  if (rc == 0 && ep->max_size && total > ep->max_size) rc = -EFBIG;
  if (rc < 0) {
    if (!s->final) {
      cb(arg, rc);
      free(s);
      return;
    }
    settle_end(s, rc);
    return;
  }
  /* Nothing else writes a final upload; requests that want its lock wait
   * for the copy rather than interrupt it. */
  s->w.on_preempt = NULL;
  upload_lock(s->final, &s->w, settle_locked, s);
}

/* ---------- finals that wait ---------- */

/* At most this many are remembered; the others are settled at their next
 * HEAD, as after a restart. */
#define WAITING_MAX 256

struct waiter {
  struct endpoint *ep;
  char key[STORE_KEY_LEN + 1];
};

static void forget(struct endpoint *ep, const char *key) {
  for (size_t i = 0; i < ep->n_waiting; i++)
    if (strcmp(ep->waiting_finals[i], key) == 0) {
      memmove(ep->waiting_finals[i], ep->waiting_finals[ep->n_waiting - 1], STORE_KEY_LEN + 1);
      ep->n_waiting--;
      return;
    }
}

void concat_wait(struct endpoint *ep, const char *final_key) {
  if (!ep->waiting_finals && !(ep->waiting_finals = calloc(WAITING_MAX, sizeof(*ep->waiting_finals))))
    return;
  for (size_t i = 0; i < ep->n_waiting; i++)
    if (strcmp(ep->waiting_finals[i], final_key) == 0) return;
  if (ep->n_waiting == WAITING_MAX) return;
  memcpy(ep->waiting_finals[ep->n_waiting++], final_key, STORE_KEY_LEN + 1);
}

static void waiter_done(void *arg, int status) {
  struct waiter *wt = arg;
  if (status != -EAGAIN) forget(wt->ep, wt->key);
  free(wt);
}

void concat_partial_finished(struct endpoint *ep) {
  /* Settling may forget keys as it goes: walk a copy. */
  size_t n = ep->n_waiting;
  char (*keys)[STORE_KEY_LEN + 1] = n ? malloc(n * sizeof(*keys)) : NULL;
  if (!keys) return;
  memcpy(keys, ep->waiting_finals, n * sizeof(*keys));
  for (size_t i = 0; i < n; i++) {
    struct upload *u;
    struct waiter *wt;
    if (upload_get(ep->eng, keys[i], &u) < 0) {
      forget(ep, keys[i]);
      continue;
    }
    if ((wt = malloc(sizeof(*wt)))) {
      wt->ep = ep;
      memcpy(wt->key, keys[i], STORE_KEY_LEN + 1);
      concat_settle(ep, u, waiter_done, wt);
    }
    upload_put(u);
  }
  free(keys);
}
