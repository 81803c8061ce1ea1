/* probe.c: Docker facts for planning, on a private loop (see probe.h). */
#include "probe.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "docker.h"
#include "http.h"

typedef struct probe {
    uv_loop_t loop;
    http_client *http;
    docker *docker;
    script *script;
    node_facts *facts;
    int rc;
    drv_err err;
    char version[64];
    char gateway[64];
    int want_bridge;
} probe;

static void done(probe *p, int rc, const drv_err *err)
{
    if (rc < 0 && p->rc == 0) {
        p->rc = rc;
        p->err = *err;
    }
    http_client_close(p->http);
}

static void copy_field(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static void on_network(void *ud, http_req *r, int rc, long status, const buf *body, const drv_err *err)
{
    probe *p = ud;
    (void)r;
    (void)err;
    if (rc == 0 && status == 200) {
        decoded d;
        if (script_decode(p->script, "network", status, buf_str(body), &d, NULL) == 0) {
            copy_field(p->gateway, sizeof p->gateway, d.gateway);
            decoded_free(&d);
        }
    }
    done(p, 0, NULL);   /* no bridge network is fine: the attribute is absent */
}

static void ask_network(probe *p)
{
    drv_err e;
    if (!p->want_bridge) {
        done(p, 0, NULL);
        return;
    }
    docker_cb cb = { .on_done = on_network, .ud = p, .timeout_ms = 5000 };
    if (docker_network_inspect(p->docker, "bridge", &cb, NULL, &e) < 0) {
        done(p, 0, NULL);
    }
}

static void on_version(void *ud, http_req *r, int rc, long status, const buf *body, const drv_err *err)
{
    probe *p = ud;
    drv_err e;
    (void)r;
    if (rc < 0) {
        docker_unreachable(p->docker, err, &e);
        done(p, e.code, &e);
        return;
    }
    if (status == 200) {
        decoded d;
        if (script_decode(p->script, "version", status, buf_str(body), &d, NULL) == 0) {
            copy_field(p->version, sizeof p->version, d.version);
            decoded_free(&d);
        }
    }
    ask_network(p);
}


static void on_ping(void *ud, int rc, const drv_err *err)
{
    probe *p = ud;
    drv_err e;
    if (rc < 0) {
        done(p, rc, err);
        return;
    }
    /* the ping's Server header names the engine version: GET /version,
     * which asks containerd and runc for theirs, is slow (about 20 ms) */
    if (docker_server_version(p->docker)[0] != '\0') {
        copy_field(p->version, sizeof p->version, docker_server_version(p->docker));
        ask_network(p);
        return;
    }
    docker_cb cb = { .on_done = on_version, .ud = p, .timeout_ms = 5000 };
    if (docker_version(p->docker, &cb, NULL, &e) < 0) {
        done(p, e.code, &e);
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

int probe_docker(const agent_conf *a, script *s, node_facts *f, int want_bridge,
                 char *api_version, drv_err *err)
{
    probe p;
    int rc;

    memset(&p, 0, sizeof p);
    p.want_bridge = want_bridge;
    p.script = s;
    p.facts = f;
    uv_loop_init(&p.loop);
    docker_opts o = {
        .endpoint = a->endpoint, .field = endpoint_field(a->endpoint),
        .tls_ca = a->tls_ca, .tls_cert = a->tls_cert, .tls_key = a->tls_key,
    };
    rc = http_client_new(&p.http, &p.loop, err);
    if (rc == 0) {
        rc = docker_new(&p.docker, p.http, &o, err);
        if (rc == 0) {
            rc = docker_ping(p.docker, on_ping, &p, err);
        }
        if (rc < 0) {
            http_client_close(p.http);
        }
    }
    uv_run(&p.loop, UV_RUN_DEFAULT);
    uv_loop_close(&p.loop);
    if (rc == 0 && p.rc == 0 && api_version != NULL) {
        snprintf(api_version, 16, "%s", docker_api_version(p.docker));
    }
    docker_free(p.docker);
    if (rc < 0) {
        return rc;
    }
    if (p.rc < 0) {
        if (err != NULL) {
            *err = p.err;
        }
        return p.rc;
    }
    node_facts_set(f, "driver.docker", "1");
    if (p.version[0] != '\0') {
        node_facts_set(f, "driver.docker.version", p.version);
    }
    if (p.gateway[0] != '\0') {
        node_facts_set(f, "driver.docker.bridge_ip", p.gateway);
    }
    return 0;
}
