#include "redis.h"
#include "failfast.h"
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define REDIS_LABEL_MAX 300
#define REDIS_MAX_VARARGS 64

struct redis_conn {
	redisContext *ctx;
	char label[REDIS_LABEL_MAX];
	double command_timeout_s;
	int broken;                  /* a reply may still be in flight: unusable */
	volatile sig_atomic_t *cancel; /* redis_set_cancel(); may be NULL */
};

static struct timeval to_timeval(double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (tv.tv_sec == 0 && tv.tv_usec == 0)
		tv.tv_usec = 1000;
	return tv;
}

/* At most 200 bytes of the first line of a server or library message,
 * the first letter lowered when it starts a plain word. */
static void short_text(char *dst, size_t size, const char *src, size_t len)
{
	text_one_line(dst, size < 201 ? size : 201, src, len, TEXT_FIRST_LINE | TEXT_LOWER_FIRST);
}

/* Fills err from a failed hiredis call (NULL reply): the context's error. */
static int transport_error(struct redis_conn *c, const char *what, int saved_errno, struct st_error *err)
{
	char reason[256];
	int timed_out;

	c->broken = 1;
	short_text(reason, sizeof(reason), c->ctx->errstr, strlen(c->ctx->errstr));
	timed_out = c->ctx->err == REDIS_ERR_IO &&
		    (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT);
	if (timed_out) {
		st_error_set(err, ST_ETIMEOUT, "redis at '%s' did not answer '%s' within %gs", c->label, what,
			     c->command_timeout_s);
		st_error_hint(err, "run 'spilttea-ops health' to see whether redis is overloaded or stopped");
		return ST_ETIMEOUT;
	}
	if (c->ctx->err == REDIS_ERR_EOF) {
		st_error_set(err, ST_ESERVICE, "redis at '%s' closed the connection during '%s'", c->label, what);
	} else if (c->ctx->err == REDIS_ERR_PROTOCOL) {
		st_error_set(err, ST_EPROTO, "redis at '%s' sent a malformed reply to '%s': %s", c->label, what,
			     reason);
		return ST_EPROTO;
	} else if (c->ctx->err == REDIS_ERR_OOM) {
		return st_error_set(err, ST_ENOMEM, "redis '%s': out of memory", what);
	} else {
		st_error_set(err, ST_ESERVICE, "redis '%s' failed on '%s': %s", what, c->label, reason);
	}
	st_error_hint(err, "run 'spilttea-ops health' to see whether the redis container is running");
	return ST_ESERVICE;
}

/* Sends a command; what names it in messages (arguments never appear). */
static int send_argv(struct redis_conn *c, const char *what, int argc, const char **argv, const size_t *argvlen,
		     redisReply **out, struct st_error *err)
{
	redisReply *reply;
	char reason[256], *cut;

	*out = NULL;
	if (c->broken)
		return st_error_set(err, ST_ESERVICE,
				    "redis connection to '%s' is unusable after an earlier error; reconnect", c->label);
	errno = 0;
	reply = redisCommandArgv(c->ctx, argc, argv, argvlen);
	if (!reply)
		return transport_error(c, what, errno, err);
	if (reply->type == REDIS_REPLY_ERROR) {
		short_text(reason, sizeof(reason), reply->str ? reply->str : "", reply->str ? reply->len : 0);
		/* "ERR unknown command 'X', with args beginning with: 'a' 'b'"
		 * echoes arguments, which may be secrets. */
		cut = strstr(reason, ", with args beginning with");
		if (cut)
			*cut = '\0';
		st_error_set(err, ST_ESERVICE, "redis '%s' failed: %s", what, reason);
		if (strncmp(reason, "NOAUTH", 6) == 0 || strncmp(reason, "WRONGPASS", 9) == 0)
			st_error_hint(err, "check the redis password (password_file or password_env in the configuration)");
		freeReplyObject(reply);
		return ST_ESERVICE;
	}
	*out = reply;
	return 0;
}

