/*
 * Exec: create, start (through libcurl, or over a hijacked raw socket when
 * stdin is streamed), exit code.
 */
#include "docker_internal.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define EXEC_BUF (64 * 1024)
/* How long the exec may still report Running after its stream ended. */
#define EXEC_SETTLE_SECONDS 5.0

struct exec_out {
	const struct docker_exec_opts *o;
	struct docker_exec_result *res;
	struct docker_demux demux;
	double idle;                 /* resolved idle timeout, 0 none */
	const char *idle_key;        /* the setting behind it, or NULL */
};

static int exec_chunk(void *ud, int stream, const char *data, size_t len, int frame_start,
		      struct st_error *err)
{
	struct exec_out *x = ud;
	docker_output_fn fn;

	(void)frame_start;
	if (stream == DOCKER_STREAM_STDERR) {
		x->res->stderr_bytes += len;
		fn = x->o->on_stderr;
	} else {
		x->res->stdout_bytes += len;
		fn = x->o->on_stdout;
	}
	if (fn && fn(x->o->ud, data, len))
		return st_error_set(err, ST_EABORTED, "stopped by the output callback");
	return 0;
}

static int exec_data(void *ud, const char *data, size_t len, struct st_error *err)
{
	struct exec_out *x = ud;

	return docker_demux_feed(&x->demux, data, len, err);
}

static void exec_what(char *buf, size_t size, const char *container, const struct docker_exec_opts *o)
{
	snprintf(buf, size, "run '%s' in container '%s'", o->argv && o->argv[0] ? o->argv[0] : "",
		 container);
}

static int add_strings(json_t *obj, const char *key, const char *const *values)
{
	json_t *arr = json_array();

	if (!arr || json_object_set_new(obj, key, arr))
		return ST_ENOMEM;
	for (; values && *values; values++)
		if (json_array_append_new(arr, json_string(*values)))
			return ST_ENOMEM;
	return 0;
}

int docker_exec_create(struct docker_client *c, const char *container, const struct docker_exec_opts *o,
		       int attach_stdin, char **id, struct st_error *err)
{
	struct docker_call call;
	json_t *body = NULL, *answer = NULL;
	char *text = NULL, what[300];
	int rc;

	*id = NULL;
	exec_what(what, sizeof(what), container, o);
	docker_call_init(&call, "POST", docker_timeout(c, DOCKER_TIMEOUT_DEFAULT, 0));
	if (!o->argv || !o->argv[0]) {
		rc = st_error_set(err, ST_EUSAGE, "cannot run a command in container '%s': empty command",
				  container);
		goto out;
	}
	body = json_pack("{s:b,s:b,s:b,s:b}", "AttachStdin", attach_stdin, "AttachStdout", 1,
			 "AttachStderr", 1, "Tty", 0);
	if (!body || add_strings(body, "Cmd", o->argv) || (o->env && add_strings(body, "Env", o->env)) ||
	    (o->user && json_object_set_new(body, "User", json_string(o->user))) ||
	    (o->workdir && json_object_set_new(body, "WorkingDir", json_string(o->workdir))) ||
	    !(text = json_dumps(body, JSON_COMPACT)) ||
	    docker_call_path(&call, "/containers/", container, "/exec")) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	call.body = text;
	call.body_len = strlen(text);
	call.content_type = "application/json";
	if ((rc = docker_call_json(c, &call, what, &answer, err)))
		goto out;
	if ((rc = docker_take_id(answer, id, err)))
		st_error_wrap(err, "cannot %s", what);
out:
	free(text);
	json_decref(body);
	json_decref(answer);
	docker_call_release(&call);
	return rc;
}

int docker_exec_inspect(struct docker_client *c, const char *id, double timeout, json_t **out,
			struct st_error *err)
{
	struct docker_call call;
	char what[160];
	int rc;

	snprintf(what, sizeof(what), "inspect exec '%.64s'", id);
	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/exec/", id, "/json"))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	else
		rc = docker_call_json(c, &call, what, out, err);
	docker_call_release(&call);
	return rc;
}

int docker_exec_exit_parse(const json_t *info, int *code)
{
	const json_t *v = json_object_get(info, "ExitCode");

	if (json_is_true(json_object_get(info, "Running")) || !json_is_integer(v))
		return 0;
	*code = (int)json_integer_value(v);
	return 1;
}

