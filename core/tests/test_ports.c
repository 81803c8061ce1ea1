/*
 * test_ports.c: the host port allocator.
 *
 * Also a helper for spec/docker/ports_concurrency_spec.lua:
 *   test_ports --reserve DATA_DIR N MIN MAX [--until FILE]
 * reserves N dynamic ports, prints them one per line and then "done", and
 * stays alive (its ledger entries stay live) until FILE exists (60 s at most).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ports.h"
#include "test.h"

/* --- helpers -------------------------------------------------------------- */

static char data_dir[64];

static void fresh_data_dir(void)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/drv-ports-test.XXXXXX");
    if (mkdtemp(data_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void remove_data_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", data_dir);
    }
}

/* The contents of every port record (state/ports-*.json), concatenated;
 * *nrec: how many there are. */
static void read_records(char *out, size_t len, int *nrec)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state", data_dir);
    DIR *d = opendir(path);
    struct dirent *e;
    size_t used = 0;
    *nrec = 0;
    out[0] = '\0';
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "ports-", 6) != 0) {
            continue;
        }
        (*nrec)++;
        snprintf(path, sizeof path, "%s/state/%s", data_dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            used += fread(out + used, 1, len - 1 - used, f);
            out[used] = '\0';
            fclose(f);
        }
    }
    closedir(d);
}

static int entry_exists(int port)
{
    static char text[1 << 16];
    char a[32], b[32];
    int n;
    read_records(text, sizeof text, &n);
    snprintf(a, sizeof a, "{\"port\":%d,", port);
    snprintf(b, sizeof b, "{\"port\":%d}", port);
    return strstr(text, a) != NULL || strstr(text, b) != NULL;
}

/* Ports recorded in the ledger (all records). */
static int ledger_count(void)
{
    static char text[1 << 16];
    int n, count = 0;
    read_records(text, sizeof text, &n);
    for (const char *p = text; (p = strstr(p, "{\"port\":")) != NULL; p++) {
        count++;
    }
    return count;
}

static int record_count(void)
{
    static char text[1 << 16];
    int n;
    read_records(text, sizeof text, &n);
    return n;
}

static int record_exists(const char *alloc)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/state/ports-%s.json", data_dir, alloc);
    return stat(path, &st) == 0;
}

static void read_record(const char *alloc, char *out, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state/ports-%s.json", data_dir, alloc);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(out, 1, len - 1, f);
        out[n] = '\0';
        fclose(f);
    }
}

/* Writes a record by hand, as another process would have. */
static void write_record(const char *alloc, long pid, unsigned long long start, int port)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state", data_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/state/ports-%s.json", data_dir, alloc);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "{\"version\":1,\"alloc_id\":\"%s\",\"owner\":{\"pid\":%ld,\"start\":%llu},"
                "\"ports\":[{\"port\":%d,\"key\":\"%s/t/p\"}]}\n", alloc, pid, start, port, alloc);
        fclose(f);
    }
}

/* /proc/<pid>/stat field 22. */
static unsigned long long start_of(long pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long long v = 0;
    for (int field = 2; p != NULL && field < 22; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p != NULL) {
        v = strtoull(p + 1, NULL, 10);
    }
    return v;
}

/* A child that sleeps until killed. */
static pid_t sleeper(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    return pid;
}

/* A socket of `type` bound to ip:port (listening for TCP), or -1. */
static int hold(int type, const char *ip, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sin.sin_addr);
    int fd = socket(AF_INET, type, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&sin, sizeof sin) < 0 ||
        (type == SOCK_STREAM && listen(fd, 1) < 0)) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* First port of `size` consecutive ports nobody holds, below the ephemeral
 * range; varies with the pid so parallel runs rarely meet. */
static int free_block(int size)
{
    for (int attempt = 0; attempt < 400; attempt++) {
        int base = 24000 + (int)(((unsigned)getpid() + (unsigned)attempt * 7u) % 800u) * 10;
        int ok = 1;
        for (int p = base; ok && p < base + size; p++) {
            ok = !ports_bound("127.0.0.1", p);
        }
        if (ok) {
            return base;
        }
    }
    return -1;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* --- tests ---------------------------------------------------------------- */

TEST(static_port_honoured_and_recorded)
{
    drv_err err;
    int base = free_block(2);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req r = { "a1/web/http", base + 1, 0, NULL };
    ASSERT_INT_EQ(ports_reserve(data_dir, "127.0.0.1", base, base + 1, &r, 1, &err), 0);
    ASSERT_INT_EQ(r.result, base + 1);
    ASSERT(entry_exists(base + 1));
    remove_data_dir();
}

TEST(static_port_bound_by_tcp_listener_refused)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    int fd = hold(SOCK_STREAM, "0.0.0.0", base);
    ASSERT(fd >= 0);
    fresh_data_dir();
    port_req r = { "a1/web/http", base, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &r, 1, &err);
    close(fd);
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_EINVALID);
    char want[128];
    snprintf(want, sizeof want, "task \"web\": static port %d (\"http\") is already in use", base);
    ASSERT_STR_EQ(err.msg, want);
    ASSERT_INT_EQ(r.result, 0);
}

