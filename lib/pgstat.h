/*
 * pgstat.h - the PostgreSQL monitoring queries health, incident and
 * diagnose share. Each function is one cheap parameterised query against
 * pg_stat_activity or the settings, run with the caller's timeout.
 *
 * pg_stat_activity shows the query text and state of other roles' sessions
 * only to superusers and members of pg_read_all_stats; for the others state
 * is NULL (counted as "unknown") and the query reads "<insufficient
 * privilege>"; the lists below show only the sessions we may see. Only
 * client backends count: autovacuum, walwriter and the
 * other background processes are not connections an application holds.
 */
#ifndef ST_PGSTAT_H
#define ST_PGSTAT_H

#include <stddef.h>

#include "error.h"
#include "pg.h"

/* Connection saturation: in use against what an application can get. */
struct pg_saturation {
	int max_connections;
	int superuser_reserved;   /* superuser_reserved_connections */
	int reserved;             /* reserved_connections (PostgreSQL 16+), else 0 */
	int usable;               /* max_connections - both reservations, >= 1 */
	int in_use;               /* client backends, ours included */
	int active;               /* by state */
	int idle;
	int idle_in_transaction;  /* aborted ones included */
	int other;                /* fastpath function call, disabled */
	int unknown;              /* state not visible to our role */
	int in_database;          /* client backends on our database */
	double percent;           /* in_use / usable * 100 */
};

int pg_connection_saturation(struct pg_conn *conn, double timeout_s, struct pg_saturation *out,
			     struct st_error *err);

/* Longest query text kept, in characters (a UTF-8 character takes <= 4 bytes). */
#define PG_QUERY_TEXT_CHARS 200

/* One backend from pg_stat_activity. */
struct pg_activity {
	int pid;
	double duration_s;        /* meaning depends on the list: see each function */
	char state[32];           /* "active", "idle in transaction", ..., "" when not visible */
	char user[64];
	char database[64];
	char application[64];
	char client_addr[64];     /* "" for Unix-socket clients */
	char wait_event[64];      /* "Lock:relation", "" when not waiting */
	char query[PG_QUERY_TEXT_CHARS * 4 + 1]; /* first PG_QUERY_TEXT_CHARS characters */
	int query_truncated;      /* 1 when query was cut */
};

/* Active statements of other client backends, longest-running first:
 * duration_s = now - query_start. At most limit entries; *out is caller-freed
 * (free()), NULL when *n is 0. */
int pg_longest_queries(struct pg_conn *conn, int limit, double timeout_s, struct pg_activity **out,
		       size_t *n, struct st_error *err);

/* Open transactions of other client backends, oldest first (idle in
 * transaction included): duration_s = now - xact_start. Ownership as above. */
int pg_longest_transactions(struct pg_conn *conn, int limit, double timeout_s, struct pg_activity **out,
			    size_t *n, struct st_error *err);

/* Other client backends idle (state 'idle', not in a transaction) for more
 * than idle_s seconds, longest idle first: duration_s = now - state_change.
 * All of them (no limit). Ownership as above. */
int pg_idle_connections(struct pg_conn *conn, double idle_s, double timeout_s, struct pg_activity **out,
			size_t *n, struct st_error *err);

/*
 * pg_terminate_backend() on each pid of pids that is a client backend other
 * than ours. With still_idle_s >= 0 a backend is terminated only if it is
 * still idle for more than still_idle_s seconds at that moment, so one that
 * went back to work since pg_idle_connections() is spared; < 0 terminates
 * unconditionally. *terminated (may be NULL) counts the backends signalled.
 * Terminating other roles' backends needs superuser or pg_signal_backend:
 * those count as not terminated, they are no error.
 */
int pg_terminate_backends(struct pg_conn *conn, const int *pids, size_t npids, double still_idle_s,
			  double timeout_s, size_t *terminated, struct st_error *err);

struct pg_server_info {
	char database[64];        /* current_database() */
	long long database_bytes; /* pg_database_size(current_database()) */
	char version[64];         /* server_version, "15.20 (Debian 15.20-0+deb12u1)" */
	int version_num;          /* server_version_num, 150020 */
	double uptime_s;          /* since pg_postmaster_start_time() */
	int in_recovery;          /* 1 on a standby */
};

int pg_server_info(struct pg_conn *conn, double timeout_s, struct pg_server_info *out, struct st_error *err);

#endif
