/* Access control (auth.c): loading and reloading the tokens and secret files,
 * identifying real requests, and signing upload URLs.
 *
 * Requests go through the real connection layer: an in-process server (as in
 * test_http.c) whose handler runs auth_identify() / auth_challenge() on the
 * request and answers with the result, and a client on a blocking socket. One
 * listener on 127.0.0.1 and one on ::1 for the IPv6 peer.
 *
 * The expected values were computed independently with the openssl CLI when
 * this test was written, e.g.
 *   printf 'resumed-upload-url\n%s' 0123456789abcdef0123456789abcdef |
 *     openssl dgst -sha256 -hmac 'k3y-for-the-unit-test-0123456789ABCDEF'
 *   printf 'resumed-owner\n%s' alice-token-0123456789 | openssl dgst -sha256 */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>

#include "unit.h"

static uv_loop_t *loop;
static struct http_server *srv;
static struct http_server *srv6;
static int port4, port6;
static uv_async_t stop_async;
static struct auth *_Atomic cur; /* what the handler identifies with */
static char dir[] = "/tmp/test_auth.XXXXXX";

/* Answers "rc=<rc> owner=<owner> token=<token>", under a 401 challenge when
 * auth_identify() refused. */
static void on_request(struct http_request *req, void *ctx) {
  (void)ctx;
  char owner[STORE_OWNER_MAX + 1] = "unset";
  const char *tok = "unset";
  size_t tn = 5;
  int rc = auth_identify(cur, req, owner, &tok, &tn);
  char body[512];
  int n = snprintf(body, sizeof(body), "rc=%d owner=%s token=%.*s\n", rc, owner,
                   tok ? (int)tn : 4, tok ? tok : "NULL");
  if (rc < 0) auth_challenge(req, rc);
  else http_res_start(req, 200, NULL);
  http_res_send(req, body, (size_t)n);
}

static void on_stop(uv_async_t *a) {
  http_server_shutdown(srv);
  http_server_shutdown(srv6);
  uv_close((uv_handle_t *)a, NULL);
}

static void *server_thread(void *arg) {
  (void)arg;
  uv_run(loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Sends one GET with the extra header lines (each ending in CRLF) and reads
 * the whole response into resp (the server closes after Connection: close). */
static void ask6(int v6, const char *headers, char *resp, size_t cap) {
  resp[0] = 0;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage ss = {0};
  socklen_t sl;
  if (v6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port6);
    inet_pton(AF_INET6, "::1", &s6->sin6_addr);
    sl = sizeof(*s6);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port4);
    inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
    sl = sizeof(*s4);
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  CHECK(connect(fd, (struct sockaddr *)&ss, sl) == 0);
  char req[4096];
  int n = snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n",
                   headers);
  CHECK(write(fd, req, (size_t)n) == n);
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, resp + got, cap - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    if (got + 1 >= cap) break;
  }
  resp[got] = 0;
  close(fd);
}

static void ask(const char *headers, char *resp, size_t cap) { ask6(0, headers, resp, cap); }

/* The response body's "rc=… owner=… token=…" line. */
static const char *result(const char *resp) {
  const char *b = strstr(resp, "\r\n\r\n");
  return b ? b + 4 : "";
}

/* Whether identifying with these headers gives exactly `want` (a result line
 * without its newline). */
static int identifies_as(const char *headers, const char *want) {
  char resp[4096], w[600];
  ask(headers, resp, sizeof(resp));
  snprintf(w, sizeof(w), "%s\n", want);
  if (strcmp(result(resp), w) == 0) return 1;
  fprintf(stderr, "  headers %s-> %s  expected %s", headers, result(resp), w);
  return 0;
}

static char *path_of(const char *name) {
  static char p[4][256];
  static int i;
  char *s = p[i++ % 4];
  snprintf(s, 256, "%s/%s", dir, name);
  return s;
}

static void write_file(const char *name, const char *data, size_t n) {
  int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
  close(fd);
}
static void write_str(const char *name, const char *s) { write_file(name, s, strlen(s)); }

