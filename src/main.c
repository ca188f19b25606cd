/* resumed: resumable upload server. Wires configuration, store, engine,
 * protocols and the HTTP layer together and runs the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "article.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "static_files.h"
#include "store_fs.h"
#include "endpoint.h"
#include "upload.h"
#include "util.h"

struct app {
  uv_loop_t *loop;
  struct http_server *http;
  struct upload_engine *eng;
  struct auth *auth;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t shutdown_timer;
  uint64_t shutdown_timeout_ms;
  int stopping;
};

static void read_boot_id(const char *path, char *out, size_t len) {
  out[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    log_warn("cannot read boot id from %s: %s", path, strerror(errno));
    return;
  }
  ssize_t n = read_full(fd, out, len - 1);
  close(fd);
  if (n < 0) n = 0;
  out[n] = 0;
  for (ssize_t i = 0; i < n; i++)
    if (out[i] == '\n' || out[i] == ' ') {
      out[i] = 0;
      break;
    }
}

/* The default web directory is the project's web/, found from the binary
 * (build/resumed or build/asan/resumed), so `make run` works from anywhere. */
static void default_web_dir(char *out, size_t len) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  snprintf(out, len, "web");
  if (n <= 0) return;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = 0;
  static const char *rel[] = {"/../web", "/../../web"};
  for (size_t i = 0; i < 2; i++) {
    char cand[PATH_MAX + 16];
    snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
    if (access(cand, R_OK | X_OK) == 0) {
      snprintf(out, len, "%s", cand);
      return;
    }
  }
}

/* Raises the soft descriptor limit and returns it. */
static uint64_t raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT32_MAX : (uint64_t)rl.rlim_cur;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Every connection is gone: what remains (engine work finishing commits)
 * ends by itself and uv_run returns. */
static void on_drained(void *arg) {
  struct app *app = arg;
  close_handle((uv_handle_t *)&app->shutdown_timer);
  close_handle((uv_handle_t *)&app->sigint);
  close_handle((uv_handle_t *)&app->sigterm);
  close_handle((uv_handle_t *)&app->sighup);
}

/* Past --shutdown-timeout (or a second signal): end the stragglers. Their
 * handlers commit what they received before the loop can end. */
static void on_shutdown_timeout(uv_timer_t *t) {
  struct app *app = t->data;
  log_info("shutdown: ending %u open connection(s)", http_server_connections(app->http));
  http_server_shutdown(app->http);
}

static void on_signal(uv_signal_t *s, int signum) {
  struct app *app = s->data;
  if (app->stopping) {
    on_shutdown_timeout(&app->shutdown_timer);
    return;
  }
  app->stopping = 1;
  log_info("signal %d: shutting down (%u open connection(s), up to %llu ms)", signum,
           http_server_connections(app->http), (unsigned long long)app->shutdown_timeout_ms);
  upload_engine_stop_sweeper(app->eng);
  uv_timer_start(&app->shutdown_timer, on_shutdown_timeout, app->shutdown_timeout_ms, 0);
  http_server_drain(app->http, on_drained, app);
}

static void on_sighup(uv_signal_t *s, int signum) {
  struct app *app = s->data;
  char err[256] = "";
  (void)signum;
  if (auth_reload(app->auth, err, sizeof(err)) < 0)
    log_warn("SIGHUP: keeping the previous credentials: %s", err);
  else
    log_info("SIGHUP: credentials reloaded");
}

static void request_log(void *ctx, const char *line) {
  (void)ctx;
  log_line(line);
}

