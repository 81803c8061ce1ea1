/* test_json.c: the strict JSON reader (core/base/json.c) and the UTF-8 helpers. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "esc.h"
#include "json.h"
#include "test.h"

/* Parses `s[0..n)` as a tree and through the scanner (json_skip): both must
 * agree; returns the tree's result. */
static int parse_n(const char *s, size_t n, json_val *out)
{
    json_scan j;
    int skip = json_scan_init(&j, s, n);
    if (skip == 0) {
        skip = json_skip(&j);
    }
    if (skip == 0) {
        skip = json_end(&j);
    }
    int rc = json_parse(s, n, out);
    if ((rc == 0) != (skip == 0)) {
        return 99;     /* the two disagree */
    }
    return rc;
}

#define OK(lit)                                                   \
    do {                                                          \
        json_val v_;                                              \
        ASSERT_INT_EQ(0, parse_n((lit), sizeof(lit) - 1, &v_));   \
        json_free(&v_);                                           \
    } while (0)

#define BAD(lit)                                                           \
    do {                                                                   \
        json_val v_;                                                       \
        ASSERT_INT_EQ(DRV_EINVALID, parse_n((lit), sizeof(lit) - 1, &v_)); \
        ASSERT_INT_EQ(JSON_NULL, v_.t);                                    \
        ASSERT(v_.s == NULL && v_.v == NULL && v_.n == 0);                 \
    } while (0)

/* The decoded text of a one-string document, or NULL when refused. */
static char *str_of(const char *s, size_t n)
{
    json_val v;
    if (parse_n(s, n, &v) != 0) {
        return NULL;
    }
    char *r = v.t == JSON_STR ? strdup(v.s) : NULL;
    json_free(&v);
    return r;
}

#define STR_IS(want, lit)                                \
    do {                                                 \
        char *got_ = str_of((lit), sizeof(lit) - 1);     \
        ASSERT(got_ != NULL);                            \
        ASSERT_STR_EQ((want), got_);                     \
        free(got_);                                      \
    } while (0)

TEST(valid_documents)
{
    OK("{}");
    OK("[]");
    OK(" \t\r\n{ \"a\" : [ 1 , -2.5e+3 , true , false , null , \"x\" , {} , [] ] } \n");
    OK("0");
    OK("-0");
    OK("\"\"");
    OK("null");
    OK("[[[[\"deep\"]]]]");
    OK("{\"a\":1,\"a\":2}");

    json_val v;
    const char doc[] = "{\"s\":\"x\",\"n\":42,\"f\":1.5,\"b\":true,\"z\":null,\"a\":[1,\"two\"],"
                       "\"o\":{\"k\":\"v\"}}";
    ASSERT_INT_EQ(0, json_parse(doc, sizeof doc - 1, &v));
    ASSERT_INT_EQ(JSON_OBJ, v.t);
    ASSERT_INT_EQ(7, (long long)v.n);
    ASSERT_STR_EQ("x", json_get_str(&v, "s"));
    ASSERT(json_get_str(&v, "n") == NULL);
    ASSERT(json_get(&v, "missing") == NULL);
    ASSERT(json_get(NULL, "s") == NULL);
    const json_val *n = json_get(&v, "n");
    ASSERT(n != NULL && n->t == JSON_NUM && n->num.integral && n->num.i == 42);
    const json_val *f = json_get(&v, "f");
    ASSERT(f != NULL && f->t == JSON_NUM && !f->num.integral && f->num.i == 1 && f->num.d == 1.5);
    const json_val *b = json_get(&v, "b");
    ASSERT(b != NULL && b->t == JSON_BOOL && b->b == 1);
    ASSERT_INT_EQ(JSON_NULL, json_get(&v, "z")->t);
    const json_val *a = json_get(&v, "a");
    ASSERT(a != NULL && a->t == JSON_ARR && a->n == 2 && a->v[1].t == JSON_STR);
    ASSERT_STR_EQ("two", a->v[1].s);
    ASSERT(json_get(a, "x") == NULL);
    ASSERT_STR_EQ("v", json_get_str(json_get(&v, "o"), "k"));
    json_free(&v);
    ASSERT_INT_EQ(JSON_NULL, v.t);
    json_free(&v);     /* twice is harmless */
}

