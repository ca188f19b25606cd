#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static void vlog(const char *tag, const char *fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  fprintf(stderr, "resumed: %s%s\n", tag, buf);
}

void log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("warning: ", fmt, ap);
  va_end(ap);
}

void log_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}

void log_line(const char *line) { fprintf(stderr, "%s\n", line); }