#define ALICE "alice-token-0123456789"
#define ALICE_OWNER "t:a97b0281199a29ae1b202be10a57a723"
#define BOB "bob.Token_with~all+token68/chars=="
#define BOB_OWNER "t:578922a805150101270f9fa1690398e5"
#define SECRET "k3y-for-the-unit-test-0123456789ABCDEF"
#define SECRET2 "another-secret-of-enough-length-0123456789"
#define KEY "0123456789abcdef0123456789abcdef"
#define SIG "7a0b5e1859dd4491bfe007630bcd7c1b"  /* with SECRET */
#define SIG2 "933063100c4a88315821e402dbf63b54" /* with SECRET2 */

static struct auth *make(const char *tokens, const char *secret) {
  struct auth *a = NULL;
  char err[256] = "";
  int rc = auth_new(&a, tokens ? path_of(tokens) : NULL, secret ? path_of(secret) : NULL, err,
                    sizeof(err));
  if (rc < 0) fprintf(stderr, "  auth_new: %d %s\n", rc, err);
  CHECK(rc == 0 && a);
  return a;
}

static void test_load_tokens(void) {
  char tok16[AUTH_TOKEN_MIN + 1], tok256[AUTH_TOKEN_MAX + 1];
  memset(tok16, 'a', AUTH_TOKEN_MIN);
  tok16[AUTH_TOKEN_MIN] = 0;
  memset(tok256, 'z', AUTH_TOKEN_MAX);
  tok256[AUTH_TOKEN_MAX] = 0;
  char file[2048];
  snprintf(file, sizeof(file),
           "# tokens for the unit test\n"
           "\n"
           "   \t\r\n"
           "  " ALICE " \t\r\n"  /* CRLF and surrounding blanks */
           "\t# an indented comment line: " BOB "x\n"
           BOB "\n"
           ALICE "\n"            /* listed twice */
           "%s\n%s",             /* the shortest and longest, the last without a newline */
           tok16, tok256);
  write_str("tokens", file);
  struct auth *a = make("tokens", NULL);
  if (!a) return;
  cur = a;
  CHECK(auth_tokens_on(a) && !auth_secret_on(a));
  CHECK(identifies_as("Authorization: Bearer " ALICE "\r\n",
                      "rc=0 owner=" ALICE_OWNER " token=" ALICE));
  char h[600], want[600];
  CHECK(identifies_as("Authorization: Bearer " BOB "\r\n", "rc=0 owner=" BOB_OWNER " token=" BOB));
  const char *toks[] = {tok16, tok256};
  for (int i = 0; i < 2; i++) {
    snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", toks[i]);
    char resp[4096];
    ask(h, resp, sizeof(resp));
    snprintf(want, sizeof(want), " token=%s\n", toks[i]);
    CHECK(strncmp(result(resp), "rc=0 owner=t:", 13) == 0);
    CHECK(strstr(result(resp), want) != NULL);
  }
  /* the commented-out token is not listed */
  CHECK(identifies_as("Authorization: Bearer " BOB "x\r\n",
                      "rc=-1 owner= token=NULL"));
  auth_free(a);
}

/* auth_new on this tokens file fails with a message naming `line` and not
 * holding the token. */
#define BAD_TOKENS(lit, line, tok) expect_bad_tokens(lit, sizeof(lit) - 1, line, tok)
static void expect_bad_tokens(const char *file, size_t n, int line, const char *token) {
  write_file("bad", file, n);
  struct auth *a = (struct auth *)1;
  char err[256] = "";
  CHECK(auth_new(&a, path_of("bad"), NULL, err, sizeof(err)) < 0);
  CHECK(a == NULL);
  char want[32];
  snprintf(want, sizeof(want), "line %d:", line);
  if (!strstr(err, want)) fprintf(stderr, "  err \"%s\" lacks \"%s\"\n", err, want);
  CHECK(strstr(err, want) != NULL);
  if (token) CHECK(strstr(err, token) == NULL);
}

