/* httpreq.c: one bounded HTTP/1.1 request from raw bytes (http-parser). */
#include "httpreq.h"

#include <http_parser.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the head costs beyond the callbacks' bytes: ": " and CRLF per
 * header line, and the method, spaces, version and CRLF of the request
 * line (counted as a constant: the method is at most 11 bytes). */
#define HTTPREQ_LINE_COST 4
#define HTTPREQ_REQLINE_COST 24

static int httpreq_fail(httpreq *r, int status, const char *why)
{
    if (r->state != HTTPREQ_ERROR) {
        r->state = HTTPREQ_ERROR;
        r->status = status;
        snprintf(r->why, sizeof r->why, "%s", why);
    }
    return 1;
}

static httpreq *httpreq_of(http_parser *p)
{
    return p->data;
}

static int httpreq_count_head(httpreq *r, size_t len)
{
    r->head_bytes += len;
    if (r->head_bytes > r->max_head) {
        return httpreq_fail(r, 431, "request line and headers too large");
    }
    return 0;
}

/* 1 when s[0..n) holds a control byte (NUL, CR, LF, DEL, ...); a tab
 * only where `tab_ok`. http-parser built lenient lets some through. */
static int httpreq_has_ctl(const char *s, size_t n, int tab_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(tab_ok && c == '\t')) || c == 0x7f) {
            return 1;
        }
    }
    return 0;
}

static void httpreq_str_append(char **s, const char *data, size_t len)
{
    size_t old = *s ? strlen(*s) : 0;
    char *n = realloc(*s, old + len + 1);
    if (n == NULL) {
        abort();    /* as buf.h: no useful work without memory */
    }
    memcpy(n + old, data, len);
    n[old + len] = '\0';
    *s = n;
}

static int httpreq_on_begin(http_parser *p)
{
    httpreq *r = httpreq_of(p);
    r->started = 1;
    r->head_bytes = HTTPREQ_REQLINE_COST;
    return 0;
}

static int httpreq_on_url(http_parser *p, const char *at, size_t len)
{
    httpreq *r = httpreq_of(p);
    if (httpreq_count_head(r, len) != 0) {
        return 1;
    }
    if (httpreq_has_ctl(at, len, 0) || memchr(at, ' ', len) != NULL) {
        return httpreq_fail(r, 400, "control character in the request target");
    }
    buf_append(&r->url, at, len);
    return 0;
}

static int httpreq_on_field(http_parser *p, const char *at, size_t len)
{
    httpreq *r = httpreq_of(p);
    if (httpreq_count_head(r, len) != 0) {
        return 1;
    }
    if (httpreq_has_ctl(at, len, 0)) {
        return httpreq_fail(r, 400, "control character in a header name");
    }
    if (r->headers_done) {
        return 0;    /* a trailer after a chunked body: counted, not kept */
    }
    if (r->nheaders == 0 || r->in_value) {
        if (r->nheaders >= HTTPREQ_MAX_HEADERS) {
            return httpreq_fail(r, 431, "too many header lines");
        }
        if (httpreq_count_head(r, HTTPREQ_LINE_COST) != 0) {
            return 1;
        }
        if (r->headers == NULL) {
            r->headers = drv_xcalloc(HTTPREQ_MAX_HEADERS, sizeof *r->headers);
        }
        r->nheaders++;
        r->in_value = 0;
    }
    httpreq_kv *h = &r->headers[r->nheaders - 1];
    httpreq_str_append(&h->name, at, len);
    return 0;
}

static int httpreq_on_value(http_parser *p, const char *at, size_t len)
{
    httpreq *r = httpreq_of(p);
    if (httpreq_count_head(r, len) != 0) {
        return 1;
    }
    if (r->nheaders == 0) {
        return httpreq_fail(r, 400, "header value without a name");
    }
    if (httpreq_has_ctl(at, len, 1)) {
        return httpreq_fail(r, 400, "control character in a header value");
    }
    if (r->headers_done) {
        return 0;
    }
    r->in_value = 1;
    httpreq_str_append(&r->headers[r->nheaders - 1].value, at, len);
    return 0;
}

static int httpreq_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) ('+' as a space) into a new string; NULL when
 * an escape is malformed or decodes to NUL. */
