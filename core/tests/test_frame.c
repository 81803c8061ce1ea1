/* test_frame.c: Docker multiplexed stream parser. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "test.h"

/* Records every delivered byte as two bytes: '0' + stream, then the byte,
 * so a transcript is independent of how the input was split. */
typedef struct collector {
    buf transcript;
    buf out;            /* stdout (and stdin) payload */
    buf err;            /* stderr payload */
    int calls;
    int fail_at_call;   /* > 0: return DRV_ECANCELED on that call */
} collector;

static int collect(void *ud, int stream, const char *data, size_t len)
{
    collector *c = ud;
    c->calls++;
    if (c->fail_at_call > 0 && c->calls == c->fail_at_call) {
        return DRV_ECANCELED;
    }
    for (size_t i = 0; i < len; i++) {
        char pair[2] = { (char)('0' + stream), data[i] };
        buf_append(&c->transcript, pair, 2);
    }
    buf_append(stream == FRAME_STDERR ? &c->err : &c->out, data, len);
    return 0;
}

static void collector_free(collector *c)
{
    buf_free(&c->transcript);
    buf_free(&c->out);
    buf_free(&c->err);
}

static void add_frame(buf *b, int stream, const char *payload, size_t len)
{
    unsigned char h[8] = { (unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
                           (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                           (unsigned char)len };
    buf_append(b, h, sizeof h);
    buf_append(b, payload, len);
}

/* stdout, stderr, stdin, an empty frame, stdout again. */
static void sample(buf *b)
{
    add_frame(b, FRAME_STDOUT, "out-line\n", 9);
    add_frame(b, FRAME_STDERR, "err-line\n", 9);
    add_frame(b, FRAME_STDIN, "in", 2);
    add_frame(b, FRAME_STDOUT, "", 0);
    add_frame(b, FRAME_STDOUT, "tail", 4);
}

static const char sample_transcript[] =
    "1o1u1t1-1l1i1n1e1\n"
    "2e2r2r2-2l2i2n2e2\n"
    "0i0n"
    "1t1a1i1l";

TEST(whole_input)
{
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    sample(&in);
    frame_init(&p, 0, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, in.data, in.len, NULL), 0);
    ASSERT_STR_EQ(buf_str(&c.transcript), sample_transcript);
    ASSERT_STR_EQ(buf_str(&c.out), "out-line\nintail");
    ASSERT_STR_EQ(buf_str(&c.err), "err-line\n");
    ASSERT_INT_EQ(frame_pending(&p), 0);
    buf_free(&in);
    collector_free(&c);
}

TEST(byte_by_byte)
{
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    sample(&in);
    frame_init(&p, 0, collect, &c);
    for (size_t i = 0; i < in.len; i++) {
        ASSERT_INT_EQ(frame_feed(&p, in.data + i, 1, NULL), 0);
    }
    ASSERT_STR_EQ(buf_str(&c.transcript), sample_transcript);
    ASSERT_INT_EQ(frame_pending(&p), 0);
    buf_free(&in);
    collector_free(&c);
}

TEST(every_two_way_split)
{
    buf in = BUF_INIT;
    sample(&in);
    for (size_t cut = 0; cut <= in.len; cut++) {
        collector c = { 0 };
        frame_parser p;
        frame_init(&p, 0, collect, &c);
        ASSERT_INT_EQ(frame_feed(&p, in.data, cut, NULL), 0);
        ASSERT_INT_EQ(frame_feed(&p, in.data + cut, in.len - cut, NULL), 0);
        ASSERT_STR_EQ(buf_str(&c.transcript), sample_transcript);
        ASSERT_INT_EQ(frame_pending(&p), 0);
        collector_free(&c);
    }
    buf_free(&in);
}

TEST(pending_reports_truncation)
{
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    add_frame(&in, FRAME_STDOUT, "abcdef", 6);
    frame_init(&p, 0, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, in.data, 3, NULL), 0);    /* partial header */
    ASSERT_INT_EQ(frame_pending(&p), 1);
    ASSERT_INT_EQ(frame_feed(&p, in.data + 3, 7, NULL), 0); /* header + "ab" */
    ASSERT_INT_EQ(frame_pending(&p), 1);
    ASSERT_STR_EQ(buf_str(&c.out), "ab");                  /* delivered at once */
    ASSERT_INT_EQ(frame_feed(&p, in.data + 10, in.len - 10, NULL), 0);
    ASSERT_INT_EQ(frame_pending(&p), 0);
    ASSERT_STR_EQ(buf_str(&c.out), "abcdef");
    buf_free(&in);
    collector_free(&c);
}

