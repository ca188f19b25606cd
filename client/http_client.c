#include "http_client.h"

#include <ctype.h>
#include <errno.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

/* libcurl's default upload buffer is 64 KiB; a larger one halves the
 * read/send calls for a large file at no cost worth counting. */
#define UPLOAD_BUFFER (512 * 1024)

int http_header_add(struct curl_slist **list, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(line)) return -ENOMEM;
  struct curl_slist *l = curl_slist_append(*list, line);
  if (!l) return -ENOMEM;
  *list = l;
  return 0;
}

char *http_url_resolve(const char *base, const char *ref) {
  CURLU *u = curl_url();
  char *abs = NULL, *out = NULL;
  if (!u) return NULL;
  if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK && curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK)
    out = strdup(abs);
  curl_free(abs);
  curl_url_cleanup(u);
  return out;
}

int http_client_init(struct http_client *c, const struct client_options *o) {
  *c = (struct http_client){.opts = o, .sock = CURL_SOCKET_BAD};
  c->curl = curl_easy_init();
  if (!c->curl) return -ENOMEM;
  for (size_t i = 0; i < o->n_headers; i++)
    if (http_header_add(&c->user_headers, "%s", o->headers[i]) < 0) goto nomem;
  /* Never wait for a 100 Continue: tus servers rarely send one, and a
   * second's pause per request is what libcurl does otherwise. */
  if (http_header_add(&c->user_headers, "Expect:") < 0) goto nomem;
  return 0;
nomem:
  http_client_release(c);
  return -ENOMEM;
}

void http_client_release(struct http_client *c) {
  if (c->curl) curl_easy_cleanup(c->curl);
  curl_slist_free_all(c->user_headers);
  *c = (struct http_client){0};
}

static size_t read_body(char *buf, size_t size, size_t nitems, void *arg) {
  struct http_call *call = arg;
  const struct body *b = call->body;
  size_t want = size * nitems;
  uint64_t left = b->len - call->body_pos;
  if (want > left) want = (size_t)left;
  if (!want) return 0;
  if (b->fd >= 0) {
    ssize_t n = pread(b->fd, buf, want, (off_t)(b->off + call->body_pos));
    if (n < 0 && errno == EINTR) n = pread(b->fd, buf, want, (off_t)(b->off + call->body_pos));
    /* A file that shrank under us: abort rather than send a short body. */
    if (n <= 0) return CURL_READFUNC_ABORT;
    want = (size_t)n;
  } else {
    memcpy(buf, b->mem + b->off + call->body_pos, want);
  }
  call->body_pos += want;
  return want;
}

/* libcurl rewinds to send a request again on a fresh connection when a
 * reused one died. Once body bytes went out, the server may hold some of
 * them and the same offset would only earn a 409: refuse, so the request
 * fails and the retry loop asks the server for its offset first. */
static int seek_body(void *arg, curl_off_t offset, int origin) {
  struct http_call *call = arg;
  if (origin != SEEK_SET || offset != 0 || call->body_pos != 0) return CURL_SEEKFUNC_FAIL;
  return CURL_SEEKFUNC_OK;
}

static size_t keep_body(char *ptr, size_t size, size_t nmemb, void *arg) {
  struct http_call *call = arg;
  size_t n = size * nmemb, room = HTTP_BODY_KEEP - call->body_len;
  if (room) {
    size_t k = n < room ? n : room;
    memcpy(call->body_start + call->body_len, ptr, k);
    call->body_len += k;
    call->body_start[call->body_len] = 0;
  }
  return n;
}

static void status_line(struct http_call *call, const char *line, size_t n) {
  /* "HTTP/1.1 204 No Content" */
  const char *sp = memchr(line, ' ', n);
  call->status = 0;
  call->reason[0] = 0;
  if (!sp) return;
  call->status = strtol(sp + 1, NULL, 10);
  const char *r = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line));
  if (r) {
    size_t k = n - (size_t)(r + 1 - line);
    while (k && (r[1 + k - 1] == '\r' || r[1 + k - 1] == '\n')) k--;
    if (k >= sizeof(call->reason)) k = sizeof(call->reason) - 1;
    memcpy(call->reason, r + 1, k);
    call->reason[k] = 0;
  }
}

