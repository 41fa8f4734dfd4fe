/*
 * Images: list, inspect, tag, remove, and build from a streamed tar context.
 */
#include "docker_internal.h"
#include "timeutil.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int docker_image_list(struct docker_client *c, int all, const char *reference, double timeout,
		      json_t **out, struct st_error *err)
{
	struct docker_call call;
	char *text = NULL;
	json_t *filters = NULL;
	int rc;

	*out = NULL;
	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/images/json", NULL, NULL) || (all && docker_call_query(&call, "all", "1"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (reference) {
		filters = json_pack("{s:[s]}", "reference", reference);
		if (!filters || !(text = json_dumps(filters, JSON_COMPACT)) ||
		    docker_call_query(&call, "filters", text)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = docker_call_json(c, &call, "list images", out, err);
	if (!rc && !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = st_error_set(err, ST_EPROTO, "cannot list images: the answer is not a list");
	}
out:
	free(text);
	json_decref(filters);
	docker_call_release(&call);
	return rc;
}

int docker_image_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			 struct st_error *err)
{
	struct docker_call call;
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "inspect image '%s'", name);
	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/images/", name, "/json"))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	else
		rc = docker_call_json(c, &call, what, out, err);
	docker_call_release(&call);
	return rc;
}

int docker_image_tag(struct docker_client *c, const char *name, const char *repo, const char *tag,
		     double timeout, struct st_error *err)
{
	struct docker_call call;
	char what[600];
	int rc;

	if (!tag)
		tag = "latest";
	snprintf(what, sizeof(what), "tag image '%s' as '%s:%s'", name, repo, tag);
	docker_call_init(&call, "POST", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/images/", name, "/tag") || docker_call_query(&call, "repo", repo) ||
	    docker_call_query(&call, "tag", tag))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	else
		rc = docker_call_run(c, &call, what, err);
	docker_call_release(&call);
	return rc;
}

int docker_image_remove(struct docker_client *c, const char *name, int force, double timeout,
			struct st_error *err)
{
	struct docker_call call;
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "remove image '%s'", name);
	docker_call_init(&call, "DELETE", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/images/", name, NULL) || (force && docker_call_query(&call, "force", "1")))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	else
		rc = docker_call_run(c, &call, what, err);
	docker_call_release(&call);
	return rc;
}

/* ---- build ---- */

/* "NAME=value" list -> {"NAME":"value"} as a query parameter. */
static int kv_query(struct docker_call *call, const char *key, const char *const *list,
		    struct st_error *err)
{
	json_t *obj;
	char *text = NULL;
	int rc = 0;

