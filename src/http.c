/* HTTP/1.1 connection layer: see http.h for the contract. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define READ_BUF_SIZE (1024 * 1024)
#define SMALL_HOLD 8192           /* copy held bytes below this out of a big buffer */
#define SPARE_BUFS 4              /* big read buffers kept for reuse */
#define DISCARD_MAX (256 * 1024)  /* unread body we drain to keep a connection alive */
#define LINGER_MS 2000            /* read-and-drop after an early final response */
#define FILE_CHUNK (64 * 1024)
/* Connections handing body bytes to handlers at once. The others leave their
 * bytes in the kernel until one finishes, so a slow disk with thousands of
 * clients costs kernel socket buffers, not our memory. */
#define MAX_DELIVERIES 16
/* A body must average --min-body-rate over windows this long of time the
 * client had to send (time we did not read is not held against it). */
#define MIN_RATE_WINDOW_MS 10000
#define PEER_BUCKETS 1024

/* A read buffer. Held by a connection while its bytes are still needed
 * (parsing paused, or a handler consuming body bytes from it). */
struct rbuf {
  size_t cap;
  struct rbuf *next; /* free list */
  char data[];
};

struct hdr {
  uint32_t name, name_len, value, value_len;
};

enum conn_state {
  CS_IDLE,    /* between requests, nothing of the next one seen */
  CS_HEAD,    /* receiving a request head */
  CS_HANDLER, /* head dispatched; handler has not asked for the body yet */
  CS_BODY,    /* body flowing to the handler (or being discarded) */
  CS_WAIT,    /* message fully read; waiting for the response to finish */
  CS_CLOSING
};

struct http_request {
  struct conn *conn;
  const struct http_handler *h;
  void *hdata;

  char *hbuf; /* url, then header names and values */
  uint32_t hlen, hcap;
  struct hdr *hdrs;
  uint32_t nhdrs, hdrcap;
  uint32_t url_len, path_len;
  int in_value; /* header parse: last span was a value */
  char method[24];

  int64_t content_length;
  uint64_t bytes_in;
  uint64_t start_ms;
  int status;

  unsigned expect_continue : 1, continue_sent : 1, body_wanted : 1, delivering : 1,
      msg_done : 1, res_started : 1, res_sent : 1, res_done : 1, discarding : 1,
      close_after : 1, active : 1, closed_notified : 1, end_pending : 1, file_reading : 1;
  int err; /* for on_close() after our own error response */

  char *res; /* response head being built */
  size_t res_len, res_cap;

  struct file_body *file; /* response body streamed from a file */
  http_res_hook res_hook;  /* headers every final response carries */
  void *res_hook_arg;
};

/* Only responses that stream a file pay for this. */
struct file_body {
  uv_fs_t fs;
  struct http_request *req;
  uv_file fd;
  uint64_t off, left;
  char buf[];
};

/* Open connections from one address (--max-connections-per-ip). */
struct peer_count {
  struct peer_count *next;
  uint32_t count;
  char ip[48];
};

struct conn {
  uv_tcp_t tcp; /* first member: handle pointers cast to conn */
  uv_timer_t timer;
  llhttp_t parser;
  struct http_server *srv;
  struct conn *prev, *next;
  struct conn *admit_next; /* waiting for a delivery slot */

  struct rbuf *reading; /* buffer lent to libuv for the current read */
  struct rbuf *held;    /* bytes still to parse / being consumed */
  size_t held_off, held_len;

  /* body bytes gathered during one llhttp_execute, compacted in place */
  char *body_ptr;
  size_t body_len;

  enum conn_state state;
  int pause_reason;
  int parse_error;  /* an llhttp error to answer */
  int reject_status; /* 431 etc. from our own checks */
  const char *reject_why;
  const char *exec_end;       /* end of the bytes given to llhttp_execute */
  int value_at_end;           /* last header value span ended at exec_end */
  uint64_t deadline;
  unsigned in_process : 1, kick : 1, closing : 1, tcp_closed : 1, lingering : 1,
      reading_on : 1, finalize_pending : 1, seen_bytes : 1, admit_waiting : 1;
  int close_err;
  int writes_pending;
  /* minimum body rate: window start, bytes then, time we kept reading off */
  uint64_t rate_mark_ms, rate_mark_bytes, rate_paused_ms, paused_since;
  struct peer_count *peer_count;
  char peer[64];
  struct http_request req;
};

enum { PAUSE_NONE, PAUSE_HEADERS, PAUSE_MESSAGE };

struct http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct http_limits lim;
  http_request_cb on_request;
  void *ctx;
  http_log_cb log;
  void *log_ctx;
  llhttp_settings_t settings;
  struct conn *conns;
  unsigned nconns;
  struct rbuf *spare;
  unsigned nspare;
  unsigned deliveries;
  struct conn *admit_head, *admit_tail;
  struct peer_count *peers[PEER_BUCKETS];
  void (*drained)(void *arg);
  void *drained_arg;
  uint64_t accept_warned_ms;
  int listening, shutting_down;
};

struct write_req {
  uv_write_t w;
  struct conn *conn;
  int final; /* completes the final response */
  char data[];
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c, int err);
static void conn_arm_timer(struct conn *c);
static void req_maybe_finish(struct conn *c);
static void req_log(struct conn *c, int err);
static void file_read_next(struct conn *c);
static void file_body_free(struct http_request *r);
static void conn_update_reading(struct conn *c);
static int body_too_slow(struct conn *c);

/* ---------- delivery admission ---------- */

static void admit_unlink(struct conn *c) {
  struct http_server *srv = c->srv;
  if (!c->admit_waiting) return;
  struct conn **pp = &srv->admit_head, *prev = NULL;
  while (*pp && *pp != c) prev = *pp, pp = &(*pp)->admit_next;
  if (*pp) *pp = c->admit_next;
  if (srv->admit_tail == c) srv->admit_tail = prev;
  c->admit_next = NULL;
  c->admit_waiting = 0;
}

static void set_delivering(struct conn *c, int on) {
  struct http_server *srv = c->srv;
  if (c->req.delivering == (unsigned)!!on) return;
  c->req.delivering = !!on;
  if (on) {
    srv->deliveries++;
    return;
  }
  srv->deliveries--;
  /* a slot is free: the longest waiter reads again */
  struct conn *w = srv->admit_head;
  if (w && srv->deliveries < MAX_DELIVERIES) {
    admit_unlink(w);
    conn_update_reading(w);
  }
}

