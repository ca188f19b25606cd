/* One HTTP exchange at a time over a reused libcurl handle: a request with an
 * optional body read straight from a file or a buffer, and the parts of the
 * answer the upload protocols look at (status, headers, a 104's Location, the
 * start of the body for error reasons). */
#ifndef RESUMED_UPLOAD_HTTP_CLIENT_H
#define RESUMED_UPLOAD_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct client_options;

/* Bytes a request sends: from fd at off when fd >= 0, else from mem. */
struct body {
  int fd;
  const unsigned char *mem;
  uint64_t off, len;
};

#define HTTP_BODY_KEEP 2048

struct http_call {
  /* request, set by the caller */
  const char *method; /* HEAD, GET, POST, PATCH or DELETE */
  const char *url;
  struct curl_slist *headers; /* owned by the caller */
  const struct body *body;    /* NULL: none */
  /* told how many body bytes have left this machine so far (handed to the
   * socket and no longer in its send queue) */
  void (*on_sent)(void *arg, uint64_t sent);
  /* told a 104's Location as soon as it arrives (IETF draft) */
  void (*on_location)(void *arg, const char *location);
  void *arg;

  /* answer, filled by http_call_perform, freed by http_call_release */
  CURLcode code; /* CURLE_OK when a final answer arrived */
  char error[CURL_ERROR_SIZE];
  long status;
  char reason[80];
  char *head;  /* the final answer's header lines, "name: value\r\n"... */
  size_t head_len, head_cap;
  char *interim_location; /* Location of a 104 (IETF draft), if any */
  char body_start[HTTP_BODY_KEEP + 1];
  size_t body_len;
  int in_interim;
  int stalled; /* ended because no byte moved for --stall-timeout */
  const _Atomic int *stop; /* the client's, copied by http_call_perform */
  const struct http_client *client; /* performing it */
  uint64_t body_pos;
  curl_off_t moved;   /* bytes up and down, for stall detection */
  double last_move;   /* monotonic seconds */
  double stall_after;
};

struct http_client {
  CURL *curl;
  const struct client_options *opts;
  struct curl_slist *user_headers;
  const _Atomic int *stop; /* when set and true, exchanges end within a second */
  /* The connection's socket, CURL_SOCKET_BAD when none. One connection per
   * handle (CURLOPT_MAXCONNECTS 1), told by libcurl's socket callbacks,
   * since CURLINFO_ACTIVESOCKET knows it only after a transfer. */
  curl_socket_t sock;
};

int http_client_init(struct http_client *c, const struct client_options *o);
void http_client_release(struct http_client *c);

/* 0 when a final answer arrived (call->status), -EIO when the exchange
 * failed (call->code and call->error say why; call->stalled when no byte
 * moved either way for --stall-timeout). Either way, release after. */
int http_call_perform(struct http_client *c, struct http_call *call);
void http_call_release(struct http_call *call);

/* The value of the final answer's header name (case-insensitive), trimmed,
 * copied into out; NULL when absent or longer than cap - 1. */
const char *http_call_header(const struct http_call *call, const char *name, char *out, size_t cap);
/* A header holding a strict decimal number: 0, or -1 when absent or not one. */
int http_call_number(const struct http_call *call, const char *name, uint64_t *out);
/* A short reason for a non-2xx answer: a problem+json "detail" or "title",
 * else the first line of the body, else the status line's reason phrase. */
void http_call_reason(const struct http_call *call, char *out, size_t cap);

/* ref resolved against base (RFC 3986 §5.2) into a malloc'd string; NULL
 * when either is not a usable URL or memory ran out. */
char *http_url_resolve(const char *base, const char *ref);

/* Appends "Name: value" to a request's header list; -ENOMEM on failure. */
int http_header_add(struct curl_slist **list, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
