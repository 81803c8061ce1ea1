/* esc.c: escaping untrusted text for a terminal (see esc.h). */
#include "esc.h"

#include <stdint.h>
#include <string.h>

size_t esc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2; c = s[0] & 0x1fu; min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3; c = s[0] & 0x0fu; min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4; c = s[0] & 0x07u; min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return len;
}

void esc_utf8_encode(buf *b, uint32_t cp)
{
    unsigned char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (unsigned char)(0xf0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, o, n);
}

/* Code points printed as \uXXXX although valid: C1 controls, bidi
 * embeddings/overrides/isolates, line and paragraph separators. */
static int hidden(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029 ||
           c == 0x200e || c == 0x200f || c == 0x061c;
}

void esc_append(buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0;            /* start of the pending verbatim run */
    size_t i = 0;

    while (i < n) {
        unsigned char ch = s[i];
        char tmp[8];
        const char *rep = NULL;
        size_t replen = 0, adv = 1;

        if (ch >= 0x20 && ch < 0x7f) {
            i++;
            continue;
        }
        if (ch == '\t') {
            i++;
            continue;
        }
        if (ch < 0x80) {
            switch (ch) {
            case '\n': rep = "\\n"; replen = 2; break;
            case '\r': rep = "\\r"; replen = 2; break;
            default:
                tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = hex[ch >> 4]; tmp[3] = hex[ch & 15];
                rep = tmp; replen = 4;
                break;
            }
        } else {
            uint32_t cp = 0;
            size_t len = esc_utf8_decode(s + i, n - i, &cp);
            if (len == 0) {
                tmp[0] = '\\'; tmp[1] = 'x'; tmp[2] = hex[ch >> 4]; tmp[3] = hex[ch & 15];
                rep = tmp; replen = 4;
            } else if (hidden(cp)) {
                tmp[0] = '\\'; tmp[1] = 'u';
                tmp[2] = hex[(cp >> 12) & 15]; tmp[3] = hex[(cp >> 8) & 15];
                tmp[4] = hex[(cp >> 4) & 15]; tmp[5] = hex[cp & 15];
                rep = tmp; replen = 6; adv = len;
            } else {
                i += len;
                continue;
            }
        }
        if (i > run) {
            buf_append(b, s + run, i - run);
        }
        buf_append(b, rep, replen);
        i += adv;
        run = i;
    }
    if (n > run) {
        buf_append(b, s + run, n - run);
    }
}

const char *esc_str(buf *b, const char *s)
{
    buf_reset(b);
    if (s != NULL) {
        esc_append(b, s, strlen(s));
    }
    return buf_str(b);
}

const char *esc_msg(buf *b, const char *s)
{
    buf_reset(b);
    if (s == NULL) {
        return buf_str(b);
    }
    for (int first = 1; ; first = 0) {
        const char *nl = strchr(s, '\n');
        size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
        if (!first) {
            buf_puts(b, "\n");
            if (strncmp(s, "  ", 2) != 0 || n < 2) {
                buf_puts(b, "  ");
            }
        }
        esc_append(b, s, n);
        if (nl == NULL) {
            break;
        }
        s = nl + 1;
    }
    return buf_str(b);
}
