/* Filesystem store: DIR/uploads/<key> holds exactly the bytes received,
 * DIR/uploads/<key>.meta the upload_info (replaced atomically), DIR/article/
 * one symlink per alias. */
#ifndef RESUMED_STORE_FS_H
#define RESUMED_STORE_FS_H

#include "store.h"

/* Opens (creating if needed) the store in dir and recovers it: orphaned temp
 * files and half-created uploads are removed, and for each unfinished upload
 * the offset is re-established. With the same boot_id as recorded, bytes in
 * the data file past the recorded offset survived in the page cache: they are
 * made durable and kept. After a reboot they may be garbage: the file is cut
 * back to the recorded offset. */
int store_fs_open(struct store **out, const char *dir, const char *boot_id,
                  uint64_t *recovered);

/* Serialises/parses the metadata record (exposed for unit tests). */
int store_fs_format_info(const struct upload_info *info, char *buf, size_t len);
int store_fs_parse_info(const char *buf, size_t len, struct upload_info *info);

#endif
