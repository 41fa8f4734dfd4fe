/*
 * failfast.h - "the service is not there": decided once where a connection
 * is made, remembered per run so later requests fail at once.
 *
 * The connect paths (pg_connect, redis_connect, the Docker client, HTTP
 * probes) set err->unreachable when the peer could not be reached at all:
 * connection refused, no such socket, no route, or no answer before the
 * connection was usable (connect timeout, a frozen server). Callers never
 * re-read messages to find that out.
 *
 * struct st_down remembers the first such failure of one peer while fail
 * fast is on (diagnose); st_down_check() then fails the next request at
 * once with ST_EUNREACHABLE, "<what> unreachable: <that error>" and its
 * hint. Not thread-safe: callers that share one (the Docker client) lock.
 */
#ifndef ST_FAILFAST_H
#define ST_FAILFAST_H

#include "error.h"

struct st_down {
	int on;                 /* fail fast enabled */
	struct st_error first;  /* the first unreachable failure; code 0 until one */
};

/* Sets err->unreachable (after st_error_set, which clears it). NULL-safe. */
void st_error_mark_unreachable(struct st_error *err);

/* 1 when text holds the system's message (strerror(), in this process's
 * locale, as libpq and hiredis quote it) for an errno value that means the
 * peer is not there: ECONNREFUSED, ENOENT (no Unix socket), EHOSTUNREACH,
 * ENETUNREACH, ETIMEDOUT; else 0. For libraries that report a failed
 * connect() only as text. */
int st_text_quotes_unreachable_errno(const char *text);

/* Turns fail fast on or off; either way forgets what was remembered. */
void st_down_reset(struct st_down *d, int on);

/* Remembers err when fail fast is on, err->unreachable is set and nothing
 * is remembered yet. err may be NULL. */
void st_down_note(struct st_down *d, const struct st_error *err);

/* 0 when nothing is remembered; else ST_EUNREACHABLE into err (may be
 * NULL): "<what> unreachable: <first message>", with its hint. */
int st_down_check(const struct st_down *d, const char *what, struct st_error *err);

#endif
