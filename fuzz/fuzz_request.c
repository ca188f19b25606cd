/* fuzz_request: one input is everything one client sends on one connection,
 * taken by the real server stack in this process: the HTTP layer (http.c,
 * llhttp in strict mode), the router and every protocol behind it (tus, the
 * IETF draft, the article's /status and /upload, downloads, static files,
 * CORS) over a filesystem store in a temporary directory (/dev/shm).
 *
 * Per input: a fresh store holding a few fixture uploads of known keys (an
 * unfinished tus upload, a finished one, partial and final uploads, IETF
 * uploads, article ids), a loopback TCP connection to the in-process
 * listener that writes the input, shuts down its sending side and reads
 * every answer; the loop runs until the server has closed the connection and
 * no engine operation is in flight; then the stack is freed (LeakSanitizer
 * sees what a request leaked). Keys of uploads created by the input are
 * deterministic (00000000000000000000000000000001, ...: store_new_key is
 * wrapped at link time), so a POST followed by a PATCH of its Location works
 * within one input, and a crash reproduces from its input alone.
 *
 * Invariants beyond "no crash": the answers parse as HTTP/1.1 responses with
 * llhttp (strict), in order, never more final responses than requests, each
 * with Content-Length (unless 204/304), no bytes after Connection: close, no
 * truncated response on an orderly close, only 100 and 104 as interim
 * answers, no 5xx (the store is a healthy tmpfs); and the server closes the connection within 10 s of the client's
 * end of input (no hang). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <llhttp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "article.h"
#include "auth.h"
#include "checksum.h"
#include "config.h"
#include "endpoint.h"
#include "fuzz.h"
#include "http.h"
#include "metadata.h"
#include "router.h"
#include "static_files.h"
#include "store_fs.h"
#include "upload.h"
#include "util.h"

#define INPUT_DEADLINE_NS (10ull * 1000 * 1000 * 1000)
#define MAX_MESSAGES 8192

static uv_loop_t *loop;
static struct http_server *srv;
static struct sockaddr_in srv_addr;
static struct static_files *web;
static struct auth *auth;
static struct router router;
static struct config cfg;
static uv_timer_t guard;
static char base_dir[PATH_MAX], store_dir[PATH_MAX + 16], web_dir[PATH_MAX + 16];

/* ---------- deterministic upload keys (ld --wrap=store_new_key) ---------- */

static unsigned next_key;
static const char *forced_key;

int __wrap_store_new_key(char key[STORE_KEY_LEN + 1]);
int __wrap_store_new_key(char key[STORE_KEY_LEN + 1]) {
  if (forced_key) memcpy(key, forced_key, STORE_KEY_LEN + 1);
  else snprintf(key, STORE_KEY_LEN + 1, "%032x", ++next_key);
  return 0;
}

/* ---------- files ---------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)ftw;
  if (flag == FTW_DP) rmdir(path);
  else unlink(path);
  return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *dir, const char *name, const char *text) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FUZZ_CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
  FUZZ_CHECK(write_full(fd, text, strlen(text)) == 0, "cannot write %s", path);
  close(fd);
}

/* Directories of fuzzers that died (a crash skips atexit) go at the next start. */
static void remove_stale_dirs(const char *parent) {
  DIR *d = opendir(parent);
  struct dirent *e;
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    int pid;
    char path[PATH_MAX];
    if (sscanf(e->d_name, "resumed-fuzz-%d", &pid) != 1 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
    rm_rf(path);
  }
  closedir(d);
}

static void cleanup(void) {
  if (base_dir[0]) rm_rf(base_dir);
}

/* ---------- fixture uploads ---------- */

struct fixture {
  const char *key, *kind, *data, *metadata, *concat;
  int64_t length; /* -1: unknown */
  int finished, expired;
  const char *article_id, *article_token;
};

