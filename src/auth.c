/* Access control: bearer tokens and signed upload URLs (see auth.h).
 *
 * Everything here runs on the loop thread (requests and the SIGHUP reload
 * alike), so a reload swaps the state without locking. */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "checksum.h"
#include "util.h"

#define HASH_LEN 32
/* A secret is a key, not a document: a bigger file is a wrong path. */
#define SECRET_MAX 65536
#define STR_(x) #x
#define STR(x) STR_(x)

static const char OWNER_DOMAIN[] = "resumed-owner\n";
static const char URL_DOMAIN[] = "resumed-upload-url\n";

struct auth_state {
  unsigned char (*hashes)[HASH_LEN]; /* SHA-256 of each token, sorted, no duplicates */
  size_t ntokens;
  unsigned char *secret;
  size_t secret_len;
};

struct auth {
  char *tokens_file; /* NULL: tokens off */
  char *secret_file; /* NULL: URLs unsigned */
  int behind_proxy;
  EVP_MAC *hmac;
  struct auth_state st;
};

static void state_clear(struct auth_state *s) {
  free(s->hashes);
  if (s->secret) {
    OPENSSL_cleanse(s->secret, s->secret_len);
    free(s->secret);
  }
  memset(s, 0, sizeof(*s));
}

/* SHA-256 of a followed by b (a domain prefix and a token). */
static int sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[HASH_LEN]) {
  struct checksum ck;
  int rc = checksum_init(&ck, CHECKSUM_SHA256);
  if (rc == 0 && (rc = checksum_update(&ck, a, an)) == 0 && (rc = checksum_update(&ck, b, bn)) == 0)
    return checksum_final(&ck, out);
  checksum_release(&ck);
  return rc;
}

static int hash_cmp(const void *a, const void *b) { return memcmp(a, b, HASH_LEN); }

static int is_visible(unsigned char c) { return c >= 0x21 && c <= 0x7e; }

static int load_tokens(const char *path, struct auth_state *st, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "tokens file %s: %s", path, strerror(e));
    return -e;
  }
  char *line = NULL;
  size_t cap = 0, n = 0, alloc = 0, lineno = 0;
  unsigned char(*hashes)[HASH_LEN] = NULL;
  ssize_t len;
  int rc = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    const char *s = line;
    size_t m = (size_t)len;
    while (m && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++, m--;
    while (m && (s[m - 1] == ' ' || s[m - 1] == '\t' || s[m - 1] == '\r' || s[m - 1] == '\n'))
      m--;
    if (m == 0 || s[0] == '#') continue;
    /* The message names the line, never its content: it may be a token. */
    const char *why = NULL;
    if (m < AUTH_TOKEN_MIN) why = "token shorter than " STR(AUTH_TOKEN_MIN) " bytes";
    else if (m > AUTH_TOKEN_MAX) why = "token longer than " STR(AUTH_TOKEN_MAX) " bytes";
    for (size_t i = 0; !why && i < m; i++)
      if (!is_visible((unsigned char)s[i])) why = "token holds a byte other than visible ASCII";
    if (why) {
      snprintf(err, errlen, "tokens file %s line %zu: %s", path, lineno, why);
      rc = -EINVAL;
      goto cleanup;
    }
    if (n == alloc) {
      size_t na = alloc ? alloc * 2 : 16;
      void *p = realloc(hashes, na * HASH_LEN);
      if (!p) {
        snprintf(err, errlen, "tokens file %s: out of memory", path);
        rc = -ENOMEM;
        goto cleanup;
      }
      hashes = p;
      alloc = na;
    }
    if ((rc = sha256(s, m, "", 0, hashes[n])) < 0) {
      snprintf(err, errlen, "tokens file %s: SHA-256 failed", path);
      goto cleanup;
    }
    n++;
  }
  if (ferror(f)) {
    snprintf(err, errlen, "tokens file %s: read error", path);
    rc = -EIO;
    goto cleanup;
  }
  if (n) qsort(hashes, n, HASH_LEN, hash_cmp);
  size_t u = 0; /* a token listed twice is stored once */
  for (size_t i = 0; i < n; i++)
    if (u == 0 || memcmp(hashes[u - 1], hashes[i], HASH_LEN) != 0)
      memmove(hashes[u++], hashes[i], HASH_LEN);
  st->hashes = hashes;
  st->ntokens = u;
  hashes = NULL;
