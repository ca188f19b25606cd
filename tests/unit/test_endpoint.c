/* The upload endpoint's pure parts: download headers, metadata, CORS
 * origins, upload URLs. */
#include <errno.h>

#include "cors.h"
#include "download.h"
#include "endpoint.h"
#include "metadata.h"
#include "unit.h"

static int range(const char *v, uint64_t len, uint64_t *a, uint64_t *b) {
  return download_parse_range(v, strlen(v), len, a, b);
}

static void test_ranges(void) {
  uint64_t a, b;
  CHECK(range("bytes=0-9", 100, &a, &b) == 0 && a == 0 && b == 9);
  CHECK(range("bytes=10-", 100, &a, &b) == 0 && a == 10 && b == 99);
  CHECK(range("bytes=-10", 100, &a, &b) == 0 && a == 90 && b == 99);
  CHECK(range("bytes=-1000", 100, &a, &b) == 0 && a == 0 && b == 99); /* suffix past the start */
  CHECK(range("bytes=50-1000", 100, &a, &b) == 0 && a == 50 && b == 99); /* clamped */
  CHECK(range("BYTES=1-1", 100, &a, &b) == 0 && a == 1 && b == 1);
  CHECK(range("bytes=100-", 100, &a, &b) < 0);  /* unsatisfiable */
  CHECK(range("bytes=-0", 100, &a, &b) < 0);
  CHECK(range("bytes=0-0", 0, &a, &b) < 0);     /* nothing to give */
  CHECK(range("bytes=0-1,5-6", 100, &a, &b) == 1); /* several: send all */
  CHECK(range("bytes=5-1", 100, &a, &b) == 1);  /* malformed: ignored */
  CHECK(range("bytes=a-b", 100, &a, &b) == 1);
  CHECK(range("items=0-1", 100, &a, &b) == 1);
  CHECK(range("bytes=", 100, &a, &b) == 1);
}

static void test_safe_types(void) {
  int inl;
  CHECK(strcmp(download_safe_type("image/png", &inl), "image/png") == 0 && inl);
  CHECK(strcmp(download_safe_type("Image/PNG; q=1", &inl), "image/png") == 0 && inl);
  CHECK(strcmp(download_safe_type("text/plain;charset=utf-8", &inl), "text/plain") == 0 && inl);
  CHECK(strcmp(download_safe_type("text/html", &inl), "application/octet-stream") == 0 && !inl);
  CHECK(strcmp(download_safe_type("image/svg+xml", &inl), "application/octet-stream") == 0 && !inl);
  CHECK(strcmp(download_safe_type("image/pngx", &inl), "application/octet-stream") == 0 && !inl);
  CHECK(strcmp(download_safe_type(NULL, &inl), "application/octet-stream") == 0 && !inl);
}

static void test_disposition(void) {
  char out[1200];
  download_disposition("a b.txt", 1, out, sizeof(out));
  CHECK(strcmp(out, "inline; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt") == 0);
  download_disposition("../../etc/passwd", 0, out, sizeof(out));
  CHECK(strcmp(out, "attachment; filename=\"passwd\"; filename*=UTF-8''passwd") == 0);
  download_disposition("C:\\dir\\x.pdf", 0, out, sizeof(out));
  CHECK(strcmp(out, "attachment; filename=\"x.pdf\"; filename*=UTF-8''x.pdf") == 0);
  download_disposition("q\"u;o\r\nte", 0, out, sizeof(out)); /* control bytes: no name at all */
  CHECK(strcmp(out, "attachment") == 0);
  download_disposition("q\"u;ote", 0, out, sizeof(out));
  CHECK(strcmp(out, "attachment; filename=\"q_u_ote\"; filename*=UTF-8''q%22u%3Bote") == 0);
  download_disposition("\xc3\xa9t\xc3\xa9.png", 1, out, sizeof(out));
  CHECK(strcmp(out, "inline; filename=\"__t__.png\"; filename*=UTF-8''%C3%A9t%C3%A9.png") == 0);
  download_disposition("bad\xff.png", 1, out, sizeof(out)); /* not UTF-8 */
  CHECK(strcmp(out, "inline") == 0);
  download_disposition("", 0, out, sizeof(out));
  CHECK(strcmp(out, "attachment") == 0);
  download_disposition(NULL, 0, out, sizeof(out));
  CHECK(strcmp(out, "attachment") == 0);
}

