#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char usage[] =
    "usage: resumed [options]\n"
    "\n"
    "Resumable upload server: tus 1.0 and the IETF resumable-upload draft at --base-path,\nthe article's /status + /upload protocol, and a web page.\n"
    "\n"
    "  --listen HOST:PORT       address to listen on (default 127.0.0.1:8080; port 0 picks one)\n"
    "  --dir DIR                upload store directory (default ./data)\n"
    "  --web DIR                web page directory served at / (default: the project's web/)\n"
    "  --base-path PATH         upload endpoint, tus and IETF (default /files/)\n"
    "  --max-size BYTES         largest upload accepted, 0 = no limit (default 0)\n"
    "  --sync-interval BYTES    make a long body durable every BYTES (default 64M)\n"
    "  --expire-after SEC       remove unfinished uploads idle this long, 0 = never (default 0)\n"
    "  --cors-origin LIST       origins allowed to upload from a browser: comma-separated\n"
    "                           (https://a.example,http://localhost:3000) or * (default: none)\n"
    "  --behind-proxy           build upload URLs from Forwarded / X-Forwarded-Host/-Proto\n"
    "  --disable-download       no GET of finished uploads at the upload endpoint\n"
    "  --max-header-bytes N     request line + headers limit (default 16K)\n"
    "  --max-headers N          header field count limit (default 100)\n"
    "  --max-connections N      concurrent connections (default 4096)\n"
    "  --header-timeout SEC     deadline for a request head (default 10)\n"
    "  --body-timeout SEC       idle limit while a body arrives (default 60)\n"
    "  --keepalive-timeout SEC  idle limit between requests (default 30)\n"
    "  --max-connections-per-ip N  concurrent connections from one address, 0 = no cap\n"
    "                           (default 256; behind a proxy every client is the proxy)\n"
    "  --min-body-rate BYTES    a request body must average this many bytes/s over 10 s,\n"
    "                           0 = no minimum (default 128)\n"
    "  --max-unfinished N       unfinished uploads one client (token, or address) may\n"
    "                           hold, 0 = no limit (default 1000)\n"
    "  --shutdown-timeout SEC   on SIGTERM, time open requests get to finish (default 10)\n"
    "  --auth-tokens FILE       require Authorization: Bearer with a token listed in FILE\n"
    "                           (one per line); uploads belong to their creator's token\n"
    "  --auth-secret FILE       sign upload URLs with the HMAC key in FILE; unsigned or\n"
    "                           forged upload URLs get 403. Both files reload on SIGHUP\n"
    "  --boot-id-file PATH      boot id source (default /proc/sys/kernel/random/boot_id)\n"
    "  --quiet                  no request log\n"
    "  --help, --version\n"
    "\n"
    "BYTES take a K, M, G or T suffix (powers of 1024).\n";

const char *config_usage(void) { return usage; }

void config_http_limits(const struct config *c, struct http_limits *lim) {
  *lim = (struct http_limits){
      .max_header_bytes = c->max_header_bytes,
      .max_headers = c->max_headers,
      .max_connections = c->max_connections,
      .header_timeout_ms = c->header_timeout_ms,
      .body_timeout_ms = c->body_timeout_ms,
      .keepalive_timeout_ms = c->keepalive_timeout_ms,
      .max_connections_per_ip = c->max_connections_per_ip,
      .min_body_rate = c->min_body_rate,
  };
}

void config_defaults(struct config *c) {
  memset(c, 0, sizeof(*c));
  snprintf(c->host, sizeof(c->host), "127.0.0.1");
  c->port = 8080;
  c->dir = "./data";
  c->base_path = "/files/";
  c->sync_interval = 64u << 20;
  c->max_header_bytes = 16 * 1024;
  c->max_headers = 100;
  c->max_connections = 4096;
  c->header_timeout_ms = 10000;
  c->body_timeout_ms = 60000;
  c->keepalive_timeout_ms = 30000;
  c->boot_id_file = "/proc/sys/kernel/random/boot_id";
  c->max_connections_per_ip = 256;
  c->min_body_rate = 128;
  c->max_unfinished = 1000;
  c->shutdown_timeout_ms = 10000;
}

static int parse_listen(struct config *c, const char *v) {
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v) return -EINVAL;
  const char *h = v;
  size_t hl = (size_t)(colon - v);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') h++, hl -= 2; /* [::1]:8080 */
  if (hl == 0 || hl >= sizeof(c->host)) return -EINVAL;
  uint64_t port;
  if (parse_u64_strict(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535) return -EINVAL;
  memcpy(c->host, h, hl);
  c->host[hl] = 0;
  c->port = (int)port;
  return 0;
}

