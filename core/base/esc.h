/*
 * esc.h: makes untrusted text safe to print on a terminal. Task output,
 * job fields and Docker's messages may carry escape sequences (title
 * changes, clear screen, cursor moves), carriage returns that overwrite a
 * line, or invalid UTF-8; printed raw, they act on the operator's terminal
 * or forge lines under another task's prefix.
 *
 * esc_append() copies valid UTF-8 text and tab as they are, and writes
 * everything else visibly: "\r", "\n", "\x1b" (other C0 controls and DEL),
 * "\xff" (each byte of an invalid or overlong sequence, surrogates, beyond
 * U+10FFFF), "\u009b" (C1 controls, which some terminals obey) and
 * "\u202e" (bidirectional overrides and isolates, which reorder a line).
 * A backslash is kept as it is: the result is for people, not a codec.
 */
#ifndef DRV_ESC_H
#define DRV_ESC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/// Appends the escaped form of `s[0..n)` to `b`.
void esc_append(buf *b, const char *s, size_t n);

/// Escapes a NUL-terminated string into `b` (reset first); returns buf_str(b).
const char *esc_str(buf *b, const char *s);

/// For multi-line messages: like esc_str, but each \n stays a line break,
/// and every line after the first starts with two spaces (one already there
/// is kept), so no quoted text can start a line of its own that looks like
/// "drvctl: ..." or a task's "<name> | ...".
const char *esc_msg(buf *b, const char *s);

/* --- UTF-8 (shared with json.c and progress.c) --------------------------- */

/// Length (1..4) of the valid, shortest-form UTF-8 sequence at s (n > 0
/// bytes left), its code point in *cp; 0 when the bytes there are invalid,
/// overlong, truncated, a surrogate or beyond U+10FFFF.
size_t esc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/// Appends code point `cp` (at most U+10FFFF, no surrogate) as UTF-8.
void esc_utf8_encode(buf *b, uint32_t cp);

#endif
