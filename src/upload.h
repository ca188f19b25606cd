/* Upload engine: the durability contract and the one-writer rule, above a store.
 *
 * All functions run on the event loop thread; blocking store operations go to
 * libuv's thread pool. An upload has a durable offset (info.offset) and a
 * written count (bytes handed to the store, possibly not yet on stable
 * storage). Only the durable offset is ever reported to clients.
 *
 * Writing takes the upload's lock. A request that wants the lock while another
 * holds it asks the holder to stop (on_preempt), which ends its HTTP request;
 * the holder commits what it delivered and unlocks, and the lock passes on at
 * once instead of after a timeout. Reading the offset goes through the lock
 * too, so a status answer after a hung request reflects all it delivered. */
#ifndef RESUMED_UPLOAD_H
#define RESUMED_UPLOAD_H

#include <stdint.h>
#include <uv.h>

#include "store.h"

struct upload_engine;
struct upload;

struct upload_engine_config {
  uint64_t sync_interval; /* flush during a long body every this many bytes */
  uint32_t max_unfinished; /* per owner (upload_spec.owner); 0: no limit */
  uint64_t expire_after;  /* seconds an unfinished upload lives after its last
                             write; 0: forever. Expired ones are swept. */
};

typedef void (*upload_cb)(void *arg, int status);
typedef void (*upload_create_cb)(void *arg, struct upload *u, int status);

/* A lock holder or waiter, embedded in the caller's per-request state. */
struct upload_writer {
  void (*on_preempt)(struct upload_writer *w); /* someone waits: end your request */
  void (*on_durable)(struct upload_writer *w, uint64_t offset); /* optional */
  /* Provisional: what this holder writes is not made durable on its own (no
   * periodic flush) and is discarded, not committed, if it unlocks without a
   * commit. For bodies that must be verified before they count. */
  int provisional;
  /* engine-private */
  struct upload *u;
  struct upload_writer *next;
  upload_cb lock_cb;
  void *lock_arg;
  int state; /* 0 idle, 1 waiting, 2 holding */
  int preempted;
};

int upload_engine_new(struct upload_engine **out, uv_loop_t *loop, struct store *st,
                      const struct upload_engine_config *cfg);
/* Frees the engine; call when no upload is referenced any more. */
void upload_engine_free(struct upload_engine *e);
struct store *upload_engine_store(struct upload_engine *e);

/* Opens an upload by key (cheap metadata read on the loop). -ENOENT if none.
 * The caller owns a reference: release it with upload_put(). */
int upload_get(struct upload_engine *e, const char *key, struct upload **out);
/* Resolves an alias to an upload; -ENOENT if none. */
int upload_get_alias(struct upload_engine *e, const char *alias, struct upload **out);
void upload_put(struct upload *u);

/* What a new upload starts with; strings are copied. */
struct upload_spec {
  const char *kind;     /* protocol: "article", "tus", "ietf" */
  int64_t length;       /* -1 while unknown */
  const char *metadata; /* or NULL */
  const char *concat;   /* or NULL (see upload_info) */
  const char *alias;    /* name to point at the upload, or NULL */
  const char *owner;    /* upload_info.owner, or NULL */
};

/* Creates an upload off the loop; cb receives a referenced upload on success.
 * -EUSERS at once when spec->owner holds max_unfinished unfinished uploads. */
int upload_create(struct upload_engine *e, const struct upload_spec *spec, upload_create_cb cb,
                  void *arg);

const struct upload_info *upload_info(const struct upload *u);
/* Unfinished and past its expiry: protocols answer as if it were gone. */
int upload_expired(const struct upload *u);
/* Starts removing expired uploads every so often (no-op without expiry). */
int upload_engine_start_sweeper(struct upload_engine *e);
/* Stops the sweeper (for shutdown). */
void upload_engine_stop_sweeper(struct upload_engine *e);
uint64_t upload_written(const struct upload *u);
/* Deleted while referenced (a lock waiter finds this when it gets the lock). */
int upload_removed(const struct upload *u);

/* Lock. cb runs synchronously when the lock is free, else once it is handed
 * over. A waiter whose request dies calls upload_unlock() too (it cancels). */
void upload_lock(struct upload *u, struct upload_writer *w, upload_cb cb, void *arg);
/* Releases the lock, or cancels a wait. Bytes written but not committed are
 * committed by the engine before the next holder gets the lock. */
void upload_unlock(struct upload_writer *w);

/* Operations for the holder, one at a time; each calls cb once. */
void upload_write(struct upload_writer *w, const char *data, size_t len, upload_cb cb,
                  void *arg);
/* Appends the whole data of src, a finished upload (tus concatenation). */
void upload_copy(struct upload_writer *w, struct upload *src, upload_cb cb, void *arg);
/* Makes everything written durable and records it. */
void upload_commit(struct upload_writer *w, upload_cb cb, void *arg);
/* Commits, marks the upload finished, drops alias (may be NULL). */
void upload_finish(struct upload_writer *w, const char *alias, upload_cb cb, void *arg);
/* Discards the data and starts over with a new declared length. */
void upload_restart(struct upload_writer *w, int64_t length, upload_cb cb, void *arg);
/* Records a declared length (saved with the next commit). */
void upload_set_length(struct upload_writer *w, int64_t length);
/* Hashes the bytes written from `from` to now, read back from the store (the
 * bytes checked are the bytes kept), with algo (enum checksum_algo) into out
 * (checksum_size(algo) bytes, which must stay valid until cb). */
void upload_hash(struct upload_writer *w, int algo, uint64_t from, unsigned char *out,
                 upload_cb cb, void *arg);
/* Drops what was written past the durable offset. */
void upload_discard(struct upload_writer *w, upload_cb cb, void *arg);
/* Deletes the upload from the store; later lookups find nothing. */
void upload_remove(struct upload_writer *w, upload_cb cb, void *arg);

#endif