static int parse_count(const char *v, uint64_t min, uint64_t max, uint64_t *out) {
  if (parse_size(v, out) < 0 || *out < min || *out > max) return -EINVAL;
  return 0;
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    uint64_t n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return 1;
    }
    if (strcmp(a, "--version") == 0) {
      printf("resumed %s\n", RESUMED_VERSION);
      return 1;
    }
    if (strcmp(a, "--quiet") == 0) {
      c->quiet = 1;
      continue;
    }
    if (strcmp(a, "--behind-proxy") == 0) {
      c->behind_proxy = 1;
      continue;
    }
    if (strcmp(a, "--disable-download") == 0) {
      c->disable_download = 1;
      continue;
    }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strncmp(a, "--", 2) != 0) {
      snprintf(err, errlen, "unexpected argument '%s'", a);
      return -EINVAL;
    }
    if (!v) {
      snprintf(err, errlen, "%s needs a value", a);
      return -EINVAL;
    }
    i++;
    int bad = 0;
    if (strcmp(a, "--listen") == 0) bad = parse_listen(c, v) < 0;
    else if (strcmp(a, "--dir") == 0) bad = !*v, c->dir = v;
    else if (strcmp(a, "--web") == 0) bad = !*v, c->web = v;
    else if (strcmp(a, "--boot-id-file") == 0) bad = !*v, c->boot_id_file = v;
    else if (strcmp(a, "--auth-tokens") == 0) bad = !*v, c->auth_tokens_file = v;
    else if (strcmp(a, "--auth-secret") == 0) bad = !*v, c->auth_secret_file = v;
    else if (strcmp(a, "--base-path") == 0)
      bad = v[0] != '/' || strlen(v) < 2 || strlen(v) > 200 || strstr(v, "..") != NULL, c->base_path = v;
    else if (strcmp(a, "--cors-origin") == 0) bad = !*v, c->cors_origin = v;
    else if (strcmp(a, "--max-size") == 0) bad = parse_size(v, &c->max_size) < 0;
    else if (strcmp(a, "--sync-interval") == 0) {
      bad = parse_count(v, 4096, UINT64_MAX >> 1, &n) < 0;
      c->sync_interval = n;
    } else if (strcmp(a, "--expire-after") == 0) {
      bad = parse_count(v, 0, 100ull * 365 * 86400, &n) < 0;
      c->expire_after = n;
    } else if (strcmp(a, "--max-header-bytes") == 0) {
      bad = parse_count(v, 256, 1u << 20, &n) < 0;
      c->max_header_bytes = (uint32_t)n;
    } else if (strcmp(a, "--max-headers") == 0) {
      bad = parse_count(v, 4, 10000, &n) < 0;
      c->max_headers = (uint32_t)n;
    } else if (strcmp(a, "--max-connections") == 0) {
      bad = parse_count(v, 1, 1000000, &n) < 0;
      c->max_connections = (uint32_t)n;
      c->max_connections_set = 1;
    } else if (strcmp(a, "--max-connections-per-ip") == 0) {
      bad = parse_count(v, 0, 1000000, &n) < 0;
      c->max_connections_per_ip = (uint32_t)n;
    } else if (strcmp(a, "--min-body-rate") == 0) {
      bad = parse_count(v, 0, 1ull << 40, &n) < 0;
      c->min_body_rate = n;
    } else if (strcmp(a, "--max-unfinished") == 0) {
      bad = parse_count(v, 0, 100000000, &n) < 0;
      c->max_unfinished = (uint32_t)n;
    } else if (strcmp(a, "--shutdown-timeout") == 0) {
      bad = parse_count(v, 0, 86400, &n) < 0;
      c->shutdown_timeout_ms = n * 1000;
    } else if (strcmp(a, "--header-timeout") == 0) {
      bad = parse_count(v, 1, 86400, &n) < 0;
      c->header_timeout_ms = n * 1000;
    } else if (strcmp(a, "--body-timeout") == 0) {
      bad = parse_count(v, 1, 86400, &n) < 0;
      c->body_timeout_ms = n * 1000;
    } else if (strcmp(a, "--keepalive-timeout") == 0) {
      bad = parse_count(v, 1, 86400, &n) < 0;
      c->keepalive_timeout_ms = n * 1000;
    } else {
      snprintf(err, errlen, "unknown option '%s'", a);
      return -EINVAL;
    }
    if (bad) {
      snprintf(err, errlen, "bad value for %s: '%s'", a, v);
      return -EINVAL;
    }
  }
  return 0;
}
