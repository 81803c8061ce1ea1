/* json.c: a strict RFC 8259 reader: the scanner and a tree on it (see json.h). */
#include "json.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "esc.h"

/* --- the scanner ---------------------------------------------------------- */

int json_scan_init(json_scan *j, const char *s, size_t n)
{
    j->s = s;
    j->n = n > JSON_MAX_SIZE ? 0 : n;
    j->i = 0;
    j->depth = 0;
    return n > JSON_MAX_SIZE ? DRV_EINVALID : 0;
}

static void skip_ws(json_scan *j)
{
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                           j->s[j->i] == '\r')) {
        j->i++;
    }
}

int json_peek(json_scan *j)
{
    skip_ws(j);
    return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

int json_end(json_scan *j)
{
    return json_peek(j) == -1 ? 0 : DRV_EINVALID;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Four hex digits at j->i. */
static int hex4(json_scan *j, uint32_t *out)
{
    if (j->n - j->i < 4) {
        return DRV_EINVALID;
    }
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval((unsigned char)j->s[j->i + k]);
        if (h < 0) {
            return DRV_EINVALID;
        }
        v = (v << 4) | (uint32_t)h;
    }
    j->i += 4;
    *out = v;
    return 0;
}

/* The code point of a \u escape (j->i just after the "u"): a surrogate
 * pair is one code point, a lone surrogate U+FFFD; NUL is refused. */
static int escape_u(json_scan *j, uint32_t *cp)
{
    uint32_t hi, lo;
    if (hex4(j, &hi) < 0 || hi == 0) {
        return DRV_EINVALID;
    }
    if (hi >= 0xd800 && hi <= 0xdbff && j->n - j->i >= 6 && j->s[j->i] == '\\' &&
        j->s[j->i + 1] == 'u') {
        size_t save = j->i;
        j->i += 2;
        if (hex4(j, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
            hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
        } else {
            j->i = save;     /* read on its own next */
        }
    }
    *cp = hi >= 0xd800 && hi <= 0xdfff ? 0xfffd : hi;
    return 0;
}

int json_string(json_scan *j, buf *out)
{
    if (json_peek(j) != '"') {
        return DRV_EINVALID;
    }
    j->i++;
    size_t run = j->i;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            j->i++;
            continue;
        }
        if (c == '"') {
            if (out != NULL) {
                buf_append(out, j->s + run, j->i - run);
            }
            j->i++;
            return 0;
        }
        if (c < 0x20) {
            return DRV_EINVALID;
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t len = esc_utf8_decode((const unsigned char *)j->s + j->i, j->n - j->i, &cp);
            if (len == 0) {
                return DRV_EINVALID;
            }
            j->i += len;
            continue;
        }
        /* a backslash */
        if (out != NULL) {
            buf_append(out, j->s + run, j->i - run);
        }
        j->i++;
        if (j->i >= j->n) {
            return DRV_EINVALID;
        }
        char e = j->s[j->i++], rep;
        switch (e) {
        case '"': rep = '"'; break;
        case '\\': rep = '\\'; break;
        case '/': rep = '/'; break;
        case 'b': rep = '\b'; break;
        case 'f': rep = '\f'; break;
        case 'n': rep = '\n'; break;
        case 'r': rep = '\r'; break;
        case 't': rep = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (escape_u(j, &cp) < 0) {
                return DRV_EINVALID;
            }
            if (out != NULL) {
                esc_utf8_encode(out, cp);
            }
            run = j->i;
            continue;
        }
        default:
            return DRV_EINVALID;
        }
        if (out != NULL) {
            buf_append(out, &rep, 1);
        }
        run = j->i;
    }
    return DRV_EINVALID;
}

static int is_digit(const json_scan *j)
{
    return j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9';
}