TEST(static_port_bound_by_udp_on_node_ip_refused)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    int fd = hold(SOCK_DGRAM, "127.0.0.1", base);
    ASSERT(fd >= 0);
    fresh_data_dir();
    port_req r = { "a1/db/dns", base, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &r, 1, &err);
    close(fd);
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "task \"db\": static port");
    ASSERT_CONTAINS(err.msg, "(\"dns\") is already in use");
}

TEST(dynamic_ports_skip_bound_ones)
{
    drv_err err;
    int base = free_block(6);
    ASSERT(base > 0);
    int fds[3] = {
        hold(SOCK_STREAM, "0.0.0.0", base),        /* any address, tcp */
        hold(SOCK_DGRAM, "0.0.0.0", base + 2),     /* any address, udp */
        hold(SOCK_STREAM, "127.0.0.1", base + 4),  /* the node address only */
    };
    ASSERT(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
    fresh_data_dir();
    port_req r[3] = { { "a/t/x", 0, 0, NULL }, { "a/t/y", 0, 0, NULL }, { "a/t/z", 0, 0, NULL } };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 5, r, 3, &err);
    port_req more = { "a/t/w", 0, 0, NULL };
    int rc_more = ports_reserve(data_dir, "127.0.0.1", base, base + 5, &more, 1, &err);
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    int got[3] = { r[0].result, r[1].result, r[2].result };
    qsort(got, 3, sizeof got[0], cmp_int);
    ASSERT_INT_EQ(got[0], base + 1);
    ASSERT_INT_EQ(got[1], base + 3);
    ASSERT_INT_EQ(got[2], base + 5);
    ASSERT_INT_EQ(rc_more, DRV_ETASK);
}

TEST(no_duplicates_within_one_call)
{
    drv_err err;
    enum { N = 10 };
    int base = free_block(N);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req r[N];
    char keys[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "a/t/p%d", i);
        r[i] = (port_req){ keys[i], 0, 0, NULL };
    }
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + N - 1, r, N, &err);
    int n_entries = ledger_count();
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    int got[N];
    for (int i = 0; i < N; i++) {
        got[i] = r[i].result;
    }
    qsort(got, N, sizeof got[0], cmp_int);
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(got[i], base + i);      /* every port once: no duplicate */
    }
    ASSERT_INT_EQ(n_entries, N);
}

TEST(static_and_dynamic_in_one_call_do_not_collide)
{
    drv_err err;
    int base = free_block(2);
    ASSERT(base > 0);
    fresh_data_dir();
    /* the dynamic request comes first but must not take the static port */
    port_req r[2] = { { "a/t/dyn", 0, 0, NULL }, { "a/t/fixed", base, 0, NULL } };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 1, r, 2, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(r[1].result, base);
    ASSERT_INT_EQ(r[0].result, base + 1);
}

TEST(consecutive_owners_never_overlap)
{
    drv_err err;
    int base = free_block(8);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req a[4] = { { "A/t/1", 0, 0, NULL }, { "A/t/2", 0, 0, NULL }, { "A/t/3", 0, 0, NULL }, { "A/t/4", 0, 0, NULL } };
    port_req b[4] = { { "B/t/1", 0, 0, NULL }, { "B/t/2", 0, 0, NULL }, { "B/t/3", 0, 0, NULL }, { "B/t/4", 0, 0, NULL } };
    int rca = ports_reserve(data_dir, "127.0.0.1", base, base + 7, a, 4, &err);
    int rcb = ports_reserve(data_dir, "127.0.0.1", base, base + 7, b, 4, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rca, 0);
    ASSERT_INT_EQ(rcb, 0);
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 4; k++) {
            ASSERT(a[i].result != b[k].result);
        }
    }
}

