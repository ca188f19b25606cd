#include "static_files.h"

#include "unit.h"

static int res(const char *p, char *out) { return static_resolve(p, strlen(p), out, 256); }

static void test_resolve(void) {
  char out[256];
  CHECK(res("/", out) == 0 && strcmp(out, "index.html") == 0);
  CHECK(res("/app.js", out) == 0 && strcmp(out, "app.js") == 0);
  CHECK(res("/a/b.css", out) == 0 && strcmp(out, "a/b.css") == 0);
  CHECK(res("/dir/", out) == 0 && strcmp(out, "dir/index.html") == 0);
  CHECK(res("/sp%20ace.txt", out) == 0 && strcmp(out, "sp ace.txt") == 0);
  const char *bad[] = {"/../etc/passwd", "/a/../../x", "/%2e%2e/x", "/.hidden", "/a/./b",
                       "/a//b", "/x%00y", "/%zz", "/%2", "relative", "/a\\b", "/%2E%2E/"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (res(bad[i], out) == 0) fprintf(stderr, "  accepted %s -> %s\n", bad[i], out);
    CHECK(res(bad[i], out) < 0);
  }
}

static void test_types(void) {
  CHECK(strncmp(static_content_type("index.html"), "text/html", 9) == 0);
  CHECK(strncmp(static_content_type("a.js"), "text/javascript", 15) == 0);
  CHECK(strncmp(static_content_type("a.CSS"), "text/css", 8) == 0);
  CHECK(strcmp(static_content_type("x.svg"), "image/svg+xml") == 0);
  CHECK(strcmp(static_content_type("noext"), "application/octet-stream") == 0);
}

int main(void) {
  RUN(test_resolve);
  RUN(test_types);
  UNIT_DONE();
}
