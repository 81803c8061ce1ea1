/* test_log.c: diagnostics in text and JSON form (log.c), stderr captured. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "test.h"

/* stderr goes to a pipe while `fn` runs; what it wrote lands in out. */
static char captured[8192];

static const char *capture_begin(int *saved, int fds[2])
{
    fflush(stderr);
    if (pipe(fds) != 0) {
        return NULL;
    }
    *saved = dup(2);
    if (*saved < 0 || dup2(fds[1], 2) < 0) {
        return NULL;
    }
    close(fds[1]);
    return "";
}

static const char *capture_end(int saved, int fds[2])
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = read(fds[0], captured, sizeof captured - 1);
    close(fds[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

#define CAPTURE(stmt)                                                         \
    do {                                                                      \
        int saved_, fds_[2];                                                  \
        ASSERT(capture_begin(&saved_, fds_) != NULL);                         \
        stmt;                                                                 \
        capture_end(saved_, fds_);                                            \
    } while (0)

static const char *jesc(buf *b, const char *s)
{
    buf_reset(b);
    log_json_escape(b, s);
    return buf_str(b);
}

TEST(json_escaping)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("plain text: 100%", jesc(&b, "plain text: 100%"));
    ASSERT_STR_EQ("q\\\"uote\\\\back", jesc(&b, "q\"uote\\back"));
    ASSERT_STR_EQ("a\\u000ab\\u0009c\\u000d\\u001b[2J\\u007f", jesc(&b, "a\nb\tc\r\033[2J\177"));
    ASSERT_STR_EQ("\\u0001\\u001f", jesc(&b, "\001\037"));
    /* valid UTF-8 kept, C1 controls escaped, invalid bytes become U+FFFD */
    ASSERT_STR_EQ("caf\xc3\xa9 \xf0\x9f\x90\xb3", jesc(&b, "caf\xc3\xa9 \xf0\x9f\x90\xb3"));
    ASSERT_STR_EQ("\\u009b", jesc(&b, "\xc2\x9b"));
    ASSERT_STR_EQ("x\xef\xbf\xbdy", jesc(&b, "x\xffy"));
    ASSERT_STR_EQ("\xef\xbf\xbd\xef\xbf\xbd", jesc(&b, "\xc0\xaf")); /* overlong */
    ASSERT_STR_EQ("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", jesc(&b, "\xed\xa0\x80")); /* surrogate */
    ASSERT_STR_EQ("end\xef\xbf\xbd\xef\xbf\xbd", jesc(&b, "end\xe2\x82")); /* truncated */
    buf_free(&b);
}

TEST(text_format)
{
    log_set_json(0);
    log_set_level(LOG_INFO);
    CAPTURE(log_warn("disk %s", "full"));
    ASSERT_STR_EQ("drvctl: warning: disk full\n", captured);
    CAPTURE(log_error("bad \033[2J"));
    ASSERT_STR_EQ("drvctl: error: bad \\x1b[2J\n", captured);
    CAPTURE(log_debug("hidden"));
    ASSERT_STR_EQ("", captured);
    CAPTURE(log_text(LOG_ERROR, "job.hcl:3:5: task name not allowed: \"../x\""));
    ASSERT_STR_EQ("drvctl: job.hcl:3:5: task name not allowed: \"../x\"\n", captured);
    CAPTURE(log_text(LOG_WARN, "careful"));
    ASSERT_STR_EQ("drvctl: warning: careful\n", captured);
}

static void check_json_line(const char *line, const char *level, const char *msg)
{
    size_t n = strlen(line);
    ASSERT(n > 0 && line[n - 1] == '\n');
    ASSERT(memchr(line, '\n', n - 1) == NULL);
    json_val v;
    ASSERT_INT_EQ(0, json_parse(line, n - 1, &v));
    const char *ts = json_get_str(&v, "ts");
    ASSERT(ts != NULL);
    /* 2026-11-29T16:50:01.123Z */
    ASSERT_INT_EQ(24, (int)strlen(ts));
    ASSERT(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
    ASSERT(json_get_str(&v, "level") != NULL);
    ASSERT_STR_EQ(level, json_get_str(&v, "level"));
    ASSERT(json_get_str(&v, "msg") != NULL);
    ASSERT_STR_EQ(msg, json_get_str(&v, "msg"));
    ASSERT_INT_EQ(3, (int)v.n);
    json_free(&v);
}

TEST(json_format)
{
    log_set_json(1);
    log_set_level(LOG_DEBUG);
    CAPTURE(log_debug("d %d", 1));
    check_json_line(captured, "debug", "d 1");
    CAPTURE(log_info("i"));
    check_json_line(captured, "info", "i");
    CAPTURE(log_warn("two\nlines \"q\""));
    check_json_line(captured, "warn", "two\nlines \"q\"");
    CAPTURE(log_error("esc \033]0;x\007"));
    check_json_line(captured, "error", "esc \033]0;x\007");
    CAPTURE(log_text(LOG_ERROR, "bad byte \xff"));
    check_json_line(captured, "error", "bad byte \xef\xbf\xbd");
    CAPTURE(log_text(LOG_WARN, "w"));
    check_json_line(captured, "warn", "w");
    log_set_level(LOG_INFO);
    CAPTURE(log_debug("hidden"));
    ASSERT_STR_EQ("", captured);
    log_set_json(0);
}

TEST(long_message)
{
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_set_json(1);
    CAPTURE(log_error("%s", big));
    log_set_json(0);
    check_json_line(captured, "error", big);
}

int main(void)
{
    RUN(json_escaping);
    RUN(text_format);
    RUN(json_format);
    RUN(long_message);
    return test_summary();
}
