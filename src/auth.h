/* Access control: bearer tokens (--auth-tokens) and signed upload URLs
 * (--auth-secret).
 *
 * Tokens are kept only as SHA-256 hashes and looked up by hash, so checking
 * one costs the same whatever it shares with a listed token. An upload
 * records its creator as an owner id derived from the token ("t:" and 32 hex
 * digits of a domain-separated hash), never the token itself.
 *
 * A signed upload URL ends in "<key>-<sig>": sig is 32 hex digits of
 * HMAC-SHA256(secret, "resumed-upload-url\n" + key). It makes the URL a
 * capability: only who was given it can reach the upload. */
#ifndef RESUMED_AUTH_H
#define RESUMED_AUTH_H

#include <stddef.h>

#include "http.h"
#include "store.h"

#define AUTH_SIG_LEN 32     /* hex digits */
#define AUTH_TOKEN_MAX 256  /* bytes; shortest accepted: AUTH_TOKEN_MIN */
#define AUTH_TOKEN_MIN 16
#define AUTH_SECRET_MIN 32

struct auth;

/* Loads the token list and/or the secret (either path may be NULL; both NULL
 * gives an auth that allows everything). 0, or <0 with a message in err. */
int auth_new(struct auth **out, const char *tokens_file, const char *secret_file, char *err,
             size_t errlen);
/* Re-reads both files (SIGHUP). On any error the previous state stays in
 * force and err says why. */
int auth_reload(struct auth *a, char *err, size_t errlen);
void auth_free(struct auth *a);

/* With a trusted proxy in front, the client address is the first Forwarded
 * for= (RFC 7239) or X-Forwarded-For address, when it is a valid IP. */
void auth_set_behind_proxy(struct auth *a, int on);

int auth_tokens_on(const struct auth *a);
int auth_secret_on(const struct auth *a);

/* The request's identity. With tokens on: 0 and owner set for a listed
 * `Authorization: Bearer` token; -EACCES when no bearer token was sent,
 * -EPERM when it is not listed, malformed, or sent in two Authorization
 * headers (both: answer with auth_challenge()). With tokens off: 0 and owner
 * "a:" + the client's IP (the peer, or behind a proxy the forwarded address),
 * recorded with an upload but not checked. token/token_len
 * (may be NULL) receive the listed token's bytes inside the request (for
 * scoping article ids); NULL and 0 with tokens off or on error. */
int auth_identify(const struct auth *a, struct http_request *req,
                  char owner[STORE_OWNER_MAX + 1], const char **token, size_t *token_len);
/* Starts a 401 response with the WWW-Authenticate challenge for rc from
 * auth_identify(); the caller adds its headers and sends it. */
void auth_challenge(struct http_request *req, int rc);
/* Whether owner (from auth_identify) may touch an upload recorded with
 * upload_owner: always with tokens off; with tokens on only the same owner
 * (an upload made before tokens were turned on belongs to nobody). */
int auth_may_access(const struct auth *a, const char *owner, const char *upload_owner);

/* sig receives AUTH_SIG_LEN hex digits and a NUL; "" with no secret. */
void auth_sign(const struct auth *a, const char *key, char sig[AUTH_SIG_LEN + 1]);
/* Whether sig (sig_len bytes) signs key; always true with no secret. */
int auth_verify(const struct auth *a, const char *key, const char *sig, size_t sig_len);

#endif
