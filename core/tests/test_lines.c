/* test_lines.c: JSON-lines splitter. */
#include <string.h>

#include "buf.h"
#include "lines.h"
#include "test.h"

/* Joins delivered lines as "<line>|" so boundaries are visible. */
typedef struct sink {
    buf got;
    int calls;
    int fail_at_call;
} sink;

static int on_line(void *ud, const char *line, size_t len)
{
    sink *s = ud;
    s->calls++;
    if (s->fail_at_call > 0 && s->calls == s->fail_at_call) {
        return DRV_ECANCELED;
    }
    buf_append(&s->got, line, len);
    buf_puts(&s->got, "|");
    return 0;
}

static const char sample[] =
    "{\"status\":\"Pulling\"}\n"
    "\n"
    "{\"stream\":\"Loaded image\"}\r\n"
    "\r\n"
    "x\n"
    "{\"error\":\"last\"}";
static const char sample_lines[] =
    "{\"status\":\"Pulling\"}|{\"stream\":\"Loaded image\"}|x|";

TEST(whole_input_and_finish)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 0, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, sample, sizeof sample - 1, NULL), 0);
    ASSERT_STR_EQ(buf_str(&s.got), sample_lines);
    ASSERT_INT_EQ(lines_finish(&l, NULL), 0);
    ASSERT_STR_EQ(buf_str(&s.got), "{\"status\":\"Pulling\"}|{\"stream\":\"Loaded image\"}|x|"
                                   "{\"error\":\"last\"}|");
    ASSERT_INT_EQ(lines_finish(&l, NULL), 0);    /* nothing left: no call */
    ASSERT_INT_EQ(s.calls, 4);
    lines_free(&l);
    buf_free(&s.got);
}

TEST(every_split_point)
{
    size_t n = sizeof sample - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        sink s = { 0 };
        lines l;
        lines_init(&l, 0, on_line, &s);
        ASSERT_INT_EQ(lines_feed(&l, sample, cut, NULL), 0);
        ASSERT_INT_EQ(lines_feed(&l, sample + cut, n - cut, NULL), 0);
        ASSERT_STR_EQ(buf_str(&s.got), sample_lines);
        ASSERT_INT_EQ(lines_finish(&l, NULL), 0);
        ASSERT_INT_EQ(s.calls, 4);
        lines_free(&l);
        buf_free(&s.got);
    }
}

TEST(byte_by_byte)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 0, on_line, &s);
    for (size_t i = 0; i < sizeof sample - 1; i++) {
        ASSERT_INT_EQ(lines_feed(&l, sample + i, 1, NULL), 0);
    }
    ASSERT_STR_EQ(buf_str(&s.got), sample_lines);
    lines_free(&l);
    buf_free(&s.got);
}

TEST(crlf_split_between_cr_and_lf)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 0, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "abc\r", 4, NULL), 0);
    ASSERT_INT_EQ(s.calls, 0);
    ASSERT_INT_EQ(lines_feed(&l, "\ndef\r\n", 6, NULL), 0);
    ASSERT_STR_EQ(buf_str(&s.got), "abc|def|");
    lines_free(&l);
    buf_free(&s.got);
}

TEST(only_empty_lines)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 0, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "\n\r\n\n", 4, NULL), 0);
    ASSERT_INT_EQ(lines_finish(&l, NULL), 0);
    ASSERT_INT_EQ(s.calls, 0);
    lines_free(&l);
    buf_free(&s.got);
}

TEST(finish_strips_cr)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 0, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "a\nend\r", 6, NULL), 0);
    ASSERT_INT_EQ(lines_finish(&l, NULL), 0);
    ASSERT_STR_EQ(buf_str(&s.got), "a|end|");
    lines_free(&l);
    buf_free(&s.got);
}

TEST(line_at_limit_is_accepted)
{
    sink s = { 0 };
    lines l;
    lines_init(&l, 8, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "1234", 4, NULL), 0);
    ASSERT_INT_EQ(lines_feed(&l, "5678\r\n12345678\n", 16, NULL), 0);
    ASSERT_STR_EQ(buf_str(&s.got), "12345678|12345678|");
    lines_free(&l);
    buf_free(&s.got);
}

TEST(over_long_complete_line)
{
    sink s = { 0 };
    lines l;
    drv_err err;
    drv_err_clear(&err);
    lines_init(&l, 8, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "ok\n123456789\nnext\n", 18, &err), DRV_EINVALID);
    ASSERT_INT_EQ(err.code, DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "longer than 8 bytes");
    ASSERT_STR_EQ(buf_str(&s.got), "ok|");
    lines_free(&l);
    buf_free(&s.got);
}

TEST(over_long_partial_line)
{
    sink s = { 0 };
    lines l;
    drv_err err;
    drv_err_clear(&err);
    lines_init(&l, 8, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "12345", 5, &err), 0);
    /* fails before the newline arrives: the buffer never grows unbounded */
    ASSERT_INT_EQ(lines_feed(&l, "6789", 4, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "longer than 8 bytes");
    ASSERT_INT_EQ(s.calls, 0);
    lines_free(&l);
    buf_free(&s.got);
}

TEST(default_limit_is_one_mib)
{
    sink s = { 0 };
    lines l;
    static char big[((size_t)1 << 20) + 2];
    memset(big, 'x', sizeof big);
    lines_init(&l, 0, on_line, &s);
    big[(size_t)1 << 20] = '\n';
    ASSERT_INT_EQ(lines_feed(&l, big, ((size_t)1 << 20) + 1, NULL), 0);
    ASSERT_INT_EQ(s.calls, 1);
    ASSERT_INT_EQ(s.got.len, ((size_t)1 << 20) + 1);
    big[(size_t)1 << 20] = 'x';
    big[((size_t)1 << 20) + 1] = '\n';
    ASSERT_INT_EQ(lines_feed(&l, big, sizeof big, NULL), DRV_EINVALID);
    lines_free(&l);
    buf_free(&s.got);
}

TEST(callback_abort)
{
    sink s = { 0 };
    lines l;
    s.fail_at_call = 2;
    lines_init(&l, 0, on_line, &s);
    ASSERT_INT_EQ(lines_feed(&l, "a\nb\nc\n", 6, NULL), DRV_ECANCELED);
    ASSERT_STR_EQ(buf_str(&s.got), "a|");
    ASSERT_INT_EQ(s.calls, 2);
    lines_free(&l);
    buf_free(&s.got);
}

int main(void)
{
    RUN(whole_input_and_finish);
    RUN(every_split_point);
    RUN(byte_by_byte);
    RUN(crlf_split_between_cr_and_lf);
    RUN(only_empty_lines);
    RUN(finish_strips_cr);
    RUN(line_at_limit_is_accepted);
    RUN(over_long_complete_line);
    RUN(over_long_partial_line);
    RUN(default_limit_is_one_mib);
    RUN(callback_abort);
    return test_summary();
}
