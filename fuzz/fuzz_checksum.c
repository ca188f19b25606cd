/* fuzz_checksum: the tus Upload-Checksum value ("<algorithm> <base64>", as a
 * header or a trailer), parsed by parse_checksum() in src/tus.c (included
 * for the static function, as the unit tests do), and the CRC-32 the crc32
 * algorithm computes (crc32_update in src/util.c).
 *
 * Invariants: parse_checksum() accepts exactly the values a reference reading
 * accepts (a known algorithm name, one space, strict base64 of exactly that
 * algorithm's digest size); an accepted value names the digest it decodes to
 * (writing the algorithm's name and the digest in base64 gives back the
 * input); and the CRC-32 of the input computed in pieces (cut where the
 * input says) equals a bitwise reference. */
#include "tus.c"

#include <openssl/evp.h>

#include "fuzz.h"

static const struct {
  const char *name;
  enum checksum_algo algo;
  size_t size;
} known[] = {{"md5", CHECKSUM_MD5, 16},
             {"sha1", CHECKSUM_SHA1, 20},
             {"sha256", CHECKSUM_SHA256, 32},
             {"sha512", CHECKSUM_SHA512, 64},
             {"crc32", CHECKSUM_CRC32, 4}};

static void check_header(const char *v, size_t n) {
  struct body_check ck;
  unsigned char want[CHECKSUM_MAX_SIZE];
  memset(&ck, 0, sizeof(ck));
  int got = parse_checksum(&ck, v, n);

  int ref = -1;
  enum checksum_algo ref_algo = CHECKSUM_NONE;
  ssize_t dl = -1;
  const char *sp = memchr(v, ' ', n);
  if (sp) {
    size_t al = (size_t)(sp - v);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
      if (strlen(known[i].name) == al && memcmp(known[i].name, v, al) == 0) {
        dl = fuzz_ref_b64(sp + 1, n - al - 1, want, sizeof(want));
        if (dl == (ssize_t)known[i].size) ref = 0, ref_algo = known[i].algo;
      }
  }
  FUZZ_CHECK((got == 0) == (ref == 0), "parse_checksum('%.*s') = %d, reference %d", (int)n, v, got, ref);
  if (got < 0) return;
  FUZZ_CHECK((enum checksum_algo)ck.algo == ref_algo, "algorithm %d, reference %d", ck.algo, ref_algo);
  FUZZ_CHECK(ck.dlen == checksum_size(ref_algo) && memcmp(ck.digest, want, ck.dlen) == 0, "digest bytes");

  char again[16 + 4 * CHECKSUM_MAX_SIZE / 3 + 4];
  int l = snprintf(again, sizeof(again), "%s ", checksum_algo_name(ref_algo));
  l += EVP_EncodeBlock((unsigned char *)again + l, ck.digest, (int)ck.dlen);
  FUZZ_CHECK((size_t)l == n && memcmp(again, v, n) == 0, "'%.*s' is not what it decodes to ('%s')", (int)n,
             v, again);
}

static uint32_t ref_crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

static void check_crc(const uint8_t *d, size_t n) {
  uint32_t c = 0;
  size_t pos = 0, step = n ? (size_t)d[0] % 17 + 1 : 1;
  while (pos < n) {
    size_t k = n - pos < step ? n - pos : step;
    c = crc32_update(c, d + pos, k);
    pos += k;
    step = step * 3 % 29 + 1;
  }
  FUZZ_CHECK(c == ref_crc32(d, n), "crc32 %08x, reference %08x", c, ref_crc32(d, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  check_header((const char *)data, size);
  check_crc(data, size);
  return 0;
}
