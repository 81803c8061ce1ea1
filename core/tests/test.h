/*
 * test.h: a tiny libuv-style test harness, header only.
 *
 *     TEST(frame_split) { ASSERT_INT_EQ(1, 1); }
 *     int main(void) { RUN(frame_split); return test_summary(); }
 *
 * A failed ASSERT prints "file:line: ..." and returns from the test function
 * (later tests still run). test_summary() prints "N passed, M failed" and
 * returns the process exit status (0 only when nothing failed).
 */
#ifndef DRV_TEST_H
#define DRV_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed_;
static int test_failed_;
static int test_cur_failed_;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                             \
    do {                                                                      \
        test_cur_failed_ = 0;                                                 \
        test_##name();                                                        \
        if (test_cur_failed_) {                                               \
            test_failed_++;                                                   \
            printf("FAIL %s\n", #name);                                      \
        } else {                                                              \
            test_passed_++;                                                   \
            printf("ok   %s\n", #name);                                      \
        }                                                                     \
        fflush(stdout);                                                       \
    } while (0)

#define TEST_FAIL_(...)                                                       \
    do {                                                                      \
        fflush(stdout);                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        test_cur_failed_ = 1;                                                 \
        return;                                                               \
    } while (0)

#define ASSERT(expr)                                                          \
    do {                                                                      \
        if (!(expr)) {                                                        \
            TEST_FAIL_("assertion failed: %s", #expr);                        \
        }                                                                     \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                                   \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);             \
        }                                                                     \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                   \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                \
            TEST_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,                  \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
        }                                                                     \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                \
    do {                                                                      \
        size_t n_ = (size_t)(n);                                              \
        if (memcmp((a), (b), n_) != 0) {                                      \
            TEST_FAIL_("%s == %s: %zu bytes differ", #a, #b, n_);             \
        }                                                                     \
    } while (0)

/* Substring check, for error messages. */
#define ASSERT_CONTAINS(hay, needle)                                          \
    do {                                                                      \
        const char *h_ = (hay), *n_ = (needle);                               \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                           \
            TEST_FAIL_("%s does not contain \"%s\": \"%s\"", #hay, n_,        \
                       h_ ? h_ : "(null)");                                   \
        }                                                                     \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_passed_, test_failed_);
    fflush(stdout);
    return test_failed_ == 0 ? 0 : 1;
}

#endif
