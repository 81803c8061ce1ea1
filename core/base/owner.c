/* owner.c: the process that owns a record (see owner.h). */
#include "owner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long long owner_proc_start(long pid, int *gone)
{
    char path[64], text[1024];
    *gone = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *gone = errno == ENOENT || errno == ESRCH;
        return 0;
    }
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) {
        *gone = n == 0;
        return 0;
    }
    text[n] = '\0';
    /* the command name (field 2) may hold spaces and parentheses */
    const char *p = strrchr(text, ')');
    if (p == NULL) {
        return 0;
    }
    p++;
    for (int field = 2; field < 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
    }
    return p != NULL ? strtoull(p + 1, NULL, 10) : 0;
}

void owner_boot_id(char *out, size_t n)
{
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, out, n - 1);
        close(fd);
        out[r > 0 ? r : 0] = '\0';
        out[strcspn(out, "\n")] = '\0';
    }
}

void owner_self(owner *o)
{
    int gone;
    memset(o, 0, sizeof *o);
    o->pid = (long)getpid();
    o->start = owner_proc_start(o->pid, &gone);
    owner_boot_id(o->boot, sizeof o->boot);
}

int owner_alive(const owner *o, const owner *self)
{
    int gone;
    if (o->pid <= 0) {
        return 0;
    }
    if (o->boot[0] != '\0' && self->boot[0] != '\0' && strcmp(o->boot, self->boot) != 0) {
        return 0;     /* recorded before a reboot */
    }
    if (o->pid == self->pid) {
        return o->start == self->start;
    }
    unsigned long long start = owner_proc_start(o->pid, &gone);
    if (gone) {
        return 0;
    }
    return start == 0 || o->start == 0 || start == o->start;
}

int owner_same(const owner *a, const owner *b)
{
    return a->pid == b->pid && a->start == b->start && strcmp(a->boot, b->boot) == 0;
}
