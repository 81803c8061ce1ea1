/*
 * http.c: libcurl's multi-socket interface driven by libuv (the pattern of
 * curl's docs/examples/multi-uv.c). One uv_poll_t per socket libcurl asks us
 * to watch, one uv_timer_t for libcurl's timeout, and one deferred-work timer
 * that finishes cancelled requests outside libcurl callbacks.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;          /* libcurl's timeout */
    uv_timer_t defer;          /* finishes cancelled requests */
    http_req *reqs;            /* every request in flight */
    http_req *cancelq;         /* cancelled, waiting for the defer timer */
    struct sock_ctx *socks;    /* every socket being polled */
    int active;
    int closing;
    int open_handles;          /* timer + defer; freed when it drops to 0 */
};

struct http_req {
    http_client *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body_copy;
    buf body;                  /* collected body (non-2xx, or no on_data) */
    buf head;                  /* raw response header lines */
    char hval[512];            /* scratch for http_header() */
    long status;
    int head_done;
    int abort_rc;              /* negative: on_data asked to abort */
    int too_big;               /* 1: body over max_body, 2: head over HTTP_MAX_HEAD */
    int canceled;
    int queued;                /* on c->cancelq */
    int paused;
    int fd;                    /* the socket libcurl last asked to watch, or -1 */
    http_opts o;               /* callbacks and ud; url and unix_socket point
                                  into the copies below, other pointers are
                                  used only inside http_start */
    char *url;                 /* owned copies of what messages use later */
    char *unix_socket;
    char errbuf[CURL_ERROR_SIZE];
    http_req *prev, *next;     /* c->reqs: unlinked in O(1) */
    http_req *cancel_next;     /* c->cancelq */
};

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_client *c;
    struct sock_ctx *prev, *next;
} sock_ctx;

static void sock_close(sock_ctx *s);

static void check_done(http_client *c);

/* --- request bookkeeping ------------------------------------------------ */

static void req_unlink(http_req *r)
{
    http_client *c = r->c;
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        c->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
}

static void req_free(http_req *r)
{
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    free(r->body_copy);
    free(r->url);
    free(r->unix_socket);
    buf_free(&r->body);
    buf_free(&r->head);
    free(r);
}

/* Removes the request from libcurl and reports its result. */
static void req_finish(http_req *r, int rc, const drv_err *err)
{
    http_client *c = r->c;

    curl_multi_remove_handle(c->multi, r->easy);
    req_unlink(r);
    c->active--;
    r->o.on_done(r->o.ud, r, rc, r->status, &r->body, err);
    req_free(r);
}

/* --- libcurl callbacks --------------------------------------------------- */

static int status_is_ok(long status)
{
    return status >= 200 && status < 300;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t len = size * n;

    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 100 && status < 200) {
            buf_reset(&r->head);   /* 100 Continue / 101: real headers follow */
            return len;
        }
        r->status = status;
        r->head_done = 1;
        if (r->o.on_head != NULL && !r->canceled) {
            r->o.on_head(r->o.ud, r, status);
        }
        return len;
    }
    if (r->head.len + len > HTTP_MAX_HEAD) {
        r->too_big = 2;
        return 0;   /* aborts the transfer */
    }
    buf_append(&r->head, data, len);
    return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t len = size * n;

    if (r->canceled) {
        return 0;
    }
    if (!r->head_done) {
        /* file:// and some protocols have no header phase */
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        r->head_done = 1;
        if (r->status == 0) {
            r->status = 200;
        }
    }
    if (r->o.on_data != NULL && status_is_ok(r->status)) {
        int rc = r->o.on_data(r->o.ud, data, len);
        if (rc < 0) {
            r->abort_rc = rc;
            return 0;
        }
        if (rc == HTTP_DATA_PAUSE) {
            r->paused = 1;
            return CURL_WRITEFUNC_PAUSE;   /* libcurl keeps the bytes */
        }
        return len;
    }
    if (len > r->o.max_body - r->body.len) {
        r->too_big = 1;
        return 0;   /* aborts the transfer */
    }
    buf_append(&r->body, data, len);
    return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    return fread(dst, size, n, r->o.upload);
}

