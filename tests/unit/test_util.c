#include "util.h"

#include <errno.h>
#include <stdint.h>

#include "unit.h"

static void test_parse_u64_strict(void) {
  uint64_t v = 99;
  CHECK(parse_u64_strict("0", 1, &v) == 0 && v == 0);
  CHECK(parse_u64_strict("12345", 5, &v) == 0 && v == 12345);
  CHECK(parse_u64_strict("007", 3, &v) == 0 && v == 7);
  CHECK(parse_u64_strict("9223372036854775807", 19, &v) == 0 && v == INT64_MAX);
  v = 42;
  CHECK(parse_u64_strict("9223372036854775808", 19, &v) == -ERANGE);
  CHECK(parse_u64_strict("99999999999999999999", 20, &v) == -ERANGE);
  const char *bad[] = {"", "abc", "-1", "+5", "1e3", "0x10", " 1", "1 ", "1.0", "١"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK(parse_u64_strict(bad[i], strlen(bad[i]), &v) < 0);
  CHECK(v == 42); /* untouched on error */
  /* length-bounded: trailing bytes beyond n are not looked at */
  CHECK(parse_u64_strict("12x", 2, &v) == 0 && v == 12);
}

static void test_parse_size(void) {
  uint64_t v;
  CHECK(parse_size("0", &v) == 0 && v == 0);
  CHECK(parse_size("64M", &v) == 0 && v == 64ull << 20);
  CHECK(parse_size("16k", &v) == 0 && v == 16384);
  CHECK(parse_size("2G", &v) == 0 && v == 2ull << 30);
  CHECK(parse_size("1T", &v) == 0 && v == 1ull << 40);
  CHECK(parse_size("abc", &v) < 0);
  CHECK(parse_size("10MB", &v) < 0);
  CHECK(parse_size("", &v) < 0);
  CHECK(parse_size("-1", &v) < 0);
  CHECK(parse_size("99999999999T", &v) < 0);
}

static void test_crc32(void) {
  /* standard check value of CRC-32/ISO-HDLC */
  CHECK(crc32_update(0, "123456789", 9) == 0xCBF43926u);
  CHECK(crc32_update(0, "", 0) == 0);
  uint32_t c = crc32_update(0, "1234", 4);
  CHECK(crc32_update(c, "56789", 5) == 0xCBF43926u);
}

static void test_sha256_hex(void) {
  char out[65];
  CHECK(sha256_hex("abc", 3, out) == 0);
  CHECK(strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

int main(void) {
  RUN(test_parse_u64_strict);
  RUN(test_parse_size);
  RUN(test_crc32);
  RUN(test_sha256_hex);
  UNIT_DONE();
}
