/* version.h: the single C-side version string (lua/drv/meta.lua must match). */
#ifndef DRV_VERSION_H
#define DRV_VERSION_H
#define DRV_VERSION "0.1.0"
#endif