/* ---------- connections per address ---------- */

static struct peer_count **peer_bucket(struct http_server *srv, const char *ip) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = ip; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  return &srv->peers[h % PEER_BUCKETS];
}

static struct peer_count *peer_acquire(struct http_server *srv, const char *ip) {
  struct peer_count **head = peer_bucket(srv, ip), *pc;
  for (pc = *head; pc; pc = pc->next)
    if (strcmp(pc->ip, ip) == 0) break;
  if (!pc) {
    if (!(pc = calloc(1, sizeof(*pc)))) return NULL;
    snprintf(pc->ip, sizeof(pc->ip), "%s", ip);
    pc->next = *head;
    *head = pc;
  }
  pc->count++;
  return pc;
}

static void peer_release(struct http_server *srv, struct peer_count *pc) {
  if (!pc || --pc->count) return;
  for (struct peer_count **pp = peer_bucket(srv, pc->ip); *pp; pp = &(*pp)->next) {
    if (*pp == pc) {
      *pp = pc->next;
      free(pc);
      return;
    }
  }
}

/* ---------- read buffers ---------- */

/* Big read buffers are mapped directly: from malloc, glibc's sliding mmap
 * threshold would soon place them in the heap, where the pages small reads
 * touched stay resident after free and fragment it. */
static struct rbuf *rbuf_get(struct http_server *srv) {
  struct rbuf *b = srv->spare;
  if (b) {
    srv->spare = b->next;
    srv->nspare--;
    return b;
  }
  void *m = mmap(NULL, sizeof(*b) + READ_BUF_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  b = m;
  b->cap = READ_BUF_SIZE;
  return b;
}

static void rbuf_free(struct rbuf *b) {
  if (b->cap == READ_BUF_SIZE) munmap(b, sizeof(*b) + READ_BUF_SIZE);
  else free(b);
}

static void rbuf_put(struct http_server *srv, struct rbuf *b) {
  if (!b) return;
  if (b->cap == READ_BUF_SIZE && srv->nspare < SPARE_BUFS) {
    b->next = srv->spare;
    srv->spare = b;
    srv->nspare++;
    return;
  }
  rbuf_free(b);
}

/* A connection about to wait with a few bytes held moves them to a small
 * buffer of its own, so thousands of slow clients never pin big buffers. */
static void conn_shrink_held(struct conn *c) {
  struct rbuf *b = c->held;
  if (!b || b->cap != READ_BUF_SIZE) return;
  char *from = c->body_len ? c->body_ptr : b->data + c->held_off;
  char *to = b->data + c->held_off + c->held_len;
  size_t n = (size_t)(to - from);
  if (n > SMALL_HOLD) return;
  struct rbuf *s = malloc(sizeof(*s) + (n ? n : 1));
  if (!s) return;
  s->cap = n ? n : 1;
  memcpy(s->data, from, n);
  if (c->body_len) c->body_ptr = s->data;
  c->held_off = (size_t)(b->data + c->held_off - from);
  c->held = s;
  rbuf_put(c->srv, b);
}

/* ---------- small helpers ---------- */

static uint64_t now_ms(struct conn *c) { return uv_now(c->srv->loop); }

const char *http_status_reason(int s) {
  switch (s) {
  case 100: return "Continue";
  case 104: return "Upload Resumption Supported";
  case 200: return "OK";
  case 201: return "Created";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 423: return "Locked";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  case 507: return "Insufficient Storage";
  default: return "Unknown";
  }
}

static int hbuf_append(struct http_request *r, const char *p, size_t n, uint32_t max) {
  if (n == 0) return 0; /* llhttp may report empty spans; hbuf may still be NULL */
  if ((uint64_t)r->hlen + n > max) return -1;
  if (r->hlen + n > r->hcap) {
    uint32_t cap = r->hcap ? r->hcap : 512;
    while (cap < r->hlen + n) cap *= 2;
    if (cap > max) cap = max;
    char *nb = realloc(r->hbuf, cap);
    if (!nb) return -1;
    r->hbuf = nb;
    r->hcap = cap;
  }
  memcpy(r->hbuf + r->hlen, p, n);
  r->hlen += (uint32_t)n;
  return 0;
}

static void req_reset(struct http_request *r) {
  struct conn *c = r->conn;
  free(r->hbuf);
  free(r->hdrs);
  free(r->res);
  file_body_free(r);
  memset(r, 0, sizeof(*r));
  r->conn = c;
}

/* ---------- writing ---------- */

static void on_write(uv_write_t *w, int status) {
  struct write_req *wr = (struct write_req *)w;
  struct conn *c = wr->conn;
  int final = wr->final;
  free(wr);
  c->writes_pending--;
  if (status < 0) {
    conn_close(c, status);
    return;
  }
  if (c->closing) {
    conn_close(c, c->close_err);
    return;
  }
  c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
  if (c->req.file && c->req.file->left) {
    file_read_next(c);
    return;
  }
  if (final) {
    c->req.res_done = 1;
    req_maybe_finish(c);
  }
}

/* Queues bytes on the socket; takes a copy. */
static int conn_write(struct conn *c, const char *p, size_t n, int final) {
  if (c->closing) return -ECONNABORTED;
  struct write_req *wr = malloc(sizeof(*wr) + n);
  if (!wr) return -ENOMEM;
  wr->conn = c;
  wr->final = final;
  memcpy(wr->data, p, n);
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
  int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc < 0) {
    free(wr);
    return rc;
  }
  c->writes_pending++;
  c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
  conn_arm_timer(c);
  return 0;
}

/* ---------- closing ---------- */

static void conn_free(uv_handle_t *h) {
  struct conn *c = h->data;
  struct http_server *srv = c->srv;
  admit_unlink(c);
  set_delivering(c, 0);
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->nconns--;
  rbuf_put(srv, c->held);
  rbuf_put(srv, c->reading);
  req_reset(&c->req);
  peer_release(srv, c->peer_count);
  free(c);
  if (srv->drained && srv->nconns == 0) {
    void (*done)(void *) = srv->drained;
    srv->drained = NULL;
    done(srv->drained_arg);
  }
}