/* The exit code, once the daemon has noticed the end of the process. */
static int exec_exit_code(struct docker_client *c, const char *id, int *code, struct st_error *err)
{
	double deadline = time_monotonic() + EXEC_SETTLE_SECONDS, delay = 0.005;
	json_t *info = NULL;
	int rc;

	for (;;) {
		if ((rc = docker_exec_inspect(c, id, DOCKER_TIMEOUT_DEFAULT, &info, err)))
			return rc;
		if (docker_exec_exit_parse(info, code)) {
			json_decref(info);
			return 0;
		}
		json_decref(info);
		info = NULL;
		if (time_monotonic() > deadline)
			return st_error_set(err, ST_ETIMEOUT,
					    "exec '%.12s' still running %.0fs after its output ended", id,
					    EXEC_SETTLE_SECONDS);
		time_sleep(delay);
		delay = delay < 0.1 ? delay * 2 : 0.1;
	}
}

static int start_plain(struct docker_client *c, const char *id, struct exec_out *x, double timeout,
		       const char *what, struct st_error *err)
{
	static const char body[] = "{\"Detach\":false,\"Tty\":false}";
	struct docker_call call;
	int rc;

	docker_call_init(&call, "POST", timeout);
	if (docker_call_path(&call, "/exec/", id, "/start")) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	call.body = body;
	call.body_len = sizeof(body) - 1;
	call.content_type = "application/json";
	call.on_data = exec_data;
	call.data_ud = x;
	call.idle = x->idle;
	call.idle_key = x->idle_key;
	if ((rc = docker_call_run(c, &call, what, err)))
		goto out;
	if ((rc = docker_demux_finish(&x->demux, err)))
		st_error_wrap(err, "cannot %s", what);
out:
	docker_call_release(&call);
	return rc;
}

/* ---- the hijacked connection ---- */

/* Milliseconds for poll(): what is left before deadline (0: none), but at
 * most DOCKER_CANCEL_POLL_MS, so that an interrupt is seen even while the
 * command says nothing. */
static int poll_wait(double deadline)
{
	double left;

	if (deadline <= 0)
		return DOCKER_CANCEL_POLL_MS;
	left = deadline - time_monotonic();
	if (left <= 0)
		return 0;
	return left * 1000 > DOCKER_CANCEL_POLL_MS ? DOCKER_CANCEL_POLL_MS : (int)ceil(left * 1000);
}

static int timed_out(double deadline)
{
	return deadline > 0 && time_monotonic() >= deadline;
}

static int wait_fd(const struct docker_client *c, int fd, short events, double deadline,
		   struct st_error *err)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	for (;;) {
		if (docker_cancelled(c))
			return st_error_set(err, ST_EABORTED, "interrupted");
		if (timed_out(deadline))
			return st_error_set(err, ST_ETIMEOUT, "docker did not answer in time");
		n = poll(&p, 1, poll_wait(deadline));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return st_error_set(err, ST_EIO, "poll failed: %s", strerror(errno));
	}
}

static int send_all(const struct docker_client *c, int fd, const char *p, size_t len,
		    double deadline, struct st_error *err)
{
	int rc;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_fd(c, fd, POLLOUT, deadline, err)))
				return rc;
		} else if (n < 0 && errno != EINTR) {
			return st_error_set(err, ST_ESERVICE, "cannot send to docker: %s", strerror(errno));
		}
	}
	return 0;
}

/* Reads into buf; 1 with data, 0 at EOF, or an error. */
static int recv_some(const struct docker_client *c, int fd, struct sbuf *buf, size_t max,
		     double deadline, struct st_error *err)
{
	int rc;

	if (sbuf_grow(buf, max))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = recv(fd, buf->buf + buf->len, max, 0);

		if (n > 0) {
			buf->len += (size_t)n;
			buf->buf[buf->len] = '\0';
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((rc = wait_fd(c, fd, POLLIN, deadline, err)))
				return rc;
		} else if (errno != EINTR) {
			return st_error_set(err, ST_ESERVICE, "cannot read from docker: %s", strerror(errno));
		}
	}
}

static int hijack_connect(struct docker_client *c, int *out, struct st_error *err)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return st_error_set(err, ST_EIO, "cannot create a socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		e = errno;
		close(fd);
		return docker_connect_error(c->socket_path, e, err);
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		e = errno;
		close(fd);
		return st_error_set(err, ST_EIO, "cannot configure the socket: %s", strerror(e));
	}
	*out = fd;
	return 0;
}

