/*
 * json.h: a strict RFC 8259 JSON reader for the text drvctl reads from
 * Docker (pull progress lines, inspect answers, container lists) and its
 * own state files.
 *
 * Two ways to read, one grammar:
 *  - the scanner (json_scan): walks a document in place, calling back for
 *    each object member or array item; values nobody asks for are skipped
 *    without allocating. For hot paths (a pull progress line: ~0.5 us).
 *  - the tree (json_val, json_parse): the whole document, built on the
 *    scanner, for answers that are looked at in several places.
 *
 * What is refused (DRV_EINVALID): anything outside the RFC 8259 grammar
 * (leading zeros, "+1", "1.", single quotes, comments, trailing commas,
 * trailing garbage after the document), nesting deeper than
 * JSON_MAX_DEPTH, documents longer than JSON_MAX_SIZE, number texts longer
 * than JSON_MAX_NUMBER, and in strings: control bytes, invalid UTF-8 and
 * "\u0000" (strings are handed out NUL-terminated). Strings are decoded to
 * UTF-8: a surrogate pair escape is one code point; a lone surrogate escape
 * (allowed by the RFC 8259 grammar, meaningless in UTF-8) becomes U+FFFD,
 * so decoded text is always valid UTF-8.
 *
 * Functions return 0 or a negative DRV_E* code (err.h).
 */
#ifndef DRV_JSON_H
#define DRV_JSON_H

#include <stddef.h>

#include "buf.h"

#define JSON_MAX_DEPTH 32                        /* objects and arrays */
#define JSON_MAX_SIZE ((size_t)16 * 1024 * 1024) /* bytes, = DOCKER_MAX_BODY */
#define JSON_MAX_NUMBER 256                      /* bytes of one number */

/* --- numbers ------------------------------------------------------------ */

typedef struct json_num {
    long long i;     /* the integer part, saturated at LLONG_MIN/LLONG_MAX */
    double d;        /* the value */
    int integral;    /* 1: no fraction or exponent, and `i` is exact */
} json_num;

/* --- the scanner -------------------------------------------------------- */

typedef struct json_scan {
    const char *s;
    size_t n, i;     /* length, position */
    int depth;
} json_scan;

/// Starts scanning `s[0..n)` (not NUL-terminated); DRV_EINVALID when n is
/// beyond JSON_MAX_SIZE.
int json_scan_init(json_scan *j, const char *s, size_t n);

/// The next byte after whitespace (the position moves past the
/// whitespace), or -1 at the end: tells which kind of value comes next.
int json_peek(json_scan *j);

/// Reads a string; its decoded text is appended to `out` (none when NULL).
int json_string(json_scan *j, buf *out);

/// Reads a number into *out (may be NULL).
int json_number(json_scan *j, json_num *out);

/// Reads and ignores any value.
int json_skip(json_scan *j);

/// Called for each member with its decoded key, positioned at the value:
/// returns 0 after reading the value itself, 1 to have it skipped, or a
/// negative code to stop (returned by json_object).
typedef int (*json_member_fn)(json_scan *j, const char *key, void *ud);

/// Reads an object, calling `member` (NULL: skip every value).
int json_object(json_scan *j, json_member_fn member, void *ud);

/// Called for each item of an array, positioned at it; same returns.
typedef int (*json_item_fn)(json_scan *j, size_t index, void *ud);

/// Reads an array, calling `item` (NULL: skip every item).
int json_array(json_scan *j, json_item_fn item, void *ud);

/// 0 when nothing but whitespace is left, else DRV_EINVALID.
int json_end(json_scan *j);

/* --- the tree ----------------------------------------------------------- */

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } json_type;

typedef struct json_val {
    json_type t;
    int b;                   /* JSON_BOOL */
    json_num num;            /* JSON_NUM */
    char *s;                 /* JSON_STR, NUL-terminated (no NUL inside) */
    struct json_val *v;      /* JSON_ARR, JSON_OBJ: the n items / values */
    char **k;                /* JSON_OBJ: the n keys */
    size_t n;
} json_val;

/// Parses the whole of `s[0..n)` into *out (free with json_free); on
/// failure *out is empty and needs no json_free.
int json_parse(const char *s, size_t n, json_val *out);

/// Frees what *v holds and empties it (a JSON_NULL).
void json_free(json_val *v);

/// The value of member `key` of object `o` (the first, if repeated); NULL
/// when `o` is NULL, not an object, or has no such member.
const json_val *json_get(const json_val *o, const char *key);

/// json_get's value when it is a string, else NULL.
const char *json_get_str(const json_val *o, const char *key);

#endif