static int connect_failure(struct redis_conn *c, int saved_errno, struct st_error *err)
{
	char reason[256];
	int rc;

	short_text(reason, sizeof(reason), c->ctx->errstr, strlen(c->ctx->errstr));
	if (saved_errno == ETIMEDOUT || saved_errno == EINPROGRESS || strstr(c->ctx->errstr, "timed out"))
		rc = st_error_set(err, ST_ETIMEOUT, "cannot connect to redis at '%s': connection timed out", c->label);
	else
		rc = st_error_set(err, ST_ESERVICE, "cannot connect to redis at '%s': %s", c->label, reason);
	st_error_hint(err, "run 'spilttea-ops health' to see whether the redis container is running");
	/* errstr is strerror() of connect()'s errno, taken when it failed
	 * (behind "Can't create socket: " when no address had a route);
	 * errno itself may have moved on since. */
	if (st_text_quotes_unreachable_errno(c->ctx->errstr))
		st_error_mark_unreachable(err);
	return rc;
}

int redis_connect(const struct redis_params *params, struct redis_conn **out, struct st_error *err)
{
	struct redis_conn *c = NULL;
	redisReply *reply = NULL;
	double connect_s, command_s;
	const char *host;
	int port, rc = 0, checked = 0;
	char dbtext[16];

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = st_error_set(err, ST_ENOMEM, "cannot connect to redis: out of memory");
		goto out;
	}
	connect_s = params->connect_timeout_s > 0 ? params->connect_timeout_s : 2;
	command_s = params->command_timeout_s > 0 ? params->command_timeout_s : 5;
	c->command_timeout_s = command_s;
	host = params->host && *params->host ? params->host : "127.0.0.1";
	port = params->port > 0 ? params->port : 6379;

	errno = 0;
	if (params->socket_path && *params->socket_path) {
		snprintf(c->label, sizeof(c->label), "%s", params->socket_path);
		c->ctx = redisConnectUnixWithTimeout(params->socket_path, to_timeval(connect_s));
	} else {
		snprintf(c->label, sizeof(c->label), "%s:%d", host, port);
		c->ctx = redisConnectWithTimeout(host, port, to_timeval(connect_s));
	}
	if (!c->ctx) {
		rc = st_error_set(err, ST_ENOMEM, "cannot connect to redis at '%s': out of memory", c->label);
		goto out;
	}
	if (c->ctx->err) {
		rc = connect_failure(c, errno, err);
		goto out;
	}
	if (redisSetTimeout(c->ctx, to_timeval(command_s)) != REDIS_OK) {
		rc = connect_failure(c, errno, err);
		goto out;
	}
	if (!params->socket_path || !*params->socket_path)
		redisEnableKeepAlive(c->ctx);

	if (params->password && *params->password) {
		const char *argv[3];
		int argc = 0;

		argv[argc++] = "AUTH";
		if (params->username && *params->username)
			argv[argc++] = params->username;
		argv[argc++] = params->password;
		rc = send_argv(c, "AUTH", argc, argv, NULL, &reply, err);
		if (rc) {
			st_error_wrap(err, "cannot connect to redis at '%s'", c->label);
			/* Only a refused AUTH is about the password; a server that
			 * never answered (hung, paused, overloaded) keeps the
			 * transport's hint. */
			if (rc == ST_ESERVICE && !c->broken)
				st_error_hint(err, "check the redis password (password_file or password_env in the "
					      "configuration)");
			goto out;
		}
		freeReplyObject(reply);
		reply = NULL;
		checked = 1;
	}
	if (params->db != 0) {
		const char *argv[2] = { "SELECT", dbtext };

		snprintf(dbtext, sizeof(dbtext), "%d", params->db);
		rc = send_argv(c, "SELECT", 2, argv, NULL, &reply, err);
		if (rc) {
			st_error_wrap(err, "cannot connect to redis at '%s'", c->label);
			goto out;
		}
		freeReplyObject(reply);
		reply = NULL;
		checked = 1;
	}
	if (!checked) {
		const char *argv[1] = { "PING" };

		rc = send_argv(c, "PING", 1, argv, NULL, &reply, err);
		if (rc) {
			st_error_wrap(err, "cannot connect to redis at '%s'", c->label);
			goto out;
		}
	}
	*out = c;
	c = NULL;
out:
	/* No answer to connecting, AUTH, SELECT or PING in time (a frozen
	 * server accepts in the kernel and says nothing): not there either. */
	if (rc == ST_ETIMEOUT)
		st_error_mark_unreachable(err);
	if (reply)
		freeReplyObject(reply);
	redis_close(c);
	return rc;
}

