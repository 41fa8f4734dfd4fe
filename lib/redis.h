/*
 * redis.h - Redis client on hiredis 0.14 (blocking, with connect and
 * command timeouts), a pure INFO parser, and SCAN-based key iteration.
 *
 * Commands go out argv-style (redisCommandArgv): user input is never part
 * of a format string. Keys are enumerated with SCAN, never KEYS. The
 * module knows nothing about the configuration file; the config module
 * fills struct redis_params.
 *
 * A struct redis_conn is used by one thread at a time. After a transport
 * error or a command timeout the reply stream is out of step: the
 * connection refuses further commands (ST_ESERVICE) and must be closed.
 *
 * Error codes: ST_ESERVICE (unreachable, refused, authentication, an error
 * reply), ST_ETIMEOUT (connect or command timeout), ST_EPROTO (a reply of
 * an unexpected shape), ST_ENOTFOUND (an INFO key is missing), ST_ENOMEM,
 * ST_EUSAGE. Messages name the server ("127.0.0.1:6379") and the command
 * name, never arguments, so the password cannot leak.
 */
#ifndef ST_REDIS_H
#define ST_REDIS_H

#include <signal.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "error.h"

/* Where and how to connect. Strings are borrowed for the duration of
 * redis_connect() only. */
struct redis_params {
	const char *host;            /* NULL: "127.0.0.1" */
	int port;                    /* <= 0: 6379 */
	const char *socket_path;     /* when set, used instead of host and port */
	int db;                      /* SELECTed when not 0 */
	const char *username;        /* ACL user for AUTH, NULL: the default user */
	const char *password;        /* NULL or "": no AUTH */
	double connect_timeout_s;    /* <= 0: 2 */
	double command_timeout_s;    /* <= 0: 5; every reply must arrive within it */
};

struct redis_conn;

/* Connects, authenticates and selects the database; checks the session is
 * usable (PING when neither AUTH nor SELECT ran). On failure *out is NULL
 * and err says "cannot connect to redis at '127.0.0.1:6379': <reason>"
 * (connection refused, timed out, NOAUTH, WRONGPASS ...) with a hint.
 * Caller closes *out with redis_close(). */
int redis_connect(const struct redis_params *params, struct redis_conn **out, struct st_error *err);

/* NULL-safe. */
void redis_close(struct redis_conn *conn);

/* 0 when an earlier error or timeout left conn unusable (close it and
 * reconnect), else 1. */
int redis_usable(const struct redis_conn *conn);

/* The hiredis context, for what this module does not wrap; borrowed. */
redisContext *redis_raw(struct redis_conn *conn);

/* "host:port" or the socket path, for messages; borrowed. */
const char *redis_label(const struct redis_conn *conn);

/* Flag (set by a signal handler) that stops SCAN loops (redis_scan and what
 * uses it) between batches with ST_EABORTED "interrupted" while non-zero;
 * NULL: not interruptible. Borrowed; single commands stay bounded by the
 * command timeout. */
void redis_set_cancel(struct redis_conn *conn, volatile sig_atomic_t *cancel);

/* Changes the command timeout for the following commands (> 0). */
int redis_set_command_timeout(struct redis_conn *conn, double seconds, struct st_error *err);

/*
 * Sends argv (argvlen may be NULL when every argument is a C string) and
 * waits for the reply. On success *out (if out is not NULL) is the reply;
 * caller frees it with freeReplyObject(). An error reply ("ERR ...",
 * "NOAUTH ...") is a failure: ST_ESERVICE with the server's text in err,
 * *out NULL.
 */
int redis_command_argv(struct redis_conn *conn, int argc, const char **argv, const size_t *argvlen,
		       redisReply **out, struct st_error *err);

/* redis_command_argv() with the arguments as C strings ending with NULL:
 * redis_command(c, &reply, err, "GET", key, NULL). Not a format: "%s" in
 * an argument is sent as is. At most 64 arguments. */
int redis_command(struct redis_conn *conn, redisReply **out, struct st_error *err, ...)
	__attribute__((sentinel));

/* ---- INFO ---- */

struct redis_info_entry {
	const char *section;         /* "Memory", "" before the first header; borrowed from the info */
	const char *key;             /* "used_memory" */
	const char *value;           /* "1053488", may be "" */
};

struct redis_info {
	char *text;                  /* private copy the entries point into */
	struct redis_info_entry *entries;
	size_t n;
	size_t ignored;              /* non-blank lines that were neither header nor key:value */
};

