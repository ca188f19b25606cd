/* Upload store interface.
 *
 * The upload engine talks to storage only through these operations, so that
 * an object-store backend can sit beside the filesystem one. Every operation
 * may block (disk, network): the engine calls them from libuv's thread pool,
 * never from the event loop, except open/alias_get/close which are cheap
 * metadata reads. One upload is never operated on by two threads at once,
 * except that write and flush may overlap (data written before a flush
 * starts is durable when it returns). */
#ifndef RESUMED_STORE_H
#define RESUMED_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define STORE_KEY_LEN 32   /* lowercase hex of 128 random bits */
#define STORE_BOOT_ID_MAX 40
#define STORE_KIND_MAX 15
#define STORE_OWNER_MAX 63 /* "t:" + token hash, or "a:" + client address */
#define STORE_METADATA_MAX 8192
#define STORE_CONCAT_PARTS_MAX 128
#define STORE_CONCAT_MAX (6 + STORE_CONCAT_PARTS_MAX * (STORE_KEY_LEN + 1))

struct store;
struct store_upload;

/* What the metadata record says about an upload. */
struct upload_info {
  char key[STORE_KEY_LEN + 1];
  int64_t length;       /* declared total length, -1 while unknown */
  uint64_t offset;      /* bytes durably stored */
  int finished;         /* complete; the data is never modified again */
  int64_t created;      /* unix seconds */
  char boot_id[STORE_BOOT_ID_MAX + 1]; /* boot during which offset was last recorded */
  char kind[STORE_KIND_MAX + 1]; /* protocol that created it: "article", "tus" */
  int64_t expires; /* unix seconds after which an unfinished upload may be removed; 0 never */
  int unverified;  /* bytes past offset await a checksum: never trust them at recovery */
  /* Who created it: with --auth-tokens only this owner may touch it; also the
   * key of the per-client unfinished-upload count. "" for none. */
  char owner[STORE_OWNER_MAX + 1];
  char *metadata; /* protocol metadata, one line without CR/LF, or NULL. Owned by
                     whoever owns the struct; copies of the struct borrow it. */
  char *concat;   /* tus concatenation, or NULL: "partial", or "final" and the
                     partial uploads' keys, space-separated. Owned like metadata. */
};

struct store_ops {
  /* Creates an empty upload with a fresh key (written into info->key);
   * durable when it returns. */
  int (*create)(struct store *st, struct upload_info *info, struct store_upload **out);
  /* Opens an existing upload; -ENOENT if there is none. On success
   * info->metadata is allocated for the caller. */
  int (*open)(struct store *st, const char *key, struct upload_info *info,
              struct store_upload **out);
  /* Writes all of iov at offset; returns bytes written or a negative error
   * (a short count before the error is reported as written). */
  int64_t (*write)(struct store_upload *u, const struct iovec *iov, int iovcnt,
                   uint64_t offset);
  /* Makes every byte written so far durable. */
  int (*flush)(struct store_upload *u);
  /* Records info durably and atomically (after flush covered info->offset). */
  int (*save)(struct store_upload *u, const struct upload_info *info);
  /* Cuts the data back to len bytes. */
  int (*truncate)(struct store_upload *u, uint64_t len);
  /* Reads up to len bytes at offset; returns bytes read or a negative error. */
  int64_t (*read)(struct store_upload *u, void *buf, size_t len, uint64_t offset);
  void (*close)(struct store_upload *u);
  int (*remove)(struct store *st, const char *key);
  /* Calls fn for each upload key; stops early when fn returns non-zero. */
  int (*list)(struct store *st, int (*fn)(void *arg, const char *key), void *arg);

  /* Aliases: a client-chosen name (already hashed to 64 hex chars by the
   * caller) pointing at an upload key. */
  int (*alias_get)(struct store *st, const char *name, char key[STORE_KEY_LEN + 1]);
  int (*alias_set)(struct store *st, const char *name, const char *key);
  int (*alias_del)(struct store *st, const char *name);

  void (*free)(struct store *st);

  /* A read-only file descriptor on a finished upload's data, for streaming
   * it out; NULL (or -ENOTSUP) for stores without files. */
  int (*open_data)(struct store *st, const char *key);
};

struct store {
  const struct store_ops *ops;
};

int store_key_valid(const char *key);
/* Frees what an upload_info owns (its metadata). */
void store_info_release(struct upload_info *info);
int store_new_key(char key[STORE_KEY_LEN + 1]);

#endif
