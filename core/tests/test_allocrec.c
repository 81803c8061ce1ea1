/*
 * test_allocrec.c: the durable alloc record (core/task/allocrec.c) and the
 * owner checks it relies on (core/base/owner.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "allocrec.h"
#include "owner.h"
#include "test.h"

#define ID "1b4d059f-7287-47c0-99a4-df2eb2705211"

static char data_dir[64];

static void fresh(void)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/drv-allocrec-test.XXXXXX");
    if (mkdtemp(data_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", data_dir);
    }
}

TEST(id_shape)
{
    ASSERT(allocrec_id_ok(ID));
    ASSERT(!allocrec_id_ok(NULL));
    ASSERT(!allocrec_id_ok(""));
    ASSERT(!allocrec_id_ok("1B4D059F-7287-47c0-99a4-df2eb2705211"));
    ASSERT(!allocrec_id_ok(ID "0"));
    ASSERT(!allocrec_id_ok("1b4d059f-7287-47c0-99a4-df2eb270521"));
    ASSERT(!allocrec_id_ok("../../../../etc/passwd-00000000000000"));
    ASSERT(!allocrec_id_ok("1b4d059f/7287-47c0-99a4-df2eb2705211"));
}

TEST(write_read_roundtrip)
{
    state *st = NULL;
    drv_err err;
    allocrec r, back;
    fresh();
    ASSERT_INT_EQ(allocrec_open(data_dir, 1, &st, &err), 0);
    ASSERT(st != NULL);
    memset(&r, 0, sizeof r);
    r.alloc_id = drv_xstrdup(ID);
    r.job = drv_xstrdup("web \"quoted\"\n");
    r.group = drv_xstrdup("g");
    owner_self(&r.owner);
    r.created_ms = 1700000000000LL;
    r.status = drv_xstrdup("running");
    allocrec_add_task(&r, "web", "web-" ID);
    allocrec_add_task(&r, "side", "side-" ID);   /* may move the first: index, not pointer */
    ASSERT_INT_EQ(allocrec_write(st, &r, &err), 0);
    ASSERT_INT_EQ(allocrec_read(st, ID, &back, &err), 0);
    ASSERT_STR_EQ(back.job, "web \"quoted\"\n");
    ASSERT(!allocrec_ended(&back));
    ASSERT(owner_same(&back.owner, &r.owner));
    ASSERT_INT_EQ(back.ntasks, 2);
    ASSERT_INT_EQ(back.tasks[0].has_exit, 0);
    allocrec_free(&back);
    /* the end: exit code of one task, error of the other */
    free(r.status);
    r.status = drv_xstrdup("ended");
    r.ended_ms = 1700000001000LL;
    r.keep_containers = 1;
    allocrec_task *t = &r.tasks[0];
    t->has_exit = 1;
    t->exit_code = 137;
    t->oom_killed = 1;
    t->kept = 1;
    r.tasks[1].error = drv_xstrdup("task \"side\": image unavailable");
    ASSERT_INT_EQ(allocrec_write(st, &r, &err), 0);
    ASSERT_INT_EQ(allocrec_read(st, ID, &back, &err), 0);
    ASSERT(allocrec_ended(&back));
    ASSERT_INT_EQ(back.ended_ms, 1700000001000LL);
    ASSERT_INT_EQ(back.created_ms, 1700000000000LL);
    ASSERT(back.keep_containers);
    ASSERT_INT_EQ(back.tasks[0].exit_code, 137);
    ASSERT(back.tasks[0].oom_killed && back.tasks[0].kept);
    ASSERT_STR_EQ(back.tasks[1].error, "task \"side\": image unavailable");
    ASSERT_INT_EQ(back.tasks[1].has_exit, 0);
    ASSERT_STR_EQ(back.tasks[1].container, "side-" ID);
    allocrec_free(&back);
    /* listed; the gc lock file and others are not ids */
    int lfd;
    ASSERT_INT_EQ(state_lock(st, "gc", &lfd, &err), 0);
    state_unlock(lfd);
    char **ids;
    size_t n;
    ASSERT_INT_EQ(allocrec_list(st, &ids, &n, &err), 0);
    ASSERT_INT_EQ(n, 1);
    ASSERT_STR_EQ(ids[0], ID);
    state_list_free(ids);
    ASSERT_INT_EQ(allocrec_remove(st, ID, &err), 0);
    ASSERT_INT_EQ(allocrec_read(st, ID, &back, &err), DRV_ENOTFOUND);
    allocrec_free(&r);
    state_close(st);
    cleanup();
}