TEST(many_frames_one_feed)
{
    buf in = BUF_INIT, want_out = BUF_INIT, want_err = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    for (int i = 0; i < 5000; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        int stream = i % 3 == 0 ? FRAME_STDERR : FRAME_STDOUT;
        add_frame(&in, stream, line, (size_t)n);
        buf_append(stream == FRAME_STDERR ? &want_err : &want_out, line, (size_t)n);
    }
    frame_init(&p, 0, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, in.data, in.len, NULL), 0);
    ASSERT_INT_EQ(c.calls, 5000);
    ASSERT_INT_EQ(c.out.len, want_out.len);
    ASSERT_STR_EQ(buf_str(&c.out), buf_str(&want_out));
    ASSERT_STR_EQ(buf_str(&c.err), buf_str(&want_err));
    buf_free(&in);
    buf_free(&want_out);
    buf_free(&want_err);
    collector_free(&c);
}

TEST(one_mib_frame)
{
    size_t size = (size_t)1 << 20;
    char *payload = malloc(size);
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    ASSERT(payload != NULL);
    for (size_t i = 0; i < size; i++) {
        payload[i] = (char)('a' + i % 26);
    }
    add_frame(&in, FRAME_STDERR, payload, size);
    add_frame(&in, FRAME_STDOUT, "after", 5);
    frame_init(&p, 0, collect, &c);
    /* uneven chunks, as libcurl hands them out */
    size_t off = 0, chunk = 1;
    while (off < in.len) {
        size_t n = in.len - off < chunk ? in.len - off : chunk;
        ASSERT_INT_EQ(frame_feed(&p, in.data + off, n, NULL), 0);
        off += n;
        chunk = chunk * 7 % 16381 + 1;
    }
    ASSERT_INT_EQ(c.err.len, size);
    ASSERT_MEM_EQ(c.err.data, payload, size);
    ASSERT_STR_EQ(buf_str(&c.out), "after");
    ASSERT_INT_EQ(frame_pending(&p), 0);
    free(payload);
    buf_free(&in);
    collector_free(&c);
}

TEST(raw_mode_is_all_stdout)
{
    collector c = { 0 };
    frame_parser p;
    /* bytes that would be a stderr header in framed mode */
    static const char tty[] = "\x02\0\0\0\0\0\0\x03tty-out\r\n";
    frame_init(&p, 1, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, tty, 5, NULL), 0);
    ASSERT_INT_EQ(frame_feed(&p, tty + 5, sizeof tty - 1 - 5, NULL), 0);
    ASSERT_INT_EQ(frame_feed(&p, "", 0, NULL), 0);
    ASSERT_INT_EQ(c.out.len, sizeof tty - 1);
    ASSERT_MEM_EQ(c.out.data, tty, sizeof tty - 1);
    ASSERT_INT_EQ(c.err.len, 0);
    ASSERT_INT_EQ(c.calls, 2);
    ASSERT_INT_EQ(frame_pending(&p), 0);
    collector_free(&c);
}

TEST(corrupt_stream_byte)
{
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    drv_err err;
    drv_err_clear(&err);
    add_frame(&in, FRAME_STDOUT, "ok", 2);
    add_frame(&in, 3, "bad", 3);
    frame_init(&p, 0, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, in.data, in.len, &err), DRV_EINVALID);
    ASSERT_INT_EQ(err.code, DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "invalid frame header");
    ASSERT_CONTAINS(err.msg, "\"03 00 00 00 00 00 00 03\"");
    ASSERT_STR_EQ(buf_str(&c.out), "ok");     /* the good frame came through */
    /* the parser stays failed */
    ASSERT_INT_EQ(frame_feed(&p, "\x01\0\0\0\0\0\0\x01x", 9, NULL), DRV_EINVALID);
    ASSERT_STR_EQ(buf_str(&c.out), "ok");
    buf_free(&in);
    collector_free(&c);
}

TEST(corrupt_padding)
{
    collector c = { 0 };
    frame_parser p;
    drv_err err;
    frame_init(&p, 0, collect, &c);
    /* split inside the bad header: the error shows once it is complete */
    ASSERT_INT_EQ(frame_feed(&p, "\x01\0\x01", 3, &err), 0);
    ASSERT_INT_EQ(frame_feed(&p, "\0\0\0\0\x01x", 6, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "\"01 00 01 00 00 00 00 01\"");
    ASSERT_INT_EQ(c.calls, 0);
    collector_free(&c);
}

TEST(callback_abort)
{
    buf in = BUF_INIT;
    collector c = { 0 };
    frame_parser p;
    sample(&in);
    c.fail_at_call = 2;
    frame_init(&p, 0, collect, &c);
    ASSERT_INT_EQ(frame_feed(&p, in.data, in.len, NULL), DRV_ECANCELED);
    ASSERT_INT_EQ(c.calls, 2);                /* nothing after the abort */
    ASSERT_STR_EQ(buf_str(&c.out), "out-line\n");
    ASSERT_INT_EQ(c.err.len, 0);
    buf_free(&in);
    collector_free(&c);
}

int main(void)
{
    RUN(whole_input);
    RUN(byte_by_byte);
    RUN(every_two_way_split);
    RUN(pending_reports_truncation);
    RUN(many_frames_one_feed);
    RUN(one_mib_frame);
    RUN(raw_mode_is_all_stdout);
    RUN(corrupt_stream_byte);
    RUN(corrupt_padding);
    RUN(callback_abort);
    return test_summary();
}