static void conn_finalize(struct conn *c) {
  struct http_request *r = &c->req;
  if (r->active && !r->closed_notified) {
    req_log(c, c->close_err ? c->close_err : -ECONNABORTED);
    r->closed_notified = 1;
    if (r->h && r->h->on_close) r->h->on_close(r, c->close_err ? c->close_err : -ECONNABORTED);
  }
  file_body_free(r);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_free);
}

static void on_tcp_closed(uv_handle_t *h) {
  struct conn *c = (struct conn *)h;
  c->tcp_closed = 1;
  /* A handler still consuming body bytes keeps the buffer alive; finalize
   * when it is done (http_req_body_consumed). A file read in flight likewise. */
  if (c->req.delivering || c->req.file_reading) {
    c->finalize_pending = 1;
    return;
  }
  conn_finalize(c);
}

static void conn_close(struct conn *c, int err) {
  if (c->closing && c->tcp_closed) return;
  if (!c->closing) {
    c->closing = 1;
    c->close_err = err;
    c->state = CS_CLOSING;
  }
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_linger_shutdown(uv_shutdown_t *s, int status) {
  (void)status;
  free(s);
}

/* After a final response that left body bytes unread: stop sending, drop what
 * still arrives for a moment, then close, so the client reads our response
 * instead of a reset. */
static void conn_linger(struct conn *c) {
  uv_shutdown_t *s = malloc(sizeof(*s));
  if (!s || uv_shutdown(s, (uv_stream_t *)&c->tcp, on_linger_shutdown) < 0) {
    free(s);
    conn_close(c, 0);
    return;
  }
  c->lingering = 1;
  c->state = CS_CLOSING;
  rbuf_put(c->srv, c->held);
  c->held = NULL;
  c->held_len = 0;
  c->deadline = now_ms(c) + LINGER_MS;
  conn_arm_timer(c);
  conn_update_reading(c);
}

/* ---------- timers ---------- */

/* A request too slow to finish: 408 unless its answer has begun, then close
 * once written. The handler learns of it in on_close(-ETIMEDOUT). */
static void conn_timeout_response(struct conn *c) {
  static const char msg[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                            "Content-Length: 0\r\n\r\n";
  if (c->req.res_started) {
    conn_close(c, -ETIMEDOUT);
    return;
  }
  conn_write(c, msg, sizeof(msg) - 1, 0);
  c->closing = 1;
  c->close_err = -ETIMEDOUT;
  c->state = CS_CLOSING;
  conn_update_reading(c);
}

static void on_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  uint64_t now = now_ms(c);
  if (c->closing) return;
  if (now < c->deadline) {
    uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
    return;
  }
  if (c->lingering) {
    conn_close(c, 0);
    return;
  }
  switch (c->state) {
  case CS_HEAD:
    if (c->seen_bytes) conn_timeout_response(c);
    else conn_close(c, -ETIMEDOUT);
    return;
  case CS_IDLE:
    conn_close(c, 0);
    return;
  case CS_BODY:
    if (c->req.delivering || c->admit_waiting) break; /* our doing, not the client's */
    conn_close(c, -ETIMEDOUT);
    return;
  default:
    if (c->writes_pending) {
      conn_close(c, -ETIMEDOUT); /* client does not read its response */
      return;
    }
    break;
  }
  c->deadline = now + c->srv->lim.body_timeout_ms;
  uv_timer_start(&c->timer, on_timer, c->srv->lim.body_timeout_ms, 0);
}

/* Deadlines move often (every read); the timer is re-armed lazily when it fires. */
static void conn_arm_timer(struct conn *c) {
  if (c->closing && !c->lingering) return;
  if (uv_is_active((uv_handle_t *)&c->timer)) {
    uint64_t due = uv_timer_get_due_in(&c->timer) + now_ms(c);
    if (due <= c->deadline) return;
  }
  uint64_t now = now_ms(c);
  uv_timer_start(&c->timer, on_timer, c->deadline > now ? c->deadline - now : 0, 0);
}

/* ---------- reading ---------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct conn *c = (struct conn *)h;
  if (!c->reading) c->reading = rbuf_get(c->srv);
  if (!c->reading) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->reading->data, (unsigned)c->reading->cap);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = (struct conn *)s;
  (void)buf;
  if (nread == 0) return;
  if (nread < 0) {
    if (c->lingering) {
      conn_close(c, 0);
      return;
    }
    int err = nread == UV_EOF ? -ECONNRESET : (int)nread;
    /* EOF between requests is a normal end of a keep-alive connection. */
    if (c->state == CS_IDLE || (c->state == CS_WAIT && !c->req.active)) err = 0;
    if (c->state == CS_WAIT || (c->state == CS_HANDLER && c->req.content_length == 0)) {
      /* The request was read in full; let its response finish, then close. */
      c->req.close_after = 1;
      uv_read_stop(s);
      c->reading_on = 0;
      if (c->state == CS_WAIT && c->req.res_done) req_maybe_finish(c);
      return;
    }
    conn_close(c, err);
    return;
  }
  if (c->lingering) {
    c->reading = (rbuf_put(c->srv, c->reading), NULL);
    return;
  }
  c->held = c->reading;
  c->reading = NULL;
  c->held_off = 0;
  c->held_len = (size_t)nread;
  if (c->state == CS_IDLE) {
    c->state = CS_HEAD;
    c->deadline = now_ms(c) + c->srv->lim.header_timeout_ms;
    conn_arm_timer(c);
  } else if (c->state == CS_BODY) {
    c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
    if (body_too_slow(c)) {
      conn_timeout_response(c);
      return;
    }
  }
  c->seen_bytes = 1;
  conn_process(c);
}

static void conn_update_reading(struct conn *c) {
  int want = !c->closing || c->lingering;
  if (want && !c->lingering) {
    if (c->held_len) want = 0; /* bytes still to parse */
    if (c->req.delivering) want = 0;
    if (c->state == CS_HANDLER || c->state == CS_WAIT) want = 0;
    if (want && c->state == CS_BODY && !c->req.discarding &&
        c->srv->deliveries >= MAX_DELIVERIES) {
      want = 0;
      if (!c->admit_waiting) {
        c->admit_waiting = 1;
        if (c->srv->admit_tail) c->srv->admit_tail->admit_next = c;
        else c->srv->admit_head = c;
        c->srv->admit_tail = c;
      }
    }
  }
  if (want && !c->reading_on) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading_on = 1;
    if (c->paused_since) {
      c->rate_paused_ms += now_ms(c) - c->paused_since;
      c->paused_since = 0;
    }
  } else if (!want && c->reading_on) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading_on = 0;
    if (c->state == CS_BODY) c->paused_since = now_ms(c);
  }
}

