/*
 * test_fuzz_seeds.c: replays the committed fuzz corpus (fuzz/corpus/<target>/,
 * seeds and the reproducers of past findings) through the libFuzzer
 * harnesses of fuzz/c/, built here without libFuzzer. A harness aborts on
 * any violated invariant, so a regression stops this test with the name of
 * the input printed just before.
 *
 * Built by its own rule (Makefile, fuzzing block): the artifact and logs
 * harnesses include core/task/artifact.c and core/task/logs.c for their static parsers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ENTRY fuzz_frame_one
#include "../../fuzz/c/fuzz_frame.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_lines_one
#include "../../fuzz/c/fuzz_lines.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_artifact_one
#include "../../fuzz/c/fuzz_artifact.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_logs_one
#include "../../fuzz/c/fuzz_logs.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_json_one
#include "../../fuzz/c/fuzz_json.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_httpd_one
#include "../../fuzz/c/fuzz_httpd.c"
#undef FUZZ_ENTRY

#include "test.h"

/* Runs every file of fuzz/corpus/<target>/; returns how many, or -1. */
static int replay(const char *target, int (*one)(const uint8_t *, size_t))
{
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", target);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        buf b = BUF_INIT;
        char chunk[4096];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            buf_append(&b, chunk, got);
        }
        fclose(f);
        printf("     %s\n", path);
        fflush(stdout);
        one((const uint8_t *)(b.data ? b.data : ""), b.len);
        buf_free(&b);
        n++;
    }
    closedir(d);
    return n;
}

TEST(frame_corpus) { ASSERT(replay("frame", fuzz_frame_one) > 0); }
TEST(lines_corpus) { ASSERT(replay("lines", fuzz_lines_one) > 0); }
TEST(artifact_corpus) { ASSERT(replay("artifact", fuzz_artifact_one) > 0); }
TEST(logs_corpus) { ASSERT(replay("logs", fuzz_logs_one) > 0); }
TEST(json_corpus) { ASSERT(replay("json", fuzz_json_one) > 0); }
TEST(httpd_corpus) { ASSERT(replay("httpd", fuzz_httpd_one) > 0); }

int main(void)
{
    RUN(frame_corpus);
    RUN(lines_corpus);
    RUN(artifact_corpus);
    RUN(logs_corpus);
    RUN(json_corpus);
    RUN(httpd_corpus);
    return test_summary();
}