/* The paths in fuzz/request.dict name these keys. */
static const struct fixture fixtures[] = {
    /* tus, unfinished: PATCH /files/...01 with Upload-Offset: 3 */
    {"f0000000000000000000000000000001", "tus", "abc", "filename dGVzdC50eHQ=,filetype dGV4dC9wbGFpbg==",
     NULL, 10, 0, 0, NULL, NULL},
    /* tus, deferred length */
    {"f0000000000000000000000000000002", "tus", "", NULL, NULL, -1, 0, 0, NULL, NULL},
    /* tus, finished: GET downloads it (inline image/png) */
    {"f0000000000000000000000000000003", "tus", "hello", "filename aW1nLnBuZw==,filetype aW1hZ2UvcG5n", NULL,
     5, 1, 0, NULL, NULL},
    /* concatenation: a finished partial, an unfinished one, a final waiting for them */
    {"f0000000000000000000000000000004", "tus", "abc", NULL, "partial", 3, 1, 0, NULL, NULL},
    {"f0000000000000000000000000000005", "tus", "de", NULL, "partial", 4, 0, 0, NULL, NULL},
    {"f0000000000000000000000000000006", "tus", "", NULL,
     "final f0000000000000000000000000000004 f0000000000000000000000000000005", 7, 0, 0, NULL, NULL},
    /* IETF, unfinished, with a Repr-Digest of "abcdef" remembered from its creation */
    {"f0000000000000000000000000000007", "ietf", "ab", NULL, NULL, 6, 0, 0, NULL, NULL},
    /* IETF, finished */
    {"f0000000000000000000000000000008", "ietf", "done", "filetype YXBwbGljYXRpb24vcGRm", NULL, 4, 1, 0, NULL,
     NULL},
    /* tus, expired: 410 */
    {"f0000000000000000000000000000009", "tus", "x", NULL, NULL, 9, 0, 1, NULL, NULL},
    /* article: X-File-Id: a (3 bytes held), and b scoped by X-Upload-Token: t (of 4) */
    {"f000000000000000000000000000000a", "article", "abc", NULL, NULL, -1, 0, 0, "a", NULL},
    {"f000000000000000000000000000000b", "article", "12", NULL, NULL, 4, 0, 0, "b", "t"},
    /* tus partial of deferred length */
    {"f000000000000000000000000000000c", "tus", "xyz", NULL, "partial", -1, 0, 0, NULL, NULL},
    /* article, finished: X-File-Id: c starts afresh */
    {"f000000000000000000000000000000d", "article", "xyz", NULL, NULL, 3, 1, 0, "c", NULL},
};

/* "repr-digest <base64 of 'sha-256=:<base64 of sha256(abcdef)>:'>" as ietf.c records it. */
static char ietf_metadata[256];

static void make_ietf_metadata(void) {
  struct checksum c;
  unsigned char d[CHECKSUM_MAX_SIZE];
  char b64[128], field[160];
  size_t len = 0;
  FUZZ_CHECK(checksum_init(&c, CHECKSUM_SHA256) == 0 && checksum_update(&c, "abcdef", 6) == 0 &&
                 checksum_final(&c, d) == 0,
             "sha256");
  EVP_EncodeBlock((unsigned char *)b64, d, 32);
  snprintf(field, sizeof(field), "sha-256=:%s:", b64);
  FUZZ_CHECK(metadata_append(ietf_metadata, &len, sizeof(ietf_metadata), "filename", "a.bin", 5) == 0 &&
                 metadata_append(ietf_metadata, &len, sizeof(ietf_metadata), "repr-digest", field,
                                 strlen(field)) == 0,
             "metadata");
}

static void add_fixture(struct store *st, const struct fixture *f) {
  struct upload_info info;
  struct store_upload *su;
  int64_t now = (int64_t)time(NULL);
  memset(&info, 0, sizeof(info));
  snprintf(info.kind, sizeof(info.kind), "%s", f->kind);
  info.length = f->length;
  info.created = now;
  info.expires = f->finished ? 0 : f->expired ? 1 : now + (int64_t)cfg.expire_after;
  info.metadata = (char *)(strcmp(f->key, fixtures[6].key) == 0 ? ietf_metadata : f->metadata);
  info.concat = (char *)f->concat;
  forced_key = f->key;
  int rc = st->ops->create(st, &info, &su);
  forced_key = NULL;
  FUZZ_CHECK(rc == 0, "fixture %s: create: %s", f->key, strerror(-rc));
  size_t n = strlen(f->data);
  if (n) {
    struct iovec iov = {(void *)f->data, n};
    FUZZ_CHECK(st->ops->write(su, &iov, 1, 0) == (int64_t)n, "fixture write");
  }
  FUZZ_CHECK(st->ops->flush(su) == 0, "fixture flush");
  info.offset = n;
  info.finished = f->finished;
  FUZZ_CHECK(st->ops->save(su, &info) == 0, "fixture save");
  st->ops->close(su);
  if (f->article_id) {
    char alias[65];
    const char *tok = f->article_token;
    FUZZ_CHECK(article_alias(tok, tok ? strlen(tok) : 0, f->article_id, strlen(f->article_id), alias) == 0,
               "alias");
    FUZZ_CHECK(st->ops->alias_set(st, alias, f->key) == 0, "alias_set");
  }
}

