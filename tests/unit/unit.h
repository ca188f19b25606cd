/* Minimal unit-test harness: TEST(name) functions registered in main via RUN(). */
#ifndef RESUMED_UNIT_H
#define RESUMED_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed_checks;
static int unit_passed, unit_failed;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      unit_failed_checks++;                                                      \
    }                                                                            \
  } while (0)

#define CHECK_EQ_U64(a, b)                                                          \
  do {                                                                              \
    unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b);  \
    if (_a != _b) {                                                                 \
      fprintf(stderr, "  %s:%d: %s == %llu, expected %llu\n", __FILE__, __LINE__, #a, \
              _a, _b);                                                              \
      unit_failed_checks++;                                                         \
    }                                                                               \
  } while (0)

#define RUN(fn)                                   \
  do {                                            \
    int _before = unit_failed_checks;             \
    fn();                                         \
    if (unit_failed_checks == _before) {          \
      unit_passed++;                              \
      printf("PASS %s\n", #fn);                   \
    } else {                                      \
      unit_failed++;                              \
      printf("FAIL %s\n", #fn);                   \
    }                                             \
  } while (0)

#define UNIT_DONE()                                          \
  do {                                                       \
    printf("%d passed, %d failed\n", unit_passed, unit_failed); \
    return unit_failed ? 1 : 0;                              \
  } while (0)

#endif
