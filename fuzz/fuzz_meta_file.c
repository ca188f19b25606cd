/* fuzz_meta_file: the filesystem store's metadata record reader,
 * store_fs_parse_info() (src/store_fs.c), on whatever a torn, foreign or
 * hostile DIR/uploads/<key>.meta may hold.
 *
 * The first byte picks how the rest is read: odd, as the file's bytes; even,
 * as the file's bytes without its closing checksum line, which the target
 * appends (computed as the server does), so that mutations get past the CRC
 * and reach the record's fields.
 *
 * Invariants of an accepted record: a valid key, a length of -1 or at least
 * the offset, a finished upload's length equal to its offset (what the
 * engine records at J_FINISH), a non-empty kind; the server can write it
 * back (store_fs_format_info succeeds), what it writes parses to the same
 * record, and writing that again gives the same bytes. */
#include <inttypes.h>
#include <string.h>

#include "fuzz.h"
#include "store_fs.h"
#include "util.h"

#define META_CAP (STORE_METADATA_MAX + STORE_CONCAT_MAX + 1024)

static int same_str(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

static void check_same(const struct upload_info *a, const struct upload_info *b) {
  FUZZ_CHECK(strcmp(a->key, b->key) == 0, "key %s != %s", a->key, b->key);
  FUZZ_CHECK(a->length == b->length, "length %" PRId64 " != %" PRId64, a->length, b->length);
  FUZZ_CHECK(a->offset == b->offset, "offset %" PRIu64 " != %" PRIu64, a->offset, b->offset);
  FUZZ_CHECK(a->finished == b->finished, "finished");
  FUZZ_CHECK(a->created == b->created, "created");
  FUZZ_CHECK(strcmp(a->boot_id, b->boot_id) == 0, "boot id '%s' != '%s'", a->boot_id, b->boot_id);
  FUZZ_CHECK(strcmp(a->kind, b->kind) == 0, "kind '%s' != '%s'", a->kind, b->kind);
  FUZZ_CHECK(a->expires == b->expires, "expires");
  FUZZ_CHECK(a->unverified == b->unverified, "unverified");
  FUZZ_CHECK(strcmp(a->owner, b->owner) == 0, "owner '%s' != '%s'", a->owner, b->owner);
  FUZZ_CHECK(same_str(a->metadata, b->metadata), "metadata differs");
  FUZZ_CHECK(same_str(a->concat, b->concat), "concat differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char buf[META_CAP + 64], out1[META_CAP], out2[META_CAP];
  struct upload_info info, again;
  if (size < 1 || size - 1 > META_CAP) return 0;
  size_t len = size - 1;
  memcpy(buf, data + 1, len);
  if ((data[0] & 1) == 0)
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "crc %08" PRIx32 "\n", crc32_update(0, buf, len));

  if (store_fs_parse_info(buf, len, &info) < 0) return 0;

  FUZZ_CHECK(store_key_valid(info.key), "accepted key '%s'", info.key);
  FUZZ_CHECK(info.length >= -1, "length %" PRId64, info.length);
  FUZZ_CHECK(info.length < 0 || info.offset <= (uint64_t)info.length, "offset past length");
  FUZZ_CHECK(!info.finished || (info.length >= 0 && (uint64_t)info.length == info.offset),
             "finished upload with length %" PRId64 " and offset %" PRIu64, info.length, info.offset);
  FUZZ_CHECK(info.kind[0] != 0, "empty kind");
  FUZZ_CHECK(info.expires >= 0, "negative expiry");

  /* The server must be able to save what it loaded (every later commit does). */
  int n1 = store_fs_format_info(&info, out1, sizeof(out1));
  FUZZ_CHECK(n1 > 0, "an accepted record cannot be written back: %d", n1);
  FUZZ_CHECK(store_fs_parse_info(out1, (size_t)n1, &again) == 0, "written record does not parse:\n%.*s",
             n1, out1);
  check_same(&info, &again);
  int n2 = store_fs_format_info(&again, out2, sizeof(out2));
  FUZZ_CHECK(n2 == n1 && memcmp(out1, out2, (size_t)n1) == 0, "formatting is not a fixpoint");
  store_info_release(&again);
  store_info_release(&info);
  return 0;
}
