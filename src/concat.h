/* tus concatenation: a final upload made of partial uploads, in order.
 * The final's data is a copy of theirs, built once every partial is
 * finished: at its creation, or later when the last partial finishes
 * (concatenation-unfinished), or at the next HEAD of the final after a
 * restart forgot that it waits. */
#ifndef RESUMED_CONCAT_H
#define RESUMED_CONCAT_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"

/* An Upload-Concat "final;<url> <url>..." value of req: *concat becomes the
 * record "final <key> <key>..." (malloc'd) and *length the sum of the
 * partials' lengths (-1 while one is unknown). -EINVAL with *why when it is
 * malformed or names something that is not a partial upload; -EACCES or
 * -EPERM with *why when it names a partial the requester may not use. */
int concat_final_spec(struct endpoint *ep, struct http_request *req, const char *v, size_t n,
                      char **concat, int64_t *length, const char **why);
/* Adds the Upload-Concat header for a recorded concat. */
void concat_add_header(const struct endpoint *ep, struct http_request *req, const char *concat);
/* Builds the final upload's data if it is not built and every partial is
 * finished. cb gets 0 when the final is finished, -EAGAIN when a partial is
 * not, -ENOENT when one is gone, -EFBIG when together they exceed the
 * maximum size, or a storage error. */
void concat_settle(struct endpoint *ep, struct upload *final, void (*cb)(void *arg, int status),
                   void *arg);
/* Remembers a final upload that waits for its partials. */
void concat_wait(struct endpoint *ep, const char *final_key);
/* A partial upload finished: settle the finals that wait. */
void concat_partial_finished(struct endpoint *ep);

#endif
