/*
 * progress.h: how `drvctl run` shows pulls (pull.h events) on stderr.
 *
 *   PROGRESS_TTY    per-layer lines like `docker pull`, redrawn in place
 *                   with ANSI cursor moves (at most 10 redraws a second);
 *                   one block per image, shared by the tasks that wait on it
 *   PROGRESS_LINES  one line per phase and task:
 *                     web[0] | pulling 127.0.0.1:5000/rsx/x:1
 *                     web[0] | downloading 127.0.0.1:5000/rsx/x:1 (3 layers)
 *                     web[0] | extracting 127.0.0.1:5000/rsx/x:1
 *                     web[0] | pulled 127.0.0.1:5000/rsx/x:1 (3 layers, 48.2 MB) in 2.1 s
 *   PROGRESS_JSON   one JSON object per line and event (`run -json`):
 *                     {"event":"pull","phase":"start","task":"web","index":0,
 *                      "alloc_id":"...","image":"..."}
 *                   phases: start, layer (layer, status, current, total;
 *                   byte-only updates at most every 500 ms a task), status,
 *                   retry (attempt, delay_ms, error), done (ok, image_id,
 *                   layers, layers_existing, bytes, elapsed_ms, or error).
 *
 * Every string that came from Docker or the job is escaped: esc.h for the
 * human forms, JSON escapes (control, C1 and bidi characters as \uXXXX,
 * invalid UTF-8 as U+FFFD) for JSON.
 */
#ifndef DRV_PROGRESS_H
#define DRV_PROGRESS_H

#include <stdio.h>

#include "buf.h"
#include "pull.h"

typedef enum progress_mode {
    PROGRESS_LINES = 0,
    PROGRESS_TTY,
    PROGRESS_JSON,
} progress_mode;

typedef struct progress progress;

/* Who an event is for. */
typedef struct progress_who {
    const char *task;          /* task name */
    int index;                 /* instance index in its group (count) */
    const char *alloc_id;
} progress_who;

/// Writes to `out` (not closed). `width`: terminal columns for
/// PROGRESS_TTY (0: 80).
progress *progress_new(FILE *out, progress_mode mode, int width);
void progress_event(progress *p, const progress_who *who, const pull_event *ev);
/// Ends a redraw block (before other output is printed); idempotent.
void progress_flush(progress *p);
void progress_free(progress *p);

/// "48.2 MB" (decimal units, like docker).
void progress_bytes(buf *out, long long n);
/// Appends `s` as a JSON string (quoted).
void progress_json_string(buf *out, const char *s);

#endif