/* ---------- the stack of one input ---------- */

static struct store *store;
static struct upload_engine *eng;
static struct article *article;
static struct endpoint *endpoint;

static void stack_up(void) {
  uint64_t recovered = 0;
  int rc;
  rm_rf(store_dir);
  next_key = 0;
  rc = store_fs_open(&store, store_dir, "fuzz-boot", &recovered);
  FUZZ_CHECK(rc == 0, "store_fs_open %s: %s", store_dir, strerror(-rc));
  for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) add_fixture(store, &fixtures[i]);
  struct upload_engine_config ecfg = {.sync_interval = cfg.sync_interval,
                                      .expire_after = cfg.expire_after,
                                      .max_unfinished = cfg.max_unfinished};
  FUZZ_CHECK(upload_engine_new(&eng, loop, store, &ecfg) == 0, "engine");
  FUZZ_CHECK(article_new(&article, eng, auth, cfg.max_size) == 0, "article");
  struct endpoint_config epcfg = {.base_path = cfg.base_path,
                                  .max_size = cfg.max_size,
                                  .expire_after = cfg.expire_after,
                                  .behind_proxy = cfg.behind_proxy,
                                  .download = !cfg.disable_download,
                                  .cors_origins = cfg.cors_origin,
                                  .auth = auth};
  FUZZ_CHECK(endpoint_new(&endpoint, eng, &epcfg) == 0, "endpoint");
  router.article = article;
  router.endpoint = endpoint;
  router.web = web;
}

static void stack_down(void) {
  endpoint_free(endpoint);
  article_free(article);
  upload_engine_free(eng);
  store->ops->free(store);
  store = NULL;
  eng = NULL;
  article = NULL;
  endpoint = NULL;
}

/* ---------- what the client sent: the method of each message ---------- */

struct requests {
  llhttp_t p;
  int methods[MAX_MESSAGES];
  size_t n;
  int open; /* a message has begun and not completed */
};

static int rq_begin(llhttp_t *p) {
  struct requests *r = p->data;
  if (r->n < MAX_MESSAGES) r->methods[r->n++] = -1;
  r->open = 1;
  return 0;
}

static int rq_headers(llhttp_t *p) {
  struct requests *r = p->data;
  if (r->n) r->methods[r->n - 1] = p->method;
  return 0;
}

static int rq_complete(llhttp_t *p) {
  struct requests *r = p->data;
  r->open = 0;
  return 0;
}

/* Parses the input as the server's llhttp does; the server answers at most
 * one final response per message, and one error response for a message it
 * cannot parse (its method as far as it was read, as in http.c). */
static void scan_requests(struct requests *r, const uint8_t *data, size_t size) {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = rq_begin;
  s.on_headers_complete = rq_headers;
  s.on_message_complete = rq_complete;
  r->n = 0;
  r->open = 0;
  llhttp_init(&r->p, HTTP_REQUEST, &s);
  r->p.data = r;
  llhttp_errno_t e = llhttp_execute(&r->p, (const char *)data, size);
  if (e != HPE_OK && !r->open && r->n < MAX_MESSAGES) r->methods[r->n++] = -1;
  /* A message in error or cut short by the end of the input (the server may
   * refuse it for its own reasons, e.g. obs-fold) is answered as the method
   * read so far: an answer to HEAD has no body. */
  if (r->n && r->methods[r->n - 1] < 0) r->methods[r->n - 1] = r->p.method;
}

/* ---------- what the server answered ---------- */

struct responses {
  llhttp_t p;
  llhttp_settings_t s;
  const struct requests *rq;
  size_t finals;
  int failed; /* llhttp error seen */
};

static size_t cur_size;

static void dump_and_abort(const char *why, const struct responses *rs) {
  fprintf(stderr, "fuzz_request: %s (final response %zu; %zu message(s) in the %zu-byte input)\n", why,
          rs->finals, rs->rq->n, cur_size);
  abort();
}

