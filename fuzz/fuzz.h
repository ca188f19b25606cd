/* Shared by the fuzz targets: an invariant check that stops the fuzzer with
 * a message (libFuzzer saves the input as a crash artifact on abort()), and a
 * reference base64 decoder written apart from src/util.c on purpose: the
 * targets compare the server's decoding against it. */
#ifndef RESUMED_FUZZ_H
#define RESUMED_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define FUZZ_CHECK(cond, ...)                                                         \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fputc('\n', stderr);                                                            \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

static inline int fuzz_b64v(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Strict RFC 4648 §4 base64 (padding, no whitespace, zero bits under the
 * padding) into out (cap bytes); -1 if invalid or too long. */
static inline ssize_t fuzz_ref_b64(const char *in, size_t n, unsigned char *out, size_t cap) {
  size_t pad = 0, o = 0;
  uint32_t acc = 0;
  int bits = 0;
  if (n % 4) return -1;
  while (pad < 2 && pad < n && in[n - 1 - pad] == '=') pad++;
  for (size_t i = 0; i < n - pad; i++) {
    int v = fuzz_b64v((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o == cap) return -1;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return acc ? -1 : (ssize_t)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