TEST(static_port_held_in_ledger_refused)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req a = { "A/web/http", base, 0, NULL };
    port_req b = { "B/api/admin", base, 0, NULL };
    int rca = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &a, 1, &err);
    int rcb = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &b, 1, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rca, 0);
    ASSERT_INT_EQ(rcb, DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "task \"api\": static port");
    ASSERT_CONTAINS(err.msg, "(\"admin\") is already in use");
}

TEST(entry_of_dead_process_is_reclaimed)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        port_req r = { "dead/t/p", base, 0, NULL };
        _exit(ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, NULL) == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT(pid > 0);
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int left_behind = entry_exists(base);
    port_req r = { "live/t/p", 0, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, &err);
    remove_data_dir();
    ASSERT(left_behind);                /* the child exited without releasing */
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(r.result, base);
}

TEST(entry_of_live_process_is_respected)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    int ready[2], go[2];
    ASSERT(pipe(ready) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char c = 0;
        port_req r = { "other/t/p", base, 0, NULL };
        close(go[1]);    /* so the parent's close is seen as EOF */
        c = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, NULL) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0) {
            _exit(1);
        }
        _exit(0);
    }
    char c = 0;
    ASSERT(pid > 0);
    ssize_t got = read(ready[0], &c, 1);
    port_req mine = { "me/t/p", base, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &mine, 1, &err);
    port_req theirs = { "other/t/p", base, base, NULL };
    ports_release(data_dir, &theirs, 1);   /* not ours: must stay */
    int still_there = entry_exists(base);
    close(go[1]);
    waitpid(pid, NULL, 0);
    close(go[0]);
    close(ready[0]);
    close(ready[1]);
    remove_data_dir();
    ASSERT(got == 1 && c == 'y');
    ASSERT_INT_EQ(rc, DRV_EINVALID);
    ASSERT(still_there);
}

TEST(release_removes_own_entries)
{
    drv_err err;
    int base = free_block(3);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req r[3] = { { "a/t/1", 0, 0, NULL }, { "a/t/2", 0, 0, NULL }, { "a/t/3", 0, 0, NULL } };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 2, r, 3, &err);
    int before = ledger_count();
    int rel = ports_release(data_dir, r, 3);
    int after = ledger_count();
    port_req again[3] = { { "b/t/1", 0, 0, NULL }, { "b/t/2", 0, 0, NULL }, { "b/t/3", 0, 0, NULL } };
    int rc_again = ports_reserve(data_dir, "127.0.0.1", base, base + 2, again, 3, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(before, 3);
    ASSERT_INT_EQ(rel, 0);
    ASSERT_INT_EQ(after, 0);
    ASSERT_INT_EQ(rc_again, 0);         /* the range is whole again */
}

TEST(exhausted_range_fails_and_reserves_nothing)
{
    drv_err err;
    int base = free_block(2);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req r[3] = { { "a1/web/http", 0, 0, NULL }, { "a1/web/admin", 0, 0, NULL }, { "a1/web/metrics", 0, 0, NULL } };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 1, r, 3, &err);
    int n_entries = ledger_count();
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_ETASK);
    char want[128];
    snprintf(want, sizeof want, "task \"web\": no free dynamic port for \"metrics\" in %d..%d",
             base, base + 1);
    ASSERT_STR_EQ(err.msg, want);
    ASSERT_INT_EQ(n_entries, 0);
    ASSERT_INT_EQ(r[0].result, 0);
    ASSERT_INT_EQ(r[1].result, 0);
}

TEST(invalid_range_is_a_config_error)
{
    drv_err err;
    fresh_data_dir();
    port_req r = { "a/t/p", 0, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", 32000, 20000, &r, 1, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_ECONFIG);
    ASSERT_CONTAINS(err.msg, "32000..20000");
}

TEST(peek_writes_nothing)
{
    drv_err err;
    char missing[PATH_MAX];
    struct stat st;
    int base = free_block(4);
    ASSERT(base > 0);
    fresh_data_dir();
    snprintf(missing, sizeof missing, "%s/not-yet", data_dir);
    port_req r[2] = { { "a/t/1", 0, 0, NULL }, { "a/t/2", base, 0, NULL } };
    int rc = ports_peek(missing, "127.0.0.1", base + 1, base + 3, r, 2, &err);
    int created = stat(missing, &st) == 0;
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT(r[0].result >= base + 1 && r[0].result <= base + 3);
    ASSERT_INT_EQ(r[1].result, base);
    ASSERT(!created);
}

TEST(peek_sees_the_ledger)
{
    drv_err err;
    int base = free_block(2);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req held = { "a/t/1", base, 0, NULL };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 1, &held, 1, &err);
    port_req p = { "b/t/1", 0, 0, NULL };
    int rc_peek = ports_peek(data_dir, "127.0.0.1", base, base + 1, &p, 1, &err);
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(rc_peek, 0);
    ASSERT_INT_EQ(p.result, base + 1);
}

