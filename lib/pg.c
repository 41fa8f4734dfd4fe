#include "pg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failfast.h"
#include "redact.h"
#include "text.h"
#include "timeutil.h"

#define PG_LABEL_MAX 300

struct pg_conn {
	PGconn *conn;
	char label[PG_LABEL_MAX];
	/* statement_timeout the session holds, in ms; -1 when unknown (never set,
	 * or set inside a transaction that may still be rolled back). */
	long long timeout_ms;
	char sqlstate[6];
	/* A reply is still owed (the client-side deadline passed): the next
	 * result would answer the wrong query, so nothing more is sent. */
	int broken;
};

/* How long past statement_timeout we wait for the server's own
 * cancellation before giving up on a server that does not answer at all
 * (stopped, paused, network gone). */
#define PG_CLIENT_GRACE_S 0.5

/* libpq's connection failure text is one block per address tried:
 *   connection to server at "h" (127.0.0.1), port 5432 failed: Connection refused
 *   \tIs the server running on that host and accepting TCP/IP connections?
 * Keep the reason of the last attempt, without "FATAL:  ", as one line. */
static void connect_reason(const char *msg, char *out, size_t size)
{
	const char *start = NULL, *p = msg, *end;
	size_t n;

	while ((p = strstr(p, "failed: ")) != NULL) {
		start = p + strlen("failed: ");
		p = start;
	}
	if (!start) {
		start = msg;
		while (*start == '\n' || *start == '\t' || *start == ' ')
			start++;
	}
	if (strncmp(start, "FATAL:  ", 8) == 0)
		start += 8;
	else if (strncmp(start, "ERROR:  ", 8) == 0)
		start += 8;
	end = strchr(start, '\n');
	n = end ? (size_t)(end - start) : strlen(start);
	while (n > 0 && isspace((unsigned char)start[n - 1]))
		n--;
	if (n == 0) {
		snprintf(out, size, "no reason given by libpq");
		return;
	}
	/* "Connection refused" -> "connection refused"; leave acronyms alone. */
	text_one_line(out, size, start, n, TEXT_LOWER_FIRST);
}

/* Drives libpq's non-blocking connect until it succeeds, fails (both: 0,
 * see PQstatus) or the deadline passes (ST_ETIMEOUT). The socket may change
 * while libpq tries the next address, so it is fetched on every round. */
static int connect_poll(PGconn *conn, double deadline)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (PQstatus(conn) == CONNECTION_BAD)
		return 0;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd;
		double left = deadline - time_monotonic();
		int n;

		if (left <= 0)
			return ST_ETIMEOUT;
		pfd.fd = PQsocket(conn);
		if (pfd.fd < 0)
			return 0;
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)ceil(left * 1000.0));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return ST_ETIMEOUT;
		st = PQconnectPoll(conn);
	}
	return 0;
}

static void quiet_notice(void *ud, const char *message)
{
	(void)ud;
	(void)message;
}

/* 1 when a failed connect's libpq message (PQerrorMessage, CONNECTION_BAD)
 * says no server was reached at all: only the system spoke (no "FATAL:"
 * from a server on any address tried), quoting a refused connection, a
 * missing Unix socket or no route (libpq keeps no errno to ask). */
static int server_unreached(const char *msg)
{
	return !strstr(msg, "FATAL:") && !strstr(msg, "ERROR:") && st_text_quotes_unreachable_errno(msg);
}