cleanup:
  if (line) {
    OPENSSL_cleanse(line, cap);
    free(line);
  }
  free(hashes);
  fclose(f);
  return rc;
}

static int load_secret(const char *path, struct auth_state *st, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "secret file %s: %s", path, strerror(e));
    return -e;
  }
  int rc = 0;
  unsigned char *buf = malloc(SECRET_MAX + 1);
  if (!buf) {
    snprintf(err, errlen, "secret file %s: out of memory", path);
    rc = -ENOMEM;
    goto cleanup;
  }
  ssize_t n = read_full(fd, buf, SECRET_MAX + 1);
  if (n < 0) {
    rc = -errno;
    snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
    goto cleanup;
  }
  if (n > SECRET_MAX) {
    snprintf(err, errlen, "secret file %s: longer than %d bytes", path, SECRET_MAX);
    rc = -EFBIG;
    goto cleanup;
  }
  size_t len = (size_t)n;
  /* One line ending, as `echo` or an editor leaves it, is not part of the key. */
  if (len && buf[len - 1] == '\n') {
    len--;
    if (len && buf[len - 1] == '\r') len--;
  }
  if (len < AUTH_SECRET_MIN) {
    snprintf(err, errlen, "secret file %s: shorter than %d bytes", path, AUTH_SECRET_MIN);
    rc = -EINVAL;
    goto cleanup;
  }
  st->secret = buf;
  st->secret_len = len;
  buf = NULL;
cleanup:
  if (buf) {
    OPENSSL_cleanse(buf, SECRET_MAX + 1);
    free(buf);
  }
  close(fd);
  return rc;
}

static int load(const struct auth *a, struct auth_state *st, char *err, size_t errlen) {
  memset(st, 0, sizeof(*st));
  int rc = 0;
  if (a->tokens_file && (rc = load_tokens(a->tokens_file, st, err, errlen)) < 0) goto fail;
  if (a->secret_file && (rc = load_secret(a->secret_file, st, err, errlen)) < 0) goto fail;
  return 0;
fail:
  state_clear(st);
  return rc;
}