/* A body slower than --min-body-rate over a window of the client's time
 * (a 1 byte/s dribble never trips the idle timeout, yet holds a slot). */
static int body_too_slow(struct conn *c) {
  uint64_t min = c->srv->lim.min_body_rate, now = now_ms(c);
  if (!min || c->state != CS_BODY || c->req.discarding) return 0;
  uint64_t span = now - c->rate_mark_ms;
  span = span > c->rate_paused_ms ? span - c->rate_paused_ms : 0;
  if (span < MIN_RATE_WINDOW_MS) return 0;
  if ((c->req.bytes_in - c->rate_mark_bytes) * 1000 < min * span) return 1;
  c->rate_mark_ms = now;
  c->rate_mark_bytes = c->req.bytes_in;
  c->rate_paused_ms = 0;
  return 0;
}

/* ---------- parser callbacks ---------- */

static int reject(struct conn *c, int status, const char *why) {
  c->reject_status = status;
  c->reject_why = why; /* llhttp replaces reasons set in some callbacks */
  return HPE_USER;
}

static int cb_message_begin(llhttp_t *p) {
  struct conn *c = p->data;
  struct http_request *r = &c->req;
  r->active = 1;
  r->start_ms = now_ms(c);
  if (c->state == CS_IDLE) {
    c->state = CS_HEAD;
    c->deadline = now_ms(c) + c->srv->lim.header_timeout_ms;
    conn_arm_timer(c);
  }
  return 0;
}

static int cb_url(llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  if (hbuf_append(&c->req, at, n, c->srv->lim.max_header_bytes) < 0)
    return reject(c, 431, "request head too large");
  c->req.url_len += (uint32_t)n;
  return 0;
}

static int cb_header_field(llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  struct http_request *r = &c->req;
  if (r->nhdrs == 0 || r->in_value) {
    if (r->nhdrs >= c->srv->lim.max_headers) return reject(c, 431, "too many header fields");
    if (r->nhdrs == r->hdrcap) {
      uint32_t cap = r->hdrcap ? r->hdrcap * 2 : 16;
      struct hdr *nh = realloc(r->hdrs, cap * sizeof(*nh));
      if (!nh) return reject(c, 503, "out of memory");
      r->hdrs = nh;
      r->hdrcap = cap;
    }
    struct hdr *h = &r->hdrs[r->nhdrs++];
    h->name = h->value = r->hlen;
    h->name_len = h->value_len = 0;
    r->in_value = 0;
  }
  if (hbuf_append(r, at, n, c->srv->lim.max_header_bytes) < 0)
    return reject(c, 431, "request head too large");
  r->hdrs[r->nhdrs - 1].name_len += (uint32_t)n;
  return 0;
}

static int cb_header_value(llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  struct http_request *r = &c->req;
  struct hdr *h = &r->hdrs[r->nhdrs - 1];
  if (!r->in_value) {
    r->in_value = 1;
    h->value = r->hlen;
  } else if (!c->value_at_end) {
    /* A value continued within one buffer means llhttp skipped a CRLF:
     * obs-fold (RFC 9112 §5.2), which we refuse rather than rewrite. */
    return reject(c, 400, "obsolete line folding");
  }
  c->value_at_end = at + n == c->exec_end;
  if (hbuf_append(r, at, n, c->srv->lim.max_header_bytes) < 0)
    return reject(c, 431, "request head too large");
  h->value_len += (uint32_t)n;
  return 0;
}

static int cb_headers_complete(llhttp_t *p) {
  struct conn *c = p->data;
  struct http_request *r = &c->req;
  const char *v;
  size_t vlen;

  snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name(p->method));
  r->path_len = r->url_len;
  for (uint32_t i = 0; i < r->url_len; i++)
    if (r->hbuf[i] == '?') {
      r->path_len = i;
      break;
    }
  if (http_req_header_count(r, "host") > 1) return reject(c, 400, "duplicate Host");
  /* llhttp accepts any coding list ending in chunked; we decode only chunked,
   * and an unknown coding means we cannot find the body's end (RFC 9112 §6.1). */
  if ((v = http_req_header(r, "transfer-encoding", &vlen)) != NULL) {
    if (http_req_header_count(r, "transfer-encoding") != 1 || vlen != 7 ||
        strncasecmp(v, "chunked", 7) != 0)
      return reject(c, 400, "unsupported Transfer-Encoding");
  }
  if (p->flags & F_CHUNKED) r->content_length = -1;
  else if (p->flags & F_CONTENT_LENGTH) r->content_length = (int64_t)p->content_length;
  else r->content_length = 0;
  if ((v = http_req_header(r, "expect", &vlen)) != NULL) {
    if (vlen != 12 || strncasecmp(v, "100-continue", 12) != 0)
      return reject(c, 417, "unsupported expectation");
    if (p->http_major == 1 && p->http_minor >= 1) r->expect_continue = 1;
  }
  if (!llhttp_should_keep_alive(p)) r->close_after = 1;
  /* The head stays readable for the whole request: keep only what it uses. */
  if (r->hcap > r->hlen + 64) {
    char *nb = realloc(r->hbuf, r->hlen ? r->hlen : 1);
    if (nb) r->hbuf = nb, r->hcap = r->hlen ? r->hlen : 1;
  }
  if (r->hdrcap > r->nhdrs + 2) {
    struct hdr *nh = realloc(r->hdrs, (r->nhdrs ? r->nhdrs : 1) * sizeof(*nh));
    if (nh) r->hdrs = nh, r->hdrcap = r->nhdrs ? r->nhdrs : 1;
  }
  c->pause_reason = PAUSE_HEADERS;
  return HPE_PAUSED;
}

static int cb_body(llhttp_t *p, const char *at, size_t n) {
  struct conn *c = p->data;
  struct http_request *r = &c->req;
  r->bytes_in += n;
  if (r->discarding) return 0;
  /* Gather this read's body into one contiguous span: chunk framing between
   * spans was already parsed, so moving data back over it is safe. */
  if (c->body_len == 0) {
    c->body_ptr = (char *)at;
  } else if (c->body_ptr + c->body_len != at) {
    memmove(c->body_ptr + c->body_len, at, n);
  }
  c->body_len += n;
  return 0;
}

