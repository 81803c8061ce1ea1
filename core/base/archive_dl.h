/*
 * archive_dl.h: libarchive is loaded with dlopen the first time an
 * archive_* function is called, not at process start (archive_dl.c says
 * why). Code that forks and calls libarchive in the child (artifact
 * unpacking) calls archive_dl_load first: dlopen is not safe between fork
 * and exec of a multi-threaded process.
 */
#ifndef DRV_ARCHIVE_DL_H
#define DRV_ARCHIVE_DL_H

#include "err.h"

/// Loads libarchive now (once per process): 0, or DRV_EINTERNAL naming why.
int archive_dl_load(drv_err *err);

#endif
