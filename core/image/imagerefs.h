/*
 * imagerefs.h: which tasks use which image, shared by every drvctl process
 * on the host through data_dir/state (locked, written atomically), and the
 * delayed removal of images drvctl pulled or loaded (docker.cleanup.image,
 * docker.cleanup.image.delay).
 *
 * A task takes a reference before its container is created and releases
 * it after the container is removed. When an image's last reference goes
 * and drvctl acquired it (pulled or loaded, never an image that was
 * already there), its removal becomes due `delay_ms` later; a new
 * reference cancels it. Removal never happens while a container uses the
 * image and is forced for an image with several tags. Removals that fall
 * due after this process ends stay recorded and are carried out by the
 * next drvctl process (run, gc or agent).
 */
#ifndef DRV_IMAGEREFS_H
#define DRV_IMAGEREFS_H

#include <uv.h>

#include "docker.h"
#include "err.h"

typedef struct imagerefs imagerefs;

typedef struct imagerefs_opts {
    uv_loop_t *loop;
    docker *docker;
    const char *state_dir;     /* <data_dir>/state */
    int enabled;               /* docker.cleanup.image */
    long delay_ms;             /* docker.cleanup.image.delay */
} imagerefs_opts;

/// Opens the shared records and starts the removals already due.
int imagerefs_open(imagerefs **out, const imagerefs_opts *o, drv_err *err);

/// Records that `holder` ("<alloc_id>/<task>") uses `ref` (the image as the
/// task names it; `id` "sha256:..." when known, else NULL). `acquired`: this
/// task's pull or load brought the image here (a candidate for removal).
int imagerefs_take(imagerefs *r, const char *holder, const char *ref, const char *id,
                   int acquired, drv_err *err);
/// Drops `holder`'s reference; schedules the removal when it was the last.
void imagerefs_release(imagerefs *r, const char *holder);

/// Ends this process's part: waits up to `max_wait_ms` for removals due by
/// then, leaves later ones recorded, closes every handle and frees `r`;
/// `cb` runs once, from the loop.
void imagerefs_close(imagerefs *r, long max_wait_ms, void (*cb)(void *ud), void *ud);

#endif
