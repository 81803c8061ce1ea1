/*
 * test_policyset.c: precompiled policies (core/plan/policyset.c) are used
 * only for exactly the path and text they were compiled from; a stale,
 * foreign, malformed or writable-by-others file gives no bytecode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "policyset.h"
#include "test.h"

static char dir[64];
static char bcfile[128];

static const char A_TEXT[] = "return { policy_format = 1, name = 'a', check = function() return true end }\n";
static const char B_TEXT[] = "return { policy_format = 1, name = 'b', check = function() return true end }\n";
static const char A_BC[] = "\x1bLuaT\x00 bytecode of a";   /* C never looks inside */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static void put_policy(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, text, strlen(text));
}

/* One-entry bytecode file for `path` and `text`; `header` as given. */
static void put_bc(const char *header, const char *path, const char *text, size_t bclen)
{
    buf b = BUF_INIT;
    buf_puts(&b, header);
    buf_appendf(&b, "%zu %zu %zu\n", strlen(path), strlen(text), bclen);
    buf_puts(&b, path);
    buf_puts(&b, text);
    buf_append(&b, A_BC, sizeof A_BC - 1 < bclen ? sizeof A_BC - 1 : bclen);
    write_file(bcfile, b.data, b.len);
    chmod(bcfile, 0644);
    buf_free(&b);
}

static const script_source *find(const policyset *ps, const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].path, p) == 0) {
            return &ps->v[i];
        }
    }
    return NULL;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/drv-policyset-test.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(bcfile, sizeof bcfile, "%s/policies.bc", dir);
    put_policy("a.lua", A_TEXT);
    put_policy("b.lua", B_TEXT);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

#define HEADER "drvctl-policy-bytecode 1\n"

/* Loads the policies in dir, then the bytecode file; returns how many matched. */
static size_t load(policyset *ps)
{
    drv_err err;
    if (policyset_load(ps, dir, &err) < 0) {
        fprintf(stderr, "policyset_load: %s\n", err.msg);
        exit(2);
    }
    return policyset_use_bytecode(ps, bcfile);
}

TEST(exact_path_and_text_get_the_bytecode)
{
    char path[128];
    policyset ps;
    snprintf(path, sizeof path, "%s/a.lua", dir);
    put_bc(HEADER, path, A_TEXT, sizeof A_BC - 1);
    ASSERT_INT_EQ(1, load(&ps));
    const script_source *a = find(&ps, "a.lua"), *b = find(&ps, "b.lua");
    ASSERT(a != NULL && b != NULL);
    ASSERT(a->bc != NULL);
    ASSERT_INT_EQ(sizeof A_BC - 1, a->bclen);
    ASSERT(memcmp(a->bc, A_BC, a->bclen) == 0);
    ASSERT(b->bc == NULL);
    policyset_free(&ps);
}

TEST(an_edited_policy_is_compiled_from_its_text)
{
    char path[128];
    policyset ps;
    snprintf(path, sizeof path, "%s/a.lua", dir);
    put_bc(HEADER, path, A_TEXT, sizeof A_BC - 1);
    /* one byte differs, same length: the stale entry must not be used */
    char edited[sizeof A_TEXT];
    memcpy(edited, A_TEXT, sizeof A_TEXT);
    edited[strlen(edited) - 3] = 'X';
    put_policy("a.lua", edited);
    ASSERT_INT_EQ(0, load(&ps));
    ASSERT(find(&ps, "a.lua")->bc == NULL);
    policyset_free(&ps);
    put_policy("a.lua", A_TEXT);
}

TEST(the_same_text_at_another_path_gets_no_bytecode)
{
    policyset ps;
    put_bc(HEADER, "/usr/share/drvctl/policies/a.lua", A_TEXT, sizeof A_BC - 1);
    ASSERT_INT_EQ(0, load(&ps));
    ASSERT(find(&ps, "a.lua")->bc == NULL);
    policyset_free(&ps);
}

TEST(malformed_files_give_no_bytecode)
{
    char path[128];
    policyset ps;
    snprintf(path, sizeof path, "%s/a.lua", dir);

    put_bc("drvctl-policy-bytecode 2\n", path, A_TEXT, sizeof A_BC - 1);
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);

    /* a bytecode length past the end of the file */
    put_bc(HEADER, path, A_TEXT, 1000000);
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);

    /* a length line that is not three numbers, and one without a newline */
    write_file(bcfile, HEADER "12 x\n", strlen(HEADER "12 x\n"));
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);
    write_file(bcfile, HEADER "1 2 3", strlen(HEADER "1 2 3"));
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);

    /* lengths that overflow when added */
    write_file(bcfile, HEADER "18446744073709551615 2 3\n", strlen(HEADER "18446744073709551615 2 3\n"));
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);
}

TEST(a_file_others_can_write_or_a_symlink_is_ignored)
{
    char path[128], link[160];
    policyset ps;
    snprintf(path, sizeof path, "%s/a.lua", dir);
    put_bc(HEADER, path, A_TEXT, sizeof A_BC - 1);
    ASSERT_INT_EQ(0, chmod(bcfile, 0664));
    ASSERT_INT_EQ(0, load(&ps));
    policyset_free(&ps);
    ASSERT_INT_EQ(0, chmod(bcfile, 0644));

    snprintf(link, sizeof link, "%s/link.bc", dir);
    ASSERT_INT_EQ(0, symlink(bcfile, link));
    drv_err err;
    ASSERT_INT_EQ(0, policyset_load(&ps, dir, &err));
    ASSERT_INT_EQ(0, policyset_use_bytecode(&ps, link));
    policyset_free(&ps);
    ASSERT_INT_EQ(0, policyset_load(&ps, dir, &err));
    ASSERT_INT_EQ(1, policyset_use_bytecode(&ps, bcfile));
    policyset_free(&ps);
}

int main(void)
{
    setup();
    RUN(exact_path_and_text_get_the_bytecode);
    RUN(an_edited_policy_is_compiled_from_its_text);
    RUN(the_same_text_at_another_path_gets_no_bytecode);
    RUN(malformed_files_give_no_bytecode);
    RUN(a_file_others_can_write_or_a_symlink_is_ignored);
    teardown();
    return test_summary();
}