#define REDIS_INFO_INIT { NULL, NULL, 0, 0 }

/*
 * Parses INFO output: "# Section" headers, "key:value" lines, CRLF or LF,
 * blank lines skipped, lines without ':' (or with an empty key, or a NUL
 * byte) ignored and counted. The value is everything after the first ':'.
 * Pure: no I/O. Free with redis_info_release(). 0 or ST_ENOMEM.
 */
int redis_info_parse(const char *text, size_t len, struct redis_info *out, struct st_error *err);

/* NULL-safe; leaves *info empty (REDIS_INFO_INIT). */
void redis_info_release(struct redis_info *info);

/* Value of the first entry named key (in section, case-insensitively,
 * when section is not NULL); borrowed from info. NULL when absent. */
const char *redis_info_get(const struct redis_info *info, const char *key);
const char *redis_info_get_in(const struct redis_info *info, const char *section, const char *key);

/* Typed values: 0, ST_ENOTFOUND (no such key) or ST_EPROTO (not a number,
 * out of range, not finite). err may be NULL. */
int redis_info_get_ll(const struct redis_info *info, const char *key, long long *out, struct st_error *err);
int redis_info_get_double(const struct redis_info *info, const char *key, double *out, struct st_error *err);

/* Sub-fields of values like "keys=12,expires=0,avg_ttl=0" (keyspace lines
 * "db0:...", and "cmdstat_*", "errorstat_*", "slave0"):
 * redis_info_get_field_ll(info, "db0", "keys", &n). Codes as above. */
int redis_info_get_field_ll(const struct redis_info *info, const char *key, const char *field,
			    long long *out, struct st_error *err);
/* Same on a bare value string. 0, ST_ENOTFOUND or ST_EPROTO. */
int redis_info_field_ll(const char *value, const char *field, long long *out);

/* What health, incident and diagnose read from INFO. Numbers are -1 when
 * INFO lacks them, strings "" . */
struct redis_info_summary {
	char version[32];            /* redis_version */
	char role[16];               /* master / slave */
	long long uptime_s;
	long long used_memory;       /* bytes */
	long long used_memory_rss;
	long long used_memory_peak;
	long long maxmemory;         /* 0 means no limit */
	char maxmemory_policy[32];   /* "noeviction", "allkeys-lru" ... */
	double memory_percent;       /* used_memory * 100 / maxmemory; -1 when there is no limit or either is unknown */
	long long connected_clients;
	long long blocked_clients;
	long long rejected_connections;
	long long evicted_keys;
	long long expired_keys;
	long long keyspace_hits;
	long long keyspace_misses;
	long long keys;              /* summed over every "dbN" keyspace line; 0 when there are none */
	long long expires;
};

/* Pure. */
void redis_info_summarize(const struct redis_info *info, struct redis_info_summary *out);

/* Runs INFO [section] (NULL: the default sections; "all", "memory" ...)
 * and parses it into *out; release with redis_info_release(). */
int redis_info(struct redis_conn *conn, const char *section, struct redis_info *out, struct st_error *err);

/* ---- SCAN ---- */

/*
 * Called with each SCAN batch: keys[i] is lens[i] bytes (binary-safe, also
 * NUL-terminated), borrowed for the call. Return 0 to go on, a positive
 * value to stop early (the scan then returns 0), or a negative ST_E* code
 * (after filling err) to stop with that error. SCAN may report a key
 * twice if the keyspace is resized meanwhile.
 */
typedef int (*redis_scan_fn)(void *ud, const char *const *keys, const size_t *lens, size_t n,
			     struct st_error *err);

/* SCAN 0 MATCH pattern COUNT count ... until the cursor is 0. pattern NULL:
 * every key; count <= 0: 1000. */
int redis_scan(struct redis_conn *conn, const char *pattern, long count, redis_scan_fn fn, void *ud,
	       struct st_error *err);

/* Keys matching pattern as seen by SCAN (a key may count twice, see above). */
int redis_count_matching(struct redis_conn *conn, const char *pattern, long long *count, struct st_error *err);

/* UNLINKs every key matching pattern, one batch per SCAN reply. *deleted is
 * what UNLINK reports removed, exact even if SCAN repeats a key. pattern
 * must not be empty ("*" deletes every key of the database). On failure
 * *deleted still counts what was removed before it. */
int redis_delete_matching(struct redis_conn *conn, const char *pattern, long long *deleted,
			  struct st_error *err);

#endif
