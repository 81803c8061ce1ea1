/* test_esc.c: escaping untrusted text for the terminal. */
#include <string.h>

#include "buf.h"
#include "esc.h"
#include "test.h"

static const char *esc_n(buf *b, const char *s, size_t n)
{
    buf_reset(b);
    esc_append(b, s, n);
    return buf_str(b);
}

#define ESC(b, lit) esc_n((b), (lit), sizeof(lit) - 1)

TEST(plain_text_unchanged)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("hello, world: 100% \\ \"q\"", ESC(&b, "hello, world: 100% \\ \"q\""));
    ASSERT_STR_EQ("tab\tstays", ESC(&b, "tab\tstays"));
    ASSERT_STR_EQ("", ESC(&b, ""));
    buf_free(&b);
}

TEST(controls_escaped)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("\\x1b]0;pwned\\x07\\x1b[2J\\rX", ESC(&b, "\033]0;pwned\007\033[2J\rX"));
    ASSERT_STR_EQ("a\\nb", ESC(&b, "a\nb"));
    ASSERT_STR_EQ("del\\x7f", ESC(&b, "del\177"));
    ASSERT_STR_EQ("nul\\x00end", ESC(&b, "nul\0end"));
    ASSERT_STR_EQ("\\x08\\x0b\\x0c\\x1f", ESC(&b, "\b\v\f\037"));
    buf_free(&b);
}

TEST(valid_utf8_kept)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3",
                  ESC(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3"));
    ASSERT_STR_EQ("\xf4\x8f\xbf\xbf", ESC(&b, "\xf4\x8f\xbf\xbf"));   /* U+10FFFF */
    buf_free(&b);
}

TEST(invalid_utf8_escaped_bytewise)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("\\xff\\xfe", ESC(&b, "\xff\xfe"));
    ASSERT_STR_EQ("\\xc0\\xaf", ESC(&b, "\xc0\xaf"));               /* overlong '/' */
    ASSERT_STR_EQ("\\xe0\\x80\\xaf", ESC(&b, "\xe0\x80\xaf"));      /* overlong */
    ASSERT_STR_EQ("\\xed\\xa0\\x80", ESC(&b, "\xed\xa0\x80"));      /* surrogate */
    ASSERT_STR_EQ("\\xf4\\x90\\x80\\x80", ESC(&b, "\xf4\x90\x80\x80")); /* > U+10FFFF */
    ASSERT_STR_EQ("a\\xc3", ESC(&b, "a\xc3"));                      /* truncated */
    ASSERT_STR_EQ("\\xc3(", ESC(&b, "\xc3("));                      /* bad continuation */
    ASSERT_STR_EQ("\\x9b2J", ESC(&b, "\x9b" "2J"));                 /* raw 8-bit CSI */
    buf_free(&b);
}

TEST(c1_and_bidi_escaped)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("\\u009b2J", ESC(&b, "\xc2\x9b" "2J"));           /* C1 CSI as UTF-8 */
    ASSERT_STR_EQ("a\\u202eb", ESC(&b, "a\xe2\x80\xae" "b"));       /* RLO */
    ASSERT_STR_EQ("\\u2066x\\u2069", ESC(&b, "\xe2\x81\xa6x\xe2\x81\xa9"));
    ASSERT_STR_EQ("\\u2028", ESC(&b, "\xe2\x80\xa8"));
    buf_free(&b);
}

TEST(appends_and_str)
{
    buf b = BUF_INIT;
    buf_puts(&b, "web | ");
    esc_append(&b, "x\ry", 3);
    ASSERT_STR_EQ("web | x\\ry", buf_str(&b));
    ASSERT_STR_EQ("name \\x1b[31m", esc_str(&b, "name \033[31m"));
    ASSERT_STR_EQ("", esc_str(&b, NULL));
    buf_free(&b);
}

TEST(messages_keep_indented_lines)
{
    buf b = BUF_INIT;
    ASSERT_STR_EQ("one line", esc_msg(&b, "one line"));
    ASSERT_STR_EQ("docker: no\n  start it", esc_msg(&b, "docker: no\n  start it"));
    ASSERT_STR_EQ("a\n  drvctl: forged\n  web | x", esc_msg(&b, "a\ndrvctl: forged\nweb | x"));
    ASSERT_STR_EQ("a\n  \n  ", esc_msg(&b, "a\n\n"));
    ASSERT_STR_EQ("a\\x1b\\r\n  b", esc_msg(&b, "a\033\r\nb"));
    ASSERT_STR_EQ("", esc_msg(&b, NULL));
    buf_free(&b);
}

/* Every byte value alone: no raw control byte ever comes out. */
TEST(no_control_byte_survives)
{
    buf b = BUF_INIT;
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        esc_n(&b, &in, 1);
        for (size_t i = 0; i < b.len; i++) {
            unsigned char o = (unsigned char)b.data[i];
            ASSERT(o == '\t' || (o >= 0x20 && o < 0x7f));
        }
    }
    buf_free(&b);
}

int main(void)
{
    RUN(plain_text_unchanged);
    RUN(controls_escaped);
    RUN(valid_utf8_kept);
    RUN(invalid_utf8_escaped_bytewise);
    RUN(c1_and_bidi_escaped);
    RUN(appends_and_str);
    RUN(messages_keep_indented_lines);
    RUN(no_control_byte_survives);
    return test_summary();
}