int auth_new(struct auth **out, const char *tokens_file, const char *secret_file, char *err,
             size_t errlen) {
  *out = NULL;
  struct auth *a = calloc(1, sizeof(*a));
  int rc = -ENOMEM;
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  if ((tokens_file && !(a->tokens_file = strdup(tokens_file))) ||
      (secret_file && !(a->secret_file = strdup(secret_file)))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (secret_file && !(a->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
    snprintf(err, errlen, "HMAC is not available in libcrypto");
    rc = -EIO;
    goto fail;
  }
  if ((rc = load(a, &a->st, err, errlen)) < 0) goto fail;
  *out = a;
  return 0;
fail:
  auth_free(a);
  return rc;
}

int auth_reload(struct auth *a, char *err, size_t errlen) {
  struct auth_state st;
  int rc = load(a, &st, err, errlen);
  if (rc < 0) return rc;
  state_clear(&a->st);
  a->st = st;
  return 0;
}

void auth_free(struct auth *a) {
  if (!a) return;
  state_clear(&a->st);
  EVP_MAC_free(a->hmac);
  free(a->tokens_file);
  free(a->secret_file);
  free(a);
}

void auth_set_behind_proxy(struct auth *a, int on) { a->behind_proxy = on; }
int auth_tokens_on(const struct auth *a) { return a->tokens_file != NULL; }
int auth_secret_on(const struct auth *a) { return a->secret_file != NULL; }

/* --- identity --- */

static int is_token68_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_token68(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && is_token68_char((unsigned char)s[i])) i++;
  if (i == 0) return 0;
  while (i < n && s[i] == '=') i++;
  return i == n;
}

/* The bearer token of the one Authorization header: 0 with it, -EACCES when
 * none was sent (no header, or another scheme), -EPERM when malformed. */
static int bearer_token(struct http_request *req, const char **tok, size_t *tok_len) {
  unsigned count = http_req_header_count(req, "authorization");
  if (count == 0) return -EACCES;
  if (count > 1) return -EPERM; /* which one would count is anyone's guess */
  size_t n;
  const char *v = http_req_header(req, "authorization", &n);
  static const char scheme[] = "bearer";
  size_t sl = sizeof(scheme) - 1;
  if (n < sl || strncasecmp(v, scheme, sl) != 0) return -EACCES;
  if (n == sl) return -EPERM; /* "Bearer" and nothing */
  if (v[sl] != ' ') return -EACCES; /* e.g. "Bearerx": another scheme */
  size_t i = sl;
  while (i < n && v[i] == ' ') i++;
  if (!is_token68(v + i, n - i)) return -EPERM;
  *tok = v + i;
  *tok_len = n - i;
  return 0;
}

/* Canonical text of an IP address given as "ip", "[v6]", "[v6]:port" or
 * "v4:port" (the forms of RFC 7239 for= and X-Forwarded-For); -EINVAL when
 * it is none of them (obfuscated ids, "unknown", garbage). */
static int parse_ip(const char *s, size_t n, char out[INET6_ADDRSTRLEN]) {
  char buf[INET6_ADDRSTRLEN + 8];
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
  if (n && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close) return -EINVAL;
    size_t rest = n - (size_t)(close - s) - 1;
    if (rest && close[1] != ':') return -EINVAL;
    n = (size_t)(close - s) - 1;
    s++;
    if (memchr(s, '.', n) && !memchr(s, ':', n)) return -EINVAL; /* [v4] is not a form */
  } else {
    const char *c = memchr(s, ':', n);
    if (c && !memchr(c + 1, ':', n - (size_t)(c - s) - 1)) n = (size_t)(c - s); /* v4:port */
  }
  if (n == 0 || n >= sizeof(buf)) return -EINVAL;
  memcpy(buf, s, n);
  buf[n] = 0;
  unsigned char addr[16];
  if (inet_pton(AF_INET, buf, addr) == 1)
    return inet_ntop(AF_INET, addr, out, INET6_ADDRSTRLEN) ? 0 : -EINVAL;
  if (inet_pton(AF_INET6, buf, addr) == 1)
    return inet_ntop(AF_INET6, addr, out, INET6_ADDRSTRLEN) ? 0 : -EINVAL;
  return -EINVAL;
}

/* for= of the first Forwarded element, as an IP. */
static int forwarded_for(struct http_request *req, char out[INET6_ADDRSTRLEN]) {
  size_t n;
  const char *v = http_req_forwarded(req, "for", &n);
  return v ? parse_ip(v, n, out) : -ENOENT;
}

static void client_ip(const struct auth *a, struct http_request *req, char out[INET6_ADDRSTRLEN]) {
  if (a->behind_proxy) {
    size_t n;
    const char *x;
    if (forwarded_for(req, out) == 0) return;
    if ((x = http_req_header_first(req, "x-forwarded-for", &n)) && parse_ip(x, n, out) == 0) return;
  }
  /* The peer is "ip:port", IPv6 without brackets: the port follows the last ':'. */
  const char *peer = http_req_peer(req);
  const char *colon = strrchr(peer, ':');
  size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
  if (n >= INET6_ADDRSTRLEN) n = INET6_ADDRSTRLEN - 1;
  memcpy(out, peer, n);
  out[n] = 0;
}