int pg_connect(const struct pg_params *params, struct pg_conn **out, struct st_error *err)
{
	const char *keys[12], *vals[12];
	char port[16], timeout[16], reason[ST_ERROR_MESSAGE_MAX / 2], safe[ST_ERROR_MESSAGE_MAX / 2];
	struct pg_conn *c = NULL;
	double limit_s;
	int k = 0, rc = 0;

	*out = NULL;
	if (!params || !params->user || !params->database) {
		rc = st_error_set(err, ST_EUSAGE, "cannot connect to postgres: user and database are required");
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = st_error_set(err, ST_ENOMEM, "cannot connect to postgres: out of memory");
		goto out;
	}
	c->timeout_ms = -1;
	snprintf(port, sizeof(port), "%d", params->port > 0 ? params->port : 5432);
	limit_s = params->connect_timeout_s > 0 ? params->connect_timeout_s : 5;
	snprintf(timeout, sizeof(timeout), "%d", (int)ceil(limit_s) < 2 ? 2 : (int)ceil(limit_s));
	snprintf(c->label, sizeof(c->label), "%s:%s", params->host ? params->host : "localhost", port);

	if (params->host) {
		keys[k] = "host";
		vals[k++] = params->host;
	}
	keys[k] = "port";
	vals[k++] = port;
	keys[k] = "user";
	vals[k++] = params->user;
	keys[k] = "dbname";
	vals[k++] = params->database;
	if (params->password) {
		keys[k] = "password";
		vals[k++] = params->password;
	}
	keys[k] = "connect_timeout";
	vals[k++] = timeout;
	keys[k] = "application_name";
	vals[k++] = params->application_name ? params->application_name : "spilttea-ops";
	keys[k] = "client_encoding";
	vals[k++] = "UTF8";
	if (params->sslmode) {
		keys[k] = "sslmode";
		vals[k++] = params->sslmode;
	}
	keys[k] = NULL;
	vals[k] = NULL;

	/* expand_dbname = 0: a database name is a name, never a conninfo string. */
	c->conn = PQconnectStartParams(keys, vals, 0);
	if (!c->conn) {
		rc = st_error_set(err, ST_ENOMEM, "cannot connect to postgres at '%s': out of memory", c->label);
		goto out;
	}
	/* libpq prints NOTICEs ("table ... does not exist, skipping") on
	 * stderr by default; lib/ never prints. */
	PQsetNoticeProcessor(c->conn, quiet_notice, NULL);
	if (connect_poll(c->conn, time_monotonic() + limit_s) == ST_ETIMEOUT) {
		rc = st_error_set(err, ST_ETIMEOUT, "cannot connect to postgres at '%s': no answer within %gs",
				  c->label, limit_s);
		st_error_hint(err, "run 'spilttea-ops health' to see whether the postgres container is running");
		st_error_mark_unreachable(err);
		goto out;
	}
	if (PQstatus(c->conn) != CONNECTION_OK) {
		const char *msg = PQerrorMessage(c->conn);

		connect_reason(msg, reason, sizeof(reason));
		/* A server or library message must never leak the password. */
		text_copy(safe, sizeof(safe), reason);
		redact_text(safe, sizeof(safe), &params->password, 1);
		if (strstr(safe, "timeout expired")) {
			rc = st_error_set(err, ST_ETIMEOUT, "cannot connect to postgres at '%s': %s after %gs",
					  c->label, safe, limit_s);
			st_error_hint(err, "run 'spilttea-ops health' to see whether the postgres container is running");
			st_error_mark_unreachable(err);
		} else if (strstr(safe, "password authentication failed") || strstr(safe, "no password supplied") ||
			   strstr(safe, "authentication failed")) {
			rc = st_error_set(err, ST_ESERVICE, "cannot connect to postgres at '%s': %s", c->label, safe);
			st_error_hint(err, "check the password configured for user '%s' (postgres password_file or password_env)",
				      params->user);
		} else if (strstr(safe, "does not exist")) {
			rc = st_error_set(err, ST_ESERVICE, "cannot connect to postgres at '%s': %s", c->label, safe);
			st_error_hint(err, "check postgres.user and postgres.database in the configuration");
		} else {
			rc = st_error_set(err, ST_ESERVICE, "cannot connect to postgres at '%s': %s", c->label, safe);
			st_error_hint(err, "run 'spilttea-ops health' to see whether the postgres container is running");
			if (server_unreached(msg))
				st_error_mark_unreachable(err);
		}
		goto out;
	}
	*out = c;
	c = NULL;
out:
	pg_close(c);
	return rc;
}

int pg_usable(const struct pg_conn *conn)
{
	return conn && !conn->broken && PQstatus(conn->conn) == CONNECTION_OK;
}

void pg_close(struct pg_conn *conn)
{
	if (!conn)
		return;
	if (conn->conn)
		PQfinish(conn->conn);
	free(conn);
}

PGconn *pg_raw(struct pg_conn *conn)
{
	return conn->conn;
}

const char *pg_label(const struct pg_conn *conn)
{
	return conn->label;
}

int pg_backend_pid(const struct pg_conn *conn)
{
	return PQbackendPID(conn->conn);
}

const char *pg_last_sqlstate(const struct pg_conn *conn)
{
	return conn->sqlstate;
}

/* Fills err from a failed result (res may be NULL: then the connection's
 * message). Returns the code. */