static void test_load_errors(void) {
  BAD_TOKENS("# c\n" ALICE "\nshort-token-789\n", 3, "short-token-789");
  char longer[AUTH_TOKEN_MAX + 2];
  memset(longer, 'q', AUTH_TOKEN_MAX + 1);
  longer[AUTH_TOKEN_MAX + 1] = 0;
  char file[600];
  snprintf(file, sizeof(file), "\n\n%s\n", longer);
  expect_bad_tokens(file, strlen(file), 3, "qqqqqqqqqqqqqqqq");
  BAD_TOKENS("with inner space-0123\n", 1, "inner space");
  BAD_TOKENS(ALICE "\nbad-\x7f-byte-0123456789\n", 2, "byte-0123");
  BAD_TOKENS("utf8-\xc3\xa9-token-0123456789\n", 1, "token-0123");
  BAD_TOKENS("nul-\0-token-0123456789\n", 1, "token-0123");
  BAD_TOKENS("vtab-\v-token-0123456789\n", 1, "token-0123");

  struct auth *a = (struct auth *)1;
  char err[256] = "";
  CHECK(auth_new(&a, path_of("missing"), NULL, err, sizeof(err)) == -ENOENT);
  CHECK(a == NULL && strstr(err, "missing") != NULL);

  /* the secret: one line ending is dropped, then at least 32 bytes */
  write_str("secret", "0123456789abcdef0123456789abcde\n"); /* 31 + LF */
  a = (struct auth *)1;
  err[0] = 0;
  CHECK(auth_new(&a, NULL, path_of("secret"), err, sizeof(err)) < 0);
  CHECK(a == NULL && strstr(err, "shorter") != NULL);
  CHECK(strstr(err, "0123456789abcdef") == NULL);
  write_str("secret", "0123456789abcdef0123456789abcde\r\n"); /* 31 + CRLF */
  CHECK(auth_new(&a, NULL, path_of("secret"), err, sizeof(err)) < 0);
  write_str("secret", "");
  CHECK(auth_new(&a, NULL, path_of("secret"), err, sizeof(err)) < 0);
  CHECK(auth_new(&a, NULL, path_of("missing"), err, sizeof(err)) == -ENOENT);
  /* both files given: either one failing fails */
  write_str("tokens", ALICE "\n");
  CHECK(auth_new(&a, path_of("tokens"), path_of("missing"), err, sizeof(err)) < 0);
  write_str("secret", SECRET "\n");
  CHECK(auth_new(&a, path_of("missing"), path_of("secret"), err, sizeof(err)) < 0);
  a = make("tokens", "secret");
  CHECK(a && auth_tokens_on(a) && auth_secret_on(a));
  auth_free(a);
}

/* An empty list is allowed: nothing gets in. Without a file, everything does. */
static void test_empty_list_and_off(void) {
  write_str("tokens", "# nobody yet\n\n");
  struct auth *a = make("tokens", NULL);
  if (!a) return;
  cur = a;
  CHECK(auth_tokens_on(a));
  CHECK(identifies_as("Authorization: Bearer " ALICE "\r\n", "rc=-1 owner= token=NULL"));
  CHECK(identifies_as("", "rc=-13 owner= token=NULL"));
  auth_free(a);

  a = make(NULL, NULL);
  if (!a) return;
  cur = a;
  CHECK(!auth_tokens_on(a) && !auth_secret_on(a));
  /* no tokens: the owner is the client address and a bearer token is not looked at */
  CHECK(identifies_as("Authorization: Bearer " ALICE "\r\n", "rc=0 owner=a:127.0.0.1 token=NULL"));
  CHECK(identifies_as("", "rc=0 owner=a:127.0.0.1 token=NULL"));
  CHECK(auth_may_access(a, "a:127.0.0.1", "t:0123"));
  CHECK(auth_may_access(a, "", ""));
  auth_free(a);
}