int auth_identify(const struct auth *a, struct http_request *req, char owner[STORE_OWNER_MAX + 1],
                  const char **token, size_t *token_len) {
  owner[0] = 0;
  if (token) *token = NULL;
  if (token_len) *token_len = 0;
  if (!a->tokens_file) {
    char ip[INET6_ADDRSTRLEN];
    client_ip(a, req, ip);
    snprintf(owner, STORE_OWNER_MAX + 1, "a:%s", ip);
    return 0;
  }
  const char *tok;
  size_t n;
  int rc = bearer_token(req, &tok, &n);
  if (rc < 0) return rc;
  if (n < AUTH_TOKEN_MIN || n > AUTH_TOKEN_MAX) return -EPERM;
  unsigned char h[HASH_LEN];
  if (sha256(tok, n, "", 0, h) < 0) return -EPERM;
  if (!a->st.ntokens || !bsearch(h, a->st.hashes, a->st.ntokens, HASH_LEN, hash_cmp))
    return -EPERM;
  /* Another domain than the lookup hash: the owner id recorded on disk says
   * nothing that would help find the token's list entry. */
  if (sha256(OWNER_DOMAIN, sizeof(OWNER_DOMAIN) - 1, tok, n, h) < 0) return -EPERM;
  char hex[2 * HASH_LEN + 1];
  hex_encode(h, HASH_LEN, hex);
  snprintf(owner, STORE_OWNER_MAX + 1, "t:%.32s", hex);
  if (token) *token = tok;
  if (token_len) *token_len = n;
  return 0;
}

void auth_challenge(struct http_request *req, int rc) {
  http_res_start(req, 401, NULL);
  http_res_header(req, "WWW-Authenticate", "Bearer realm=\"resumed\"%s",
                  rc == -EPERM ? ", error=\"invalid_token\"" : "");
}

int auth_may_access(const struct auth *a, const char *owner, const char *upload_owner) {
  if (!a->tokens_file) return 1;
  /* Only a token owner: an upload made with tokens off records the client
   * address ("a:…"), which no token holder may claim. */
  return owner && upload_owner && strncmp(upload_owner, "t:", 2) == 0 &&
         strcmp(owner, upload_owner) == 0;
}

/* --- signed URLs --- */

static int compute_sig(const struct auth *a, const char *key, char sig[AUTH_SIG_LEN + 1]) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t maclen = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(a->hmac);
  int ok = ctx && EVP_MAC_init(ctx, a->st.secret, a->st.secret_len, params) &&
           EVP_MAC_update(ctx, (const unsigned char *)URL_DOMAIN, sizeof(URL_DOMAIN) - 1) &&
           EVP_MAC_update(ctx, (const unsigned char *)key, strlen(key)) &&
           EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) && maclen >= AUTH_SIG_LEN / 2;
  EVP_MAC_CTX_free(ctx);
  if (!ok) return -EIO;
  hex_encode(mac, AUTH_SIG_LEN / 2, sig);
  sig[AUTH_SIG_LEN] = 0;
  return 0;
}

void auth_sign(const struct auth *a, const char *key, char sig[AUTH_SIG_LEN + 1]) {
  sig[0] = 0;
  /* On a libcrypto failure the URL goes out unsigned and every use of it is
   * refused: failing closed. */
  if (a->secret_file && compute_sig(a, key, sig) < 0) sig[0] = 0;
}

int auth_verify(const struct auth *a, const char *key, const char *sig, size_t sig_len) {
  if (!a->secret_file) return 1;
  if (sig_len != AUTH_SIG_LEN) return 0;
  char want[AUTH_SIG_LEN + 1];
  if (compute_sig(a, key, want) < 0) return 0;
  return CRYPTO_memcmp(want, sig, AUTH_SIG_LEN) == 0;
}
