/*
 * cmd_gc.c: `drvctl gc`: carries out now what is due on this host. For now
 * that is the image removals recorded in <data_dir>/state/images.json
 * (docker.cleanup.image): images drvctl pulled or loaded whose last task
 * ended at least docker.cleanup.image.delay ago, by the delay this command's
 * agent config sets. Ended tasks' alloc dirs, their state and dangling
 * containers come with the agent (ARCHITECTURE §6); the help says so.
 *
 * With no record (no image was ever counted) it exits 0 without asking
 * Docker; otherwise it pings Docker, opens the references (which starts
 * the due removals) and closes them, waiting for the removals under way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "buf.h"
#include "cmd.h"
#include "conf.h"
#include "docker.h"
#include "esc.h"
#include "http.h"
#include "imagerefs.h"
#include "script.h"

static void usage(void)
{
    printf("Usage: drvctl gc [-config FILE] [-data-dir DIR] [-lua-dir DIR]\n\n"
           "Carries out now what is due on this host. In this version that is the image\n"
           "removals recorded under <data_dir>/state/images.json: images drvctl pulled or\n"
           "loaded whose last task ended at least docker.cleanup.image.delay ago (the\n"
           "delay of this command's agent config counts). An image that a container\n"
           "still uses is kept for later; images drvctl did not pull or load are never\n"
           "removed. References held by drvctl processes that are gone (a run killed\n"
           "with -9) count as released. With docker.cleanup.image = false nothing is\n"
           "removed.\n\n"
           "Not yet: ended tasks' alloc dirs and state, and dangling containers; they\n"
           "come with the agent. Messages go to stderr (DRVCTL_LOG=debug lists each\n"
           "image); the exit code is 0 when Docker answered, even if an image was kept.\n");
    cmd_print_exit_codes();
}

typedef struct gc_run {
    uv_loop_t loop;
    http_client *http;
    docker *docker;
    imagerefs *refs;
    const agent_conf *agent;
    char state_dir[PATH_MAX];
    int rc;
    drv_err err;
} gc_run;

static void on_refs_closed(void *ud)
{
    gc_run *g = ud;
    g->refs = NULL;
    http_client_close(g->http);
    g->http = NULL;
}

static void on_ping(void *ud, int rc, const drv_err *err)
{
    gc_run *g = ud;
    if (rc < 0) {
        g->rc = rc;
        g->err = *err;
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    imagerefs_opts o = {
        .loop = &g->loop, .docker = g->docker, .state_dir = g->state_dir,
        .enabled = 1, .delay_ms = g->agent->cleanup_image_delay_ms,
    };
    g->rc = imagerefs_open(&g->refs, &o, &g->err);
    if (g->rc < 0) {
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    /* nothing later is waited for: the removals due now, until they end */
    imagerefs_close(g->refs, 0, on_refs_closed, g);
}

int cmd_gc(int argc, char **argv)
{
    cmd_flags f;
    script *s = NULL;
    conf c;
    gc_run g;
    struct stat sb;
    int rc = cmd_parse_flags("gc", argc, argv, "config,data-dir,lua-dir", &f);

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 0) {
        fprintf(stderr, "drvctl gc: unexpected argument: \"%s\" (see drvctl help gc)\n",
                f.pos[0]);
        return drv_err_exit_code(DRV_EUSAGE);
    }
    memset(&c, 0, sizeof c);
    memset(&g, 0, sizeof g);
    drv_err_clear(&g.err);
    rc = script_open(&s, conf_lua_dir(f.lua_dir), &g.err);
    if (rc == 0) {
        rc = conf_load(&c, s, f.config, f.data_dir, &g.err);
        if (rc < 0 && c.problems.n > 0) {
            problems_print(&c.problems);
            g.err.msg[0] = '\0';
        }
    }
    g.agent = &c.agent;
    if (rc == 0 && !c.agent.cleanup_image) {
        fprintf(stderr, "drvctl gc: docker.cleanup.image is false: no image is removed\n");
    } else if (rc == 0 && (c.agent.data_dir == NULL ||
               snprintf(g.state_dir, sizeof g.state_dir, "%s/state", c.agent.data_dir) >=
                   (int)sizeof g.state_dir)) {
        rc = drv_err_set(&g.err, DRV_ECONFIG, "gc: data_dir too long");
    } else if (rc == 0) {
        char rec[PATH_MAX + 16];
        snprintf(rec, sizeof rec, "%s/images.json", g.state_dir);
        if (lstat(rec, &sb) < 0) {
            /* no image was ever counted here: nothing to ask Docker */
            conf_free(&c);
            script_close(s);
            return 0;
        }
        uv_loop_init(&g.loop);
        docker_opts dopts = {
            .endpoint = c.agent.endpoint, .tls_ca = c.agent.tls_ca,
            .tls_cert = c.agent.tls_cert, .tls_key = c.agent.tls_key,
        };
        rc = http_client_new(&g.http, &g.loop, &g.err);
        if (rc == 0) {
            rc = docker_new(&g.docker, g.http, &dopts, &g.err);
        }
        if (rc == 0) {
            rc = docker_ping(g.docker, on_ping, &g, &g.err);
        }
        if (rc < 0) {
            http_client_close(g.http);
            g.http = NULL;
        }
        uv_run(&g.loop, UV_RUN_DEFAULT);
        uv_run(&g.loop, UV_RUN_DEFAULT);   /* close callbacks */
        uv_loop_close(&g.loop);
        docker_free(g.docker);
        if (rc == 0) {
            rc = g.rc;
        }
    }
    if (rc < 0 && g.err.msg[0] != '\0') {
        buf b = BUF_INIT;
        fprintf(stderr, "drvctl: %s\n", esc_msg(&b, g.err.msg));
        buf_free(&b);
    }
    conf_free(&c);
    script_close(s);
    return rc < 0 ? drv_err_exit_code(rc) : 0;
}