int json_number(json_scan *j, json_num *out)
{
    skip_ws(j);
    size_t start = j->i;
    int neg = 0, sat = 0, integral = 1;
    unsigned long long u = 0;     /* the integer part's magnitude */
    if (j->i < j->n && j->s[j->i] == '-') {
        neg = 1;
        j->i++;
    }
    if (!is_digit(j)) {
        j->i = start;
        return DRV_EINVALID;
    }
    if (j->s[j->i] == '0') {
        j->i++;
        if (is_digit(j)) {   /* a leading zero */
            j->i = start;
            return DRV_EINVALID;
        }
    }
    while (is_digit(j)) {
        unsigned d = (unsigned)(j->s[j->i++] - '0');
        if (u > (ULLONG_MAX - d) / 10) {
            sat = 1;
        } else {
            u = u * 10 + d;
        }
    }
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        integral = 0;
        if (!is_digit(j)) {
            j->i = start;
            return DRV_EINVALID;
        }
        while (is_digit(j)) {
            j->i++;
        }
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        integral = 0;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) {
            j->i++;
        }
        if (!is_digit(j)) {
            j->i = start;
            return DRV_EINVALID;
        }
        while (is_digit(j)) {
            j->i++;
        }
    }
    size_t len = j->i - start;
    if (len > JSON_MAX_NUMBER) {
        j->i = start;
        return DRV_EINVALID;
    }
    if (out == NULL) {
        return 0;
    }
    const unsigned long long lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    if (sat || u > lim) {
        sat = 1;
        u = lim;
    }
    out->i = neg ? (u == lim ? LLONG_MIN : -(long long)u) : (long long)u;
    out->integral = integral && !sat;
    if (out->integral) {
        out->d = (double)out->i;
    } else {
        char text[JSON_MAX_NUMBER + 1];
        memcpy(text, j->s + start, len);
        text[len] = '\0';
        out->d = strtod(text, NULL);
    }
    return 0;
}

static int literal(json_scan *j, const char *lit, size_t n)
{
    if (j->n - j->i < n || memcmp(j->s + j->i, lit, n) != 0) {
        return DRV_EINVALID;
    }
    j->i += n;
    return 0;
}

/* After a member or item: "," (more: 1), the closing byte (0), else < 0. */
static int next_or_close(json_scan *j, int close)
{
    int c = json_peek(j);
    if (c == ',') {
        j->i++;
        return 1;
    }
    if (c == close) {
        j->i++;
        return 0;
    }
    return DRV_EINVALID;
}

int json_object(json_scan *j, json_member_fn member, void *ud)
{
    if (json_peek(j) != '{' || j->depth >= JSON_MAX_DEPTH) {
        return DRV_EINVALID;
    }
    j->i++;
    j->depth++;
    buf key = BUF_INIT;
    int rc = 0;
    if (json_peek(j) == '}') {
        j->i++;
        goto out;
    }
    do {
        buf_reset(&key);
        if (json_string(j, &key) < 0 || json_peek(j) != ':') {
            rc = DRV_EINVALID;
            goto out;
        }
        j->i++;
        int r = member != NULL ? member(j, buf_str(&key), ud) : 1;
        if (r == 1) {
            r = json_skip(j);
        }
        if (r < 0) {
            rc = r;
            goto out;
        }
        rc = next_or_close(j, '}');
    } while (rc == 1);
out:
    j->depth--;
    buf_free(&key);
    return rc;
}

int json_array(json_scan *j, json_item_fn item, void *ud)
{
    if (json_peek(j) != '[' || j->depth >= JSON_MAX_DEPTH) {
        return DRV_EINVALID;
    }
    j->i++;
    j->depth++;
    int rc = 0;
    if (json_peek(j) == ']') {
        j->i++;
        j->depth--;
        return 0;
    }
    size_t index = 0;
    do {
        int r = item != NULL ? item(j, index++, ud) : 1;
        if (r == 1) {
            r = json_skip(j);
        }
        if (r < 0) {
            rc = r;
            break;
        }
        rc = next_or_close(j, ']');
    } while (rc == 1);
    j->depth--;
    return rc;
}