int main(int argc, char **argv) {
  struct config cfg;
  char err[256] = "";
  char boot_id[STORE_BOOT_ID_MAX + 1];
  char webdir[PATH_MAX + 16];
  struct store *store = NULL;
  struct upload_engine *eng = NULL;
  struct article *article = NULL;
  struct endpoint *endpoint = NULL;
  struct static_files *web = NULL;
  struct app app = {0};
  int rc, exit_code = 1;

  config_defaults(&cfg);
  rc = config_parse(&cfg, argc, argv, err, sizeof(err));
  if (rc == 1) return 0;
  if (rc < 0) {
    fprintf(stderr, "resumed: %s\n(try --help)\n", err);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uint64_t nofile = raise_fd_limit();
  setvbuf(stderr, NULL, _IOLBF, 0);

  if (util_init() < 0) {
    fprintf(stderr, "resumed: cannot initialise SHA-256 (libcrypto)\n");
    return 1;
  }
  app.loop = uv_default_loop();
  app.shutdown_timeout_ms = cfg.shutdown_timeout_ms;
  if ((rc = auth_new(&app.auth, cfg.auth_tokens_file, cfg.auth_secret_file, err, sizeof(err))) < 0) {
    fprintf(stderr, "resumed: %s\n", err);
    goto out;
  }
  auth_set_behind_proxy(app.auth, cfg.behind_proxy);
  /* Each connection may hold its socket and an upload's file: by default keep
   * enough descriptors for both, and for the store's own, rather than meet
   * EMFILE (which costs 503s and shed connections, see http.c). */
  uint64_t fd_conns = nofile > 96 ? (nofile - 64) / 2 : nofile > 24 ? (nofile - 16) / 2 : 4;
  if (!cfg.max_connections_set && cfg.max_connections > fd_conns) {
    log_warn("descriptor limit %llu allows %llu connections (not --max-connections %u)",
             (unsigned long long)nofile, (unsigned long long)fd_conns, cfg.max_connections);
    cfg.max_connections = (uint32_t)fd_conns;
  }
  read_boot_id(cfg.boot_id_file, boot_id, sizeof(boot_id));
  uint64_t recovered = 0;
  if ((rc = store_fs_open(&store, cfg.dir, boot_id, &recovered)) < 0) {
    fprintf(stderr, "resumed: cannot open store %s: %s\n", cfg.dir, strerror(-rc));
    goto out;
  }
  if (recovered) log_info("recovered %llu unfinished upload(s) in %s", (unsigned long long)recovered, cfg.dir);
  struct upload_engine_config ecfg = {.sync_interval = cfg.sync_interval,
                                      .expire_after = cfg.expire_after,
                                      .max_unfinished = cfg.max_unfinished};
  if ((rc = upload_engine_new(&eng, app.loop, store, &ecfg)) < 0) goto out;
  app.eng = eng;
  if ((rc = upload_engine_start_sweeper(eng)) < 0) goto out;
  if ((rc = article_new(&article, eng, app.auth, cfg.max_size)) < 0) goto out;
  struct endpoint_config epcfg = {.base_path = cfg.base_path,
                                  .max_size = cfg.max_size,
                                  .expire_after = cfg.expire_after,
                                  .behind_proxy = cfg.behind_proxy,
                                  .download = !cfg.disable_download,
                                  .cors_origins = cfg.cors_origin,
                                  .auth = app.auth};
  if ((rc = endpoint_new(&endpoint, eng, &epcfg)) < 0) {
    fprintf(stderr, "resumed: bad --base-path or --cors-origin: %s\n", strerror(-rc));
    goto out;
  }
  if (cfg.web) snprintf(webdir, sizeof(webdir), "%s", cfg.web);
  else default_web_dir(webdir, sizeof(webdir));
  if ((rc = static_files_open(&web, webdir)) < 0) {
    if (cfg.web) {
      fprintf(stderr, "resumed: cannot open web directory %s: %s\n", webdir, strerror(-rc));
      goto out;
    }
    log_warn("no web directory at %s; / answers 404", webdir);
  }
  struct router router = {.article = article, .endpoint = endpoint, .web = web};
  struct http_limits lim;
  config_http_limits(&cfg, &lim);
  if ((rc = http_server_new(&app.http, app.loop, &lim, router_dispatch, &router)) < 0) goto out;
  if (!cfg.quiet) http_server_set_log(app.http, request_log, NULL);
  int port = 0;
  if ((rc = http_server_listen(app.http, cfg.host, cfg.port, &port)) < 0) {
    fprintf(stderr, "resumed: cannot listen on %s:%d: %s\n", cfg.host, cfg.port, uv_strerror(rc));
    goto out;
  }
  uv_signal_init(app.loop, &app.sigint);
  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_init(app.loop, &app.sighup);
  uv_timer_init(app.loop, &app.shutdown_timer);
  app.sigint.data = app.sigterm.data = app.sighup.data = app.shutdown_timer.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  uv_signal_start(&app.sighup, on_sighup, SIGHUP);
  if (strchr(cfg.host, ':'))
    fprintf(stderr, "resumed: listening on http://[%s]:%d\n", cfg.host, port);
  else
    fprintf(stderr, "resumed: listening on http://%s:%d\n", cfg.host, port);

  uv_run(app.loop, UV_RUN_DEFAULT);
  exit_code = 0;
out:
  if (app.http) http_server_free(app.http);
  static_files_free(web);
  article_free(article);
  endpoint_free(endpoint);
  upload_engine_free(eng);
  if (store) store->ops->free(store);
  auth_free(app.auth);
  uv_loop_close(app.loop);
  return exit_code;
}
