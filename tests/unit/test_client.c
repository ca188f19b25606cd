/* Unit tests of resumed-upload's pieces: the state file, standard input
 * buffering, digests, error reasons, option checking, and the retry loop
 * driven by a scripted protocol. job.c is included for its statics. */
#include "../../client/job.c"

#include <fcntl.h>
#include <sys/wait.h>

#include "progress.h"
#include "unit.h"
#include "util.h"

static char tmpdir[] = "/tmp/resumed-client-unit-XXXXXX";

static void test_state_key(void) {
  struct stat a = {.st_size = 10}, b = a;
  char k1[STATE_KEY_LEN + 1], k2[STATE_KEY_LEN + 1];
  CHECK(state_key("/x/f", &a, "http://h/files/", "tus", k1) == 0);
  CHECK(strlen(k1) == STATE_KEY_LEN);
  CHECK(state_key("/x/f", &b, "http://h/files/", "tus", k2) == 0 && strcmp(k1, k2) == 0);
  b.st_size = 11;
  CHECK(state_key("/x/f", &b, "http://h/files/", "tus", k2) == 0 && strcmp(k1, k2) != 0);
  b = a;
  b.st_mtim.tv_nsec = 1;
  CHECK(state_key("/x/f", &b, "http://h/files/", "tus", k2) == 0 && strcmp(k1, k2) != 0);
  CHECK(state_key("/x/f", &a, "http://h/other/", "tus", k2) == 0 && strcmp(k1, k2) != 0);
  CHECK(state_key("/x/f", &a, "http://h/files/", "ietf", k2) == 0 && strcmp(k1, k2) != 0);
  CHECK(state_key("/x/g", &a, "http://h/files/", "tus", k2) == 0 && strcmp(k1, k2) != 0);
}

