#include "checksum.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "util.h"

static const struct {
  const char *name;
  enum checksum_algo algo;
  size_t size;
} algos[] = {
    {"md5", CHECKSUM_MD5, 16},
    {"sha1", CHECKSUM_SHA1, 20},
    {"sha256", CHECKSUM_SHA256, 32},
    {"sha512", CHECKSUM_SHA512, 64},
    {"crc32", CHECKSUM_CRC32, 4},
};

enum checksum_algo checksum_algo_parse(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
    if (strlen(algos[i].name) == len && memcmp(algos[i].name, name, len) == 0) return algos[i].algo;
  return CHECKSUM_NONE;
}

size_t checksum_size(enum checksum_algo algo) {
  for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
    if (algos[i].algo == algo) return algos[i].size;
  return 0;
}

const char *checksum_algo_name(enum checksum_algo algo) {
  for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
    if (algos[i].algo == algo) return algos[i].name;
  return NULL;
}

int checksum_init(struct checksum *c, enum checksum_algo algo) {
  const EVP_MD *md = NULL;
  memset(c, 0, sizeof(*c));
  c->algo = algo;
  switch (algo) {
  case CHECKSUM_CRC32: return 0;
  case CHECKSUM_MD5: md = EVP_md5(); break;
  case CHECKSUM_SHA1: md = EVP_sha1(); break;
  case CHECKSUM_SHA256: md = EVP_sha256(); break;
  case CHECKSUM_SHA512: md = EVP_sha512(); break;
  default: return -EINVAL;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return -ENOMEM;
  if (!EVP_DigestInit_ex(ctx, md, NULL)) {
    EVP_MD_CTX_free(ctx);
    return -EIO;
  }
  c->md = ctx;
  return 0;
}

int checksum_update(struct checksum *c, const void *buf, size_t len) {
  if (c->algo == CHECKSUM_CRC32) {
    c->crc = crc32_update(c->crc, buf, len);
    return 0;
  }
  return EVP_DigestUpdate(c->md, buf, len) ? 0 : -EIO;
}

int checksum_final(struct checksum *c, unsigned char *out) {
  int rc = 0;
  if (c->algo == CHECKSUM_CRC32) {
    /* big-endian, as tusd and the tus clients encode it */
    out[0] = (unsigned char)(c->crc >> 24);
    out[1] = (unsigned char)(c->crc >> 16);
    out[2] = (unsigned char)(c->crc >> 8);
    out[3] = (unsigned char)c->crc;
  } else {
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(c->md, out, &n) || n != checksum_size(c->algo)) rc = -EIO;
  }
  checksum_release(c);
  return rc;
}

void checksum_release(struct checksum *c) {
  if (c->md) EVP_MD_CTX_free(c->md);
  c->md = NULL;
}
