/* The connection layer in-process: a test handler on a real loop, a client
 * thread on a blocking socket. Covers what no protocol of issue 2 uses yet:
 * interim 1xx responses, and ending another connection's request at once. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "unit.h"

static uv_loop_t *loop;
static struct http_server *srv;
static int port;
static struct http_request *_Atomic held_req; /* a request left open by the handler */
static _Atomic int held_closed_err = 1;
static uv_async_t stop_async;

static void on_close_held(struct http_request *req, int err) {
  (void)req;
  held_closed_err = err;
  held_req = NULL;
}
static void on_body_drop(struct http_request *req, const char *d, size_t n) {
  (void)d, (void)n;
  http_req_body_consumed(req);
}
static const struct http_handler hold_handler = {on_body_drop, NULL, on_close_held};

static void on_request(struct http_request *req, void *ctx) {
  (void)ctx;
  size_t n;
  const char *path = http_req_path(req, &n);
  if (n == 8 && memcmp(path, "/interim", 8) == 0) {
    CHECK(http_send_interim(req, 104, NULL, "Upload-Offset: 7\r\n") == 0);
    http_res_start(req, 204, NULL);
    http_res_header(req, "Upload-Offset", "%d", 7);
    http_res_send(req, NULL, 0);
  } else if (n == 5 && memcmp(path, "/hold", 5) == 0) {
    /* reads the body forever: only an abort ends it */
    http_req_set_handler(req, &hold_handler, NULL);
    held_req = req;
    http_req_read_body(req);
  } else if (n == 6 && memcmp(path, "/abort", 6) == 0) {
    int had = held_req != NULL;
    if (held_req) http_req_abort(held_req);
    http_res_text(req, 200, NULL, had ? "aborted" : "none");
  } else {
    http_res_text(req, 404, NULL, "no");
  }
}

static void on_stop(uv_async_t *a) {
  http_server_shutdown(srv);
  uv_close((uv_handle_t *)a, NULL);
}

static void *server_thread(void *arg) {
  (void)arg;
  uv_run(loop, UV_RUN_DEFAULT);
  return NULL;
}

static int client(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  return fd;
}

static void send_all(int fd, const char *s) { CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s)); }

/* Reads until the buffer holds `want` or the peer closes; returns bytes. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want) {
  size_t got = 0;
  buf[0] = 0;
  while (got + 1 < cap && !strstr(buf, want)) {
    ssize_t n = read(fd, buf + got, cap - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    buf[got] = 0;
  }
  return got;
}

static void test_interim_before_final(void) {
  int fd = client();
  char buf[2048];
  send_all(fd, "GET /interim HTTP/1.1\r\nHost: x\r\n\r\n");
  read_until(fd, buf, sizeof(buf), "\r\n\r\nHTTP/1.1 204");
  read_until(fd, buf + strlen(buf), sizeof(buf) - strlen(buf), "Content-Length: 0\r\n\r\n");
  const char *i = strstr(buf, "HTTP/1.1 104 Upload Resumption Supported\r\nUpload-Offset: 7\r\n\r\n");
  const char *f = strstr(buf, "HTTP/1.1 204 No Content\r\n");
  CHECK(i == buf);
  CHECK(f != NULL && f > i);
  close(fd);
}

static void test_abort_other_request(void) {
  int a = client(), b = client();
  char buf[1024];
  send_all(a, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nsome bytes");
  for (int i = 0; i < 200 && !held_req; i++) usleep(10000);
  CHECK(held_req != NULL);
  send_all(b, "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n");
  read_until(b, buf, sizeof(buf), "aborted\n");
  CHECK(strstr(buf, "aborted") != NULL);
  /* the held connection is closed at once, without a response */
  ssize_t n = read(a, buf, sizeof(buf));
  CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
  for (int i = 0; i < 200 && held_closed_err == 1; i++) usleep(10000);
  CHECK(held_closed_err == -ECONNABORTED);
  close(a);
  close(b);
}

/* Graceful shutdown: a connection whose request sits unread in its socket
 * when the drain starts is served (with Connection: close), an idle one is
 * closed, and the drain reports when the last connection is gone. */
static uv_async_t drain_async;
static _Atomic int drain_blocking, drained;

static void on_drained(void *arg) {
  (void)arg;
  drained = 1;
}

static void on_drain(uv_async_t *a) {
  drain_blocking = 1;
  usleep(300000); /* the loop does not poll meanwhile: what the client sends stays unread */
  http_server_drain(srv, on_drained, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void test_drain_serves_unread_request(void) {
  int idle = client(), busy = client();
  char buf[2048];
  for (int i = 0; i < 200 && http_server_connections(srv) < 2; i++) usleep(10000);
  CHECK(http_server_connections(srv) == 2);
  uv_async_send(&drain_async);
  for (int i = 0; i < 2000 && !drain_blocking; i++) usleep(1000);
  send_all(busy, "GET /interim HTTP/1.1\r\nHost: x\r\n\r\n");
  read_until(busy, buf, sizeof(buf), "Content-Length: 0\r\n\r\n");
  CHECK(strstr(buf, "HTTP/1.1 204 No Content\r\n") != NULL);
  CHECK(strstr(buf, "Connection: close\r\n") != NULL);
  ssize_t n = read(idle, buf, sizeof(buf));
  CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
  for (int i = 0; i < 200 && !drained; i++) usleep(10000);
  CHECK(drained == 1);
  close(idle);
  close(busy);
}

int main(void) {
  loop = uv_default_loop();
  struct http_limits lim = {16384, 100, 100, 5000, 5000, 5000};
  if (http_server_new(&srv, loop, &lim, on_request, NULL) < 0 ||
      http_server_listen(srv, "127.0.0.1", 0, &port) < 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  uv_async_init(loop, &stop_async, on_stop);
  uv_async_init(loop, &drain_async, on_drain);
  pthread_t t;
  pthread_create(&t, NULL, server_thread, NULL);
  RUN(test_interim_before_final);
  RUN(test_abort_other_request);
  RUN(test_drain_serves_unread_request); /* last: the server stops accepting */
  uv_async_send(&stop_async);
  pthread_join(t, NULL);
  http_server_free(srv);
  uv_loop_close(loop);
  UNIT_DONE();
}