TEST(decode_refuses_garbage)
{
    allocrec r;
    drv_err err;
    const char *bad[] = {
        "", "[]", "{}", "{\"version\":1}",
        "{\"version\":1,\"alloc_id\":\"../x\",\"owner\":{}}",
        "{\"version\":0,\"alloc_id\":\"" ID "\",\"owner\":{}}",
        "{\"version\":1,\"alloc_id\":\"" ID "\"}",
        "{\"version\":1,\"alloc_id\":\"" ID "\",\"owner\":{},\"tasks\":{}}",
        "{\"version\":1.5,\"alloc_id\":\"" ID "\",\"owner\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_INT_EQ(allocrec_decode(bad[i], strlen(bad[i]), "x", &r, &err), DRV_EINVALID);
    }
    /* a later version: read, flagged, unknown members ignored */
    const char *newer = "{\"version\":7,\"alloc_id\":\"" ID "\",\"owner\":{\"pid\":5},"
                        "\"status\":\"pending\",\"future\":[1,2]}";
    ASSERT_INT_EQ(allocrec_decode(newer, strlen(newer), "x", &r, &err), 0);
    ASSERT(r.newer);
    ASSERT(!allocrec_ended(&r));
    ASSERT_INT_EQ(r.owner.pid, 5);
    allocrec_free(&r);
}

/* The record names another alloc than its file: refused. */
TEST(read_checks_the_id)
{
    state *st = NULL;
    drv_err err;
    allocrec r;
    fresh();
    ASSERT_INT_EQ(allocrec_open(data_dir, 1, &st, &err), 0);
    const char *other = "{\"version\":1,\"alloc_id\":\"00000000-0000-4000-8000-000000000000\","
                        "\"owner\":{}}";
    ASSERT_INT_EQ(state_write(st, ID ".json", other, strlen(other), &err), 0);
    ASSERT_INT_EQ(allocrec_read(st, ID, &r, &err), DRV_EINVALID);
    state_close(st);
    /* an existing-only open of a data dir without records: NULL, no dir made */
    char empty[80];
    snprintf(empty, sizeof empty, "%s/none", data_dir);
    ASSERT_INT_EQ(allocrec_open(empty, 0, &st, &err), 0);
    ASSERT(st == NULL);
    struct stat sb;
    ASSERT(stat(empty, &sb) < 0);
    cleanup();
}

/* Owners: this process is alive; a dead child is not; a pid with another
 * start time (reused) or another boot id is not. */
TEST(owner_liveness)
{
    owner self, o;
    owner_self(&self);
    ASSERT(self.pid == (long)getpid());
    ASSERT(self.start > 0);
    ASSERT(self.boot[0] != '\0');
    ASSERT(owner_alive(&self, &self));
    o = self;
    o.start++;
    ASSERT(!owner_alive(&o, &self));
    o = self;
    snprintf(o.boot, sizeof o.boot, "another-boot");
    ASSERT(!owner_alive(&o, &self));
    pid_t pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    ASSERT(pid > 0);
    o = self;
    o.pid = pid;
    int gone;
    o.start = owner_proc_start(pid, &gone);
    waitpid(pid, NULL, 0);
    ASSERT(!owner_alive(&o, &self));
    /* the parent (alive) with a wrong start time: a reused pid */
    o = self;
    o.pid = (long)getppid();
    o.start = owner_proc_start(o.pid, &gone);
    ASSERT(owner_alive(&o, &self));
    o.start += 12345;
    ASSERT(!owner_alive(&o, &self));
    o.pid = 0;
    ASSERT(!owner_alive(&o, &self));
}

int main(void)
{
    RUN(id_shape);
    RUN(write_read_roundtrip);
    RUN(decode_refuses_garbage);
    RUN(read_checks_the_id);
    RUN(owner_liveness);
    return test_summary();
}