int redis_usable(const struct redis_conn *conn)
{
	return conn && !conn->broken && conn->ctx && !conn->ctx->err;
}

void redis_close(struct redis_conn *conn)
{
	if (!conn)
		return;
	if (conn->ctx)
		redisFree(conn->ctx);
	free(conn);
}

redisContext *redis_raw(struct redis_conn *conn)
{
	return conn->ctx;
}

const char *redis_label(const struct redis_conn *conn)
{
	return conn->label;
}

int redis_set_command_timeout(struct redis_conn *conn, double seconds, struct st_error *err)
{
	if (seconds <= 0)
		return st_error_set(err, ST_EUSAGE, "redis command timeout must be positive");
	if (redisSetTimeout(conn->ctx, to_timeval(seconds)) != REDIS_OK)
		return st_error_set(err, ST_ESERVICE, "cannot set the redis command timeout on '%s'", conn->label);
	conn->command_timeout_s = seconds;
	return 0;
}

int redis_command_argv(struct redis_conn *conn, int argc, const char **argv, const size_t *argvlen,
		       redisReply **out, struct st_error *err)
{
	redisReply *reply = NULL;
	char what[64];
	int rc;

	if (out)
		*out = NULL;
	if (argc < 1 || !argv || !argv[0])
		return st_error_set(err, ST_EUSAGE, "redis command without a name");
	/* The command name only: arguments may be secrets (AUTH, CONFIG SET). */
	short_text(what, sizeof(what), argv[0], argvlen ? argvlen[0] : strlen(argv[0]));
	for (size_t i = 0; what[i]; i++)
		if (what[i] >= 'a' && what[i] <= 'z')
			what[i] = (char)(what[i] - 'a' + 'A');
	rc = send_argv(conn, what, argc, argv, argvlen, &reply, err);
	if (rc)
		return rc;
	if (out)
		*out = reply;
	else
		freeReplyObject(reply);
	return 0;
}

int redis_command(struct redis_conn *conn, redisReply **out, struct st_error *err, ...)
{
	const char *argv[REDIS_MAX_VARARGS];
	const char *a;
	int argc = 0;
	va_list ap;

	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (argc == REDIS_MAX_VARARGS) {
			va_end(ap);
			if (out)
				*out = NULL;
			return st_error_set(err, ST_EUSAGE, "redis command with more than %d arguments",
					    REDIS_MAX_VARARGS);
		}
		argv[argc++] = a;
	}
	va_end(ap);
	return redis_command_argv(conn, argc, argv, NULL, out, err);
}

int redis_info(struct redis_conn *conn, const char *section, struct redis_info *out, struct st_error *err)
{
	const char *argv[2] = { "INFO", section };
	redisReply *reply = NULL;
	int rc;

	*out = (struct redis_info)REDIS_INFO_INIT;
	rc = redis_command_argv(conn, section ? 2 : 1, argv, NULL, &reply, err);
	if (rc)
		goto out;
	if (reply->type != REDIS_REPLY_STRING) {
		rc = st_error_set(err, ST_EPROTO, "redis INFO on '%s' returned reply type %d, not a string",
				  conn->label, reply->type);
		goto out;
	}
	rc = redis_info_parse(reply->str, reply->len, out, err);
out:
	if (reply)
		freeReplyObject(reply);
	return rc;
}

void redis_set_cancel(struct redis_conn *conn, volatile sig_atomic_t *cancel)
{
	conn->cancel = cancel;
}

int redis_scan(struct redis_conn *conn, const char *pattern, long count, redis_scan_fn fn, void *ud,
	       struct st_error *err)
{
	char cursor[32] = "0", countbuf[24];
	const char **keys = NULL;
	size_t *lens = NULL, cap = 0;
	redisReply *reply = NULL;
	const char *argv[6];
	int argc, rc = 0;