static void test_identify_bearer(void) {
  write_str("tokens", ALICE "\n" BOB "\nlisted!but-not-token68\n");
  struct auth *a = make("tokens", NULL);
  if (!a) return;
  cur = a;
  const char *ok = "rc=0 owner=" ALICE_OWNER " token=" ALICE;
  CHECK(identifies_as("Authorization: Bearer " ALICE "\r\n", ok));
  CHECK(identifies_as("authorization: bEARER    " ALICE "  \r\n", ok));
  CHECK(identifies_as("Authorization:Bearer " ALICE "\r\n", ok));
  /* no bearer token at all: -EACCES, a challenge without an error */
  const char *none = "rc=-13 owner= token=NULL";
  CHECK(identifies_as("", none));
  CHECK(identifies_as("Authorization: Basic YWxpY2U6c2VjcmV0\r\n", none));
  CHECK(identifies_as("Authorization: \r\n", none));
  CHECK(identifies_as("Authorization: Bearerx " ALICE "\r\n", none));
  CHECK(identifies_as("X-Upload-Token: " ALICE "\r\n", none));
  /* a bearer token that is not good: -EPERM */
  const char *bad = "rc=-1 owner= token=NULL";
  CHECK(identifies_as("Authorization: Bearer alice-token-012345678\r\n", bad)); /* a prefix */
  CHECK(identifies_as("Authorization: Bearer alice-token-01234567890\r\n", bad)); /* longer */
  CHECK(identifies_as("Authorization: Bearer ALICE-TOKEN-0123456789\r\n", bad));
  CHECK(identifies_as("Authorization: Bearer\r\n", bad));
  CHECK(identifies_as("Authorization: Bearer " ALICE " x\r\n", bad));
  CHECK(identifies_as("Authorization: Bearer\t" ALICE "\r\n", none)); /* SP only, then no scheme */
  CHECK(identifies_as("Authorization: Bearer =" ALICE "\r\n", bad));
  CHECK(identifies_as("Authorization: Bearer listed!but-not-token68\r\n", bad));
  CHECK(identifies_as("Authorization: Bearer short\r\n", bad));
  /* two Authorization headers, even both good, are refused */
  CHECK(identifies_as("Authorization: Bearer " ALICE "\r\nAuthorization: Bearer " ALICE "\r\n", bad));
  CHECK(identifies_as("Authorization: Basic eA==\r\nAuthorization: Bearer " ALICE "\r\n", bad));

  /* the challenge: realm always, error="invalid_token" only for -EPERM */
  char resp[4096];
  ask("", resp, sizeof(resp));
  CHECK(strncmp(resp, "HTTP/1.1 401 ", 13) == 0);
  CHECK(strstr(resp, "\r\nWWW-Authenticate: Bearer realm=\"resumed\"\r\n") != NULL);
  ask("Authorization: Bearer nobody-0123456789abcdef\r\n", resp, sizeof(resp));
  CHECK(strncmp(resp, "HTTP/1.1 401 ", 13) == 0);
  CHECK(strstr(resp, "\r\nWWW-Authenticate: Bearer realm=\"resumed\", error=\"invalid_token\"\r\n") !=
        NULL);

  /* owners: per token, and only the same owner may access */
  const char *bob_owner = BOB_OWNER;
  CHECK(auth_may_access(a, ALICE_OWNER, ALICE_OWNER));
  CHECK(auth_may_access(a, bob_owner, bob_owner));
  CHECK(!auth_may_access(a, bob_owner, ALICE_OWNER));
  CHECK(!auth_may_access(a, ALICE_OWNER, bob_owner));
  CHECK(!auth_may_access(a, ALICE_OWNER, "")); /* made before tokens were on */
  CHECK(!auth_may_access(a, "", ""));
  CHECK(!auth_may_access(a, "a:127.0.0.1", "a:127.0.0.1"));
  auth_free(a);
}

static void test_identify_address(void) {
  struct auth *a = make(NULL, NULL);
  if (!a) return;
  cur = a;
  const char *peer = "rc=0 owner=a:127.0.0.1 token=NULL";
  const char *fwd = "Forwarded: for=\"[2001:db8:cafe::17]:4711\"\r\n";
  /* not behind a proxy: forwarding headers are the client's own words */
  CHECK(identifies_as(fwd, peer));
  CHECK(identifies_as("X-Forwarded-For: 203.0.113.9\r\n", peer));
  char resp[4096];
  ask6(1, "", resp, sizeof(resp));
  CHECK(strcmp(result(resp), "rc=0 owner=a:::1 token=NULL\n") == 0);

  auth_set_behind_proxy(a, 1);
  CHECK(identifies_as(fwd, "rc=0 owner=a:2001:db8:cafe::17 token=NULL"));
  CHECK(identifies_as("Forwarded: for=192.0.2.43;proto=http, for=198.51.100.17\r\n"
                      "X-Forwarded-For: 203.0.113.9\r\n",
                      "rc=0 owner=a:192.0.2.43 token=NULL"));
  CHECK(identifies_as("Forwarded: proto=https; For=\"192.0.2.60:8080\"\r\n",
                      "rc=0 owner=a:192.0.2.60 token=NULL"));
  /* the canonical form: two spellings of one address are one owner */
  CHECK(identifies_as("Forwarded: for=\"[2001:DB8:0:0::1]\"\r\n",
                      "rc=0 owner=a:2001:db8::1 token=NULL"));
  /* the first Forwarded line only */
  CHECK(identifies_as("Forwarded: for=192.0.2.1\r\nForwarded: for=192.0.2.2\r\n",
                      "rc=0 owner=a:192.0.2.1 token=NULL"));
  /* Forwarded without a usable for=: X-Forwarded-For's first element */
  CHECK(identifies_as("Forwarded: for=unknown\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n",
                      "rc=0 owner=a:203.0.113.9 token=NULL"));
  CHECK(identifies_as("Forwarded: proto=https\r\nX-Forwarded-For: 2001:db8::7\r\n",
                      "rc=0 owner=a:2001:db8::7 token=NULL"));
  /* nothing that parses as an IP: the peer */
  CHECK(identifies_as("Forwarded: for=_hidden\r\n", peer));
  CHECK(identifies_as("X-Forwarded-For: not-an-ip, 203.0.113.9\r\n", peer));
  CHECK(identifies_as("X-Forwarded-For: 999.1.2.3\r\n", peer));
  CHECK(identifies_as("Forwarded: for=\"[192.0.2.1]\"\r\n", peer));
  CHECK(identifies_as("Forwarded: for=\"[2001:db8::1\"\r\n", peer));
  CHECK(identifies_as("", peer));
  auth_free(a);
}