static char *httpreq_decode(const char *s, size_t n)
{
    char *out = drv_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? httpreq_hex((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? httpreq_hex((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int httpreq_split_query(httpreq *r)
{
    const char *q = r->query;
    size_t cap = 0;
    while (*q != '\0') {
        size_t n = strcspn(q, "&");
        if (n > 0) {
            const char *eq = memchr(q, '=', n);
            size_t klen = eq ? (size_t)(eq - q) : n;
            char *k = httpreq_decode(q, klen);
            char *v = eq ? httpreq_decode(eq + 1, n - klen - 1) : drv_xstrdup("");
            if (k == NULL || v == NULL) {
                free(k);
                free(v);
                return httpreq_fail(r, 400, "malformed query parameter");
            }
            if (r->nparams == cap) {
                cap = cap ? cap * 2 : 8;
                httpreq_kv *np = realloc(r->params, cap * sizeof *np);
                if (np == NULL) {
                    abort();
                }
                r->params = np;
            }
            r->params[r->nparams].name = k;
            r->params[r->nparams].value = v;
            r->nparams++;
        }
        q += n;
        if (*q == '&') {
            q++;
        }
    }
    return 0;
}

static int httpreq_on_headers(http_parser *p)
{
    httpreq *r = httpreq_of(p);
    const char *u = buf_str(&r->url);
    r->headers_done = 1;
    if (u[0] != '/') {
        httpreq_fail(r, 400, "request target is not an absolute path");
        return -1;
    }
    size_t plen = strcspn(u, "?#");
    r->path = drv_xmalloc(plen + 1);
    memcpy(r->path, u, plen);
    r->path[plen] = '\0';
    for (const char *seg = r->path; seg != NULL; seg = strchr(seg + 1, '/')) {
        size_t n = strcspn(seg + 1, "/");
        if ((n == 1 && seg[1] == '.') || (n == 2 && seg[1] == '.' && seg[2] == '.')) {
            httpreq_fail(r, 400, "dot segment in the request path");
            return -1;
        }
    }
    if (u[plen] == '?') {
        size_t qlen = strcspn(u + plen + 1, "#");
        r->query = drv_xmalloc(qlen + 1);
        memcpy(r->query, u + plen + 1, qlen);
        r->query[qlen] = '\0';
    } else {
        r->query = drv_xstrdup("");
    }
    if (httpreq_split_query(r) != 0) {
        return -1;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        for (char *c = r->headers[i].name; *c; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        if (r->headers[i].value == NULL) {
            r->headers[i].value = drv_xstrdup("");
        }
    }
    r->method = http_method_str((enum http_method)p->method);
    r->http_minor = p->http_minor;
    if (p->content_length != ULLONG_MAX && p->content_length > r->max_body) {
        httpreq_fail(r, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int httpreq_on_body(http_parser *p, const char *at, size_t len)
{
    httpreq *r = httpreq_of(p);
    if (len > r->max_body - r->body.len) {
        return httpreq_fail(r, 413, "request body too large");
    }
    buf_append(&r->body, at, len);
    return 0;
}

static int httpreq_on_complete(http_parser *p)
{
    httpreq *r = httpreq_of(p);
    if (p->upgrade) {
        return httpreq_fail(r, 400, "protocol upgrade not supported");
    }
    r->keep_alive = http_should_keep_alive(p);
    r->state = HTTPREQ_DONE;
    http_parser_pause(p, 1);    /* the next request waits for httpreq_next */
    return 0;
}

static const http_parser_settings httpreq_settings = {
    .on_message_begin = httpreq_on_begin,
    .on_url = httpreq_on_url,
    .on_header_field = httpreq_on_field,
    .on_header_value = httpreq_on_value,
    .on_headers_complete = httpreq_on_headers,
    .on_body = httpreq_on_body,
    .on_message_complete = httpreq_on_complete,
};

void httpreq_init(httpreq *r, size_t max_head, size_t max_body)
{
    memset(r, 0, sizeof *r);
    r->max_head = max_head ? max_head : HTTPREQ_MAX_HEAD;
    r->max_body = max_body ? max_body : HTTPREQ_MAX_BODY;
    r->parser = drv_xmalloc(sizeof *r->parser);
    http_parser_init(r->parser, HTTP_REQUEST);
    r->parser->data = r;
}

size_t httpreq_feed(httpreq *r, const char *data, size_t len)
{
    if (r->state != HTTPREQ_MORE || len == 0) {
        return 0;
    }
    size_t n = http_parser_execute(r->parser, &httpreq_settings, data, len);
    if (r->state == HTTPREQ_ERROR || r->state == HTTPREQ_DONE) {
        return n;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(r->parser);
    if (e == HPE_HEADER_OVERFLOW) {
        httpreq_fail(r, 431, "request line and headers too large");
    } else if (e != HPE_OK) {
        httpreq_fail(r, 400, http_errno_description(e));
    } else if (r->parser->upgrade) {
        httpreq_fail(r, 400, "protocol upgrade not supported");
    }
    return n;
}

int httpreq_partial(const httpreq *r)
{
    return r->started && r->state == HTTPREQ_MORE;
}

static void httpreq_clear(httpreq *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    for (size_t i = 0; i < r->nparams; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    free(r->params);
    free(r->path);
    free(r->query);
    buf_free(&r->body);
    buf_free(&r->url);
    r->headers = NULL;
    r->params = NULL;
    r->nheaders = r->nparams = 0;
    r->path = r->query = NULL;
    r->method = NULL;
    r->keep_alive = 0;
    r->started = 0;
    r->in_value = 0;
    r->headers_done = 0;
    r->head_bytes = 0;
}

void httpreq_next(httpreq *r)
{
    if (r->state != HTTPREQ_DONE) {
        return;
    }
    httpreq_clear(r);
    r->state = HTTPREQ_MORE;
    http_parser_pause(r->parser, 0);
}

const char *httpreq_param(const httpreq *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0) {
            return r->params[i].value;
        }
    }
    return NULL;
}

const char *httpreq_header(const httpreq *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0) {
            return r->headers[i].value;
        }
    }
    return NULL;
}

void httpreq_free(httpreq *r)
{
    httpreq_clear(r);
    free(r->parser);
    r->parser = NULL;
}