static void test_metadata_get_append(void) {
  char buf[64], v[16];
  size_t len = 0;
  buf[0] = 0;
  CHECK(metadata_append(buf, &len, sizeof(buf), "filename", "a.txt", 5) == 0);
  CHECK(metadata_append(buf, &len, sizeof(buf), "empty", "", 0) == 0);
  CHECK(strcmp(buf, "filename YS50eHQ=,empty ") == 0);
  CHECK(metadata_valid(buf, len) == 0);
  CHECK(metadata_get(buf, "filename", v, sizeof(v)) == 5 && memcmp(v, "a.txt", 5) == 0);
  CHECK(metadata_get(buf, "empty", v, sizeof(v)) == 0);
  CHECK(metadata_get(buf, "file", v, sizeof(v)) == -ENOENT);
  CHECK(metadata_get(buf, "filename", v, 2) == -ENOSPC);
  CHECK(metadata_get(NULL, "filename", v, sizeof(v)) == -ENOENT);
  char small[12];
  size_t sl = 0;
  small[0] = 0;
  CHECK(metadata_append(small, &sl, sizeof(small), "filename", "a.txt", 5) == -ENOSPC);
}

static void test_cors_origins(void) {
  struct cors *c;
  CHECK(cors_new(&c, "*") == 0);
  cors_free(c);
  CHECK(cors_new(&c, "https://a.example, http://localhost:3000") == 0);
  cors_free(c);
  CHECK(cors_new(&c, "notanorigin") == -EINVAL);
  CHECK(cors_new(&c, "http://a.example/path") == -EINVAL);
  CHECK(cors_new(&c, "http://a.example,") == -EINVAL);
  CHECK(cors_new(&c, "http://a b") == -EINVAL);
}

static void test_url_keys(void) {
  struct endpoint *ep;
  struct endpoint_config cfg = {.base_path = "/files"};
  char key[STORE_KEY_LEN + 1];
  const char *id = "0123456789abcdef0123456789abcdef";
  char url[128];
  CHECK(endpoint_new(&ep, NULL, &cfg) == 0);
  snprintf(url, sizeof(url), "/files/%s", id);
  CHECK(endpoint_url_key(ep, url, strlen(url), key) == 0 && strcmp(key, id) == 0);
  snprintf(url, sizeof(url), "https://up.example:8443/files/%s", id);
  CHECK(endpoint_url_key(ep, url, strlen(url), key) == 0 && strcmp(key, id) == 0);
  snprintf(url, sizeof(url), "/other/%s", id);
  CHECK(endpoint_url_key(ep, url, strlen(url), key) == -EINVAL);
  snprintf(url, sizeof(url), "/files/%s/x", id);
  CHECK(endpoint_url_key(ep, url, strlen(url), key) == -EINVAL);
  CHECK(endpoint_url_key(ep, "/files/0123", 11, key) == -EINVAL);
  CHECK(endpoint_url_key(ep, "/files/0123456789ABCDEF0123456789abcdef", 39, key) == -EINVAL);
  CHECK(endpoint_url_key(ep, "http://host", 11, key) == -EINVAL);
  endpoint_free(ep);
}

int main(void) {
  RUN(test_ranges);
  RUN(test_safe_types);
  RUN(test_disposition);
  RUN(test_metadata_get_append);
  RUN(test_cors_origins);
  RUN(test_url_keys);
  UNIT_DONE();
}
