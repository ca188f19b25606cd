/* The tutorial article's protocol: GET /status and POST /upload keyed by the
 * client-chosen X-File-Id (README, "Protocol"). */
#ifndef RESUMED_ARTICLE_H
#define RESUMED_ARTICLE_H

#include <stdint.h>

#include "http.h"
#include "upload.h"

#define ARTICLE_ID_MAX 1024
#define ARTICLE_TOKEN_MAX 256

struct article;

struct auth;

/* auth (may be NULL) scopes ids to the bearer token with --auth-tokens. */
int article_new(struct article **out, struct upload_engine *eng, struct auth *auth,
                uint64_t max_size);
void article_free(struct article *a);

void article_status(struct http_request *req, struct article *a);
void article_upload(struct http_request *req, struct article *a);

/* Hashes a client id to the store alias name (64 hex chars + NUL). A client that sends
 * X-Upload-Token (token, token_len > 0) gets ids of its own: the article's ids are
 * guessable (name-size-mtime), the token is not. */
int article_alias(const char *token, size_t token_len, const char *id, size_t len,
                  char alias[65]);

#endif
