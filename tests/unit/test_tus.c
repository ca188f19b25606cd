/* Parsers of the tus layer: Upload-Metadata, base64, checksum digests. */
#include <errno.h>

#include "checksum.h"
#include "metadata.h"
#include "unit.h"
#include "util.h"

static int meta(const char *s) { return metadata_valid(s, strlen(s)); }

static void test_metadata(void) {
  CHECK(meta("") == 0);
  CHECK(meta("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==") == 0);
  CHECK(meta("filename d29ybGQ=,is_confidential") == 0);
  CHECK(meta("a YQ==, b Yg==") == 0);
  CHECK(meta("empty ") == 0); /* space then no value */
  CHECK(meta("filename d29ybGQ=,filename Yg==") < 0);   /* duplicate key */
  CHECK(meta("filename not-base64!") < 0);
  CHECK(meta("filename d29ybGQ") < 0);                  /* missing padding */
  CHECK(meta(",a YQ==") < 0);                           /* empty first pair */
  CHECK(meta("a YQ==,") < 0);                           /* empty last pair */
  CHECK(meta("a YQ==,,b Yg==") < 0);                    /* empty pair */
  CHECK(meta("ke\x01y YQ==") < 0);                      /* control byte in key */
  CHECK(meta("a YQ== extra") < 0);                      /* value with a space */
}

static void test_base64(void) {
  unsigned char out[16];
  CHECK(base64_decode("", 0, out, sizeof(out)) == 0);
  CHECK(base64_decode("YQ==", 4, out, sizeof(out)) == 1 && out[0] == 'a');
  CHECK(base64_decode("YWJj", 4, out, sizeof(out)) == 3 && memcmp(out, "abc", 3) == 0);
  CHECK(base64_decode("YWI=", 4, out, sizeof(out)) == 2 && memcmp(out, "ab", 2) == 0);
  CHECK(base64_decode("YQ", 2, out, sizeof(out)) < 0);      /* unpadded */
  CHECK(base64_decode("Y===", 4, out, sizeof(out)) < 0);
  CHECK(base64_decode("YR==", 4, out, sizeof(out)) < 0);    /* non-canonical padding bits */
  CHECK(base64_decode("YQ==YQ==", 8, out, sizeof(out)) < 0); /* padding mid-string */
  CHECK(base64_decode("YW-j", 4, out, sizeof(out)) < 0);    /* url-safe alphabet */
  CHECK(base64_decode("YWJj", 4, out, 2) < 0);              /* too small a buffer */
}

static void digest(enum checksum_algo a, const char *s, unsigned char *out) {
  struct checksum c;
  CHECK(checksum_init(&c, a) == 0);
  CHECK(checksum_update(&c, s, strlen(s)) == 0);
  CHECK(checksum_final(&c, out) == 0);
}

static void test_checksums(void) {
  unsigned char d[CHECKSUM_MAX_SIZE];
  char hex[2 * CHECKSUM_MAX_SIZE + 1];
  CHECK(checksum_algo_parse("sha1", 4) == CHECKSUM_SHA1);
  CHECK(checksum_algo_parse("SHA1", 4) == CHECKSUM_NONE); /* tus names are lower-case */
  CHECK(checksum_algo_parse("sha512", 6) == CHECKSUM_SHA512);
  CHECK(checksum_algo_parse("sha384", 6) == CHECKSUM_NONE);
  digest(CHECKSUM_MD5, "abc", d);
  hex_encode(d, 16, hex);
  CHECK(strcmp(hex, "900150983cd24fb0d6963f7d28e17f72") == 0);
  digest(CHECKSUM_SHA1, "abc", d);
  hex_encode(d, 20, hex);
  CHECK(strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
  digest(CHECKSUM_SHA256, "abc", d);
  hex_encode(d, 32, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  digest(CHECKSUM_SHA512, "abc", d);
  hex_encode(d, 64, hex);
  CHECK(strcmp(hex, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f") == 0);
  digest(CHECKSUM_CRC32, "123456789", d); /* big-endian CRC-32 */
  hex_encode(d, 4, hex);
  CHECK(strcmp(hex, "cbf43926") == 0);
}

int main(void) {
  RUN(test_metadata);
  RUN(test_base64);
  RUN(test_checksums);
  UNIT_DONE();
}