/* --- multi <-> libuv glue ------------------------------------------------- */

static void on_poll_close(uv_handle_t *h)
{
    free(h->data);
}

/* Stops polling and frees the context in its close callback. */
static void sock_close(sock_ctx *s)
{
    http_client *c = s->c;
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        c->socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_poll_close);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_ctx *s = poll->data;
    http_client *c = s->c;
    int flags = 0;
    int running = 0;

    if (c->multi == NULL) {
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    }
    if (events & UV_READABLE) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & UV_WRITABLE) {
        flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http_client *c = userp;
    sock_ctx *s = socketp;
    http_req *r = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    if (r != NULL) {
        r->fd = what == CURL_POLL_REMOVE ? -1 : (int)fd;
    }

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = drv_xcalloc(1, sizeof *s);
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks != NULL) {
            c->socks->prev = s;
        }
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    http_client *c = t->data;
    int running = 0;
    if (c->multi == NULL) {
        return;
    }
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    http_client *c = userp;
    (void)multi;

    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
    } else {
        /* 0 means "act now": a 0 ms libuv timer runs on the next loop
         * iteration without sleeping (mapping it to 1 ms, as curl's
         * multi-uv example does, costs a millisecond per state change) */
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

/* A failure of the TLS layer (handshake, certificates, an alert from the
 * peer such as "certificate required" or "unknown ca", which TLS 1.3 sends
 * after the client thinks the handshake is done): its message starts with
 * HTTP_TLS_PREFIX so that callers can say which settings to check. */
static int tls_failure(const http_req *r, CURLcode res)
{
    switch (res) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
        return 1;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return strncmp(r->o.url, "https://", 8) == 0 && strstr(r->errbuf, "SSL") != NULL;
    default:
        return 0;
    }
}

/* The message of a failed transfer. A peer that accepted the TCP connection
 * and then closed it without an HTTP status line (a TLS server refusing the
 * client certificate after the handshake, or a TLS port spoken to in plain
 * HTTP) leaves only a generic errbuf ("select/poll returned error" when the
 * loop saw the reset first): say what happened. */
static void set_transport_error(http_req *r, CURLcode res, drv_err *err)
{
    const char *msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
    int https = strncmp(r->o.url, "https://", 8) == 0;
    curl_off_t connected = 0;
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connected);
    if (tls_failure(r, res)) {
        drv_err_set(err, DRV_EHTTP, HTTP_TLS_PREFIX "%s", msg);
    } else if (r->status == 0 && connected > 0 && r->o.unix_socket == NULL &&
               (res == CURLE_SEND_ERROR || res == CURLE_RECV_ERROR || res == CURLE_GOT_NOTHING)) {
        drv_err_set(err, DRV_EHTTP, "%s%s (%s)", https ? HTTP_TLS_PREFIX : "",
                    https ? "the peer closed the connection during TLS setup, before any HTTP "
                            "answer: does it accept the client certificate?"
                          : HTTP_NO_ANSWER, msg);
    } else {
        drv_err_set(err, DRV_EHTTP, "%s", msg);
    }
}

static void check_done(http_client *c)
{
    CURLMsg *msg;
    int left;

    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        http_req *r = NULL;
        CURLcode res = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r->canceled) {
            continue;   /* the defer timer reports it */
        }
        drv_err err;
        drv_err_clear(&err);
        int rc = 0;
        if (r->abort_rc < 0) {
            rc = r->abort_rc;
            drv_err_set(&err, rc, "%s: transfer aborted", r->o.url);
        } else if (r->too_big == 1) {
            rc = DRV_EINVALID;
            drv_err_set(&err, rc, "%s: response body larger than %zu bytes", r->o.url,
                        r->o.max_body);
        } else if (r->too_big == 2) {
            rc = DRV_EINVALID;
            drv_err_set(&err, rc, "%s: response headers larger than %zu bytes", r->o.url,
                        HTTP_MAX_HEAD);
        } else if (res == CURLE_COULDNT_CONNECT && r->o.unix_socket != NULL) {
            long os_errno = 0;
            curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
            rc = DRV_EHTTP;
            drv_err_set(&err, rc, "cannot connect to socket \"%s\": %s", r->o.unix_socket,
                        os_errno ? strerror((int)os_errno) : "connection refused");
        } else if (res != CURLE_OK) {
            rc = DRV_EHTTP;
            set_transport_error(r, res, &err);
        } else if (r->status == 0) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
            if (r->status == 0) {
                r->status = 200;   /* file:// */
            }
        }
        req_finish(r, rc, rc ? &err : NULL);
    }
}