static int cb_message_complete(llhttp_t *p) {
  struct conn *c = p->data;
  c->req.msg_done = 1;
  c->pause_reason = PAUSE_MESSAGE;
  return HPE_PAUSED;
}

/* ---------- request processing ---------- */

static void conn_error_response(struct conn *c, int status, const char *why) {
  struct http_request *r = &c->req;
  r->close_after = 1;
  if (r->res_sent) {
    conn_close(c, -EPROTO);
    return;
  }
  if (!r->active) {
    r->active = 1;
    r->start_ms = now_ms(c);
  }
  if (!r->method[0] && c->parser.method) /* error before the head completed */
    snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name(c->parser.method));
  if (!r->path_len) r->path_len = r->url_len;
  r->closed_notified = r->h == NULL; /* nobody to tell */
  r->err = -EPROTO;
  c->state = CS_WAIT;
  http_res_text(r, status, NULL, why);
}

static void conn_parse_error(struct conn *c, llhttp_errno_t e) {
  int status = 400;
  const char *why = llhttp_get_error_reason(&c->parser);
  /* Our own refusal: llhttp reports it as HPE_USER, or as
   * HPE_CB_HEADERS_COMPLETE when it came from on_headers_complete. */
  if (c->reject_status) {
    status = c->reject_status;
    why = c->reject_why;
  }
  if (!why || !*why) why = llhttp_errno_name(e);
  c->held_len = 0;
  conn_error_response(c, status, why);
}

static void conn_dispatch(struct conn *c) {
  struct http_request *r = &c->req;
  c->state = CS_HANDLER;
  c->srv->on_request(r, c->srv->ctx);
  if (!r->h && !r->res_sent) http_res_text(r, 500, NULL, "no handler");
}

static void conn_process(struct conn *c) {
  if (c->in_process) {
    c->kick = 1;
    return;
  }
  c->in_process = 1;
  do {
    c->kick = 0;
    while (!c->closing) {
      struct http_request *r = &c->req;
      if (r->delivering) break;
      if (r->end_pending) {
        r->end_pending = 0;
        c->state = CS_WAIT;
        if (r->res_sent) req_maybe_finish(c);
        else if (r->h && r->h->on_end) r->h->on_end(r);
        continue;
      }
      if (c->state == CS_HANDLER || c->state == CS_WAIT) break;
      /* A bodyless message completes on a zero-length execute. */
      int zero_step = c->state == CS_BODY && !r->msg_done && r->content_length == 0;
      if ((!c->held_len && !zero_step) || c->lingering) break;

      const char *start = c->held ? c->held->data + c->held_off : "";
      c->body_len = 0;
      c->pause_reason = PAUSE_NONE;
      c->exec_end = start + c->held_len;
      llhttp_errno_t e = llhttp_execute(&c->parser, start, c->held_len);
      size_t used = c->held_len;
      if (e == HPE_PAUSED) {
        used = (size_t)(llhttp_get_error_pos(&c->parser) - start);
        llhttp_resume(&c->parser);
      } else if (e != HPE_OK) {
        conn_parse_error(c, e);
        break;
      }
      c->held_off += used;
      c->held_len -= used;

      if (c->pause_reason == PAUSE_MESSAGE) r->end_pending = 1;
      if (c->body_len && r->h && r->h->on_body && !r->res_sent && !r->discarding) {
        /* A small body may wait long for a busy disk: keep it out of the
         * big buffer so thousands of slow clients never pin big buffers. */
        conn_shrink_held(c);
        set_delivering(c, 1);
        c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
        r->h->on_body(r, c->body_ptr, c->body_len);
        continue;
      }
      if (c->pause_reason == PAUSE_HEADERS) {
        if (c->reject_status) {
          conn_error_response(c, c->reject_status, c->reject_why);
          break;
        }
        conn_dispatch(c);
      }
    }
  } while (c->kick && !c->closing);
  c->in_process = 0;
  if (c->closing) return;
  if (!c->req.delivering) {
    c->body_len = 0;
    if (!c->held_len) {
      rbuf_put(c->srv, c->held);
      c->held = NULL;
    } else {
      conn_shrink_held(c);
    }
  }
  conn_update_reading(c);
}

/* One line per request; a request cut short logs "-" for the status and why. */
static void req_log(struct conn *c, int err) {
  struct http_server *srv = c->srv;
  struct http_request *r = &c->req;
  if (!srv->log || !r->active) return;
  char path[256];
  size_t n = r->path_len < sizeof(path) - 1 ? r->path_len : sizeof(path) - 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)r->hbuf[i];
    path[i] = (ch < 0x21 || ch > 0x7e || ch == '"') ? '?' : (char)ch;
  }
  path[n] = 0;
  char line[512], status[48];
  if (err == 0 && r->status) snprintf(status, sizeof(status), "%d", r->status);
  else snprintf(status, sizeof(status), "- (%s)", err == -ETIMEDOUT ? "timeout" : err == -ECONNABORTED ? "ended by server" : err == -ECANCELED ? "shutdown" : "client went away");
  snprintf(line, sizeof(line), "%s \"%s %s\" %s %" PRIu64 " %.1fms", c->peer,
           r->method[0] ? r->method : "-", n ? path : "-", status, r->bytes_in,
           (double)(now_ms(c) - r->start_ms));
  srv->log(srv->log_ctx, line);
}

static void req_maybe_finish(struct conn *c) {
  struct http_request *r = &c->req;
  if (c->closing || !r->res_done) return;
  if (!r->msg_done && !r->close_after) return; /* still draining the body */
  req_log(c, 0);
  if (!r->closed_notified) {
    r->closed_notified = 1;
    if (r->h && r->h->on_close) r->h->on_close(r, r->err);
  }
  int keep = !r->close_after && r->msg_done && !c->srv->shutting_down;
  if (!keep) {
    if (!r->msg_done && r->active) conn_linger(c);
    else conn_close(c, 0);
    return;
  }
  req_reset(r);
  llhttp_resume(&c->parser);
  c->state = CS_IDLE;
  c->seen_bytes = 0;
  c->deadline = now_ms(c) + c->srv->lim.keepalive_timeout_ms;
  conn_arm_timer(c);
  conn_process(c);
}

