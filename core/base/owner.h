/*
 * owner.h: which process owns a record (image references, alloc records):
 * its pid, its start time (field 22 of /proc/<pid>/stat, clock ticks after
 * boot) and the boot id (/proc/sys/kernel/random/boot_id), so that a pid
 * reused by another process, or a record from before a reboot, does not
 * look alive.
 */
#ifndef DRV_OWNER_H
#define DRV_OWNER_H

#include <stddef.h>

typedef struct owner {
    long pid;                  /* 0: none */
    unsigned long long start;
    char boot[40];
} owner;

/// Start time of `pid` in clock ticks after boot, or 0 when it cannot be
/// read; *gone is 1 when the process does not exist.
unsigned long long owner_proc_start(long pid, int *gone);

/// The boot id ("" when unreadable) into out[0..n).
void owner_boot_id(char *out, size_t n);

/// This process.
void owner_self(owner *o);

/// 1 while the process `o` names still runs (the same one, not a process
/// that got its pid later); 1 too when that cannot be told. 0 for pid 0.
int owner_alive(const owner *o, const owner *self);

/// 1 when both name the same process.
int owner_same(const owner *a, const owner *b);

#endif