static void test_state_file(void) {
  char file[256], url[256];
  snprintf(file, sizeof(file), "%s/deep/er/uploads", tmpdir);
  char a[STATE_KEY_LEN + 1], b[STATE_KEY_LEN + 1];
  memset(a, 'a', STATE_KEY_LEN), a[STATE_KEY_LEN] = 0;
  memset(b, 'b', STATE_KEY_LEN), b[STATE_KEY_LEN] = 0;
  CHECK(state_lookup(file, a, url, sizeof(url)) == -ENOENT); /* no file yet, directories made */
  CHECK(state_store(file, a, "http://h/files/1") == 0);
  CHECK(state_store(file, b, "http://h/files/2") == 0);
  CHECK(state_lookup(file, a, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/1") == 0);
  CHECK(state_store(file, a, "http://h/files/3") == 0); /* replaces */
  CHECK(state_lookup(file, a, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/3") == 0);
  CHECK(state_lookup(file, b, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/2") == 0);
  CHECK(state_lookup(file, a, url, 5) == -ENAMETOOLONG);
  CHECK(state_store(file, a, "http://h/with space") == -EINVAL);
  CHECK(state_store(file, a, "http://h/new\nline") == -EINVAL);
  CHECK(state_remove(file, a) == 0);
  CHECK(state_lookup(file, a, url, sizeof(url)) == -ENOENT);
  CHECK(state_lookup(file, b, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/2") == 0);
  CHECK(state_remove(file, a) == 0); /* absent: nothing to do */
  /* Lines that are not ours are kept and never match. */
  FILE *f = fopen(file, "a");
  fputs("garbage\n\nshort x\n", f);
  fclose(f);
  CHECK(state_store(file, a, "http://h/files/4") == 0);
  CHECK(state_lookup(file, a, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/4") == 0);
  CHECK(state_lookup(file, b, url, sizeof(url)) == 0 && strcmp(url, "http://h/files/2") == 0);
  CHECK(state_remove(file, b) == 0 && state_remove(file, a) == 0);
  char text[256] = "";
  f = fopen(file, "r");
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = 0;
  CHECK(strcmp(text, "garbage\n\nshort x\n") == 0);
}

/* Runs source_body over a pipe holding data. */
static int pipe_source(struct source *s, const char *data, size_t n, uint64_t chunk) {
  int fds[2];
  if (pipe(fds) < 0) return -1;
  if (write(fds[1], data, n) != (ssize_t)n) return -1;
  close(fds[1]);
  *s = (struct source){.arg = "-", .name = "stdin", .is_stdin = 1, .fd = fds[0], .size = -1};
  s->held_cap = chunk;
  s->held = malloc(chunk);
  return s->held ? 0 : -1;
}

static void test_source_stdin(void) {
  struct source s;
  struct body b;
  int last;
  CHECK(pipe_source(&s, "0123456789", 10, 4) == 0);
  CHECK(source_body(&s, 0, 0, &b, &last) == 0);
  CHECK(b.fd < 0 && b.len == 4 && !last && memcmp(b.mem + b.off, "0123", 4) == 0 && s.size == -1);
  CHECK(source_body(&s, 2, 0, &b, &last) == 0); /* a partial acknowledgement: resend the rest */
  CHECK(b.len == 2 && memcmp(b.mem + b.off, "23", 2) == 0);
  CHECK(source_body(&s, 4, 3, &b, &last) == 0); /* the next chunk, limited to 3 */
  CHECK(b.len == 3 && memcmp(b.mem + b.off, "456", 3) == 0 && !last);
  CHECK(source_body(&s, 2, 0, &b, &last) == -ESPIPE); /* before what is held: gone */
  CHECK(source_body(&s, 9, 0, &b, &last) == -ESPIPE); /* beyond what was read */
  CHECK(source_body(&s, 8, 0, &b, &last) == 0);
  CHECK(b.len == 2 && memcmp(b.mem + b.off, "89", 2) == 0 && last && s.size == 10);
  CHECK(source_body(&s, 10, 0, &b, &last) == 0 && b.len == 0 && last);
  close(s.fd);
  free(s.held);

  /* A length that is a multiple of the chunk: the end is found by reading ahead. */
  CHECK(pipe_source(&s, "abcdefgh", 8, 4) == 0);
  CHECK(source_body(&s, 0, 0, &b, &last) == 0 && b.len == 4 && !last);
  CHECK(source_body(&s, 4, 0, &b, &last) == 0 && b.len == 4 && last && s.size == 8);
  CHECK(memcmp(b.mem + b.off, "efgh", 4) == 0);
  close(s.fd);
  free(s.held);

  CHECK(pipe_source(&s, "", 0, 4) == 0);
  CHECK(source_body(&s, 0, 0, &b, &last) == 0 && b.len == 0 && last && s.size == 0);
  close(s.fd);
  free(s.held);
}

static void test_source_file_and_digest(void) {
  char path[256];
  snprintf(path, sizeof(path), "%s/f", tmpdir);
  FILE *f = fopen(path, "w");
  fputs("xxabcyy", f);
  fclose(f);
  struct source s;
  struct body b, m = {.fd = -1, .mem = (const unsigned char *)"abc", .len = 3};
  int last;
  CHECK(source_open(&s, path, 0) == 0 && s.size == 7 && strcmp(s.name, "f") == 0);
  CHECK(source_body(&s, 2, 3, &b, &last) == 0 && b.fd >= 0 && b.off == 2 && b.len == 3 && !last);
  CHECK(source_body(&s, 5, 0, &b, &last) == 0 && b.len == 2 && last);
  CHECK(source_body(&s, 8, 0, &b, &last) == -ESPIPE);
  unsigned char d1[64], d2[64];
  CHECK(source_body(&s, 2, 3, &b, &last) == 0);
  CHECK(body_digest(&b, CHECKSUM_SHA256, d1) == 0 && body_digest(&m, CHECKSUM_SHA256, d2) == 0);
  CHECK(memcmp(d1, d2, 32) == 0);
  char hex[65];
  hex_encode(d1, 32, hex);
  CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  CHECK(body_digest(&b, CHECKSUM_CRC32, d1) == 0 && memcmp(d1, "\x35\x24\x41\xc2", 4) == 0);
  source_close(&s);
}

static void answer(struct http_call *c, long status, const char *reason, const char *head, const char *body) {
  *c = (struct http_call){.status = status};
  snprintf(c->reason, sizeof(c->reason), "%s", reason);
  c->head = strdup(head);
  c->head_len = strlen(head);
  snprintf(c->body_start, sizeof(c->body_start), "%s", body);
  c->body_len = strlen(body);
}

static void test_reasons(void) {
  struct http_call c;
  char why[512], v[64];
  answer(&c, 413, "Payload Too Large", "Content-Type: application/problem+json\r\n",
         "{\"type\":\"x\",\"title\":\"Too big\",\"detail\":\"the upload exceeds \\\"1K\\\"\"}");
  http_call_reason(&c, why, sizeof(why));
  CHECK(strcmp(why, "server answered 413 Payload Too Large: the upload exceeds \"1K\"") == 0);
  http_call_release(&c);
  answer(&c, 400, "Bad Request", "content-type: text/plain\r\nUpload-Offset:  42 \r\n", "bad Upload-Offset\nmore");
  http_call_reason(&c, why, sizeof(why));
  CHECK(strcmp(why, "server answered 400 Bad Request: bad Upload-Offset") == 0);
  CHECK(http_call_header(&c, "upload-offset", v, sizeof(v)) && strcmp(v, "42") == 0);
  CHECK(http_call_header(&c, "upload-offset", v, 2) == NULL);
  CHECK(http_call_header(&c, "upload-length", v, sizeof(v)) == NULL);
  CHECK(http_call_header(&c, "upload", v, sizeof(v)) == NULL); /* a prefix is not a name */
  http_call_release(&c);
  answer(&c, 404, "Not Found", "Content-Type: text/html\r\n", "<html>nope</html>");
  http_call_reason(&c, why, sizeof(why));
  CHECK(strcmp(why, "server answered 404 Not Found") == 0);
  http_call_release(&c);
  answer(&c, 403, "", "", "");
  http_call_reason(&c, why, sizeof(why));
  CHECK(strcmp(why, "server answered 403") == 0);
  http_call_release(&c);
}

static void test_transient(void) {
  struct job j = {0};
  struct http_call c = {.code = CURLE_COULDNT_CONNECT};
  snprintf(c.error, sizeof(c.error), "Failed to connect");
  CHECK(job_transient(&j, &c) == STEP_RETRY && strstr(j.reason, "cannot connect"));
  c.code = CURLE_OPERATION_TIMEDOUT;
  CHECK(job_transient(&j, &c) == STEP_RETRY && strstr(j.reason, "timed out"));
  c.code = CURLE_ABORTED_BY_CALLBACK;
  c.stalled = 1;
  CHECK(job_transient(&j, &c) == STEP_RETRY && strstr(j.reason, "stalled"));
  c.stalled = 0;
  c.code = CURLE_SEND_ERROR;
  CHECK(job_transient(&j, &c) == STEP_RETRY && strstr(j.reason, "connection failed"));
  long retry[] = {500, 502, 503, 504, 507, 409, 423, 429};
  long final[] = {200, 204, 400, 403, 404, 410, 412, 413, 460, 501, 505};
  for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
    c = (struct http_call){.code = CURLE_OK, .status = retry[i]};
    CHECK(job_transient(&j, &c) == STEP_RETRY);
  }
  for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
    c = (struct http_call){.code = CURLE_OK, .status = final[i]};
    CHECK(job_transient(&j, &c) == STEP_OK);
  }
}

static void test_retry_after(void) {
  struct job j = {0};
  struct http_call c;
  answer(&c, 503, "Service Unavailable", "Retry-After: 7\r\n", "");
  CHECK(job_transient(&j, &c) == STEP_RETRY && j.retry_after == 7);
  http_call_release(&c);
  /* An HTTP-date about a minute ahead (the clock may tick while we look). */
  char head[128], date[64];
  time_t at = time(NULL) + 60;
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&at));
  snprintf(head, sizeof(head), "Retry-After: %s\r\n", date);
  answer(&c, 429, "Too Many Requests", head, "");
  CHECK(job_transient(&j, &c) == STEP_RETRY && j.retry_after >= 58 && j.retry_after <= 60);
  http_call_release(&c);
  /* A date past, a value that is neither, or none: no wish. */
  const char *none[] = {"Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n", "Retry-After: soon\r\n",
                        "Retry-After: -3\r\n", "X-Other: 5\r\n"};
  for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
    j.retry_after = 99;
    answer(&c, 503, "Service Unavailable", none[i], "");
    CHECK(job_transient(&j, &c) == STEP_RETRY && j.retry_after == 0);
    http_call_release(&c);
  }
  /* A Retry-After on an answer that is not retried is not kept either. */
  j.retry_after = 99;
  answer(&c, 413, "Content Too Large", "Retry-After: 5\r\n", "");
  CHECK(job_transient(&j, &c) == STEP_OK && j.retry_after == 0);
  http_call_release(&c);
}

static void test_backoff(void) {
  struct client_options o = {.retry_delay = 0.5, .retry_max_delay = 4};
  unsigned seed = 1;
  for (int k = 1; k <= 8; k++) {
    double full = 0.5 * (double)(1 << (k - 1));
    if (full > 4) full = 4;
    double lo = 1e9, hi = 0;
    for (int i = 0; i < 200; i++) {
      double d = backoff(&o, k, &seed);
      lo = d < lo ? d : lo, hi = d > hi ? d : hi;
    }
    CHECK(lo >= full / 2 && hi <= full);
    CHECK(hi - lo > full / 10); /* jittered, not fixed */
  }
}

/* Runs options_parse with stderr silenced; its result. */
static int parse(struct client_options *o, const char *const *args) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "resumed-upload";
  for (; *args; args++) argv[argc++] = (char *)*args;
  argv[argc] = NULL;
  optind = 1;
  fflush(stderr);
  int saved = dup(2), null = open("/dev/null", O_WRONLY);
  dup2(null, 2);
  int rc = options_parse(o, argc, argv);
  dup2(saved, 2);
  close(saved);
  close(null);
  return rc;
}

static void test_options(void) {
  struct client_options o;
  char file[256];
  snprintf(file, sizeof(file), "%s/f", tmpdir);
  const char *ok[] = {"-p", "ietf", "-c", "4M", "--checksum", "sha256", "-m", "a=b", "-H", "X-A: 1", "-j", "3",
                      "--ietf-version", "8", "--no-state", file, "-", "http://h:1/files/", NULL};
  CHECK(parse(&o, ok) == OPTIONS_OK);
  CHECK(o.protocol == PROTO_IETF && o.chunk_size == 4u << 20 && o.checksum == CHECKSUM_SHA256);
  CHECK(o.n_metadata == 1 && o.n_headers == 1 && o.parallel == 3 && o.ietf_version == 8);
  CHECK(o.n_files == 2 && strcmp(o.url, "http://h:1/files/") == 0 && o.state_file == NULL);
  options_release(&o);
  const char *const bad[][8] = {
      {file, NULL},                                             /* no URL */
      {"--bogus", file, "http://h/", NULL},                     /* unknown option */
      {"-j", "0", file, "http://h/", NULL},                     /* out of range */
      {"--ietf-version", "2", file, "http://h/", NULL},         /* unsupported draft */
      {"-c", "0", file, "http://h/", NULL},                     /* empty chunks */
      {"-m", "a b=c", file, "http://h/", NULL},                 /* tus keys have no spaces */
      {"-H", "NoColon", file, "http://h/", NULL},               /* not a header */
      {"--checksum", "sha3", file, "http://h/", NULL},          /* unknown algorithm */
      {"-p", "ietf", "--checksum", "md5", file, "http://h/", NULL},
      {"-p", "article", "--checksum", "sha1", file, "http://h/", NULL},
      {"-p", "article", "-", "http://h/", NULL},
      {"-", "-", "http://h/", NULL},
      {"--resume", "http://h/files/1", file, file, "http://h/", NULL},
      {file, "ftp://h/", NULL},
      {file, "not a url", NULL},
      {"/nonexistent/file", "http://h/", NULL},
      {tmpdir, "http://h/", NULL}, /* a directory */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = parse(&o, bad[i]);
    if (rc != OPTIONS_USAGE) fprintf(stderr, "  bad[%zu] was accepted\n", i);
    CHECK(rc == OPTIONS_USAGE);
    options_release(&o);
  }
  setenv("XDG_STATE_HOME", "/s", 1);
  const char *def[] = {file, "http://h/", NULL};
  CHECK(parse(&o, def) == OPTIONS_OK && strcmp(o.state_file, "/s/resumed-upload/uploads") == 0);
  options_release(&o);
}

/* ---- the retry loop, against a scripted protocol ---- */

static const enum step *script;
static size_t script_pos, creates, queries, appends;
static uint64_t script_offsets[32];
static double script_retry_after; /* what each scripted failure's Retry-After asks */

static enum step next_step(struct job *j) {
  enum step s = script[script_pos];
  uint64_t off = script_offsets[script_pos++];
  if (s == STEP_OK) {
    job_acknowledged(j, off);
    j->complete = off == (uint64_t)j->src.size;
  } else {
    snprintf(j->reason, sizeof(j->reason), "scripted failure %zu", script_pos);
    j->retry_after = script_retry_after;
  }
  return s;
}
static enum step fake_create(struct job *j) {
  creates++;
  enum step s = next_step(j);
  if (s == STEP_OK && !j->url) j->url = strdup("http://h/files/x"), j->created_here = 1;
  return s;
}
static enum step fake_query(struct job *j) { return queries++, next_step(j); }
static enum step fake_append(struct job *j) { return appends++, next_step(j); }
static const struct upload_protocol fake = {
    .name = "fake", .create = fake_create, .query = fake_query, .append = fake_append};

static int run_script(struct client_options *o, const char *url, const enum step *steps, const uint64_t *offs,
                      size_t n, struct job *j) {
  static struct progress p;
  script = steps;
  script_pos = creates = queries = appends = 0;
  memcpy(script_offsets, offs, n * sizeof(*offs));
  progress_init(&p, j, 1, 1, 10);
  *j = (struct job){.opts = o, .progress = &p, .proto = &fake};
  j->src = (struct source){.arg = "f", .size = 100, .fd = -1};
  j->url = url ? strdup(url) : NULL;
  int rc = job_run(j, NULL);
  progress_release(&p);
  CHECK(script_pos == n); /* every step used, none more */
  return rc;
}

static void test_retry_loop(void) {
  struct client_options o = {.retries = 2, .retry_delay = 0.001, .retry_max_delay = 0.002};
  struct job j;
  /* create, append cut, offset asked, append to the end */
  enum step s1[] = {STEP_OK, STEP_RETRY, STEP_OK, STEP_OK};
  uint64_t o1[] = {0, 0, 40, 100};
  CHECK(run_script(&o, NULL, s1, o1, 4, &j) == 0);
  CHECK(creates == 1 && queries == 1 && appends == 2 && j.offset == 100 && j.state == JOB_DONE);
  free(j.url);

  /* Three failures in a row without progress exceed --retries 2. */
  enum step s2[] = {STEP_OK, STEP_RETRY, STEP_RETRY, STEP_RETRY};
  uint64_t o2[] = {0, 0, 0, 0};
  CHECK(run_script(&o, NULL, s2, o2, 4, &j) == -1);
  CHECK(strstr(j.reason, "gave up after 3 attempts") != NULL && j.state == JOB_FAILED);
  free(j.url);

  /* Progress resets the count: five failures in all, never three in a row without progress. */
  enum step s3[] = {STEP_OK,    STEP_RETRY, STEP_RETRY, STEP_OK, STEP_RETRY,
                    STEP_RETRY, STEP_OK,    STEP_RETRY, STEP_OK, STEP_OK};
  uint64_t o3[] = {0, 0, 0, 30, 0, 0, 60, 0, 90, 100};
  CHECK(run_script(&o, NULL, s3, o3, 10, &j) == 0 && j.offset == 100);
  free(j.url);

  /* A permanent failure ends at once. */
  enum step s4[] = {STEP_OK, STEP_FAIL};
  uint64_t o4[] = {0, 0};
  CHECK(run_script(&o, NULL, s4, o4, 2, &j) == -1 && strstr(j.reason, "scripted failure 2"));
  free(j.url);

  /* A remembered upload that is gone is created anew, from zero. */
  enum step s5[] = {STEP_GONE, STEP_OK, STEP_OK};
  uint64_t o5[] = {0, 0, 100};
  CHECK(run_script(&o, "http://h/files/old", s5, o5, 3, &j) == 0);
  CHECK(queries == 1 && creates == 1 && appends == 1 && strcmp(j.url, "http://h/files/x") == 0);
  free(j.url);

  /* ... but not one the user named with --resume. */
  o.resume_url = "http://h/files/old";
  enum step s6[] = {STEP_GONE};
  uint64_t o6[] = {0};
  CHECK(run_script(&o, "http://h/files/old", s6, o6, 1, &j) == -1 && creates == 0);
  free(j.url);
  o.resume_url = NULL;

  /* A Retry-After longer than the backoff is waited for, up to --retry-max-delay. */
  struct client_options slow = {.retries = 2, .retry_delay = 0.001, .retry_max_delay = 0.3};
  enum step s8[] = {STEP_OK, STEP_RETRY, STEP_OK, STEP_OK};
  uint64_t o8[] = {0, 0, 0, 100};
  script_retry_after = 0.2;
  double t0 = monotonic_seconds();
  CHECK(run_script(&slow, NULL, s8, o8, 4, &j) == 0);
  CHECK(monotonic_seconds() - t0 >= 0.2);
  free(j.url);
  script_retry_after = 30; /* capped: a test that waited 30 s would be its own failure */
  t0 = monotonic_seconds();
  CHECK(run_script(&slow, NULL, s8, o8, 4, &j) == 0);
  double waited = monotonic_seconds() - t0;
  CHECK(waited >= 0.3 && waited < 20);
  free(j.url);
  script_retry_after = 0;

  /* A server that claims more than the file has is not believed. */
  enum step s7[] = {STEP_OK};
  uint64_t o7[] = {150};
  CHECK(run_script(&o, "http://h/files/old", s7, o7, 1, &j) == -1 && strstr(j.reason, "more than"));
  free(j.url);
}

int main(void) {
  if (!mkdtemp(tmpdir)) return 1;
  util_init();
  RUN(test_state_key);
  RUN(test_state_file);
  RUN(test_source_stdin);
  RUN(test_source_file_and_digest);
  RUN(test_reasons);
  RUN(test_transient);
  RUN(test_retry_after);
  RUN(test_backoff);
  RUN(test_options);
  RUN(test_retry_loop);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  UNIT_DONE();
}
