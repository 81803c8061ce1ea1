/* log.c: levelled diagnostics to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "esc.h"

static int min_level = LOG_INFO;
static int json_format;

void log_set_json(int on)
{
    json_format = on != 0;
}

int log_get_json(void)
{
    return json_format;
}

static const char *const json_levels[] = { "debug", "info", "warn", "error" };

void log_json_escape(buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            buf_append(b, e, sizeof e);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            buf_append(b, u, sizeof u);
            i++;
        } else if (c < 0x80) {
            buf_append(b, s + i, 1);
            i++;
        } else {
            uint32_t cp;
            size_t len = esc_utf8_decode(p + i, n - i, &cp);
            if (len == 0) {
                esc_utf8_encode(b, 0xFFFD);
                i++;
            } else if (cp < 0xa0) {
                /* C1 controls: some terminals obey them */
                char u[6] = { '\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15] };
                buf_append(b, u, sizeof u);
                i += len;
            } else {
                buf_append(b, s + i, len);
                i += len;
            }
        }
    }
}

static void print_json(int level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[32] = "1970-01-01T00:00:00";
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    time_t t = ts.tv_sec;
    if (gmtime_r(&t, &tm) != NULL) {
        (void)strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    }
    buf b = BUF_INIT;
    log_json_escape(&b, msg);
    fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n", when,
            (long)(ts.tv_nsec / 1000000), json_levels[level], buf_str(&b));
    buf_free(&b);
}

void log_text(int level, const char *text)
{
    if (level < min_level) {
        return;
    }
    if (level < LOG_DEBUG || level > LOG_ERROR) {
        level = LOG_ERROR;
    }
    if (json_format) {
        print_json(level, text);
    } else {
        fprintf(stderr, "drvctl: %s%s\n", level == LOG_WARN ? "warning: " : "", text);
    }
}

void log_set_level(int level)
{
    min_level = level;
}

int log_get_level(void)
{
    return min_level;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *const names[] = { "debug: ", "", "warning: ", "error: " };
    va_list ap;

    if (level < min_level) {
        return;
    }
    /* messages quote job fields and Docker's answers: escaped (esc.h) */
    char small[1024];
    char *heap = NULL;
    const char *msg = small;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof small) {
        heap = drv_xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        (void)vsnprintf(heap, (size_t)n + 1, fmt, ap);
        va_end(ap);
        msg = heap;
    }
    if (json_format) {
        print_json(level, msg);
    } else {
        buf b = BUF_INIT;
        fprintf(stderr, "drvctl: %s%s\n", names[level], esc_msg(&b, msg));
        buf_free(&b);
    }
    free(heap);
}
