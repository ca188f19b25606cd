/* Diagnostics on stderr. The request log goes through log_line(). */
#ifndef RESUMED_LOG_H
#define RESUMED_LOG_H

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_line(const char *line);

#endif
