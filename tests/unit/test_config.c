#include "config.h"

#include <errno.h>

#include "unit.h"

static int parse(struct config *c, const char *const *args, int n) {
  char *argv[32];
  char err[256];
  argv[0] = "resumed";
  for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
  config_defaults(c);
  return config_parse(c, n + 1, argv, err, sizeof(err));
}

static void test_defaults(void) {
  struct config c;
  CHECK(parse(&c, NULL, 0) == 0);
  CHECK(strcmp(c.host, "127.0.0.1") == 0);
  CHECK(c.port == 8080);
  CHECK(strcmp(c.dir, "./data") == 0);
  CHECK(c.max_header_bytes == 16384);
  CHECK(c.sync_interval == 64ull << 20);
  CHECK(c.max_size == 0);
}

static void test_values(void) {
  struct config c;
  const char *a[] = {"--listen", "0.0.0.0:9000", "--dir", "/tmp/x", "--max-size", "10G",
                     "--header-timeout", "3", "--max-connections", "2000", "--quiet",
                     "--sync-interval", "1M"};
  CHECK(parse(&c, a, 13) == 0);
  CHECK(strcmp(c.host, "0.0.0.0") == 0 && c.port == 9000);
  CHECK(strcmp(c.dir, "/tmp/x") == 0);
  CHECK(c.max_size == 10ull << 30);
  CHECK(c.header_timeout_ms == 3000);
  CHECK(c.max_connections == 2000);
  CHECK(c.quiet == 1);
  CHECK(c.sync_interval == 1 << 20);
  const char *v6[] = {"--listen", "[::1]:0"};
  CHECK(parse(&c, v6, 2) == 0);
  CHECK(strcmp(c.host, "::1") == 0 && c.port == 0);
}

static void test_bad(void) {
  struct config c;
  const char *cases[][2] = {
      {"--listen", "nonsense"}, {"--listen", "1.2.3.4:99999"}, {"--max-size", "abc"},
      {"--bogus", "1"},         {"--header-timeout", "0"},     {"--max-headers", "x"},
      {"--dir", ""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    CHECK(parse(&c, cases[i], 2) == -EINVAL);
  const char *missing[] = {"--dir"};
  CHECK(parse(&c, missing, 1) == -EINVAL);
  const char *stray[] = {"file.txt"};
  CHECK(parse(&c, stray, 1) == -EINVAL);
}

int main(void) {
  RUN(test_defaults);
  RUN(test_values);
  RUN(test_bad);
  UNIT_DONE();
}
