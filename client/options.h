/* resumed-upload's command line: what the user asked for, checked. */
#ifndef RESUMED_UPLOAD_OPTIONS_H
#define RESUMED_UPLOAD_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "checksum.h"

#define CLIENT_VERSION "0.1"

enum protocol { PROTO_TUS, PROTO_IETF, PROTO_ARTICLE };

struct client_options {
  enum protocol protocol;
  int ietf_version;
  uint64_t chunk_size; /* 0: the whole rest in one request */
  enum checksum_algo checksum;
  /* "key=value" pairs as given; filename and filetype are added unless present */
  const char **metadata;
  size_t n_metadata;
  /* "Name: value" lines sent with every request */
  const char **headers;
  size_t n_headers;
  int parallel;
  int retries;
  double retry_delay, retry_max_delay, stall_timeout, connect_timeout, progress_interval;
  const char *resume_url;
  const char *state_file; /* NULL with --no-state */
  char *state_file_owned;
  int quiet;
  const char **files; /* points into argv */
  size_t n_files;
  const char *url;
};

enum { OPTIONS_OK = 0, OPTIONS_EXIT = 1, OPTIONS_USAGE = 2 };

/* Fills o from argv. OPTIONS_EXIT after --help or --version (printed),
 * OPTIONS_USAGE after printing why the command line is wrong. Files are
 * checked for readability and the URL for shape here, so that a usage error
 * never leaves half the files uploaded. */
int options_parse(struct client_options *o, int argc, char **argv);
void options_release(struct client_options *o);

#endif