static size_t keep_header(char *line, size_t size, size_t nitems, void *arg) {
  struct http_call *call = arg;
  size_t n = size * nitems;
  if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
    status_line(call, line, n);
    call->in_interim = call->status >= 100 && call->status < 200;
    call->head_len = 0;
    call->body_len = 0;
    return n;
  }
  if (call->in_interim) {
    if (call->status == 104 && n > 9 && strncasecmp(line, "location:", 9) == 0) {
      const char *v = line + 9;
      size_t k = n - 9;
      while (k && (*v == ' ' || *v == '\t')) v++, k--;
      while (k && isspace((unsigned char)v[k - 1])) k--;
      char *loc = strndup(v, k);
      if (!loc) return 0;
      free(call->interim_location);
      call->interim_location = loc;
      if (call->on_location) call->on_location(call->arg, loc);
    }
    return n;
  }
  if (call->head_len + n + 1 > call->head_cap) {
    size_t cap = call->head_cap ? call->head_cap * 2 : 1024;
    while (cap < call->head_len + n + 1) cap *= 2;
    if (cap > 1 << 20) return 0; /* a head this large is not a tus answer */
    char *h = realloc(call->head, cap);
    if (!h) return 0;
    call->head = h;
    call->head_cap = cap;
  }
  memcpy(call->head + call->head_len, line, n);
  call->head_len += n;
  call->head[call->head_len] = 0;
  return n;
}

/* libcurl calls this at least once a second. Its own low-speed limit
 * averages over a window of several seconds, so a stall would be noticed
 * only seconds late; here it is the time since the last byte moved. */
static int progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)ultotal;
  struct http_call *call = arg;
  double t = monotonic_seconds();
  if (call->on_sent && ulnow >= 0) {
    /* The socket swallows megabytes at once: what still waits in its send
     * queue has not reached the server, and counting it would make the
     * progress and rate run ahead of the network. */
    int queued = 0;
    if (call->client->sock == CURL_SOCKET_BAD || ioctl(call->client->sock, SIOCOUTQ, &queued) < 0 || queued < 0)
      queued = 0;
    call->on_sent(call->arg, ulnow > queued ? (uint64_t)(ulnow - queued) : 0);
  }
  if (call->stop && atomic_load(call->stop)) return 1;
  if (ulnow + dlnow != call->moved || call->last_move == 0) {
    call->moved = ulnow + dlnow;
    call->last_move = t;
  } else if (t - call->last_move >= call->stall_after) {
    call->stalled = 1;
    return 1;
  }
  return 0;
}

static int opened_socket(void *arg, curl_socket_t fd, curlsocktype purpose) {
  struct http_client *c = arg;
  if (purpose == CURLSOCKTYPE_IPCXN) c->sock = fd;
  return CURL_SOCKOPT_OK;
}

static int close_socket(void *arg, curl_socket_t fd) {
  struct http_client *c = arg;
  if (c->sock == fd) c->sock = CURL_SOCKET_BAD;
  return close(fd);
}

