/* Digests for request-body checksums (tus Upload-Checksum, RFC 9530 digest
 * fields): md5, sha1, sha256, sha512 (OpenSSL) and crc32 (ours). Contexts are used by one thread at a time. */
#ifndef RESUMED_CHECKSUM_H
#define RESUMED_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

enum checksum_algo {
  CHECKSUM_NONE, CHECKSUM_MD5, CHECKSUM_SHA1, CHECKSUM_SHA256, CHECKSUM_SHA512, CHECKSUM_CRC32
};

#define CHECKSUM_MAX_SIZE 64
/* What OPTIONS advertises, in the spelling clients send. */
#define CHECKSUM_ALGORITHMS "md5,sha1,sha256,sha512,crc32"

struct checksum {
  enum checksum_algo algo;
  void *md; /* EVP_MD_CTX */
  uint32_t crc;
};

/* Algorithm by its lower-case tus name; CHECKSUM_NONE if unknown. */
enum checksum_algo checksum_algo_parse(const char *name, size_t len);
size_t checksum_size(enum checksum_algo algo);
/* Its lower-case tus name ("sha256"); NULL for CHECKSUM_NONE. */
const char *checksum_algo_name(enum checksum_algo algo);

int checksum_init(struct checksum *c, enum checksum_algo algo);
int checksum_update(struct checksum *c, const void *buf, size_t len);
/* Writes checksum_size() bytes to out and releases the context. */
int checksum_final(struct checksum *c, unsigned char *out);
void checksum_release(struct checksum *c);

#endif