/* auth_reload takes both files or neither. */
static void test_reload(void) {
  write_str("tokens", ALICE "\n" BOB "\n");
  write_str("secret", SECRET "\n");
  struct auth *a = make("tokens", "secret");
  if (!a) return;
  cur = a;
  const char *alice_ok = "rc=0 owner=" ALICE_OWNER " token=" ALICE;
  const char *bob_ok = "rc=0 owner=" BOB_OWNER " token=" BOB;
  const char *bad = "rc=-1 owner= token=NULL";
  const char *hb = "Authorization: Bearer " BOB "\r\n", *ha = "Authorization: Bearer " ALICE "\r\n";
  char err[256];
  CHECK(identifies_as(hb, bob_ok));

  /* bob removed: he is refused afterwards, alice is still in */
  write_str("tokens", ALICE "\n");
  CHECK(auth_reload(a, err, sizeof(err)) == 0);
  CHECK(identifies_as(hb, bad));
  CHECK(identifies_as(ha, alice_ok));

  /* a broken tokens file: the error names the line, the old list stays */
  write_str("tokens", BOB "\n#\ntoo-short\n");
  err[0] = 0;
  CHECK(auth_reload(a, err, sizeof(err)) < 0);
  CHECK(strstr(err, "line 3:") != NULL);
  CHECK(identifies_as(ha, alice_ok));
  CHECK(identifies_as(hb, bad));
  /* tokens fine but the secret broken: neither is taken */
  write_str("tokens", BOB "\n");
  write_str("secret", "short\n");
  CHECK(auth_reload(a, err, sizeof(err)) < 0);
  CHECK(identifies_as(ha, alice_ok));
  CHECK(identifies_as(hb, bad));
  char sig[AUTH_SIG_LEN + 1];
  auth_sign(a, KEY, sig);
  CHECK(strcmp(sig, SIG) == 0);
  /* a missing file: likewise */
  CHECK(unlink(path_of("secret")) == 0);
  CHECK(auth_reload(a, err, sizeof(err)) == -ENOENT);
  CHECK(identifies_as(ha, alice_ok));

  /* both good: both taken; bob is back, alice gone, the old signatures void */
  write_str("secret", SECRET2 "\r\n");
  CHECK(auth_reload(a, err, sizeof(err)) == 0);
  CHECK(identifies_as(hb, bob_ok));
  CHECK(identifies_as(ha, bad));
  auth_sign(a, KEY, sig);
  CHECK(strcmp(sig, SIG2) == 0);
  CHECK(!auth_verify(a, KEY, SIG, AUTH_SIG_LEN));
  CHECK(auth_verify(a, KEY, SIG2, AUTH_SIG_LEN));

  /* an emptied list refuses everybody */
  write_str("tokens", "\n");
  CHECK(auth_reload(a, err, sizeof(err)) == 0);
  CHECK(identifies_as(hb, bad));
  auth_free(a);
}