/* ---------- request API ---------- */

const char *http_req_method(const struct http_request *r) { return r->method; }

const char *http_req_path(const struct http_request *r, size_t *len) {
  *len = r->path_len;
  return r->hbuf ? r->hbuf : "";
}

const char *http_req_query(const struct http_request *r, size_t *len) {
  if (r->path_len >= r->url_len) {
    *len = 0;
    return NULL;
  }
  *len = r->url_len - r->path_len - 1;
  return r->hbuf + r->path_len + 1;
}

static const struct hdr *find_hdr(const struct http_request *r, const char *name,
                                  const struct hdr *after) {
  size_t nl = strlen(name);
  uint32_t i = after ? (uint32_t)(after - r->hdrs) + 1 : 0;
  for (; i < r->nhdrs; i++) {
    const struct hdr *h = &r->hdrs[i];
    if (h->name_len == nl && strncasecmp(r->hbuf + h->name, name, nl) == 0) return h;
  }
  return NULL;
}

const char *http_req_header(const struct http_request *r, const char *name, size_t *len) {
  const struct hdr *h = find_hdr(r, name, NULL);
  if (!h) return NULL;
  const char *v = r->hbuf + h->value;
  size_t n = h->value_len;
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (len) *len = n;
  return v;
}

unsigned http_req_header_count(const struct http_request *r, const char *name) {
  unsigned n = 0;
  for (const struct hdr *h = find_hdr(r, name, NULL); h; h = find_hdr(r, name, h)) n++;
  return n;
}

const char *http_req_header_first(const struct http_request *req, const char *name, size_t *n) {
  const char *v = http_req_header(req, name, n);
  if (!v) return NULL;
  const char *comma = memchr(v, ',', *n);
  size_t m = comma ? (size_t)(comma - v) : *n;
  while (m && (v[m - 1] == ' ' || v[m - 1] == '\t')) m--;
  *n = m;
  return v;
}

const char *http_req_forwarded(const struct http_request *req, const char *param, size_t *n) {
  size_t len;
  const char *v = http_req_header_first(req, "forwarded", &len);
  size_t plen = strlen(param);
  while (v && len) {
    const char *semi = memchr(v, ';', len);
    size_t m = semi ? (size_t)(semi - v) : len;
    size_t a = 0;
    while (a < m && (v[a] == ' ' || v[a] == '\t')) a++;
    if (m - a > plen && v[a + plen] == '=' && strncasecmp(v + a, param, plen) == 0) {
      const char *val = v + a + plen + 1;
      size_t vl = m - a - plen - 1;
      while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t')) vl--;
      if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') val++, vl -= 2;
      *n = vl;
      return val;
    }
    if (!semi) break;
    v += m + 1;
    len -= m + 1;
  }
  return NULL;
}

int http_req_header_has_token(const struct http_request *r, const char *name, const char *token) {
  size_t tl = strlen(token);
  for (const struct hdr *h = find_hdr(r, name, NULL); h; h = find_hdr(r, name, h)) {
    const char *v = r->hbuf + h->value, *end = v + h->value_len;
    while (v < end) {
      const char *comma = memchr(v, ',', (size_t)(end - v));
      const char *e = comma ? comma : end;
      while (v < e && (*v == ' ' || *v == '\t')) v++;
      const char *b = e;
      while (b > v && (b[-1] == ' ' || b[-1] == '\t')) b--;
      if ((size_t)(b - v) == tl && strncasecmp(v, token, tl) == 0) return 1;
      v = e + (comma ? 1 : 0);
    }
  }
  return 0;
}

int http_req_content_type_is(const struct http_request *r, const char *media_type) {
  size_t n;
  const char *v = http_req_header(r, "content-type", &n);
  if (!v) return 0;
  const char *semi = memchr(v, ';', n); /* parameters are allowed and ignored */
  size_t m = semi ? (size_t)(semi - v) : n;
  while (m && (v[m - 1] == ' ' || v[m - 1] == '\t')) m--;
  return m == strlen(media_type) && strncasecmp(v, media_type, m) == 0;
}

int64_t http_req_content_length(const struct http_request *r) { return r->content_length; }
uint64_t http_req_bytes_in(const struct http_request *r) { return r->bytes_in; }
const char *http_req_peer(const struct http_request *r) { return r->conn->peer; }

void http_req_set_handler(struct http_request *r, const struct http_handler *h, void *data) {
  r->h = h;
  r->hdata = data;
}

void *http_req_data(const struct http_request *r) { return r->hdata; }

void http_req_read_body(struct http_request *r) {
  struct conn *c = r->conn;
  if (c->closing || c->state != CS_HANDLER || r->res_sent) return;
  r->body_wanted = 1;
  if (r->expect_continue && !r->continue_sent) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    r->continue_sent = 1;
    conn_write(c, cont, sizeof(cont) - 1, 0);
  }
  c->state = CS_BODY;
  c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
  c->rate_mark_ms = now_ms(c);
  c->rate_mark_bytes = r->bytes_in;
  c->rate_paused_ms = 0;
  c->paused_since = c->reading_on ? 0 : c->rate_mark_ms;
  conn_arm_timer(c);
  conn_process(c);
}

static void on_finalize_timer(uv_timer_t *t) { conn_finalize(t->data); }

/* The handler is done with the body bytes it was given. Returns 1 when the
 * connection is gone and its teardown was scheduled. */
static int req_release_body(struct http_request *r) {
  struct conn *c = r->conn;
  if (!r->delivering) return 0;
  set_delivering(c, 0);
  if (!c->finalize_pending) return 0;
  /* Connection already gone: finish tearing it down from the loop, not from
   * inside the handler's callback. */
  uv_timer_start(&c->timer, on_finalize_timer, 0, 0);
  return 1;
}

void http_req_body_consumed(struct http_request *r) {
  struct conn *c = r->conn;
  if (!r->delivering) return;
  if (req_release_body(r) || c->closing) return;
  c->deadline = now_ms(c) + c->srv->lim.body_timeout_ms;
  conn_process(c);
}

void http_req_abort(struct http_request *r) { conn_close(r->conn, -ECONNABORTED); }

/* ---------- responses ---------- */

