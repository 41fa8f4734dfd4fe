/*
 * error.h - the one error record every lib/ function fills.
 *
 * lib/ functions return 0 on success or a negative ST_E* code and describe
 * the failure in a caller-provided struct st_error. Callers add context on
 * the way up with st_error_wrap(); cmd/ turns the code into an exit status
 * (see cmd/cmd.h) and prints message and hint. The record owns no heap
 * memory, so it can live on the stack and never needs freeing.
 */
#ifndef ST_ERROR_H
#define ST_ERROR_H

#include <stddef.h>

enum st_code {
	ST_OK = 0,
	ST_EUSAGE = -1,      /* bad arguments: exit 2 */
	ST_ECONFIG = -2,     /* bad configuration or runbook file: exit 2 */
	ST_EABORTED = -3,    /* precondition not met, confirmation refused: exit 3 */
	ST_ELOCKED = -4,     /* another run holds the lock: exit 4 */
	ST_EIO = -5,         /* local file system */
	ST_ENOTFOUND = -6,   /* container, image, file, key ... does not exist */
	ST_ETIMEOUT = -7,    /* a deadline passed */
	ST_EPROTO = -8,      /* a peer answered something we cannot parse */
	ST_ESERVICE = -9,    /* a service refused, failed or is unreachable */
	ST_ENOMEM = -10,
	ST_EFAILED = -11,    /* a step or check failed */
	ST_ECONFLICT = -12,  /* state does not allow the action (already exists, running...) */
	ST_EUNREACHABLE = -13, /* not tried: the service timed out or refused earlier in this
				  run (services_set_fail_fast); the message quotes that error */
};

#define ST_ERROR_MESSAGE_MAX 1024
#define ST_ERROR_HINT_MAX 512

struct st_error {
	int code;                           /* one of enum st_code, 0 when clear */
	int http_status;                    /* Docker/HTTP status when the failure came from one, else 0 */
	char message[ST_ERROR_MESSAGE_MAX]; /* lowercase, no full stop, what failed first */
	char hint[ST_ERROR_HINT_MAX];       /* next thing to try, may be empty */
	/* 1 when the peer could not be reached at all (refused, no such
	 * socket, no route, no answer while connecting), set where the
	 * connection is made (failfast.h); 0 otherwise. Kept by wrap and hint. */
	int unreachable;
};

/* Sets code and message (printf-style); clears the hint and unreachable. Returns code so
 * callers can write `return st_error_set(err, ST_EIO, "...")`. err may be NULL. */
int st_error_set(struct st_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets the hint; keeps code and message. Returns err->code (or 0 if err is NULL). */
int st_error_hint(struct st_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the message with context: "cannot restore 'x': <old message>".
 * Keeps code and hint. Returns err->code. */
int st_error_wrap(struct st_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void st_error_clear(struct st_error *err);

/* Short name of a code ("timeout", "not found"...), static storage. */
const char *st_code_name(int code);

#endif