TEST(count_two_records_each_alloc_under_its_own_id)
{
    drv_err err;
    char text[1024];
    int base = free_block(4);
    ASSERT(base > 0);
    fresh_data_dir();
    /* count = 2: one call for both instances, as job.c makes it */
    port_req r[4] = {
        { "A1/web/http", 0, 0, "A1" }, { "A1/web/admin", 0, 0, "A1" },
        { "A2/web/http", 0, 0, "A2" }, { "A2/web/admin", 0, 0, "A2" },
    };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base + 3, r, 4, &err);
    int nrec = record_count();
    int a1 = record_exists("A1"), a2 = record_exists("A2");
    read_record("A2", text, sizeof text);
    char want[64], notwant[64];
    snprintf(want, sizeof want, "{\"port\":%d,\"key\":\"A2/web/admin\"}", r[3].result);
    snprintf(notwant, sizeof notwant, "{\"port\":%d,", r[0].result);
    int has_own = strstr(text, want) != NULL;
    int has_other = strstr(text, notwant) != NULL;
    int owner_ok = strstr(text, "\"alloc_id\":\"A2\"") != NULL && strstr(text, "\"pid\":") != NULL;
    int rel = ports_release(data_dir, r, 4);
    int after = record_count();
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(nrec, 2);
    ASSERT(a1 && a2);
    ASSERT(has_own);
    ASSERT(!has_other);
    ASSERT(owner_ok);
    ASSERT_INT_EQ(rel, 0);
    ASSERT_INT_EQ(after, 0);          /* releasing an alloc removes its record */
}

TEST(record_owner_is_pid_and_start_time)
{
    drv_err err;
    char text[1024], want[96];
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req r = { "A/t/p", 0, 0, NULL };      /* alloc id from the key */
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, &err);
    read_record("A", text, sizeof text);
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    snprintf(want, sizeof want, "\"owner\":{\"pid\":%ld,\"start\":%llu}", (long)getpid(),
             start_of((long)getpid()));
    ASSERT_CONTAINS(text, want);
    ASSERT(start_of((long)getpid()) > 0);
}

TEST(reused_pid_with_other_start_time_is_stale)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    pid_t pid = sleeper();
    ASSERT(pid > 0);
    /* the pid lives, but it is not the process that wrote the record */
    write_record("old", (long)pid, start_of((long)pid) + 1, base);
    port_req r = { "new/t/p", base, 0, "new" };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, &err);
    int old_left = record_exists("old");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(r.result, base);
    ASSERT(!old_left);
}

TEST(live_owner_record_is_kept)
{
    drv_err err;
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    pid_t pid = sleeper();
    ASSERT(pid > 0);
    write_record("theirs", (long)pid, start_of((long)pid), base);
    port_req r = { "new/t/p", base, 0, "new" };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, &err);
    /* not ours: release leaves it */
    port_req theirs = { "theirs/t/p", base, base, "theirs" };
    ports_release(data_dir, &theirs, 1);
    int kept = record_exists("theirs");
    /* the same alloc id cannot be taken over while its owner lives */
    port_req same = { "theirs/t/q", 0, 0, "theirs" };
    int rc_same = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &same, 1, &err);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_EINVALID);
    ASSERT(kept);
    ASSERT_INT_EQ(rc_same, DRV_EINTERNAL);
    ASSERT_CONTAINS(err.msg, "alloc already has ports owned by process");
}

TEST(garbled_record_is_reclaimed)
{
    drv_err err;
    char path[PATH_MAX];
    int base = free_block(1);
    ASSERT(base > 0);
    fresh_data_dir();
    write_record("junk", (long)getppid(), 0, base);
    snprintf(path, sizeof path, "%s/state/ports-junk.json", data_dir);
    ASSERT(truncate(path, 20) == 0);
    port_req r = { "new/t/p", base, 0, "new" };
    int rc = ports_reserve(data_dir, "127.0.0.1", base, base, &r, 1, &err);
    int left = record_exists("junk");
    remove_data_dir();
    ASSERT_INT_EQ(rc, 0);
    ASSERT(!left);
}