static void on_client_handle_close(uv_handle_t *h)
{
    http_client *c = h->data;
    if (--c->open_handles == 0) {
        free(c);
    }
}

static void on_defer(uv_timer_t *t)
{
    http_client *c = t->data;
    drv_err err;

    /* only the cancelled requests: one stream cancelled among thousands
     * costs the same as among one. An on_done may cancel more: they are
     * pushed on the queue and finished by this same loop. */
    while (c->cancelq != NULL) {
        http_req *r = c->cancelq;
        c->cancelq = r->cancel_next;
        r->cancel_next = NULL;
        r->queued = 0;
        drv_err_set(&err, DRV_ECANCELED, "%s: canceled", r->o.url);
        req_finish(r, DRV_ECANCELED, &err);
    }
    if (c->closing && c->reqs == NULL && c->multi != NULL) {
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        while (c->socks != NULL) {
            sock_close(c->socks);   /* sockets libcurl did not report removed */
        }
        uv_close((uv_handle_t *)&c->timer, on_client_handle_close);
        uv_close((uv_handle_t *)&c->defer, on_client_handle_close);
    }
}

/* --- public API ---------------------------------------------------------- */

int http_client_new(http_client **out, uv_loop_t *loop, drv_err *err)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            return drv_err_set(err, DRV_EINTERNAL, "http: curl_global_init failed");
        }
        global_done = 1;
    }
    http_client *c = drv_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return drv_err_set(err, DRV_EINTERNAL, "http: curl_multi_init failed");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 32L);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->timer.data = c;
    c->defer.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
}

static void cancel_enqueue(http_req *r)
{
    if (!r->queued) {
        r->queued = 1;
        r->cancel_next = r->c->cancelq;
        r->c->cancelq = r;
    }
}

/* Safe from inside any callback: the work happens in the defer timer. */
void http_client_close(http_client *c)
{
    if (c == NULL || c->closing) {
        return;
    }
    c->closing = 1;
    for (http_req *r = c->reqs; r != NULL; r = r->next) {
        r->canceled = 1;
        cancel_enqueue(r);
    }
    uv_timer_start(&c->defer, on_defer, 0, 0);
}

int http_client_active(const http_client *c)
{
    return c->active;
}

