/* Command-line configuration. */
#ifndef RESUMED_CONFIG_H
#define RESUMED_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define RESUMED_VERSION "0.1.0"

struct config {
  char host[64];
  int port;
  const char *dir;
  const char *web; /* NULL: the project's web/ next to the binary */
  const char *base_path; /* tus endpoint */
  uint64_t max_size;
  uint64_t sync_interval;
  uint64_t expire_after; /* seconds, 0 = never */
  uint32_t max_header_bytes;
  uint32_t max_headers;
  uint32_t max_connections;
  int max_connections_set; /* given on the command line: not lowered to fit the fd limit */
  uint64_t header_timeout_ms;
  uint64_t body_timeout_ms;
  uint64_t keepalive_timeout_ms;
  const char *boot_id_file;
  const char *cors_origin; /* NULL: no CORS */
  int behind_proxy;
  int disable_download;
  int quiet;
  uint32_t max_connections_per_ip; /* 0: no cap */
  uint64_t min_body_rate;          /* bytes/s a body must average; 0: none */
  uint32_t max_unfinished;         /* unfinished uploads per client; 0: no limit */
  uint64_t shutdown_timeout_ms;
  const char *auth_tokens_file;    /* NULL: no bearer tokens */
  const char *auth_secret_file;    /* NULL: unsigned upload URLs */
};

void config_defaults(struct config *cfg);
/* 0: run; 1: --help/--version printed, exit 0; <0: bad usage, message in err. */
int config_parse(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
const char *config_usage(void);
/* The connection layer's limits from the flags. */
void config_http_limits(const struct config *cfg, struct http_limits *lim);

#endif
