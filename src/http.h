/* HTTP/1.1 connection layer on libuv + llhttp.
 *
 * One request at a time per connection; pipelined requests wait in the read
 * buffer until the previous response is written, so responses go out in order.
 * Request bodies are never buffered: each read's body bytes are handed to the
 * request's handler, and the connection stops reading until the handler says
 * it has consumed them (backpressure for asynchronous disk writes).
 *
 * Lifetime: a request is created when its head is parsed and handed to the
 * server's request callback, which installs a handler. The handler's
 * on_close() is the last callback for a request, after the final response is
 * written (err 0) or when the request was cut short (err < 0); after it the
 * request pointer is invalid. Handlers that keep asynchronous work in flight
 * past on_close() must not touch the request afterwards. */
#ifndef RESUMED_HTTP_H
#define RESUMED_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_request;

struct http_limits {
  uint32_t max_header_bytes;  /* request line + header fields, bytes */
  uint32_t max_headers;       /* header field count */
  uint32_t max_connections;
  uint64_t header_timeout_ms; /* deadline for a whole request head */
  uint64_t body_timeout_ms;   /* idle while a body arrives or a response drains */
  uint64_t keepalive_timeout_ms;
  uint32_t max_connections_per_ip; /* 0: no cap */
  uint64_t min_body_rate;          /* bytes/s over each MIN_RATE window; 0: none */
};

struct http_handler {
  /* Body bytes, valid until http_req_body_consumed() is called. */
  void (*on_body)(struct http_request *req, const char *data, size_t len);
  /* The whole body has arrived (and been consumed); send the response. */
  void (*on_end)(struct http_request *req);
  /* Last call for this request. err: 0 after a complete response,
   * negative errno-style when the request ended early (client went away,
   * timeout, http_req_abort()). */
  void (*on_close)(struct http_request *req, int err);
};

typedef void (*http_request_cb)(struct http_request *req, void *ctx);

/* Request log line sink; NULL disables logging. */
typedef void (*http_log_cb)(void *ctx, const char *line);

int http_server_new(struct http_server **out, uv_loop_t *loop,
                    const struct http_limits *limits, http_request_cb on_request,
                    void *ctx);
void http_server_set_log(struct http_server *srv, http_log_cb cb, void *ctx);
/* Binds and listens; *port_out receives the bound port (useful with port 0). */
int http_server_listen(struct http_server *srv, const char *host, int port,
                       int *port_out);
/* Stops accepting and aborts every open connection; handlers get on_close(). */
void http_server_shutdown(struct http_server *srv);
/* Stops accepting and closes idle connections; requests in progress go on
 * and their connections close after the response. done(arg) runs once the
 * last connection is gone (at once if there is none); http_server_shutdown()
 * ends the stragglers. */
void http_server_drain(struct http_server *srv, void (*done)(void *arg), void *arg);
/* Frees the server once every connection is closed (after the loop ran). */
void http_server_free(struct http_server *srv);
unsigned http_server_connections(const struct http_server *srv);

/* --- request, valid from the request callback until on_close() --- */
const char *http_req_method(const struct http_request *req);
const char *http_req_path(const struct http_request *req, size_t *len);
const char *http_req_query(const struct http_request *req, size_t *len);
/* First value of a header (case-insensitive name), OWS trimmed, or NULL. */
const char *http_req_header(const struct http_request *req, const char *name,
                            size_t *len);
unsigned http_req_header_count(const struct http_request *req, const char *name);
/* The first element of a comma-separated header (its first line), trimmed. */
const char *http_req_header_first(const struct http_request *req, const char *name, size_t *len);
/* A parameter (host, proto, for) of the first Forwarded element (RFC 7239),
 * unquoted, or NULL. */
const char *http_req_forwarded(const struct http_request *req, const char *param, size_t *len);
/* Whether a comma-separated header (any of its lines) lists token,
 * case-insensitively. */
int http_req_header_has_token(const struct http_request *req, const char *name, const char *token);
/* Whether Content-Type names media_type (case-insensitive, parameters ignored). */
int http_req_content_type_is(const struct http_request *req, const char *media_type);
/* Declared body length, -1 for chunked, 0 for none. */
int64_t http_req_content_length(const struct http_request *req);
uint64_t http_req_bytes_in(const struct http_request *req);
const char *http_req_peer(const struct http_request *req);

void http_req_set_handler(struct http_request *req, const struct http_handler *h,
                          void *data);
void *http_req_data(const struct http_request *req);

/* Start delivering the body (sends 100 Continue when the client waits for it).
 * Handlers that answer without reading the body need not call this. */
void http_req_read_body(struct http_request *req);
void http_req_body_consumed(struct http_request *req);
/* End the request now: the connection is closed, on_close() follows from the
 * loop with -ECONNABORTED. Safe to call for any live request. */
void http_req_abort(struct http_request *req);

/* --- responses --- */
/* fn runs in http_res_start() of this request's final response, to add
 * headers every answer carries whoever writes it (CORS). */
typedef void (*http_res_hook)(struct http_request *req, void *arg);
void http_req_set_res_hook(struct http_request *req, http_res_hook fn, void *arg);
/* Interim 1xx response, written at once. */
int http_send_interim(struct http_request *req, int status, const char *reason,
                      const char *headers);
/* Final response: start, add headers, then send (body copied) or send_file.
 * reason NULL uses the standard phrase. */
void http_res_start(struct http_request *req, int status, const char *reason);
void http_res_header(struct http_request *req, const char *name, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
void http_res_send(struct http_request *req, const char *body, size_t len);
/* Streams len bytes of fd from off, then closes fd (ownership passes). When
 * body is 0 (HEAD) only the headers go out. */
void http_res_send_file(struct http_request *req, uv_file fd, uint64_t off,
                        uint64_t len, int body);
/* Shorthand: plain-text final response with a short reason as body. */
void http_res_text(struct http_request *req, int status, const char *reason,
                   const char *text);
int http_res_started(const struct http_request *req);

const char *http_status_reason(int status);

#endif