/* Sends the upgrade request and reads the answer's head. Bytes after the
 * head (the stream has begun) stay in buf from *head_len on. */
static int hijack_open(struct docker_client *c, int fd, const char *id, double deadline, struct sbuf *buf,
		       size_t *head_len, struct st_error *err)
{
	static const char body[] = "{\"Detach\":false,\"Tty\":false}";
	struct sbuf req = SBUF_INIT;
	long long clen = -1;
	char ver[16];
	int rc, status = 0;

	if ((rc = docker_api_version(c, ver, sizeof(ver), err)))
		goto out;
	if (sbuf_printf(&req, "POST /v%s/exec/", ver) || docker_url_escape(&req, id, 0) ||
	    sbuf_printf(&req,
			"/start HTTP/1.1\r\nHost: docker\r\nUser-Agent: spilttea-ops\r\n"
			"Content-Type: application/json\r\nContent-Length: %zu\r\n"
			"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s",
			sizeof(body) - 1, body)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = send_all(c, fd, req.buf, req.len, deadline, err)))
		goto out;
	for (;;) {
		rc = docker_http_head_parse(buf->buf ? buf->buf : "", buf->len, &status, head_len, &clen);
		if (rc == 1)
			break;
		if (rc < 0) {
			st_error_set(err, ST_EPROTO, "docker answered something that is not HTTP");
			goto out;
		}
		if (buf->len > 64 * 1024) {
			rc = st_error_set(err, ST_EPROTO, "docker's answer head is too long");
			goto out;
		}
		rc = recv_some(c, fd, buf, 4096, deadline, err);
		if (rc == 0)
			rc = st_error_set(err, ST_ESERVICE, "docker closed the connection without answering");
		if (rc < 0)
			goto out;
	}
	rc = 0;
	/* 101 is the answer to the upgrade; old engines hijack under 200. */
	if (status == 101 || status == 200)
		goto out;
	while ((clen < 0 || (long long)(buf->len - *head_len) < clen) &&
	       buf->len - *head_len < DOCKER_ERROR_BODY_MAX) {
		rc = recv_some(c, fd, buf, 4096, deadline, err);
		if (rc <= 0)
			break;
	}
	rc = docker_http_error(status, buf->buf + *head_len, buf->len - *head_len, err);
out:
	sbuf_release(&req);
	return rc;
}

static int hijack_run(struct docker_client *c, const char *id, struct exec_out *x, double timeout,
		      struct st_error *err)
{
	const struct docker_exec_opts *o = x->o;
	struct docker_exec_result *res = x->res;
	double deadline = timeout > 0 ? time_monotonic() + timeout : 0;
	double open_deadline = deadline, last_activity;
	struct sbuf head = SBUF_INIT;
	char *in = NULL, *out = NULL;
	size_t head_len = 0, out_len = 0, out_off = 0;
	int fd = -1, rc, in_eof = 0, stdin_done = 0;

	/* The daemon answers the upgrade at once: silence as long as the
	 * idle timeout is a stall already. */
	if (x->idle > 0 && (!open_deadline || time_monotonic() + x->idle < open_deadline))
		open_deadline = time_monotonic() + x->idle;
	if ((rc = hijack_connect(c, &fd, err)) ||
	    (rc = hijack_open(c, fd, id, open_deadline, &head, &head_len, err)))
		goto out;
	last_activity = time_monotonic();
	if ((rc = docker_demux_feed(&x->demux, head.buf + head_len, head.len - head_len, err)))
		goto out;
	sbuf_release(&head);
	in = malloc(EXEC_BUF);
	out = malloc(EXEC_BUF);
	if (!in || !out) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	while (!in_eof) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n;