static int result_error(struct pg_conn *c, const PGresult *res, double timeout_s, struct st_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	char reason[ST_ERROR_MESSAGE_MAX / 2];
	int rc;

	if (state && strlen(state) == 5)
		memcpy(c->sqlstate, state, 6);
	else
		c->sqlstate[0] = '\0';

	if (PQstatus(c->conn) == CONNECTION_BAD) {
		connect_reason(PQerrorMessage(c->conn), reason, sizeof(reason));
		rc = st_error_set(err, ST_ESERVICE, "lost the connection to postgres at '%s': %s", c->label, reason);
		st_error_hint(err, "run 'spilttea-ops health' to see whether the postgres container is running");
		return rc;
	}
	if (!primary) {
		connect_reason(PQerrorMessage(c->conn), reason, sizeof(reason));
		return st_error_set(err, ST_ESERVICE, "query failed: %s", reason);
	}
	if (state && strcmp(state, "57014") == 0 && strstr(primary, "statement timeout"))
		return st_error_set(err, ST_ETIMEOUT, "query cancelled by statement_timeout after %gs (SQLSTATE 57014)",
				    timeout_s);
	if (detail)
		return st_error_set(err, ST_ESERVICE, "query failed: %s (SQLSTATE %s): %s", primary,
				    state ? state : "?", detail);
	return st_error_set(err, ST_ESERVICE, "query failed: %s (SQLSTATE %s)", primary, state ? state : "?");
}

/* Ends a COPY the caller started by mistake so the connection stays usable. */
static void abandon_copy(PGconn *conn, ExecStatusType st)
{
	PGresult *r;
	char *buf;

	if (st == PGRES_COPY_IN) {
		PQputCopyEnd(conn, "COPY is not supported through pg_query");
	} else if (st == PGRES_COPY_OUT) {
		while (PQgetCopyData(conn, &buf, 0) > 0)
			PQfreemem(buf);
	}
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
}

/*
 * PQexecParams with a client-side deadline: sends, then waits for the
 * socket until the whole reply is in or limit_s (0: no limit) passes.
 * Returns the last result (NULL: see PQerrorMessage, or *timed_out). A
 * COPY result is returned at once for the caller to end the COPY.
 */
static PGresult *exec_wait(struct pg_conn *c, const char *sql, int nparams, const char *const *params,
			   double limit_s, int *timed_out)
{
	double deadline = limit_s > 0 ? time_monotonic() + limit_s : 0;
	PGresult *res, *last = NULL;

	*timed_out = 0;
	if (!PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return NULL;
	for (;;) {
		while (PQisBusy(c->conn)) {
			struct pollfd pfd = { PQsocket(c->conn), POLLIN, 0 };
			int ms = -1, n;

			if (deadline > 0) {
				double left = deadline - time_monotonic();

				if (left <= 0) {
					*timed_out = 1;
					c->broken = 1;
					PQclear(last);
					return NULL;
				}
				ms = (int)ceil(left * 1000.0);
			}
			n = poll(&pfd, 1, ms);
			if (n < 0 && errno != EINTR)
				break;
			if (n > 0 && !PQconsumeInput(c->conn))
				break; /* PQgetResult() reports the failure */
		}
		res = PQgetResult(c->conn);
		if (!res)
			break;
		PQclear(last);
		last = res;
		switch (PQresultStatus(res)) {
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			return last;
		default:
			break;
		}
		if (PQstatus(c->conn) == CONNECTION_BAD)
			break;
	}
	return last;
}

static int deadline_error(struct pg_conn *c, double limit_s, struct st_error *err)
{
	c->sqlstate[0] = '\0';
	st_error_set(err, ST_ETIMEOUT, "postgres at '%s' did not answer within %gs", c->label, limit_s);
	st_error_hint(err, "run 'spilttea-ops health' to see whether the postgres container is running");
	return ST_ETIMEOUT;
}

static int set_timeout(struct pg_conn *c, double timeout_s, struct st_error *err)
{
	PGTransactionStatusType ts = PQtransactionStatus(c->conn);
	long long ms = 0;
	char val[32];
	const char *params[1];
	PGresult *res = NULL;
	int rc = 0, timed_out;

	if (timeout_s > 0) {
		ms = llround(timeout_s * 1000.0);
		if (ms < 1)
			ms = 1;
		if (ms > 2147483647LL)
			ms = 2147483647LL; /* statement_timeout is an int of ms */
	}
	if (ms == c->timeout_ms && ts == PQTRANS_IDLE)
		return 0;
	/* An aborted transaction accepts nothing but ROLLBACK: leave the
	 * setting alone, it is re-applied once the transaction is over. */
	if (ts == PQTRANS_INERROR) {
		c->timeout_ms = -1;
		return 0;
	}
	snprintf(val, sizeof(val), "%lld", ms);
	params[0] = val;
	res = exec_wait(c, "SELECT set_config('statement_timeout', $1, false)", 1, params,
			ms > 0 ? (double)ms / 1000.0 + PG_CLIENT_GRACE_S : 0, &timed_out);
	if (timed_out) {
		c->timeout_ms = -1;
		rc = deadline_error(c, (double)ms / 1000.0 + PG_CLIENT_GRACE_S, err);
		goto out;
	}
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		c->timeout_ms = -1;
		rc = result_error(c, res, timeout_s, err);
		st_error_wrap(err, "cannot set statement_timeout");
		goto out;
	}
	/* A transaction's ROLLBACK would undo the setting: do not trust it later. */
	c->timeout_ms = ts == PQTRANS_IDLE ? ms : -1;
out:
	PQclear(res);
	return rc;
}

