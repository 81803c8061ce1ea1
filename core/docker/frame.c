/*
 * frame.c: Docker's multiplexed stream parser (8-byte headers, see frame.h).
 *
 * State: `hdr_len` bytes of a header are buffered while 0 < hdr_len < 8;
 * `remaining` payload bytes are owed while it is non-zero. A complete but
 * invalid header stays in `hdr` (hdr_len == 8), so every later feed fails
 * the same way instead of resynchronising on garbage.
 */
#include "frame.h"

#include <string.h>

void frame_init(frame_parser *p, int raw, frame_data_cb cb, void *ud)
{
    memset(p, 0, sizeof *p);
    p->raw = raw;
    p->cb = cb;
    p->ud = ud;
}

static int header_error(const frame_parser *p, drv_err *err)
{
    const unsigned char *h = p->hdr;
    return drv_err_set(err, DRV_EINVALID,
                       "docker stream: invalid frame header: "
                       "\"%02x %02x %02x %02x %02x %02x %02x %02x\"",
                       h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

int frame_feed(frame_parser *p, const char *data, size_t len, drv_err *err)
{
    if (p->raw) {
        return len > 0 ? p->cb(p->ud, FRAME_STDOUT, data, len) : 0;
    }
    while (len > 0 || p->hdr_len == sizeof p->hdr) {
        if (p->remaining > 0) {
            size_t n = len < p->remaining ? len : p->remaining;
            p->remaining -= (uint32_t)n;
            int rc = p->cb(p->ud, p->stream, data, n);
            if (rc != 0) {
                return rc;
            }
            data += n;
            len -= n;
            continue;
        }
        size_t take = sizeof p->hdr - p->hdr_len;
        if (take > len) {
            take = len;
        }
        memcpy(p->hdr + p->hdr_len, data, take);
        p->hdr_len += take;
        data += take;
        len -= take;
        if (p->hdr_len < sizeof p->hdr) {
            break;
        }
        const unsigned char *h = p->hdr;
        if (h[0] > FRAME_STDERR || h[1] != 0 || h[2] != 0 || h[3] != 0) {
            return header_error(p, err);
        }
        p->stream = h[0];
        p->remaining = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
                       (uint32_t)h[6] << 8 | (uint32_t)h[7];
        p->hdr_len = 0;
    }
    return 0;
}

int frame_pending(const frame_parser *p)
{
    return !p->raw && (p->hdr_len > 0 || p->remaining > 0);
}