static void test_sign_verify(void) {
  write_str("secret", SECRET); /* no newline at all */
  struct auth *a = make(NULL, "secret");
  if (!a) return;
  CHECK(auth_secret_on(a) && !auth_tokens_on(a));
  char sig[AUTH_SIG_LEN + 1];
  memset(sig, 'x', sizeof(sig));
  auth_sign(a, KEY, sig);
  CHECK(strcmp(sig, SIG) == 0);
  CHECK(auth_verify(a, KEY, SIG, AUTH_SIG_LEN));
  /* each digit matters */
  for (int i = 0; i < AUTH_SIG_LEN; i++) {
    char s[AUTH_SIG_LEN + 1];
    memcpy(s, SIG, sizeof(s));
    s[i] = s[i] == '0' ? '1' : '0';
    CHECK(!auth_verify(a, KEY, s, AUTH_SIG_LEN));
  }
  /* exact lowercase hex of the right length */
  char up[AUTH_SIG_LEN + 1];
  for (int i = 0; i <= AUTH_SIG_LEN; i++) up[i] = (char)(SIG[i] >= 'a' ? SIG[i] - 32 : SIG[i]);
  CHECK(!auth_verify(a, KEY, up, AUTH_SIG_LEN));
  CHECK(!auth_verify(a, KEY, SIG, AUTH_SIG_LEN - 1));
  CHECK(!auth_verify(a, KEY, SIG "0", AUTH_SIG_LEN + 1));
  CHECK(!auth_verify(a, KEY, "", 0));
  /* another key's signature */
  char other[AUTH_SIG_LEN + 1];
  auth_sign(a, "fedcba9876543210fedcba9876543210", other);
  CHECK(strlen(other) == AUTH_SIG_LEN && strcmp(other, SIG) != 0);
  CHECK(!auth_verify(a, KEY, other, AUTH_SIG_LEN));
  CHECK(auth_verify(a, "fedcba9876543210fedcba9876543210", other, AUTH_SIG_LEN));
  auth_free(a);

  /* one trailing CRLF is not part of the key: the same signature */
  write_str("secret", SECRET "\r\n");
  a = make(NULL, "secret");
  if (!a) return;
  auth_sign(a, KEY, sig);
  CHECK(strcmp(sig, SIG) == 0);
  auth_free(a);
  /* but only one: a second newline is key material */
  write_str("secret", SECRET "\n\n");
  a = make(NULL, "secret");
  if (!a) return;
  auth_sign(a, KEY, sig);
  CHECK(strlen(sig) == AUTH_SIG_LEN && strcmp(sig, SIG) != 0);
  auth_free(a);

  /* no secret: no signature, and anything verifies */
  write_str("tokens", ALICE "\n");
  a = make("tokens", NULL);
  if (!a) return;
  memset(sig, 'x', sizeof(sig));
  auth_sign(a, KEY, sig);
  CHECK(sig[0] == 0);
  CHECK(auth_verify(a, KEY, "", 0));
  CHECK(auth_verify(a, KEY, "junk", 4));
  auth_free(a);
}

int main(void) {
  if (!mkdtemp(dir)) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  loop = uv_default_loop();
  struct http_limits lim = {16384, 100, 100, 5000, 5000, 5000};
  if (http_server_new(&srv, loop, &lim, on_request, NULL) < 0 ||
      http_server_listen(srv, "127.0.0.1", 0, &port4) < 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  /* a second server on the same loop for the IPv6 peer */
  if (http_server_new(&srv6, loop, &lim, on_request, NULL) < 0 ||
      http_server_listen(srv6, "::1", 0, &port6) < 0) {
    printf("0 passed, 1 failed (no ::1)\n");
    return 1;
  }
  uv_async_init(loop, &stop_async, on_stop);
  pthread_t t;
  pthread_create(&t, NULL, server_thread, NULL);
  RUN(test_load_tokens);
  RUN(test_load_errors);
  RUN(test_empty_list_and_off);
  RUN(test_identify_bearer);
  RUN(test_identify_address);
  RUN(test_reload);
  RUN(test_sign_verify);
  cur = NULL;
  uv_async_send(&stop_async);
  pthread_join(t, NULL);
  http_server_free(srv);
  http_server_free(srv6);
  uv_loop_close(loop);
  const char *names[] = {"tokens", "bad", "secret"};
  for (int i = 0; i < 3; i++) unlink(path_of(names[i]));
  rmdir(dir);
  UNIT_DONE();
}
