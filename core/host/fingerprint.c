/* fingerprint.c: node + Docker facts on the caller's loop (see fingerprint.h). */
#include "fingerprint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "http.h"

struct fingerprint {
    http_client *http;
    docker *docker;
    node_facts facts;
    script *script;          /* during a refresh */
    fingerprint_cb cb;
    void *ud;
    int busy;                /* a refresh is in flight */
    int freed;               /* fingerprint_free ran: free when idle */
    int want_bridge;
    int setup_rc;            /* the Docker client could not be made */
    drv_err setup_err;
    int deferred_rc;         /* a failure reported from the loop */
    drv_err deferred_err;
    uv_timer_t defer;
    char version[64];
    char gateway[64];
    char api_version[16];
};

static void on_closed(uv_handle_t *h)
{
    fingerprint *fp = h->data;
    docker_free(fp->docker);
    node_facts_free(&fp->facts);
    free(fp);
}

static void destroy(fingerprint *fp)
{
    uv_close((uv_handle_t *)&fp->defer, on_closed);
}

static const char *const docker_attrs[] = {
    "driver.docker", "driver.docker.version", "driver.docker.bridge_ip",
};

static void copy_field(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* Ends the refresh: records the facts on success, then calls back. */
static void done(fingerprint *fp, int rc, const drv_err *err)
{
    fp->busy = 0;
    uv_timer_stop(&fp->defer);
    if (fp->freed) {
        destroy(fp);
        return;
    }
    if (rc == 0) {
        node_facts_set(&fp->facts, "driver.docker", "1");
        if (fp->version[0] != '\0') {
            node_facts_set(&fp->facts, "driver.docker.version", fp->version);
        }
        if (fp->gateway[0] != '\0') {
            node_facts_set(&fp->facts, "driver.docker.bridge_ip", fp->gateway);
        }
        copy_field(fp->api_version, sizeof fp->api_version, docker_api_version(fp->docker));
    } else {
        /* undetected, as in Nomad: the driver attributes go */
        for (size_t i = 0; i < sizeof docker_attrs / sizeof docker_attrs[0]; i++) {
            node_facts_unset(&fp->facts, docker_attrs[i]);
        }
        fp->api_version[0] = '\0';
    }
    fp->script = NULL;
    fp->cb(fp->ud, fp, rc, err);
}

static void on_network(void *ud, http_req *r, int rc, long status, const buf *body, const drv_err *err)
{
    fingerprint *fp = ud;
    (void)r;
    (void)err;
    if (!fp->freed && rc == 0 && status == 200) {
        decoded d;
        if (script_decode(fp->script, "network", status, buf_str(body), &d, NULL) == 0) {
            copy_field(fp->gateway, sizeof fp->gateway, d.gateway);
            decoded_free(&d);
        }
    }
    done(fp, 0, NULL);   /* no bridge network is fine: the attribute is absent */
}

static void ask_network(fingerprint *fp)
{
    drv_err e;
    if (!fp->want_bridge) {
        done(fp, 0, NULL);
        return;
    }
    docker_cb cb = { .on_done = on_network, .ud = fp, .timeout_ms = 5000 };
    if (docker_network_inspect(fp->docker, "bridge", &cb, NULL, &e) < 0) {
        done(fp, 0, NULL);
    }
}

static void on_version(void *ud, http_req *r, int rc, long status, const buf *body, const drv_err *err)
{
    fingerprint *fp = ud;
    drv_err e;
    (void)r;
    if (fp->freed) {
        done(fp, DRV_ECANCELED, err);
        return;
    }
    if (rc < 0) {
        docker_unreachable(fp->docker, err, &e);
        done(fp, e.code, &e);
        return;
    }
    if (status == 200) {
        decoded d;
        if (script_decode(fp->script, "version", status, buf_str(body), &d, NULL) == 0) {
            copy_field(fp->version, sizeof fp->version, d.version);
            decoded_free(&d);
        }
    }
    ask_network(fp);
}

static void on_ping(void *ud, int rc, const drv_err *err)
{
    fingerprint *fp = ud;
    drv_err e;
    if (rc < 0 || fp->freed) {
        done(fp, rc < 0 ? rc : DRV_ECANCELED, err);
        return;
    }
    /* the ping's Server header names the engine version: GET /version,
     * which asks containerd and runc for theirs, is slow (about 20 ms) */
    if (docker_server_version(fp->docker)[0] != '\0') {
        copy_field(fp->version, sizeof fp->version, docker_server_version(fp->docker));
        ask_network(fp);
        return;
    }
    docker_cb cb = { .on_done = on_version, .ud = fp, .timeout_ms = 5000 };
    if (docker_version(fp->docker, &cb, NULL, &e) < 0) {
        done(fp, e.code, &e);
    }
}

/* Names where the endpoint came from: the agent config wins over
 * DOCKER_HOST (lua/drv/agent.lua), so a value equal to DOCKER_HOST is most
 * likely from it. */
static const char *endpoint_field(const char *endpoint)
{
    const char *env = getenv("DOCKER_HOST");
    if (endpoint != NULL && env != NULL && strcmp(env, endpoint) == 0) {
        return "environment: DOCKER_HOST";
    }
    return "agent config: docker.endpoint";
}

static void on_deferred(uv_timer_t *t)
{
    fingerprint *fp = t->data;
    done(fp, fp->deferred_rc, &fp->deferred_err);
}

int fingerprint_new(fingerprint **out, uv_loop_t *loop, const agent_conf *a, drv_err *err)
{
    fingerprint *fp = drv_xcalloc(1, sizeof *fp);
    int rc;

    *out = NULL;
    rc = node_facts_gather(&fp->facts, a->network_interface, err);
    if (rc < 0) {
        node_facts_free(&fp->facts);
        free(fp);
        return rc;
    }
    uv_timer_init(loop, &fp->defer);
    fp->defer.data = fp;
    docker_opts o = {
        .endpoint = a->endpoint, .field = endpoint_field(a->endpoint),
        .tls_ca = a->tls_ca, .tls_cert = a->tls_cert, .tls_key = a->tls_key,
    };
    /* a client that cannot be made is the refresh's answer, not an error here:
     * the node facts stand without Docker */
    fp->setup_rc = http_client_new(&fp->http, loop, &fp->setup_err);
    if (fp->setup_rc == 0) {
        fp->setup_rc = docker_new(&fp->docker, fp->http, &o, &fp->setup_err);
    }
    *out = fp;
    return 0;
}

int fingerprint_refresh(fingerprint *fp, script *s, int want_bridge, fingerprint_cb cb,
                        void *ud, drv_err *err)
{
    if (fp->busy) {
        return drv_err_set(err, DRV_EINTERNAL, "fingerprint: a refresh is already running");
    }
    fp->script = s;
    fp->want_bridge = want_bridge;
    fp->cb = cb;
    fp->ud = ud;
    fp->version[0] = fp->gateway[0] = '\0';
    fp->busy = 1;
    fp->deferred_rc = fp->setup_rc;
    fp->deferred_err = fp->setup_err;
    if (fp->deferred_rc == 0) {
        fp->deferred_rc = docker_ping(fp->docker, on_ping, fp, &fp->deferred_err);
    }
    if (fp->deferred_rc < 0) {
        /* the callback always comes from the loop, never from this call */
        uv_timer_start(&fp->defer, on_deferred, 0, 0);
    }
    return 0;
}

node_facts *fingerprint_facts(fingerprint *fp)
{
    return &fp->facts;
}

const char *fingerprint_api_version(const fingerprint *fp)
{
    return fp->api_version;
}

void fingerprint_copy_facts(const fingerprint *fp, node_facts *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < fp->facts.n; i++) {
        node_facts_set(out, fp->facts.v[i].name, fp->facts.v[i].value);
    }
    if (fp->facts.network_ip != NULL) {
        out->network_ip = drv_xstrdup(fp->facts.network_ip);
    }
}

void fingerprint_free(fingerprint *fp)
{
    if (fp == NULL) {
        return;
    }
    fp->freed = 1;
    if (fp->busy && fp->deferred_rc < 0) {
        /* the deferred answer has not fired: nothing else will end the refresh */
        uv_timer_stop(&fp->defer);
        fp->busy = 0;
    }
    http_client_close(fp->http);
    if (!fp->busy) {
        destroy(fp);
    }
}
