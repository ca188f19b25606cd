#include "static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct static_files {
  int dirfd;
};

int static_files_open(struct static_files **out, const char *dir) {
  struct static_files *sf = calloc(1, sizeof(*sf));
  if (!sf) return -ENOMEM;
  sf->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sf->dirfd < 0) {
    int rc = -errno;
    free(sf);
    return rc;
  }
  *out = sf;
  return 0;
}

void static_files_free(struct static_files *sf) {
  if (!sf) return;
  close(sf->dirfd);
  free(sf);
}

const char *static_content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"}, {".json", "application/json"},
      {".svg", "image/svg+xml"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"}, {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
  };
  const char *dot = strrchr(name, '.');
  if (dot && !strchr(dot, '/'))
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot, types[i].ext) == 0) return types[i].type;
  return "application/octet-stream";
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int static_resolve(const char *path, size_t len, char *out, size_t outlen) {
  size_t o = 0;
  if (len == 0 || path[0] != '/') return -1;
  for (size_t i = 1; i < len; i++) {
    char c = path[i];
    if (c == '%') {
      int hi = i + 2 < len ? hexval(path[i + 1]) : -1, lo = i + 2 < len ? hexval(path[i + 2]) : -1;
      if (hi < 0 || lo < 0) return -1;
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    if (c == 0 || c == '\\') return -1;
    if (o + 1 >= outlen) return -1;
    out[o++] = c;
  }
  out[o] = 0;
  /* Every segment must be a plain name: no "", ".", "..", or hidden files. */
  const char *seg = out;
  while (*seg) {
    const char *end = strchr(seg, '/');
    size_t n = end ? (size_t)(end - seg) : strlen(seg);
    if (n == 0 && end) return -1;
    if (n && seg[0] == '.') return -1;
    if (!end) break;
    seg = end + 1;
  }
  if (o == 0 || out[o - 1] == '/') {
    const char *idx = "index.html";
    if (o + strlen(idx) + 1 > outlen) return -1;
    strcpy(out + o, idx);
  }
  return 0;
}

void static_files_serve(struct http_request *req, struct static_files *sf) {
  const char *m = http_req_method(req);
  size_t plen;
  const char *path = http_req_path(req, &plen);
  char rel[1024];
  if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
    http_res_start(req, 405, NULL);
    http_res_header(req, "Allow", "GET, HEAD");
    http_res_send(req, "method not allowed\n", 19);
    return;
  }
  if (!sf || static_resolve(path, plen, rel, sizeof(rel)) < 0) {
    http_res_text(req, 404, NULL, "not found");
    return;
  }
  int fd = openat(sf->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
    if (fd >= 0) close(fd);
    http_res_text(req, 404, NULL, "not found");
    return;
  }
  http_res_start(req, 200, NULL);
  http_res_header(req, "Content-Type", "%s", static_content_type(rel));
  http_res_header(req, "Cache-Control", "no-cache");
  http_res_header(req, "X-Content-Type-Options", "nosniff");
  http_res_send_file(req, fd, 0, (uint64_t)sb.st_size, strcmp(m, "HEAD") != 0);
}