static int rs_headers(llhttp_t *p) {
  struct responses *rs = p->data;
  int status = p->status_code;
  if (status < 200) {
    if (status != 100 && status != 104) dump_and_abort("interim response other than 100 or 104", rs);
    return 0;
  }
  /* (past MAX_MESSAGES messages the input is not counted further) */
  if (rs->finals >= rs->rq->n && rs->rq->n < MAX_MESSAGES)
    dump_and_abort("more final responses than requests", rs);
  /* The store is a healthy tmpfs: a 5xx means an internal error path was taken. */
  if (status >= 500) dump_and_abort("server error (5xx) answer", rs);
  int method = rs->finals < rs->rq->n ? rs->rq->methods[rs->finals] : -1;
  rs->finals++;
  if (status != 204 && status != 304 && !(p->flags & F_CONTENT_LENGTH))
    dump_and_abort("final response without Content-Length", rs);
  if (p->flags & F_CHUNKED) dump_and_abort("chunked response", rs);
  return method == HTTP_HEAD ? 1 : 0; /* a HEAD answer has no body */
}

static void responses_init(struct responses *rs, const struct requests *rq) {
  llhttp_settings_init(&rs->s);
  rs->s.on_headers_complete = rs_headers;
  llhttp_init(&rs->p, HTTP_RESPONSE, &rs->s);
  rs->p.data = rs;
  rs->rq = rq;
  rs->finals = 0;
  rs->failed = 0;
}

static void responses_feed(struct responses *rs, const char *d, size_t n) {
  if (rs->failed) return;
  llhttp_errno_t e = llhttp_execute(&rs->p, d, n);
  if (e != HPE_OK) {
    rs->failed = 1;
    fprintf(stderr, "fuzz_request: bad response bytes: %s (%s)\n", llhttp_errno_name(e),
            llhttp_get_error_reason(&rs->p));
    fprintf(stderr, "--- the bytes of this read:\n%.*s\n---\n", (int)(n > 4000 ? 4000 : n), d);
    dump_and_abort("malformed response stream", rs);
  }
}

/* ---------- the client ---------- */

struct client {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_shutdown_t shutdown;
  char *out;
  size_t out_len;
  int closed, reset, eof;
  struct responses rs;
};

static struct requests requests;
static struct client client;
static int trace; /* FUZZ_TRACE=1: the server's answers go to stderr */
static char read_buf[64 * 1024];

static void on_client_closed(uv_handle_t *h) {
  (void)h;
  client.closed = 1;
}

