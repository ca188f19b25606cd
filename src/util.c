#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

int parse_u64_strict(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0) return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10) return -ERANGE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int parse_size(const char *s, uint64_t *out) {
  size_t n = 0;
  while (s[n] >= '0' && s[n] <= '9') n++;
  uint64_t v, mul = 1;
  if (parse_u64_strict(s, n, &v) < 0) return -EINVAL;
  switch (s[n]) {
  case 0: break;
  case 'k': case 'K': mul = 1ull << 10; break;
  case 'm': case 'M': mul = 1ull << 20; break;
  case 'g': case 'G': mul = 1ull << 30; break;
  case 't': case 'T': mul = 1ull << 40; break;
  default: return -EINVAL;
  }
  if (s[n] && s[n + 1]) return -EINVAL;
  if (v > INT64_MAX / mul) return -ERANGE;
  *out = v * mul;
  return 0;
}

ssize_t read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

int write_full(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, (const char *)buf + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)n;
  }
  return 0;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

/* CRC-32 (ISO-HDLC, as zlib and tus's crc32 use); store threads call it too. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint32_t *table = crc_table;
  const unsigned char *p = buf;
  crc = ~crc;
  while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void hex_encode(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

/* Fetched once (OpenSSL 3 otherwise looks the algorithm up on every call);
 * read-only afterwards, so worker threads may use it too. */
static EVP_MD *sha256_md;

double monotonic_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int util_init(void) {
  if (!sha256_md && !(sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL))) return -EIO;
  return 0;
}

int sha256_hex(const void *buf, size_t len, char out[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (util_init() < 0) return -EIO;
  if (!EVP_Digest(buf, len, md, &mdlen, sha256_md, NULL) || mdlen != 32) return -EIO;
  hex_encode(md, 32, out);
  return 0;
}

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

ssize_t base64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
  if (n % 4) return -EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      unsigned char ch = (unsigned char)in[i + k];
      if (ch == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad || (v[k] = b64val(ch)) < 0) return -EINVAL; /* '=' only at the very end */
    }
    unsigned triple = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    /* Canonical form: bits under the padding must be zero. */
    if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15))) return -EINVAL;
    unsigned char bytes[3] = {(unsigned char)(triple >> 16), (unsigned char)(triple >> 8),
                              (unsigned char)triple};
    for (int k = 0; k < 3 - pad; k++) {
      if (out) {
        if (o >= cap) return -EINVAL;
        out[o] = bytes[k];
      }
      o++;
    }
  }
  return (ssize_t)o;
}

void http_date(int64_t t, char out[32]) {
  static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
           months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