int pg_query(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
	     double timeout_s, PGresult **out, struct st_error *err)
{
	PGresult *res = NULL;
	ExecStatusType st;
	double limit_s = timeout_s > 0 ? timeout_s + PG_CLIENT_GRACE_S : 0;
	int rc, timed_out;

	if (out)
		*out = NULL;
	conn->sqlstate[0] = '\0';
	if (conn->broken) {
		rc = st_error_set(err, ST_ESERVICE,
				  "connection to postgres at '%s' is unusable after an unanswered query; reconnect",
				  conn->label);
		goto out;
	}
	rc = set_timeout(conn, timeout_s, err);
	if (rc)
		goto out;
	res = exec_wait(conn, sql, nparams, params, limit_s, &timed_out);
	if (timed_out) {
		rc = deadline_error(conn, limit_s, err);
		goto out;
	}
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
		abandon_copy(conn->conn, st);
		rc = st_error_set(err, ST_EUSAGE, "query failed: COPY is not supported through pg_query");
		goto out;
	}
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		rc = result_error(conn, res, timeout_s, err);
		goto out;
	}
	if (out) {
		*out = res;
		res = NULL;
	}
out:
	PQclear(res);
	return rc;
}

int pg_exec(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
	    double timeout_s, struct st_error *err)
{
	return pg_query(conn, sql, nparams, params, timeout_s, NULL, err);
}

/* Runs the query and points *value at row 0, column 0 (NULL for SQL NULL);
 * *res owns it. */
static int single_value(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
			double timeout_s, PGresult **res, const char **value, struct st_error *err)
{
	int rc;

	*value = NULL;
	rc = pg_query(conn, sql, nparams, params, timeout_s, res, err);
	if (rc)
		return rc;
	if (PQntuples(*res) < 1 || PQnfields(*res) < 1)
		return st_error_set(err, ST_ENOTFOUND, "query returned no rows");
	if (!PQgetisnull(*res, 0, 0))
		*value = PQgetvalue(*res, 0, 0);
	return 0;
}

int pg_query_text(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		  double timeout_s, char **out, struct st_error *err)
{
	PGresult *res = NULL;
	const char *v;
	int rc;

	*out = NULL;
	rc = single_value(conn, sql, nparams, params, timeout_s, &res, &v, err);
	if (rc || !v)
		goto out;
	*out = strdup(v);
	if (!*out)
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	PQclear(res);
	return rc;
}

int pg_query_long(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		  double timeout_s, long long *out, struct st_error *err)
{
	PGresult *res = NULL;
	const char *v;
	int rc;

	rc = single_value(conn, sql, nparams, params, timeout_s, &res, &v, err);
	if (rc)
		goto out;
	if (!v || pg_parse_long(v, out) != 0)
		rc = st_error_set(err, ST_EPROTO, "query returned '%.40s', not an integer", v ? v : "NULL");
out:
	PQclear(res);
	return rc;
}

int pg_query_double(struct pg_conn *conn, const char *sql, int nparams, const char *const *params,
		    double timeout_s, double *out, struct st_error *err)
{
	PGresult *res = NULL;
	const char *v;
	int rc;

	rc = single_value(conn, sql, nparams, params, timeout_s, &res, &v, err);
	if (rc)
		goto out;
	if (!v || pg_parse_double(v, out) != 0)
		rc = st_error_set(err, ST_EPROTO, "query returned '%.40s', not a number", v ? v : "NULL");
out:
	PQclear(res);
	return rc;
}

int pg_quote_ident(struct pg_conn *conn, const char *ident, char **out, struct st_error *err)
{
	char *q;
	char reason[256];

	*out = NULL;
	q = PQescapeIdentifier(conn->conn, ident, strlen(ident));
	if (!q) {
		connect_reason(PQerrorMessage(conn->conn), reason, sizeof(reason));
		return st_error_set(err, ST_EUSAGE, "cannot quote identifier '%.64s': %s", ident, reason);
	}
	*out = strdup(q);
	PQfreemem(q);
	if (!*out)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	return 0;
}

int pg_parse_long(const char *text, long long *out)
{
	char *end;
	long long v;

	if (!text || !*text)
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || *end || end == text)
		return -1;
	*out = v;
	return 0;
}

int pg_parse_double(const char *text, double *out)
{
	char *end;
	double v;

	if (!text || !*text)
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno || *end || end == text || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}