static int set_method_and_body(http_req *r, const http_opts *o, drv_err *err)
{
    CURL *e = r->easy;
    const char *method = o->method ? o->method : "GET";

    if (o->upload != NULL) {
        struct stat st;
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        if (fstat(fileno(o->upload), &st) == 0 && S_ISREG(st.st_mode)) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
        } else {
            r->hdrs = curl_slist_append(r->hdrs, "Transfer-Encoding: chunked");
        }
    } else if (o->body != NULL) {
        r->body_copy = drv_xmalloc(o->body_len + 1);
        memcpy(r->body_copy, o->body, o->body_len);
        r->body_copy[o->body_len] = '\0';
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_copy);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0 && (o->body != NULL || o->upload != NULL)) {
        return drv_err_set(err, DRV_EINTERNAL, "http: GET with a body");
    }
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: every connection, redirects included, after
 * name resolution: the caller vets the address before the socket exists. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    http_req *r = ud;
    (void)purpose;
    if (r->o.on_connect(r->o.ud, &a->addr) != 0) {
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int http_start(http_client *c, const http_opts *o, http_req **out, drv_err *err)
{
    if (c->closing) {
        return drv_err_set(err, DRV_ECANCELED, "http: client is closing");
    }
    http_req *r = drv_xcalloc(1, sizeof *r);
    r->c = c;
    r->fd = -1;
    r->o = *o;
    /* the caller's strings may die when http_start returns: keep copies of
     * the ones used later (messages, and libcurl's unix socket option) */
    if (r->o.max_body == 0) {
        r->o.max_body = HTTP_MAX_BODY;
    }
    r->url = drv_xstrdup(o->url);
    r->o.url = r->url;
    if (o->unix_socket != NULL) {
        r->unix_socket = drv_xstrdup(o->unix_socket);
        r->o.unix_socket = r->unix_socket;
    }
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return drv_err_set(err, DRV_EINTERNAL, "http: curl_easy_init failed");
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, o->protocols ? o->protocols : "http,https,file");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, o->unix_socket ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (o->low_speed_time_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    }
    if (o->no_proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    }
    if (o->on_connect != NULL) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    }
    if (o->unix_socket != NULL) {
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
    } else {
        long idle = o->keepalive_idle_s > 0 ? o->keepalive_idle_s : HTTP_KEEPALIVE_IDLE_S;
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, idle);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, HTTP_KEEPALIVE_INTVL_S);
    }
    if (o->timeout_ms > 0) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    }
    if (o->connect_timeout_ms > 0) {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    }
    if (o->ca_file != NULL) {
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    }
    if (o->cert_file != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, o->cert_file);
    }
    if (o->key_file != NULL) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, o->key_file);
    }
    if (o->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    if (o->content_type != NULL) {
        char line[256];
        snprintf(line, sizeof line, "Content-Type: %s", o->content_type);
        r->hdrs = curl_slist_append(r->hdrs, line);
    }
    for (const char *const *h = o->headers; h != NULL && *h != NULL; h++) {
        r->hdrs = curl_slist_append(r->hdrs, *h);
    }
    int rc = set_method_and_body(r, o, err);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);

    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        req_free(r);
        return drv_err_set(err, DRV_EINTERNAL, "http: curl_multi_add_handle failed");
    }
    r->next = c->reqs;
    if (c->reqs != NULL) {
        c->reqs->prev = r;
    }
    c->reqs = r;
    c->active++;
    if (out != NULL) {
        *out = r;
    }
    return 0;
}

void http_cancel(http_req *r)
{
    if (r == NULL || r->canceled) {
        return;
    }
    r->canceled = 1;
    cancel_enqueue(r);
    uv_timer_start(&r->c->defer, on_defer, 0, 0);
}

void http_pause(http_req *r)
{
    if (r == NULL || r->canceled || r->paused) {
        return;
    }
    r->paused = 1;
    curl_easy_pause(r->easy, CURLPAUSE_RECV);
}

void http_resume(http_req *r)
{
    if (r == NULL || r->canceled || !r->paused) {
        return;
    }
    r->paused = 0;
    /* may call on_write (and so on_data, which may pause again) at once;
     * libcurl also arms a 0 ms timeout, so the socket is read again and a
     * transfer that ended meanwhile is reported from the loop (on_done never
     * runs inside http_resume) */
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
}

int http_socket(const http_req *r)
{
    return r->fd;
}

int http_paused(const http_req *r)
{
    return r->paused;
}

const char *http_header(const http_req *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = buf_str(&r->head);
    http_req *w = (http_req *)(uintptr_t)r;   /* scratch space only */

    while (*p != '\0') {
        const char *eol = strpbrk(p, "\r\n");
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            size_t vlen = llen - (size_t)(v - p);
            if (vlen >= sizeof w->hval) {
                vlen = sizeof w->hval - 1;
            }
            memcpy(w->hval, v, vlen);
            w->hval[vlen] = '\0';
            return w->hval;
        }
        p += llen;
        while (*p == '\r' || *p == '\n') {
            p++;
        }
    }
    return NULL;
}