static int res_append(struct http_request *r, const char *p, size_t n) {
  if (r->res_len + n > r->res_cap) {
    size_t cap = r->res_cap ? r->res_cap : 512;
    while (cap < r->res_len + n) cap *= 2;
    char *nb = realloc(r->res, cap);
    if (!nb) return -ENOMEM;
    r->res = nb;
    r->res_cap = cap;
  }
  memcpy(r->res + r->res_len, p, n);
  r->res_len += n;
  return 0;
}

static void res_appendf(struct http_request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void res_appendf(struct http_request *r, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof(tmp)) n = sizeof(tmp) - 1;
  res_append(r, tmp, (size_t)n);
}

int http_send_interim(struct http_request *r, int status, const char *reason,
                      const char *headers) {
  struct conn *c = r->conn;
  if (r->res_sent || c->closing) return -EINVAL;
  char buf[1024];
  int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\n%s\r\n", status,
                   reason ? reason : http_status_reason(status), headers ? headers : "");
  if (n < 0 || (size_t)n >= sizeof(buf)) return -E2BIG;
  return conn_write(c, buf, (size_t)n, 0);
}

void http_res_start(struct http_request *r, int status, const char *reason) {
  if (r->res_started) return;
  r->res_started = 1;
  r->status = status;
  r->res_len = 0;
  res_appendf(r, "HTTP/1.1 %d %s\r\n", status, reason ? reason : http_status_reason(status));
  if (r->res_hook) r->res_hook(r, r->res_hook_arg);
}

void http_req_set_res_hook(struct http_request *r, http_res_hook fn, void *arg) {
  r->res_hook = fn;
  r->res_hook_arg = arg;
}

void http_res_header(struct http_request *r, const char *name, const char *fmt, ...) {
  if (!r->res_started || r->res_sent) return;
  char small[1024], *val = small;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof(small)) { /* long values (metadata, concatenation lists) */
    if (!(val = malloc((size_t)n + 1))) return;
    va_start(ap, fmt);
    vsnprintf(val, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  res_append(r, name, strlen(name));
  res_append(r, ": ", 2);
  res_append(r, val, (size_t)n);
  res_append(r, "\r\n", 2);
  if (val != small) free(val);
}

int http_res_started(const struct http_request *r) { return r->res_started; }

/* Decides what happens to an unread body when the final response goes out
 * before it: drain a small one to keep the connection, else close. */
static void res_settle_connection(struct http_request *r) {
  struct conn *c = r->conn;
  if (r->msg_done) return;
  int body_pending = r->content_length != 0;
  if (c->state == CS_HANDLER && !body_pending) {
    c->state = CS_BODY; /* let the parser reach the end of a bodyless message */
    return;
  }
  if (r->expect_continue && !r->continue_sent) {
    r->close_after = 1; /* the client waits for us and sends nothing */
    return;
  }
  if (r->content_length > 0 &&
      (uint64_t)r->content_length - r->bytes_in <= DISCARD_MAX && !r->close_after) {
    r->discarding = 1;
    c->state = CS_BODY;
    return;
  }
  r->close_after = 1;
}

static int res_finish_head(struct http_request *r, uint64_t content_length, int has_length) {
  struct conn *c = r->conn;
  res_settle_connection(r);
  if (c->srv->shutting_down) r->close_after = 1;
  if (has_length) res_appendf(r, "Content-Length: %" PRIu64 "\r\n", content_length);
  if (r->close_after) res_append(r, "Connection: close\r\n", 19);
  return res_append(r, "\r\n", 2);
}

void http_res_send(struct http_request *r, const char *body, size_t len) {
  struct conn *c = r->conn;
  /* A response ends the handler's use of body bytes, even on a connection
   * that is already going away. */
  if (req_release_body(r) || r->res_sent || c->closing) return;
  if (!r->res_started) http_res_start(r, 200, NULL);
  int no_body = r->status == 204 || r->status == 304 || r->status < 200;
  res_finish_head(r, len, !no_body);
  if (!no_body && strcmp(r->method, "HEAD") != 0 && len) res_append(r, body, len);
  r->res_sent = 1;
  if (conn_write(c, r->res, r->res_len, 1) < 0) conn_close(c, -EIO);
  conn_process(c);
}

void http_res_text(struct http_request *r, int status, const char *reason, const char *text) {
  size_t n = text ? strlen(text) : 0;
  http_res_start(r, status, reason);
  if (n) {
    http_res_header(r, "Content-Type", "text/plain; charset=utf-8");
    char *t = malloc(n + 1);
    if (t) {
      memcpy(t, text, n);
      t[n] = '\n';
      http_res_send(r, t, n + 1);
      free(t);
      return;
    }
  }
  http_res_send(r, text, n);
}

static void file_body_free(struct http_request *r) {
  struct file_body *f = r->file;
  if (!f) return;
  if (f->fd >= 0) {
    uv_fs_t cl;
    uv_fs_close(NULL, &cl, f->fd, NULL);
    uv_fs_req_cleanup(&cl);
  }
  free(f);
  r->file = NULL;
}

static void on_file_read(uv_fs_t *fs) {
  struct file_body *f = (struct file_body *)fs;
  struct http_request *r = f->req;
  struct conn *c = r->conn;
  ssize_t n = fs->result;
  uv_fs_req_cleanup(fs);
  r->file_reading = 0;
  if (c->finalize_pending) {
    conn_finalize(c);
    return;
  }
  if (c->closing) return;
  if (n <= 0) {
    conn_close(c, n < 0 ? (int)n : -EIO);
    return;
  }
  if ((uint64_t)n > f->left) n = (ssize_t)f->left;
  f->off += (uint64_t)n;
  f->left -= (uint64_t)n;
  if (conn_write(c, f->buf, (size_t)n, f->left == 0) < 0) conn_close(c, -EIO);
}

static void file_read_next(struct conn *c) {
  struct file_body *f = c->req.file;
  size_t want = f->left < FILE_CHUNK ? (size_t)f->left : FILE_CHUNK;
  uv_buf_t b = uv_buf_init(f->buf, (unsigned)want);
  if (uv_fs_read(c->srv->loop, &f->fs, f->fd, &b, 1, (int64_t)f->off, on_file_read) < 0) {
    conn_close(c, -EIO);
    return;
  }
  c->req.file_reading = 1;
}

void http_res_send_file(struct http_request *r, uv_file fd, uint64_t off, uint64_t len,
                        int body) {
  struct conn *c = r->conn;
  uv_fs_t cl;
  if (req_release_body(r) || r->res_sent || c->closing) goto close_fd;
  if (!r->res_started) http_res_start(r, 200, NULL);
  res_finish_head(r, len, 1);
  r->res_sent = 1;
  if (!body || len == 0) {
    if (conn_write(c, r->res, r->res_len, 1) < 0) conn_close(c, -EIO);
    goto close_fd;
  }
  struct file_body *f = malloc(sizeof(*f) + FILE_CHUNK);
  if (!f) {
    conn_close(c, -ENOMEM);
    goto close_fd;
  }
  f->req = r;
  f->fd = fd;
  f->off = off;
  f->left = len;
  r->file = f;
  if (conn_write(c, r->res, r->res_len, 0) < 0) conn_close(c, -EIO);
  conn_process(c);
  return;
close_fd:
  uv_fs_close(NULL, &cl, fd, NULL);
  uv_fs_req_cleanup(&cl);
}

/* ---------- server ---------- */

/* Answers a connection we will not serve and closes it once written. */
static void conn_refuse(struct conn *c, const char *why) {
  char msg[256];
  int n = snprintf(msg, sizeof(msg),
                   "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                   "Content-Length: %zu\r\nRetry-After: 1\r\n\r\n%s\n",
                   strlen(why) + 1, why);
  conn_write(c, msg, (size_t)n, 0);
  c->closing = 1;
  c->state = CS_CLOSING;
}

static void on_connection(uv_stream_t *l, int status) {
  struct http_server *srv = l->data;
  if (status < 0) {
    /* Out of descriptors (libuv already shed the pending connections) or a
     * transient error: keep serving the connections we have. */
    uint64_t now = uv_now(srv->loop);
    if (srv->log && now - srv->accept_warned_ms >= 1000) {
      char line[128];
      snprintf(line, sizeof(line), "accept failed: %s", uv_strerror(status));
      srv->log(srv->log_ctx, line);
      srv->accept_warned_ms = now;
    }
    return;
  }
  struct conn *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  uv_timer_init(srv->loop, &c->timer);
  c->timer.data = c;
  llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
  c->parser.data = c;
  c->req.conn = c;
  uv_tcp_nodelay(&c->tcp, 1);

  struct sockaddr_storage ss;
  int sl = sizeof(ss);
  char ip[48] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);

  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  c->peer_count = peer_acquire(srv, ip);

  /* The first request must arrive within the head deadline (slowloris). */
  c->state = CS_HEAD;
  c->deadline = now_ms(c) + srv->lim.header_timeout_ms;
  conn_arm_timer(c);
  if (srv->nconns > srv->lim.max_connections || srv->shutting_down || !c->peer_count) {
    conn_refuse(c, "too many connections");
    return;
  }
  /* One address cannot take every connection slot from the others. */
  if (srv->lim.max_connections_per_ip && c->peer_count->count > srv->lim.max_connections_per_ip) {
    conn_refuse(c, "too many connections from this address");
    return;
  }
  conn_update_reading(c);
}

