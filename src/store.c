#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

int store_key_valid(const char *key) {
  size_t n = strlen(key);
  if (n != STORE_KEY_LEN) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) return 0;
  return 1;
}

int store_new_key(char key[STORE_KEY_LEN + 1]) {
  unsigned char raw[STORE_KEY_LEN / 2];
  size_t got = 0;
  while (got < sizeof(raw)) {
    ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)n;
  }
  hex_encode(raw, sizeof(raw), key);
  return 0;
}

void store_info_release(struct upload_info *info) {
  free(info->metadata);
  info->metadata = NULL;
  free(info->concat);
  info->concat = NULL;
}
