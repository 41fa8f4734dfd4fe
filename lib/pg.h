/*
 * pg.h - PostgreSQL client on libpq: connect with a deadline, parameterised
 * queries with a per-call statement_timeout, errors that carry SQLSTATE.
 *
 * SQL reaches the server only through PQexecParams (values as $n parameters)
 * and identifiers only through pg_quote_ident(): callers never build SQL
 * from input. The module knows nothing about the configuration file; the
 * config module fills struct pg_params.
 *
 * A struct pg_conn is used by one thread at a time (libpq's rule); open one
 * connection per concurrent check.
 *
 * Error codes: ST_ESERVICE (server unreachable, refused, authentication or
 * any SQL error), ST_ETIMEOUT (connect_timeout or statement_timeout passed,
 * SQLSTATE 57014), ST_ENOTFOUND (a single-value query returned no row),
 * ST_EPROTO (a value is not what the getter expects), ST_ENOMEM, ST_EUSAGE.
 * The password never appears in any message.
 */
#ifndef ST_PG_H
#define ST_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "error.h"

/* Where and how to connect. Strings are borrowed for the duration of
 * pg_connect() only. */
struct pg_params {
	const char *host;             /* name, address, or a directory holding the Unix socket */
	int port;                     /* <= 0: 5432 */
	const char *user;
	const char *database;
	const char *password;         /* NULL: none (trust, peer, or libpq's own PGPASSWORD/.pgpass) */
	double connect_timeout_s;     /* <= 0: 5; fractions honoured (host name lookup excepted) */
	const char *application_name; /* NULL: "spilttea-ops"; shows in pg_stat_activity */
	const char *sslmode;          /* NULL: libpq's default ("prefer") */
};

struct pg_conn;

/* Connects and checks the session is usable, within connect_timeout_s
 * (our own deadline over libpq's non-blocking connect, since libpq's
 * connect_timeout counts whole seconds and at least 2; it is passed too).
 * On failure *out is NULL and err says "cannot connect to postgres at
 * 'host:port': <libpq's reason>" with a hint. *out is closed by the caller
 * with pg_close(). */
int pg_connect(const struct pg_params *params, struct pg_conn **out, struct st_error *err);

/* NULL-safe. */
void pg_close(struct pg_conn *conn);

/* 0 when an earlier unanswered query or a lost connection left conn
 * unusable (close it and reconnect), else 1. */
int pg_usable(const struct pg_conn *conn);

/* The libpq handle, for what this module does not wrap; borrowed, valid
 * until pg_close(). Changing statement_timeout behind the module's back
 * makes its cached value wrong: use pg_query() for that too. */
PGconn *pg_raw(struct pg_conn *conn);

/* "host:port" as given, for messages; borrowed. */
const char *pg_label(const struct pg_conn *conn);

/* Process id of our server backend (excluded from terminations). */
int pg_backend_pid(const struct pg_conn *conn);

/* SQLSTATE of the last failed call ("57014"), "" when it was not an SQL
 * error or the last call succeeded; borrowed. Lets callers tell "already
 * exists" (42P04) from other failures without parsing messages. */
const char *pg_last_sqlstate(const struct pg_conn *conn);

/*
 * Runs sql with nparams text parameters (params[i] NULL is SQL NULL) under a
 * statement_timeout of timeout_s seconds (0: none; fractions allowed, at
 * least 1 ms). The timeout is a session setting, changed only when it
 * differs from the previous call's; inside an open transaction it is set
 * every time because ROLLBACK would undo it, and in an aborted transaction
 * (where only ROLLBACK is accepted) not at all.
 *
 * The server cancels the statement at timeout_s (SQLSTATE 57014); should
 * it not answer at all (stopped, paused, unreachable) the call gives up
 * 0.5 s later on its own, also ST_ETIMEOUT, and the connection is then
 * unusable (every later call fails: close it and reconnect). timeout_s 0
 * waits as long as the server takes.
 *
 * On success *out (if out is not NULL) holds the result; caller frees it
 * with PQclear(). Results are in text format. On failure *out is NULL and
 * err carries the server message and SQLSTATE.
 */
int pg_query(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
	     double timeout_s, PGresult **out, struct st_error *err);

/* pg_query() discarding the result, for statements. */
int pg_exec(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
	    double timeout_s, struct st_error *err);

/* First column of the first row as text. *out is caller-freed (free());
 * NULL when the value is SQL NULL. No row: ST_ENOTFOUND. */
int pg_query_text(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		  double timeout_s, char **out, struct st_error *err);

/* First column of the first row as an integer / a finite double.
 * No row: ST_ENOTFOUND; NULL or not a number: ST_EPROTO. */
int pg_query_long(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		  double timeout_s, long long *out, struct st_error *err);
int pg_query_double(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		    double timeout_s, double *out, struct st_error *err);

/* ident quoted as an SQL identifier ("User" -> "\"User\""), for names that
 * cannot be parameters (CREATE DATABASE, table names). Caller frees (free()). */
int pg_quote_ident(struct pg_conn *conn, const char *ident, char **out, struct st_error *err);

/* Parses a text-format cell as an integer / a finite double; 0 or -1. */
int pg_parse_long(const char *text, long long *out);
int pg_parse_double(const char *text, double *out);

#endif
