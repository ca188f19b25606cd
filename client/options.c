#include "options.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static const char usage_text[] =
    "Usage: resumed-upload [options] FILE... URL\n"
    "Uploads each FILE (or - for standard input) to URL, resuming after any failure.\n"
    "\n"
    "  -p, --protocol P          tus (default), ietf or article\n"
    "  -c, --chunk-size SIZE     at most SIZE bytes per request (K, M, G suffixes)\n"
    "      --checksum ALG        tus: sha1, sha256, md5, crc32, sha512; ietf: sha256, sha512\n"
    "  -m, --metadata KEY=VALUE  tus Upload-Metadata pair (repeatable)\n"
    "  -H, --header 'N: V'       send this header with every request (repeatable)\n"
    "  -j, --parallel N          upload N files at once (default 1)\n"
    "  -r, --retries N           give up after N retries in a row without progress (default 10)\n"
    "      --retry-delay S       first pause before a retry, doubling after (default 0.5)\n"
    "      --retry-max-delay S   longest pause before a retry (default 30)\n"
    "      --stall-timeout S     a request with no progress for S seconds fails (default 60)\n"
    "      --connect-timeout S   time allowed to connect (default 10)\n"
    "      --resume UPLOAD-URL   continue this upload (one FILE only)\n"
    "      --state-file PATH     where uploads in progress are remembered\n"
    "      --no-state            neither read nor write the state file\n"
    "      --ietf-version N      IETF draft interop version, 3 to 8 (default 6)\n"
    "      --progress-interval S  progress period when stderr is not a terminal (default 10)\n"
    "  -q, --quiet               print only errors\n"
    "  -h, --help                print this help\n"
    "  -V, --version             print the version\n"
    "\n"
    "Exit status: 0 all uploaded, 1 some upload failed, 2 usage error,\n"
    "128+N interrupted by signal N (130: Ctrl-C); the same command continues.\n"
    "See resumed-upload(1) for details.\n";

enum {
  OPT_CHECKSUM = 256, OPT_RETRY_DELAY, OPT_RETRY_MAX_DELAY, OPT_STALL, OPT_CONNECT, OPT_RESUME,
  OPT_STATE_FILE, OPT_NO_STATE, OPT_IETF_VERSION, OPT_PROGRESS_INTERVAL
};

static const struct option long_options[] = {
    {"protocol", required_argument, NULL, 'p'},
    {"chunk-size", required_argument, NULL, 'c'},
    {"checksum", required_argument, NULL, OPT_CHECKSUM},
    {"metadata", required_argument, NULL, 'm'},
    {"header", required_argument, NULL, 'H'},
    {"parallel", required_argument, NULL, 'j'},
    {"retries", required_argument, NULL, 'r'},
    {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
    {"retry-max-delay", required_argument, NULL, OPT_RETRY_MAX_DELAY},
    {"stall-timeout", required_argument, NULL, OPT_STALL},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"state-file", required_argument, NULL, OPT_STATE_FILE},
    {"no-state", no_argument, NULL, OPT_NO_STATE},
    {"ietf-version", required_argument, NULL, OPT_IETF_VERSION},
    {"progress-interval", required_argument, NULL, OPT_PROGRESS_INTERVAL},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("resumed-upload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\nTry 'resumed-upload --help'.\n", stderr);
  va_end(ap);
  return OPTIONS_USAGE;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
  uint64_t v;
  if (parse_u64_strict(s, strlen(s), &v) < 0 || v < (uint64_t)lo || v > (uint64_t)hi) return -EINVAL;
  *out = (int)v;
  return 0;
}

static int parse_seconds(const char *s, double lo, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > 86400.0 * 365) return -EINVAL;
  *out = v;
  return 0;
}

static int push(const char ***list, size_t *n, const char *v) {
  const char **l = realloc(*list, (*n + 1) * sizeof(*l));
  if (!l) return -ENOMEM;
  l[(*n)++] = v;
  *list = l;
  return 0;
}

/* The default state file: $XDG_STATE_HOME/resumed-upload/uploads, the XDG
 * base directory spec's place for state that survives restarts. */
static char *default_state_file(void) {
  const char *base = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  char *p = NULL;
  int n;
  if (base && base[0] == '/') n = asprintf(&p, "%s/resumed-upload/uploads", base);
  else if (home && home[0]) n = asprintf(&p, "%s/.local/state/resumed-upload/uploads", home);
  else return NULL;
  return n < 0 ? NULL : p;
}

static int check_url(const char *url) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  int rc = 0;
  if (!u) return usage_error("out of memory");
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc) {
    rc = usage_error("bad URL '%s': %s", url, curl_url_strerror(uc));
    goto out;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) || curl_url_get(u, CURLUPART_HOST, &host, 0) ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    rc = usage_error("bad URL '%s': only http:// and https:// URLs are supported", url);
    goto out;
  }
out:
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

static int check_files(struct client_options *o) {
  int stdin_seen = 0;
  for (size_t i = 0; i < o->n_files; i++) {
    const char *f = o->files[i];
    if (strcmp(f, "-") == 0) {
      if (stdin_seen) return usage_error("standard input (-) can be given only once");
      if (o->protocol == PROTO_ARTICLE) return usage_error("standard input needs --protocol tus or ietf");
      stdin_seen = 1;
      continue;
    }
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return usage_error("cannot read '%s': %s", f, strerror(errno));
    int rc = fstat(fd, &st);
    int err = errno;
    close(fd);
    if (rc < 0) return usage_error("cannot read '%s': %s", f, strerror(err));
    if (S_ISDIR(st.st_mode)) return usage_error("cannot read '%s': %s", f, strerror(EISDIR));
    if (!S_ISREG(st.st_mode)) return usage_error("cannot read '%s': not a regular file", f);
  }
  return 0;
}