	if (!list || !*list)
		return 0;
	obj = json_object();
	if (!obj)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	for (; *list; list++) {
		const char *eq = strchr(*list, '=');
		char *name;

		if (!eq || eq == *list) {
			rc = st_error_set(err, ST_EUSAGE, "bad build %s '%s': expected NAME=value", key, *list);
			goto out;
		}
		name = strndup(*list, (size_t)(eq - *list));
		if (!name || json_object_set_new(obj, name, json_string(eq + 1))) {
			free(name);
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		free(name);
	}
	text = json_dumps(obj, JSON_COMPACT);
	if (!text || docker_call_query(call, key, text))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	free(text);
	json_decref(obj);
	return rc;
}

static int build_data(void *ud, const char *data, size_t len, struct st_error *err)
{
	return docker_build_parser_feed(ud, data, len, err);
}

static void build_what(char *buf, size_t size, const struct docker_build_opts *o)
{
	if (o->tags && o->tags[0])
		snprintf(buf, size, "build image '%s'", o->tags[0]);
	else
		snprintf(buf, size, "build an image");
}

int docker_image_build(struct docker_client *c, const struct docker_build_opts *o, docker_read_fn read,
		       void *read_ud, char **image_id, struct st_error *err)
{
	struct docker_call call;
	struct docker_build_parser parser;
	char what[300];
	int rc;

	*image_id = NULL;
	build_what(what, sizeof(what), o);
	docker_call_init(&call, "POST", docker_timeout(c, o->timeout, 1));
	docker_build_parser_init(&parser, o->on_progress, o->ud);
	if (docker_call_path(&call, "/build", NULL, NULL)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	for (const char *const *t = o->tags; t && *t; t++)
		if (docker_call_query(&call, "t", *t)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
	if ((o->dockerfile && docker_call_query(&call, "dockerfile", o->dockerfile)) ||
	    docker_call_query(&call, "networkmode", o->network_mode ? o->network_mode : "host") ||
	    docker_call_query(&call, "rm", "1") || docker_call_query(&call, "forcerm", "1") ||
	    (o->no_cache && docker_call_query(&call, "nocache", "1")) ||
	    (o->pull && docker_call_query(&call, "pull", "1"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = kv_query(&call, "buildargs", o->build_args, err)) ||
	    (rc = kv_query(&call, "labels", o->labels, err))) {
		st_error_wrap(err, "cannot %s", what);
		goto out;
	}
	call.idle = docker_idle(o->idle_timeout, c->stream_idle);
	call.idle_key = o->idle_timeout == 0 ? c->stream_idle_key : NULL;
	call.content_type = "application/x-tar";
	call.upload = read;
	call.upload_ud = read_ud;
	call.on_data = build_data;
	call.data_ud = &parser;
	if ((rc = docker_call_run(c, &call, what, err)))
		goto out;
	if ((rc = docker_build_parser_finish(&parser, err))) {
		st_error_wrap(err, "cannot %s", what);
		if (err)
			err->http_status = (int)call.status;
		goto out;
	}
	*image_id = parser.image_id;
	parser.image_id = NULL;
out:
	docker_build_parser_release(&parser);
	docker_call_release(&call);
	return rc;
}

/*
 * build_from: the producer pushes the context into one end of a socket
 * pair on its own thread; libcurl pulls the request body from the other end.
 * The socket buffer is all that is in flight.
 */
struct pump {
	int fds[2];                /* [0] read by libcurl's thread, [1] written by the producer */
	const struct docker_client *c; /* its cancel flag stops both sides */
	docker_produce_fn produce;
	void *produce_ud;
	double deadline;
	pthread_mutex_t lock;
	int done;                  /* the producer returned */
	int gone;                  /* the request no longer reads */
	int rc;                    /* what it returned */
	struct st_error perr;      /* its error */
};

static int pump_write(void *wud, const void *data, size_t len, struct st_error *err)
{
	struct pump *p = wud;
	const char *s = data;
	int gone;

	/* Nothing to write: the producer asks whether to go on (docker_write_fn). */
	if (len == 0) {
		pthread_mutex_lock(&p->lock);
		gone = p->gone;
		pthread_mutex_unlock(&p->lock);
		if (gone)
			return st_error_set(err, ST_EABORTED, "the build request ended before the context was sent");
		if (docker_cancelled(p->c))
			return st_error_set(err, ST_EABORTED, "interrupted");
		return 0;
	}

	while (len > 0) {
		ssize_t n = send(p->fds[1], s, len, MSG_NOSIGNAL);

		if (n > 0) {
			s += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			return st_error_set(err, ST_EABORTED, "the build request ended before the context was sent");
		} else if (n < 0 && errno != EINTR) {
			return st_error_set(err, ST_EIO, "cannot pass the build context on: %s", strerror(errno));
		}
	}
	return 0;
}

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	struct st_error e;
	int rc;

	st_error_clear(&e);
	rc = p->produce(p->produce_ud, pump_write, p, &e);
	if (rc && !e.code)
		st_error_set(&e, rc, "the build context producer failed");
	pthread_mutex_lock(&p->lock);
	p->done = 1;
	p->rc = rc;
	p->perr = e;
	pthread_mutex_unlock(&p->lock);
	/* EOF for the reader, after the outcome is recorded. */
	shutdown(p->fds[1], SHUT_WR);
	return NULL;
}

static ssize_t pump_read(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct pump *p = ud;
	int rc, done;

	for (;;) {
		struct pollfd pfd = { .fd = p->fds[0], .events = POLLIN };
		int wait = DOCKER_CANCEL_POLL_MS, n;
		ssize_t got;

		/* libcurl checks nothing while it waits in here: the producer
		 * (a git archive) may hang, so look at the cancel flag between
		 * short waits. */
		if (docker_cancelled(p->c))
			return st_error_set(err, ST_EABORTED, "interrupted");
		if (p->deadline > 0) {
			double left = p->deadline - time_monotonic();

			if (left <= 0)
				return st_error_set(err, ST_ETIMEOUT, "the build context was not ready in time");
			if (left * 1000 < wait)
				wait = (int)ceil(left * 1000);
		}
		n = poll(&pfd, 1, wait);
		if (n < 0 && errno != EINTR)
			return st_error_set(err, ST_EIO, "poll failed: %s", strerror(errno));
		if (n <= 0)
			continue;
		got = recv(p->fds[0], buf, cap, 0);

		if (got > 0)
			return got;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return st_error_set(err, ST_EIO, "cannot read the build context: %s", strerror(errno));
		/* EOF: the producer recorded its outcome before shutting down. */
		pthread_mutex_lock(&p->lock);
		done = p->done;
		rc = p->rc;
		if (rc && err)
			*err = p->perr;
		pthread_mutex_unlock(&p->lock);
		if (!done)
			return st_error_set(err, ST_EPROTO, "the build context ended early");
		return rc;
	}
}

int docker_image_build_from(struct docker_client *c, const struct docker_build_opts *o,
			    docker_produce_fn produce, void *produce_ud, char **image_id,
			    struct st_error *err)
{
	struct pump p;
	pthread_t thread;
	double timeout = docker_timeout(c, o->timeout, 1);
	int rc, started = 0;

	*image_id = NULL;
	memset(&p, 0, sizeof(p));
	p.fds[0] = p.fds[1] = -1;
	p.c = c;
	p.produce = produce;
	p.produce_ud = produce_ud;
	p.deadline = timeout > 0 ? time_monotonic() + timeout : 0;
	pthread_mutex_init(&p.lock, NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.fds)) {
		rc = st_error_set(err, ST_EIO, "cannot create a socket pair: %s", strerror(errno));
		goto out;
	}
	if ((rc = pthread_create(&thread, NULL, pump_main, &p))) {
		rc = st_error_set(err, ST_EIO, "cannot start the build context thread: %s", strerror(rc));
		goto out;
	}
	started = 1;
	rc = docker_image_build(c, o, pump_read, &p, image_id, err);
out:
	/* Closing our end unblocks a producer the request no longer reads;
	 * one waiting on its own input (git) sees gone when it next asks. */
	pthread_mutex_lock(&p.lock);
	p.gone = 1;
	pthread_mutex_unlock(&p.lock);
	if (p.fds[0] >= 0)
		close(p.fds[0]);
	p.fds[0] = -1;
	if (started)
		pthread_join(thread, NULL);
	if (p.fds[1] >= 0)
		close(p.fds[1]);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