int http_call_perform(struct http_client *c, struct http_call *call) {
  CURL *h = c->curl;
  const struct client_options *o = c->opts;
  struct curl_slist *all = NULL;
  call->error[0] = 0;
  call->status = 0;
  call->body_pos = 0;
  /* The protocol's headers first, then the user's: libcurl sends them in order. */
  for (struct curl_slist *l = call->headers; l; l = l->next)
    if (http_header_add(&all, "%s", l->data) < 0) goto nomem;
  for (struct curl_slist *l = c->user_headers; l; l = l->next)
    if (http_header_add(&all, "%s", l->data) < 0) goto nomem;

  curl_easy_reset(h); /* keeps the connection cache */
  curl_easy_setopt(h, CURLOPT_URL, call->url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, all);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "resumed-upload/" CLIENT_VERSION);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, call->error);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout * 1000));
  call->stalled = 0;
  call->moved = 0;
  call->last_move = 0;
  call->stall_after = o->stall_timeout;
  call->stop = c->stop;
  call->client = c;
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L);
  curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, opened_socket);
  curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, c);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, call);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, call);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (strcmp(call->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(call->method, "GET") != 0) {
    static const struct body empty = {.fd = -1};
    if (!call->body) call->body = &empty;
    /* UPLOAD with a custom method: the body is streamed from read_body with
     * a Content-Length, whatever the method. */
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)call->body->len);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(h, CURLOPT_READDATA, call);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_body);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, call);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
  }
  call->code = curl_easy_perform(h);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(all);
  if (call->code != CURLE_OK) {
    if (call->stalled)
      snprintf(call->error, sizeof(call->error), "no byte moved for %g s", o->stall_timeout);
    else if (call->stop && atomic_load(call->stop))
      snprintf(call->error, sizeof(call->error), "interrupted");
    else if (!call->error[0]) snprintf(call->error, sizeof(call->error), "%s", curl_easy_strerror(call->code));
    return -EIO;
  }
  if (call->in_interim || call->status < 200) {
    snprintf(call->error, sizeof(call->error), "no final answer");
    call->code = CURLE_RECV_ERROR;
    return -EIO;
  }
  return 0;
nomem:
  curl_slist_free_all(all);
  call->code = CURLE_OUT_OF_MEMORY;
  snprintf(call->error, sizeof(call->error), "out of memory");
  return -ENOMEM;
}

void http_call_release(struct http_call *call) {
  free(call->head);
  free(call->interim_location);
  call->head = call->interim_location = NULL;
  call->head_len = call->head_cap = 0;
}

const char *http_call_header(const struct http_call *call, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  const char *p = call->head, *end = call->head + call->head_len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
      const char *v = p + nl + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && isspace((unsigned char)ve[-1])) ve--;
      if ((size_t)(ve - v) >= cap) return NULL;
      memcpy(out, v, (size_t)(ve - v));
      out[ve - v] = 0;
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

int http_call_number(const struct http_call *call, const char *name, uint64_t *out) {
  char v[32];
  return http_call_header(call, name, v, sizeof(v)) && parse_u64_strict(v, strlen(v), out) == 0 ? 0 : -1;
}

/* The string value of "key" in a flat JSON object; enough for RFC 9457
 * problem details, whose detail and title are plain strings. */
static int json_string(const char *json, const char *key, char *out, size_t cap) {
  char pat[32];
  snprintf(pat, sizeof(pat), "\"%s\"", key);
  const char *p = strstr(json, pat);
  if (!p) return -1;
  p += strlen(pat);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != ':') return -1;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != '"') return -1;
  size_t k = 0;
  for (; *p && *p != '"' && k + 1 < cap; p++) {
    if (*p == '\\' && p[1]) p++;
    out[k++] = *p;
  }
  out[k] = 0;
  return k ? 0 : -1;
}

void http_call_reason(const struct http_call *call, char *out, size_t cap) {
  char ctype[128] = "", text[256];
  const char *why = NULL;
  if (http_call_header(call, "content-type", ctype, sizeof(ctype)) && strstr(ctype, "json") &&
      (json_string(call->body_start, "detail", text, sizeof(text)) == 0 ||
       json_string(call->body_start, "title", text, sizeof(text)) == 0))
    why = text;
  if (!why && call->body_len && (!ctype[0] || !strstr(ctype, "html"))) {
    size_t k = strcspn(call->body_start, "\r\n");
    if (k >= sizeof(text)) k = sizeof(text) - 1;
    memcpy(text, call->body_start, k);
    text[k] = 0;
    for (size_t i = 0; i < k; i++)
      if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) text[i] = '?';
    if (k) why = text;
  }
  snprintf(out, cap, "server answered %ld%s%s%s%s", call->status, call->reason[0] ? " " : "", call->reason,
           why ? ": " : "", why ? why : "");
}