int options_parse(struct client_options *o, int argc, char **argv) {
  *o = (struct client_options){
      .protocol = PROTO_TUS, .ietf_version = 6, .checksum = CHECKSUM_NONE, .parallel = 1,
      .retries = 10, .retry_delay = 0.5, .retry_max_delay = 30, .stall_timeout = 60,
      .connect_timeout = 10, .progress_interval = 10};
  int no_state = 0, c;
  const char *checksum = NULL;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":p:c:m:H:j:r:qhV", long_options, NULL)) != -1) {
    int bad = 0;
    switch (c) {
    case 'p':
      if (strcmp(optarg, "tus") == 0) o->protocol = PROTO_TUS;
      else if (strcmp(optarg, "ietf") == 0) o->protocol = PROTO_IETF;
      else if (strcmp(optarg, "article") == 0) o->protocol = PROTO_ARTICLE;
      else bad = 1;
      break;
    case 'c': bad = parse_size(optarg, &o->chunk_size) < 0 || o->chunk_size == 0; break;
    case OPT_CHECKSUM:
      checksum = optarg;
      o->checksum = checksum_algo_parse(optarg, strlen(optarg));
      bad = o->checksum == CHECKSUM_NONE;
      break;
    case 'm':
      /* tus: a key is non-empty, without spaces or commas */
      if (!strchr(optarg, '=') || optarg[0] == '=' || strcspn(optarg, " ,") < strcspn(optarg, "=")) bad = 1;
      else if (push(&o->metadata, &o->n_metadata, optarg) < 0) return usage_error("out of memory");
      break;
    case 'H': {
      const char *colon = strchr(optarg, ':');
      if (!colon || colon == optarg || strpbrk(optarg, "\r\n")) bad = 1;
      else if (push(&o->headers, &o->n_headers, optarg) < 0) return usage_error("out of memory");
      break;
    }
    case 'j': bad = parse_int(optarg, 1, 64, &o->parallel) < 0; break;
    case 'r': bad = parse_int(optarg, 0, 1000000, &o->retries) < 0; break;
    case OPT_RETRY_DELAY: bad = parse_seconds(optarg, 0, &o->retry_delay) < 0; break;
    case OPT_RETRY_MAX_DELAY: bad = parse_seconds(optarg, 0, &o->retry_max_delay) < 0; break;
    case OPT_STALL: bad = parse_seconds(optarg, 1, &o->stall_timeout) < 0; break;
    case OPT_CONNECT: bad = parse_seconds(optarg, 0.001, &o->connect_timeout) < 0; break;
    case OPT_PROGRESS_INTERVAL: bad = parse_seconds(optarg, 0.1, &o->progress_interval) < 0; break;
    case OPT_RESUME: o->resume_url = optarg; break;
    case OPT_STATE_FILE: o->state_file = optarg; break;
    case OPT_NO_STATE: no_state = 1; break;
    case OPT_IETF_VERSION: bad = parse_int(optarg, 3, 8, &o->ietf_version) < 0; break;
    case 'q': o->quiet = 1; break;
    case 'h': fputs(usage_text, stdout); return OPTIONS_EXIT;
    case 'V': printf("resumed-upload %s\n", CLIENT_VERSION); return OPTIONS_EXIT;
    case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
    default:
      if (optopt) return usage_error("unknown option '-%c'", optopt);
      return usage_error("unknown option '%s'", argv[optind - 1]);
    }
    if (bad) {
      const struct option *lo = long_options;
      while (lo->name && lo->val != c) lo++;
      return usage_error("bad value for --%s: '%s'", lo->name ? lo->name : "?", optarg);
    }
  }
  if (argc - optind < 2) return usage_error("need at least one FILE and a URL");
  o->files = (const char **)argv + optind;
  o->n_files = (size_t)(argc - optind - 1);
  o->url = argv[argc - 1];

  if (checksum && o->protocol == PROTO_ARTICLE)
    return usage_error("--checksum is not available with the article protocol");
  if (checksum && o->protocol == PROTO_IETF && o->checksum != CHECKSUM_SHA256 && o->checksum != CHECKSUM_SHA512)
    return usage_error("--checksum with the IETF draft is sha256 or sha512 (Content-Digest)");
  if (o->resume_url) {
    if (o->n_files != 1) return usage_error("--resume takes exactly one FILE");
    if (o->protocol == PROTO_ARTICLE) return usage_error("--resume is for tus and ietf uploads");
    int rc = check_url(o->resume_url);
    if (rc) return rc;
  }
  int rc = check_url(o->url);
  if (rc) return rc;
  if ((rc = check_files(o))) return rc;
  if (!no_state && !o->state_file) o->state_file = o->state_file_owned = default_state_file();
  if (no_state) o->state_file = NULL;
  return OPTIONS_OK;
}

void options_release(struct client_options *o) {
  free(o->metadata);
  free(o->headers);
  free(o->state_file_owned);
  *o = (struct client_options){0};
}