int json_skip(json_scan *j)
{
    switch (json_peek(j)) {
    case '"':
        return json_string(j, NULL);
    case '{':
        return json_object(j, NULL, NULL);
    case '[':
        return json_array(j, NULL, NULL);
    case 't':
        return literal(j, "true", 4);
    case 'f':
        return literal(j, "false", 5);
    case 'n':
        return literal(j, "null", 4);
    default:
        return json_number(j, NULL);
    }
}

/* --- the tree --------------------------------------------------------------- */

typedef struct tree_node {
    json_val *v;
    size_t cap;
} tree_node;

static int tree_value(json_scan *j, json_val *out);

/* Appends an empty slot (and key slot) to the container being built. */
static json_val *tree_push(tree_node *t)
{
    json_val *c = t->v;
    if (c->n == t->cap) {
        t->cap = t->cap != 0 ? t->cap * 2 : 4;
        json_val *nv = realloc(c->v, t->cap * sizeof *nv);
        if (nv == NULL) {
            abort();
        }
        c->v = nv;
        if (c->t == JSON_OBJ) {
            char **nk = realloc(c->k, t->cap * sizeof *nk);
            if (nk == NULL) {
                abort();
            }
            c->k = nk;
        }
    }
    json_val *slot = &c->v[c->n];
    memset(slot, 0, sizeof *slot);
    if (c->t == JSON_OBJ) {
        c->k[c->n] = NULL;
    }
    c->n++;
    return slot;
}

static int tree_member(json_scan *j, const char *key, void *ud)
{
    tree_node *t = ud;
    json_val *slot = tree_push(t);
    t->v->k[t->v->n - 1] = drv_xstrdup(key);
    return tree_value(j, slot);
}

static int tree_item(json_scan *j, size_t index, void *ud)
{
    (void)index;
    return tree_value(j, tree_push(ud));
}

static int tree_value(json_scan *j, json_val *out)
{
    memset(out, 0, sizeof *out);
    tree_node t = { out, 0 };
    switch (json_peek(j)) {
    case '{':
        out->t = JSON_OBJ;
        return json_object(j, tree_member, &t);
    case '[':
        out->t = JSON_ARR;
        return json_array(j, tree_item, &t);
    case '"': {
        buf b = BUF_INIT;
        int rc = json_string(j, &b);
        out->t = JSON_STR;
        out->s = drv_xstrdup(buf_str(&b));
        buf_free(&b);
        return rc;
    }
    case 't':
    case 'f':
        out->t = JSON_BOOL;
        out->b = json_peek(j) == 't';
        return json_skip(j);
    case 'n':
        return json_skip(j);
    default:
        out->t = JSON_NUM;
        return json_number(j, &out->num);
    }
}

int json_parse(const char *s, size_t n, json_val *out)
{
    json_scan j;
    memset(out, 0, sizeof *out);
    int rc = json_scan_init(&j, s, n);
    if (rc == 0) {
        rc = tree_value(&j, out);
    }
    if (rc == 0) {
        rc = json_end(&j);
    }
    if (rc < 0) {
        json_free(out);
        return DRV_EINVALID;
    }
    return 0;
}

void json_free(json_val *v)
{
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->v[i]);
        if (v->k != NULL) {
            free(v->k[i]);
        }
    }
    free(v->v);
    free(v->k);
    free(v->s);
    memset(v, 0, sizeof *v);
}

const json_val *json_get(const json_val *o, const char *key)
{
    if (o == NULL || o->t != JSON_OBJ) {
        return NULL;
    }
    for (size_t i = 0; i < o->n; i++) {
        if (strcmp(o->k[i], key) == 0) {
            return &o->v[i];
        }
    }
    return NULL;
}

const char *json_get_str(const json_val *o, const char *key)
{
    const json_val *v = json_get(o, key);
    return v != NULL && v->t == JSON_STR ? v->s : NULL;
}