TEST(alloc_id_unfit_for_a_file_name_refused)
{
    drv_err err;
    fresh_data_dir();
    port_req r = { "x/t/p", 0, 0, "../../etc/x" };
    int rc = ports_reserve(data_dir, "127.0.0.1", 20000, 32000, &r, 1, &err);
    int n = record_count();
    remove_data_dir();
    ASSERT_INT_EQ(rc, DRV_EINTERNAL);
    ASSERT_CONTAINS(err.msg, "\"../../etc/x\"");
    ASSERT_INT_EQ(n, 0);
    ASSERT_INT_EQ(r.result, 0);
}

TEST(second_reserve_for_own_alloc_extends_its_record)
{
    drv_err err;
    int base = free_block(2);
    ASSERT(base > 0);
    fresh_data_dir();
    port_req a = { "A/t/1", 0, 0, "A" };
    port_req b = { "A/t/2", 0, 0, "A" };
    int rca = ports_reserve(data_dir, "127.0.0.1", base, base + 1, &a, 1, &err);
    int rcb = ports_reserve(data_dir, "127.0.0.1", base, base + 1, &b, 1, &err);
    int both = entry_exists(base) && entry_exists(base + 1) && record_count() == 1;
    int rel = ports_release(data_dir, &a, 1);
    int b_left = entry_exists(b.result) && !entry_exists(a.result);
    remove_data_dir();
    ASSERT_INT_EQ(rca, 0);
    ASSERT_INT_EQ(rcb, 0);
    ASSERT(a.result != b.result);
    ASSERT(both);
    ASSERT_INT_EQ(rel, 0);
    ASSERT(b_left);
}

/* --- helper mode for the concurrency spec --------------------------------- */

static int reserve_mode(int argc, char **argv)
{
    if (argc != 6 && !(argc == 8 && strcmp(argv[6], "--until") == 0)) {
        fprintf(stderr, "usage: test_ports --reserve DATA_DIR N MIN MAX [--until FILE]\n");
        return 64;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > 1000) {
        fprintf(stderr, "test_ports: N must be 1..1000\n");
        return 64;
    }
    port_req *r = calloc((size_t)n, sizeof *r);
    char (*keys)[48] = calloc((size_t)n, sizeof *keys);
    char owner[32];
    drv_err err;
    snprintf(owner, sizeof owner, "proc-%ld", (long)getpid());
    for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "%s/t/p%d", owner, i);
        r[i].key = keys[i];
    }
    int rc = ports_reserve(argv[2], "127.0.0.1", atoi(argv[4]), atoi(argv[5]), r, (size_t)n, &err);
    if (rc < 0) {
        fprintf(stderr, "test_ports: %s\n", err.msg);
    } else {
        for (int i = 0; i < n; i++) {
            printf("%d\n", r[i].result);
        }
        printf("done\n");
    }
    fflush(stdout);
    if (argc == 8) {
        struct stat st;
        for (int i = 0; i < 6000 && stat(argv[7], &st) < 0; i++) {
            usleep(10000);
        }
    }
    free(keys);
    free(r);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--reserve") == 0) {
        return reserve_mode(argc, argv);
    }
    RUN(static_port_honoured_and_recorded);
    RUN(static_port_bound_by_tcp_listener_refused);
    RUN(static_port_bound_by_udp_on_node_ip_refused);
    RUN(dynamic_ports_skip_bound_ones);
    RUN(no_duplicates_within_one_call);
    RUN(static_and_dynamic_in_one_call_do_not_collide);
    RUN(consecutive_owners_never_overlap);
    RUN(static_port_held_in_ledger_refused);
    RUN(entry_of_dead_process_is_reclaimed);
    RUN(entry_of_live_process_is_respected);
    RUN(release_removes_own_entries);
    RUN(exhausted_range_fails_and_reserves_nothing);
    RUN(invalid_range_is_a_config_error);
    RUN(peek_writes_nothing);
    RUN(peek_sees_the_ledger);
    RUN(count_two_records_each_alloc_under_its_own_id);
    RUN(record_owner_is_pid_and_start_time);
    RUN(reused_pid_with_other_start_time_is_stale);
    RUN(live_owner_record_is_kept);
    RUN(garbled_record_is_reclaimed);
    RUN(alloc_id_unfit_for_a_file_name_refused);
    RUN(second_reserve_for_own_alloc_extends_its_record);
    return test_summary();
}
