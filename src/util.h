/* Small shared helpers: strict number parsing, full reads/writes, CRC-32, hex. */
#ifndef RESUMED_UTIL_H
#define RESUMED_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decimal digits only (no sign, space or prefix), at most INT64_MAX. */
int parse_u64_strict(const char *s, size_t n, uint64_t *out);
/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
int parse_size(const char *s, uint64_t *out);

ssize_t read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* Strict RFC 4648 §4 base64 (standard alphabet, padding required, no
 * whitespace). Returns the decoded length or -EINVAL; out may be NULL. */
ssize_t base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
void http_date(int64_t t, char out[32]);

void hex_encode(const unsigned char *in, size_t n, char *out);
/* Seconds on CLOCK_MONOTONIC, for measuring intervals. */
double monotonic_seconds(void);
/* Loads the digests used below; call once at start-up, before threads. */
int util_init(void);
/* Lowercase hex SHA-256 of buf, 64 chars + NUL. */
int sha256_hex(const void *buf, size_t len, char out[65]);

#endif