		if (!stdin_done && out_off == out_len) {
			ssize_t got = o->stdin_read(o->stdin_ud, out, EXEC_BUF, err);

			if (got < 0) {
				rc = (int)got;
				goto out;
			}
			if (got == 0) {
				/* End of input: the daemon closes the process's stdin. */
				shutdown(fd, SHUT_WR);
				stdin_done = 1;
				res->stdin_complete = 1;
			} else {
				out_len = (size_t)got;
				out_off = 0;
			}
		}
		if (!stdin_done)
			p.events |= POLLOUT;
		if (docker_cancelled(c)) {
			rc = st_error_set(err, ST_EABORTED, "interrupted");
			goto out;
		}
		if (timed_out(deadline)) {
			rc = st_error_set(err, ST_ETIMEOUT, "not finished within %.1fs", timeout);
			goto out;
		}
		/* Nothing came and nothing was taken: a stalled daemon (or a
		 * command blocked for longer than allowed, e.g. on a lock). */
		if (x->idle > 0 && time_monotonic() - last_activity >= x->idle) {
			rc = docker_stall_error(c, x->idle, x->idle_key, err);
			goto out;
		}
		n = poll(&p, 1, poll_wait(deadline));
		if (n < 0 && errno != EINTR) {
			rc = st_error_set(err, ST_EIO, "poll failed: %s", strerror(errno));
			goto out;
		}
		if (n <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, in, EXEC_BUF, 0);

			if (r > 0) {
				last_activity = time_monotonic();
				if ((rc = docker_demux_feed(&x->demux, in, (size_t)r, err)))
					goto out;
			} else if (r == 0 || errno == ECONNRESET) {
				/* A peer that closes with our stdin unread resets the
				 * connection; what it sent before was delivered first,
				 * and a torn frame still shows in demux_finish. */
				in_eof = 1;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				rc = st_error_set(err, ST_ESERVICE, "connection to docker lost: %s",
						  strerror(errno));
				goto out;
			}
		}
		if (!stdin_done && !in_eof && (p.revents & POLLOUT)) {
			ssize_t w = send(fd, out + out_off, out_len - out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (w > 0) {
				last_activity = time_monotonic();
				out_off += (size_t)w;
				res->stdin_bytes += (uint64_t)w;
			} else if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				/* The process stopped reading (exited early): keep its output coming. */
				stdin_done = 1;
			} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				rc = st_error_set(err, ST_ESERVICE, "cannot send stdin to docker: %s",
						  strerror(errno));
				goto out;
			}
		}
	}
	rc = docker_demux_finish(&x->demux, err);
out:
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	sbuf_release(&head);
	return rc;
}

static void may_still_run(struct st_error *err)
{
	static const char note[] = " (the command may still be running in the container)";
	size_t n;

	if (!err)
		return;
	n = strlen(err->message);
	if (n + sizeof(note) <= sizeof(err->message))
		memcpy(err->message + n, note, sizeof(note));
}

int docker_exec(struct docker_client *c, const char *container, const struct docker_exec_opts *o,
		struct docker_exec_result *res, struct st_error *err)
{
	struct docker_exec_result local;
	struct exec_out x;
	char *id = NULL, what[300];
	double timeout = docker_timeout(c, o->timeout, 1);
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	res->exit_code = -1;
	exec_what(what, sizeof(what), container, o);
	if ((rc = docker_exec_create(c, container, o, o->stdin_read != NULL, &id, err)))
		goto out;
	x.o = o;
	x.res = res;
	x.idle = docker_idle(o->idle_timeout, c->stream_idle);
	x.idle_key = o->idle_timeout == 0 ? c->stream_idle_key : NULL;
	docker_demux_init(&x.demux, 0, exec_chunk, &x);
	if (o->stdin_read) {
		if ((rc = hijack_run(c, id, &x, timeout, err)))
			st_error_wrap(err, "cannot %s", what);
	} else {
		rc = start_plain(c, id, &x, timeout, what, err);
	}
	if (rc) {
		/* Docker has no way to stop an exec: say so rather than let the
		 * operator believe the command ended with the call. */
		if (rc == ST_ETIMEOUT || rc == ST_EABORTED)
			may_still_run(err);
		goto out;
	}
	if ((rc = exec_exit_code(c, id, &res->exit_code, err)))
		st_error_wrap(err, "cannot %s", what);
out:
	free(id);
	return rc;
}

int docker_exec_run(struct docker_client *c, const char *container, const char *const *argv,
		    const char *const *env, const char *user, docker_output_fn on_stdout,
		    docker_output_fn on_stderr, void *ud, int *exit_code, struct st_error *err)
{
	struct docker_exec_opts o;
	struct docker_exec_result res;
	int rc;

	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.user = user;
	o.on_stdout = on_stdout;
	o.on_stderr = on_stderr;
	o.ud = ud;
	rc = docker_exec(c, container, &o, &res, err);
	if (!rc && exit_code)
		*exit_code = res.exit_code;
	return rc;
}