	snprintf(countbuf, sizeof(countbuf), "%ld", count > 0 ? count : 1000);
	do {
		redisReply *batch;
		size_t i, n;

		/* A whole keyspace takes long: an interrupt stops between batches. */
		if (conn->cancel && *conn->cancel) {
			rc = st_error_set(err, ST_EABORTED, "redis SCAN on '%s' interrupted", conn->label);
			goto out;
		}
		argc = 0;
		argv[argc++] = "SCAN";
		argv[argc++] = cursor;
		if (pattern) {
			argv[argc++] = "MATCH";
			argv[argc++] = pattern;
		}
		argv[argc++] = "COUNT";
		argv[argc++] = countbuf;
		rc = redis_command_argv(conn, argc, argv, NULL, &reply, err);
		if (rc)
			goto out;
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[0]->len >= sizeof(cursor) ||
		    reply->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = st_error_set(err, ST_EPROTO, "redis SCAN on '%s' returned an unexpected reply",
					  conn->label);
			goto out;
		}
		memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
		cursor[reply->element[0]->len] = '\0';
		batch = reply->element[1];
		n = batch->elements;
		if (n > cap) {
			const char **nk = realloc(keys, n * sizeof(*nk));
			size_t *nl;

			if (!nk) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto out;
			}
			keys = nk;
			nl = realloc(lens, n * sizeof(*nl));
			if (!nl) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto out;
			}
			lens = nl;
			cap = n;
		}
		for (i = 0; i < n; i++) {
			if (batch->element[i]->type != REDIS_REPLY_STRING) {
				rc = st_error_set(err, ST_EPROTO, "redis SCAN on '%s' returned a key that is not a string",
						  conn->label);
				goto out;
			}
			keys[i] = batch->element[i]->str;
			lens[i] = batch->element[i]->len;
		}
		if (n > 0) {
			rc = fn(ud, keys, lens, n, err);
			if (rc > 0) {
				rc = 0;
				goto out;
			}
			if (rc < 0)
				goto out;
		}
		freeReplyObject(reply);
		reply = NULL;
	} while (strcmp(cursor, "0") != 0);
out:
	if (reply)
		freeReplyObject(reply);
	free(keys);
	free(lens);
	return rc;
}

static int count_batch(void *ud, const char *const *keys, const size_t *lens, size_t n, struct st_error *err)
{
	(void)keys;
	(void)lens;
	(void)err;
	*(long long *)ud += (long long)n;
	return 0;
}

int redis_count_matching(struct redis_conn *conn, const char *pattern, long long *count, struct st_error *err)
{
	*count = 0;
	return redis_scan(conn, pattern, 0, count_batch, count, err);
}

struct unlink_state {
	struct redis_conn *conn;
	long long deleted;
	const char **argv;
	size_t *argvlen;
	size_t cap;
};

static int unlink_batch(void *ud, const char *const *keys, const size_t *lens, size_t n, struct st_error *err)
{
	struct unlink_state *st = ud;
	redisReply *reply = NULL;
	size_t i;
	int rc;

	if (n + 1 > st->cap) {
		const char **na = realloc(st->argv, (n + 1) * sizeof(*na));
		size_t *nl;

		if (!na)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		st->argv = na;
		nl = realloc(st->argvlen, (n + 1) * sizeof(*nl));
		if (!nl)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		st->argvlen = nl;
		st->cap = n + 1;
	}
	st->argv[0] = "UNLINK";
	st->argvlen[0] = 6;
	for (i = 0; i < n; i++) {
		st->argv[i + 1] = keys[i];
		st->argvlen[i + 1] = lens[i];
	}
	rc = redis_command_argv(st->conn, (int)(n + 1), st->argv, st->argvlen, &reply, err);
	if (rc)
		return rc;
	if (reply->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(reply);
		return st_error_set(err, ST_EPROTO, "redis UNLINK on '%s' did not return a count",
				    redis_label(st->conn));
	}
	st->deleted += reply->integer;
	freeReplyObject(reply);
	return 0;
}

int redis_delete_matching(struct redis_conn *conn, const char *pattern, long long *deleted,
			  struct st_error *err)
{
	struct unlink_state st = { conn, 0, NULL, NULL, 0 };
	int rc;

	*deleted = 0;
	if (!pattern || !*pattern)
		return st_error_set(err, ST_EUSAGE, "refusing to delete redis keys without a pattern");
	rc = redis_scan(conn, pattern, 0, unlink_batch, &st, err);
	if (rc)
		st_error_wrap(err, "cannot delete redis keys matching '%s'", pattern);
	*deleted = st.deleted;
	free(st.argv);
	free(st.argvlen);
	return rc;
}
