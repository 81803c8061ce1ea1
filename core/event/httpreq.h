/*
 * httpreq.h: one HTTP/1.1 request read incrementally from a connection's
 * bytes, through Debian's http-parser (never by hand), with bounds: the
 * request line and headers together at most `max_head` bytes (431 beyond),
 * the body at most `max_body` (413, told from Content-Length before any of
 * the body is read, or counted for a chunked body). The target must be in
 * origin form ("/path?query") with no "." or ".." segment (the path is
 * handed over raw, not percent-decoded); the query is split into percent-decoded
 * parameters ('+' is a space; a bad escape or a decoded NUL is a 400).
 *
 * Pipelining: httpreq_feed stops right after a complete request, so the
 * bytes of the next one stay with the caller until it calls httpreq_next.
 * Used by httpd (the server) and fuzz/c/fuzz_httpd.c; it does no I/O.
 */
#ifndef DRV_HTTPREQ_H
#define DRV_HTTPREQ_H

#include <stddef.h>

#include "buf.h"

/* Defaults of the bounds (httpd_opts uses them for 0). */
#define HTTPREQ_MAX_HEAD ((size_t)16 * 1024)
#define HTTPREQ_MAX_BODY ((size_t)1024 * 1024)
/* Header lines per request. */
#define HTTPREQ_MAX_HEADERS 64

typedef struct httpreq_kv {
    char *name;      /* headers: lower-cased name; params: decoded key */
    char *value;     /* decoded value (params), value as sent (headers) */
} httpreq_kv;

typedef enum {
    HTTPREQ_MORE = 0,    /* needs more bytes */
    HTTPREQ_DONE,        /* one complete request is in the public fields */
    HTTPREQ_ERROR        /* malformed or over a bound: see status, why */
} httpreq_state;

typedef struct httpreq {
    /* public, valid once the state is HTTPREQ_DONE */
    const char *method;     /* "GET", "POST", ... (static text) */
    char *path;             /* raw path, not percent-decoded, no query */
    char *query;            /* raw query without '?', or "" */
    httpreq_kv *params;     /* decoded query parameters, in order */
    size_t nparams;
    httpreq_kv *headers;    /* every header, in order */
    size_t nheaders;
    buf body;               /* the (de-chunked) body; NUL-terminated */
    int keep_alive;         /* the connection may carry another request */
    int http_minor;         /* 1 for HTTP/1.1, 0 for HTTP/1.0 */

    /* the reader's state */
    httpreq_state state;
    int status;             /* HTTPREQ_ERROR: 400, 413 or 431 */
    char why[128];          /* HTTPREQ_ERROR: what was wrong */
    size_t max_head;
    size_t max_body;
    size_t head_bytes;      /* of the current request's head so far */
    int started;            /* some byte of the current request came */
    int in_value;           /* last header callback was a value */
    int headers_done;       /* later header lines are trailers (ignored) */
    buf url;
    struct http_parser *parser;    /* not in this header: http_parser.h
                                      and http.h share type names */
} httpreq;

/// Prepares `r` for a connection; 0 bounds mean the defaults. Free with
/// httpreq_free.
void httpreq_init(httpreq *r, size_t max_head, size_t max_body);

/// Reads `data[0..len)`. Returns how many bytes were used: fewer than `len`
/// only when the state became HTTPREQ_DONE (the rest belongs to the next
/// request) or HTTPREQ_ERROR. Does nothing unless the state is HTTPREQ_MORE.
size_t httpreq_feed(httpreq *r, const char *data, size_t len);

/// 1 when bytes of an unfinished request were read (for an idle close).
int httpreq_partial(const httpreq *r);

/// After HTTPREQ_DONE: forgets that request and reads the next one.
void httpreq_next(httpreq *r);

/// The value of query parameter `name` (the first, if repeated) or NULL.
const char *httpreq_param(const httpreq *r, const char *name);

/// The value of header `name` (case-insensitive; the first) or NULL.
const char *httpreq_header(const httpreq *r, const char *name);

/// Frees what `r` holds.
void httpreq_free(httpreq *r);

#endif