int http_server_new(struct http_server **out, uv_loop_t *loop, const struct http_limits *lim,
                    http_request_cb on_request, void *ctx) {
  struct http_server *srv = calloc(1, sizeof(*srv));
  if (!srv) return -ENOMEM;
  srv->loop = loop;
  srv->lim = *lim;
  srv->on_request = on_request;
  srv->ctx = ctx;
  llhttp_settings_init(&srv->settings);
  srv->settings.on_message_begin = cb_message_begin;
  srv->settings.on_url = cb_url;
  srv->settings.on_header_field = cb_header_field;
  srv->settings.on_header_value = cb_header_value;
  srv->settings.on_headers_complete = cb_headers_complete;
  srv->settings.on_body = cb_body;
  srv->settings.on_message_complete = cb_message_complete;
  *out = srv;
  return 0;
}

void http_server_set_log(struct http_server *srv, http_log_cb cb, void *ctx) {
  srv->log = cb;
  srv->log_ctx = ctx;
}

int http_server_listen(struct http_server *srv, const char *host, int port, int *port_out) {
  struct sockaddr_storage ss;
  int rc;
  if (strchr(host, ':')) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc < 0) return rc;
  if ((rc = uv_tcp_init(srv->loop, &srv->listener)) < 0) return rc;
  srv->listener.data = srv;
  srv->listening = 1;
  if ((rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) < 0) return rc;
  if ((rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection)) < 0) return rc;
  int sl = sizeof(ss);
  if ((rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &sl)) < 0) return rc;
  *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

/* Whether the client sent bytes we have not read yet: a request that arrived
 * just before a shutdown is served, not cut. */
static int conn_bytes_waiting(struct conn *c) {
  uv_os_fd_t fd;
  int n = 0;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0) return 0;
  return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void stop_listening(struct http_server *srv) {
  srv->shutting_down = 1;
  if (srv->listening && !uv_is_closing((uv_handle_t *)&srv->listener))
    uv_close((uv_handle_t *)&srv->listener, NULL);
}

void http_server_shutdown(struct http_server *srv) {
  stop_listening(srv);
  for (struct conn *c = srv->conns; c; c = c->next) conn_close(c, -ECANCELED);
}

void http_server_drain(struct http_server *srv, void (*done)(void *arg), void *arg) {
  stop_listening(srv);
  srv->drained = done;
  srv->drained_arg = arg;
  /* Connections with nothing of a request yet go now; the others close
   * after their response (shutting_down makes every response the last). */
  for (struct conn *c = srv->conns; c; c = c->next)
    if ((c->state == CS_IDLE || (c->state == CS_HEAD && !c->seen_bytes) ||
         (c->state == CS_WAIT && !c->req.active)) &&
        !conn_bytes_waiting(c))
      conn_close(c, 0);
  if (srv->nconns == 0 && srv->drained) {
    srv->drained = NULL;
    done(arg);
  }
}

void http_server_free(struct http_server *srv) {
  while (srv->spare) {
    struct rbuf *b = srv->spare;
    srv->spare = b->next;
    rbuf_free(b);
  }
  free(srv);
}

unsigned http_server_connections(const struct http_server *srv) { return srv->nconns; }