TEST(every_escape)
{
    STR_IS("\"\\/\b\f\n\r\t", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    STR_IS("A\xc3\xa9\xe2\x82\xac\x1b", "\"\\u0041\\u00e9\\u20AC\\u001b\"");
    /* surrogate pairs: one code point, upper or lower case hex */
    STR_IS("\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"");
    STR_IS("\xf4\x8f\xbf\xbf", "\"\\uDBFF\\uDFFF\"");
    STR_IS("\xf0\x90\x80\x80", "\"\\ud800\\udc00\"");
    /* lone and reversed surrogates: U+FFFD each, the text stays UTF-8 */
    STR_IS("\xef\xbf\xbd", "\"\\ud800\"");
    STR_IS("\xef\xbf\xbdx", "\"\\ud800x\"");
    STR_IS("\xef\xbf\xbd", "\"\\udc00\"");
    STR_IS("\xef\xbf\xbd\xef\xbf\xbd", "\"\\udc00\\ud800\"");
    STR_IS("\xef\xbf\xbd\n", "\"\\ud800\\n\"");
    STR_IS("\xef\xbf\xbd" "A", "\"\\ud800\\u0041\"");
    /* raw UTF-8 passes as it is */
    STR_IS("r\xc3\xa9g \xf0\x9f\x98\x80", "\"r\xc3\xa9g \xf0\x9f\x98\x80\"");

    BAD("\"\\x41\"");
    BAD("\"\\U0041\"");
    BAD("\"\\u00g1\"");
    BAD("\"\\u00\"");
    BAD("\"\\u\"");
    BAD("\"\\ud800\\u12\"");
    BAD("\"\\'\"");
    BAD("\"\\");
}

TEST(nul_and_control_bytes_refused)
{
    BAD("\"a\\u0000b\"");
    BAD("{\"a\\u0000\":1}");
    BAD("\"a\0b\"");
    BAD("\"a\nb\"");
    BAD("\"a\tb\"");
    BAD("\"\x1f\"");
    BAD("{\"a\":1}\0");
    STR_IS("\x7f", "\"\x7f\"");
}

TEST(invalid_utf8_refused)
{
    BAD("\"\xff\"");
    BAD("\"\xc0\xaf\"");              /* overlong "/" */
    BAD("\"\xe0\x80\xaf\"");          /* overlong */
    BAD("\"\xed\xa0\x80\"");          /* an encoded surrogate */
    BAD("\"\xf4\x90\x80\x80\"");      /* beyond U+10FFFF */
    BAD("\"\xc3\"");                  /* cut before the quote */
    BAD("\"\xe2\x82\"");
    BAD("\"\x80\"");
    BAD("\xc3\xa9");                  /* outside a string */
}

TEST(numbers)
{
    json_val v;
    ASSERT_INT_EQ(0, json_parse("9223372036854775807", 19, &v));
    ASSERT(v.num.integral && v.num.i == LLONG_MAX);
    ASSERT_INT_EQ(0, json_parse("-9223372036854775808", 20, &v));
    ASSERT(v.num.integral && v.num.i == LLONG_MIN);
    ASSERT_INT_EQ(0, json_parse("9223372036854775808", 19, &v));
    ASSERT(!v.num.integral && v.num.i == LLONG_MAX && v.num.d > 9.2e18);
    ASSERT_INT_EQ(0, json_parse("-9223372036854775809", 20, &v));
    ASSERT(!v.num.integral && v.num.i == LLONG_MIN);
    const char huge[] = "123456789012345678901234567890123456789012345678901234567890";
    ASSERT_INT_EQ(0, json_parse(huge, sizeof huge - 1, &v));
    ASSERT(!v.num.integral && v.num.i == LLONG_MAX && v.num.d > 1.2e59 && v.num.d < 1.3e59);
    ASSERT_INT_EQ(0, json_parse("1e400", 5, &v));
    ASSERT(!v.num.integral && v.num.i == 1 && v.num.d > 1e308);
    ASSERT_INT_EQ(0, json_parse("-12.75e-1", 9, &v));
    ASSERT(!v.num.integral && v.num.i == -12 && v.num.d == -1.275);
    ASSERT_INT_EQ(0, json_parse("0E0", 3, &v));
    ASSERT(!v.num.integral && v.num.i == 0 && v.num.d == 0.0);
    ASSERT_INT_EQ(0, json_parse("-0", 2, &v));
    ASSERT(v.num.integral && v.num.i == 0);

    /* a number text beyond JSON_MAX_NUMBER bytes */
    char big[JSON_MAX_NUMBER + 2];
    memset(big, '7', sizeof big);
    ASSERT_INT_EQ(0, json_parse(big, JSON_MAX_NUMBER, &v));
    ASSERT_INT_EQ(DRV_EINVALID, json_parse(big, JSON_MAX_NUMBER + 1, &v));

    BAD("01");
    BAD("-01");
    BAD("+1");
    BAD("1.");
    BAD(".5");
    BAD("1.e3");
    BAD("1e");
    BAD("1e+");
    BAD("-");
    BAD("0x10");
    BAD("1_000");
    BAD("NaN");
    BAD("Infinity");
    BAD("-Infinity");
}

TEST(malformed_and_trailing)
{
    BAD("");
    BAD("   ");
    BAD("{");
    BAD("}");
    BAD("[1,]");
    BAD("[,1]");
    BAD("{\"a\":1,}");
    BAD("{\"a\" 1}");
    BAD("{a:1}");
    BAD("{'a':1}");
    BAD("{\"a\":1 \"b\":2}");
    BAD("[1 2]");
    BAD("tru");
    BAD("nul");
    BAD("True");
    BAD("{} {}");
    BAD("{}x");
    BAD("[1]]");
    BAD("\"a\" \"b\"");
    BAD("/* c */ {}");
    BAD("{\"a\":1} // c");
    BAD("{\"a\":undefined}");

    /* every truncation of a valid document is refused */
    static const char doc[] = "{\"a\":[1,-2.5e3,true,false,null,\"\\ud83d\\ude00x\"],\"b\":{}}";
    for (size_t n = 0; n < sizeof doc - 1; n++) {
        json_val v;
        ASSERT_INT_EQ(DRV_EINVALID, parse_n(doc, n, &v));
    }
    json_val v;
    ASSERT_INT_EQ(0, parse_n(doc, sizeof doc - 1, &v));
    json_free(&v);
}

/* `open` x depth, then `close` x depth */
static int nested(int depth, char open, char close)
{
    buf b = BUF_INIT;
    for (int i = 0; i < depth; i++) {
        buf_append(&b, &open, 1);
        if (open == '{') {
            buf_puts(&b, "\"k\":");
        }
    }
    buf_puts(&b, "1");
    for (int i = 0; i < depth; i++) {
        buf_append(&b, &close, 1);
    }
    json_val v;
    int rc = parse_n(b.data, b.len, &v);
    if (rc == 0) {
        json_free(&v);
    }
    buf_free(&b);
    return rc;
}

TEST(depth_limit)
{
    ASSERT_INT_EQ(0, nested(JSON_MAX_DEPTH, '[', ']'));
    ASSERT_INT_EQ(DRV_EINVALID, nested(JSON_MAX_DEPTH + 1, '[', ']'));
    ASSERT_INT_EQ(0, nested(JSON_MAX_DEPTH, '{', '}'));
    ASSERT_INT_EQ(DRV_EINVALID, nested(JSON_MAX_DEPTH + 1, '{', '}'));
    ASSERT_INT_EQ(DRV_EINVALID, nested(100000, '[', ']'));
    /* depth is nesting, not count: many siblings are fine */
    buf b = BUF_INIT;
    buf_puts(&b, "[");
    for (int i = 0; i < 1000; i++) {
        buf_puts(&b, i ? ",[[]]" : "[[]]");
    }
    buf_puts(&b, "]");
    json_val v;
    ASSERT_INT_EQ(0, parse_n(b.data, b.len, &v));
    ASSERT_INT_EQ(1000, (long long)v.n);
    json_free(&v);
    buf_free(&b);
}

TEST(size_limit)
{
    json_scan j;
    json_val v;
    static const char s[] = "1";
    ASSERT_INT_EQ(DRV_EINVALID, json_scan_init(&j, s, JSON_MAX_SIZE + 1));
    ASSERT_INT_EQ(DRV_EINVALID, json_skip(&j));     /* nothing to read */
    ASSERT_INT_EQ(DRV_EINVALID, json_parse(s, JSON_MAX_SIZE + 1, &v));
    ASSERT_INT_EQ(JSON_NULL, v.t);
}

typedef struct picks {
    buf name;
    long long size;
    size_t items;
    int stop_at;       /* item index whose callback fails, -1 */
} picks;

static int pick_item(json_scan *j, size_t index, void *ud)
{
    (void)j;
    picks *p = ud;
    p->items++;
    if ((int)index == p->stop_at) {
        return DRV_ECANCELED;
    }
    return 1;
}

static int pick_member(json_scan *j, const char *key, void *ud)
{
    picks *p = ud;
    if (strcmp(key, "name") == 0 && json_peek(j) == '"') {
        return json_string(j, &p->name);
    }
    if (strcmp(key, "size") == 0) {
        json_num n;
        int rc = json_number(j, &n);
        p->size = n.i;
        return rc;
    }
    if (strcmp(key, "list") == 0) {
        return json_array(j, pick_item, p);
    }
    return 1;
}

TEST(scanner_callbacks)
{
    static const char doc[] = "{\"skip\":{\"x\":[1,{\"y\":\"z\"}]},\"name\":\"a\\tb\","
                              "\"size\":123,\"list\":[1,\"2\",[3],{}],\"name\":\"c\"}";
    picks p = { BUF_INIT, 0, 0, -1 };
    json_scan j;
    ASSERT_INT_EQ(0, json_scan_init(&j, doc, sizeof doc - 1));
    ASSERT_INT_EQ(0, json_object(&j, pick_member, &p));
    ASSERT_INT_EQ(0, json_end(&j));
    ASSERT_STR_EQ("a\tbc", buf_str(&p.name));
    ASSERT_INT_EQ(123, p.size);
    ASSERT_INT_EQ(4, (long long)p.items);

    /* a callback's own code stops the walk and comes back */
    buf_reset(&p.name);
    p.items = 0;
    p.stop_at = 1;
    ASSERT_INT_EQ(0, json_scan_init(&j, doc, sizeof doc - 1));
    ASSERT_INT_EQ(DRV_ECANCELED, json_object(&j, pick_member, &p));
    ASSERT_INT_EQ(2, (long long)p.items);

    /* the scanner reads one value: what follows is the caller's */
    static const char two[] = "{\"a\":1} [2]";
    ASSERT_INT_EQ(0, json_scan_init(&j, two, sizeof two - 1));
    ASSERT_INT_EQ(0, json_object(&j, NULL, NULL));
    ASSERT_INT_EQ(DRV_EINVALID, json_end(&j));
    ASSERT_INT_EQ('[', json_peek(&j));
    ASSERT_INT_EQ(0, json_array(&j, NULL, NULL));
    ASSERT_INT_EQ(0, json_end(&j));
    ASSERT_INT_EQ(-1, json_peek(&j));

    /* wrong kinds */
    ASSERT_INT_EQ(0, json_scan_init(&j, "[1]", 3));
    ASSERT_INT_EQ(DRV_EINVALID, json_object(&j, NULL, NULL));
    ASSERT_INT_EQ(DRV_EINVALID, json_string(&j, NULL));
    ASSERT_INT_EQ(DRV_EINVALID, json_number(&j, NULL));
    buf_free(&p.name);
}

TEST(utf8_helpers)
{
    static const unsigned cps[] = { 0, 0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff,
                                    0x10000, 0x1f600, 0x10ffff };
    buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        buf_reset(&b);
        esc_utf8_encode(&b, cps[i]);
        uint32_t cp = 0xffffffffu;
        size_t want = cps[i] < 0x80 ? 1 : cps[i] < 0x800 ? 2 : cps[i] < 0x10000 ? 3 : 4;
        ASSERT_INT_EQ((long long)want, (long long)b.len);
        ASSERT_INT_EQ((long long)want,
                      (long long)esc_utf8_decode((const unsigned char *)b.data, b.len, &cp));
        ASSERT_INT_EQ(cps[i], cp);
        /* cut short: invalid */
        if (want > 1) {
            ASSERT_INT_EQ(0, (long long)esc_utf8_decode((const unsigned char *)b.data,
                                                        want - 1, &cp));
        }
    }
    uint32_t cp;
    ASSERT_INT_EQ(0, (long long)esc_utf8_decode((const unsigned char *)"\xed\xbf\xbf", 3, &cp));
    ASSERT_INT_EQ(0, (long long)esc_utf8_decode((const unsigned char *)"\xc1\xbf", 2, &cp));
    ASSERT_INT_EQ(0, (long long)esc_utf8_decode((const unsigned char *)"\xf5\x80\x80\x80", 4, &cp));
    buf_free(&b);
}

int main(void)
{
    RUN(valid_documents);
    RUN(every_escape);
    RUN(nul_and_control_bytes_refused);
    RUN(invalid_utf8_refused);
    RUN(numbers);
    RUN(malformed_and_trailing);
    RUN(depth_limit);
    RUN(size_limit);
    RUN(scanner_callbacks);
    RUN(utf8_helpers);
    return test_summary();
}