static void client_close(void) {
  if (uv_is_closing((uv_handle_t *)&client.tcp)) return;
  /* A reset instead of a FIN: thousands of connections a second would
   * otherwise exhaust the ephemeral ports with TIME_WAIT. */
  if (uv_tcp_close_reset(&client.tcp, on_client_closed) != 0)
    uv_close((uv_handle_t *)&client.tcp, on_client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h, (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)s;
  if (nread > 0) {
    if (trace) fwrite(buf->base, 1, (size_t)nread, stderr);
    responses_feed(&client.rs, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0) return;
  if (nread == UV_EOF) {
    client.eof = 1;
    /* an orderly close: every response must be complete */
    if (!client.rs.failed && llhttp_finish(&client.rs.p) != HPE_OK)
      dump_and_abort("response cut short by an orderly close", &client.rs);
  } else {
    client.reset = 1; /* the server closed with our bytes unread: what was sent may be lost */
  }
  client_close();
}

static void on_shutdown(uv_shutdown_t *r, int status) { (void)r, (void)status; }
static void on_write(uv_write_t *w, int status) { (void)w, (void)status; }

static void on_connect(uv_connect_t *c, int status) {
  (void)c;
  FUZZ_CHECK(status == 0, "connect to the in-process server: %s", uv_strerror(status));
  FUZZ_CHECK(uv_read_start((uv_stream_t *)&client.tcp, on_alloc, on_client_read) == 0, "read_start");
  if (client.out_len) {
    uv_buf_t b = uv_buf_init(client.out, (unsigned)client.out_len);
    if (uv_write(&client.write, (uv_stream_t *)&client.tcp, &b, 1, on_write) != 0) return;
  }
  uv_shutdown(&client.shutdown, (uv_stream_t *)&client.tcp, on_shutdown);
}

static void on_guard(uv_timer_t *t) { (void)t; } /* only wakes the loop */

/* ---------- libFuzzer ---------- */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  int port = 0;
  signal(SIGPIPE, SIG_IGN);
  trace = getenv("FUZZ_TRACE") && strcmp(getenv("FUZZ_TRACE"), "1") == 0;
  FUZZ_CHECK(util_init() == 0, "util_init");
  make_ietf_metadata();
  const char *parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  remove_stale_dirs(parent);
  snprintf(base_dir, sizeof(base_dir), "%s/resumed-fuzz-%d", parent, (int)getpid());
  rm_rf(base_dir);
  FUZZ_CHECK(mkdir(base_dir, 0700) == 0, "mkdir %s: %s", base_dir, strerror(errno));
  atexit(cleanup);
  snprintf(store_dir, sizeof(store_dir), "%s/store", base_dir);
  snprintf(web_dir, sizeof(web_dir), "%s/web", base_dir);
  FUZZ_CHECK(mkdir(web_dir, 0700) == 0, "mkdir web");
  write_file(web_dir, "index.html", "<!doctype html><title>fuzz</title><p>index</p>\n");
  write_file(web_dir, "uploader.js", "export class Uploader {}\n");
  write_file(web_dir, "style.css", "body { margin: 0 }\n");
  write_file(web_dir, ".hidden", "secret\n");
  char sub[PATH_MAX + 32];
  snprintf(sub, sizeof(sub), "%s/sub", web_dir);
  FUZZ_CHECK(mkdir(sub, 0700) == 0, "mkdir web/sub");
  write_file(sub, "page.txt", "a page\n");
  FUZZ_CHECK(static_files_open(&web, web_dir) == 0, "static_files_open");

  /* Every feature on, and limits small enough for inputs to reach them. */
  config_defaults(&cfg);
  cfg.dir = store_dir;
  cfg.max_size = 8192;
  cfg.sync_interval = 1024; /* periodic flushes (and IETF 104 progress) within small bodies */
  cfg.expire_after = 3600;
  cfg.behind_proxy = 1;
  cfg.cors_origin = "https://app.example, http://localhost:3000";
  cfg.max_header_bytes = 8192;
  cfg.max_headers = 40;
  cfg.max_unfinished = 4; /* an input that creates five uploads meets the limit */

  /* As main.c without --auth-tokens/--auth-secret: owners are client addresses. */
  char err[256] = "";
  FUZZ_CHECK(auth_new(&auth, NULL, NULL, err, sizeof(err)) == 0, "auth_new: %s", err);
  auth_set_behind_proxy(auth, cfg.behind_proxy);

  loop = uv_default_loop();
  struct http_limits lim;
  config_http_limits(&cfg, &lim);
  FUZZ_CHECK(http_server_new(&srv, loop, &lim, router_dispatch, &router) == 0, "http_server_new");
  FUZZ_CHECK(http_server_listen(srv, "127.0.0.1", 0, &port) == 0, "listen");
  uv_ip4_addr("127.0.0.1", port, &srv_addr);
  uv_timer_init(loop, &guard);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cur_size = size;
  stack_up();
  scan_requests(&requests, data, size);

  memset(&client, 0, sizeof(client));
  responses_init(&client.rs, &requests);
  if (size) {
    client.out = malloc(size);
    FUZZ_CHECK(client.out != NULL, "malloc");
    memcpy(client.out, data, size);
    client.out_len = size;
  }
  FUZZ_CHECK(uv_tcp_init(loop, &client.tcp) == 0, "tcp_init");
  FUZZ_CHECK(uv_tcp_connect(&client.connect, &client.tcp, (const struct sockaddr *)&srv_addr, on_connect) == 0,
             "connect");

  uv_timer_start(&guard, on_guard, 20, 20);
  uint64_t deadline = uv_hrtime() + INPUT_DEADLINE_NS;
  while (!client.closed || http_server_connections(srv) > 0 || loop->active_reqs.count > 0) {
    uv_run(loop, UV_RUN_ONCE);
    if (uv_hrtime() > deadline) {
      fprintf(stderr,
              "fuzz_request: the connection was not over 10 s after the input ended "
              "(client closed %d, server connections %u, requests in flight %u)\n",
              client.closed, http_server_connections(srv), loop->active_reqs.count);
      abort();
    }
  }
  uv_timer_stop(&guard);
  free(client.out);
  stack_down();
  return 0;
}
