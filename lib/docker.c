#include "docker_internal.h"
#include "http.h"
#include "timeutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* ---- client ---- */

int docker_client_new(const char *host, struct docker_client **out, struct st_error *err)
{
	static const char scheme[] = "unix://";
	struct docker_client *c = NULL;
	struct sockaddr_un sun;
	const char *path;
	int rc = 0;

	*out = NULL;
	if (!host || !*host)
		host = getenv("DOCKER_HOST");
	if (!host || !*host)
		host = DOCKER_DEFAULT_HOST;
	if (strncmp(host, scheme, sizeof(scheme) - 1)) {
		rc = st_error_set(err, ST_ECONFIG, "unsupported docker host '%s': only unix:// sockets are supported",
				  host);
		st_error_hint(err, "set docker.host (or DOCKER_HOST) to unix:///var/run/docker.sock");
		goto out;
	}
	path = host + sizeof(scheme) - 1;
	if (!*path || strlen(path) >= sizeof(sun.sun_path)) {
		rc = st_error_set(err, ST_ECONFIG, "bad docker host '%s': %s", host,
				  *path ? "socket path too long" : "no socket path");
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->host = strdup(host)) || !(c->socket_path = strdup(path))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory creating the docker client");
		goto out;
	}
	/* Once per process (main calls it first, before any thread); never
	 * cleaned up per client, which would tear it down under other users. */
	if ((rc = http_global_init(err)) != 0)
		goto out;
	pthread_mutex_init(&c->lock, NULL);
	c->timeout = DOCKER_DEFAULT_REQUEST_TIMEOUT;
	c->stream_timeout = 0;
	*out = c;
	c = NULL;
out:
	if (c) {
		free(c->host);
		free(c->socket_path);
		free(c);
	}
	return rc;
}

void docker_client_free(struct docker_client *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->host);
	free(c->socket_path);
	free(c);
}

void docker_client_set_timeouts(struct docker_client *c, double request, double stream)
{
	c->timeout = request > 0 ? request : DOCKER_DEFAULT_REQUEST_TIMEOUT;
	c->stream_timeout = stream > 0 ? stream : 0;
}

void docker_client_set_stream_idle(struct docker_client *c, double idle, const char *key)
{
	c->stream_idle = idle > 0 ? idle : 0;
	c->stream_idle_key = key;
}

double docker_idle(double idle, double dflt)
{
	if (idle > 0)
		return idle;
	if (idle < 0)
		return 0;
	return dflt > 0 ? dflt : 0;
}

int docker_stall_error(const struct docker_client *c, double idle, const char *key,
		       struct st_error *err)
{
	st_error_set(err, ST_ETIMEOUT, "stalled: no data from docker for %gs", idle);
	if (key)
		return st_error_hint(err, "is dockerd hung? 'curl --unix-socket %s http://docker/_ping' "
				     "should answer OK at once; if the command is legitimately silent "
				     "for longer, raise %s", c->socket_path, key);
	return st_error_hint(err, "is dockerd hung? 'curl --unix-socket %s http://docker/_ping' "
			     "should answer OK at once; then try again", c->socket_path);
}

void docker_client_set_cancel(struct docker_client *c, volatile sig_atomic_t *cancel)
{
	c->cancel = cancel;
}

void docker_client_set_fail_fast(struct docker_client *c, int on)
{
	pthread_mutex_lock(&c->lock);
	st_down_reset(&c->down, on);
	pthread_mutex_unlock(&c->lock);
}

/* With fail fast: ST_EUNREACHABLE into err when an earlier request got no
 * answer, else 0. */
static int check_unreachable(struct docker_client *c, struct st_error *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = st_down_check(&c->down, "docker", err);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Flags err as no answer at all and, with fail fast, remembers the first. */
static void note_unreachable(struct docker_client *c, struct st_error *err)
{
	st_error_mark_unreachable(err);
	pthread_mutex_lock(&c->lock);
	st_down_note(&c->down, err);
	pthread_mutex_unlock(&c->lock);
}

int docker_cancelled(const struct docker_client *c)
{
	return c->cancel && *c->cancel;
}

const char *docker_client_host(const struct docker_client *c)
{
	return c->host;
}

double docker_timeout(const struct docker_client *c, double timeout, int stream)
{
	if (timeout > 0)
		return timeout;
	if (timeout < 0)
		return 0;
	return stream ? c->stream_timeout : c->timeout;
}

/* ---- errors ---- */

int docker_connect_error(const char *path, int errnum, struct st_error *err)
{
	switch (errnum) {
	case ENOENT:
		st_error_set(err, ST_ESERVICE, "cannot connect to docker at '%s': no such socket", path);
		return st_error_hint(err, "is dockerd running? start it, or point docker.host or "
				     "DOCKER_HOST at its socket");
	case EACCES:
	case EPERM:
		st_error_set(err, ST_ESERVICE, "cannot connect to docker at '%s': permission denied", path);
		return st_error_hint(err, "run as root, or add the user to the 'docker' group "
				     "(usermod -aG docker USER, then log in again)");
	case ECONNREFUSED:
		st_error_set(err, ST_ESERVICE,
			     "cannot connect to docker at '%s': connection refused (no daemon listens)", path);
		return st_error_hint(err, "is dockerd running? start it and try again");
	default:
		st_error_set(err, ST_ESERVICE, "cannot connect to docker at '%s': %s", path,
			     errnum ? strerror(errnum) : "unknown error");
		return st_error_hint(err, "is dockerd running?");
	}
}

int docker_http_error(long status, const char *body, size_t len, struct st_error *err)
{
	char text[512];
	int code = docker_status_code(status);

	if (!code)
		code = ST_ESERVICE;
	docker_error_text(body, len, text, sizeof(text));
	if (text[0])
		st_error_set(err, code, "%s", text);
	else
		st_error_set(err, code, "docker answered HTTP %ld without a message", status);
	if (err)
		err->http_status = (int)status;
	return code;
}

/* Wraps keeping http_status, which st_error_wrap keeps as it only edits message. */
static int wrap_what(struct st_error *err, const char *what)
{
	return st_error_wrap(err, "cannot %s", what);
}

/* ---- one request ---- */

void docker_call_init(struct docker_call *call, const char *method, double timeout)
{
	memset(call, 0, sizeof(*call));
	call->method = method;
	call->timeout = timeout;
}

void docker_call_release(struct docker_call *call)
{
	sbuf_release(&call->path);
	sbuf_release(&call->query);
	sbuf_release(&call->resp);
}

int docker_call_path(struct docker_call *call, const char *literal, const char *name,
		     const char *literal2)
{
	if ((literal && sbuf_puts(&call->path, literal)) ||
	    (name && docker_url_escape(&call->path, name, 1)) ||
	    (literal2 && sbuf_puts(&call->path, literal2)))
		return ST_ENOMEM;
	return 0;
}

int docker_call_query(struct docker_call *call, const char *key, const char *value)
{
	if ((call->query.len && sbuf_puts(&call->query, "&")) || sbuf_puts(&call->query, key) ||
	    sbuf_puts(&call->query, "=") || docker_url_escape(&call->query, value, 0))
		return ST_ENOMEM;
	return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct docker_call *call = ud;
	size_t n = size * nmemb;
	int rc;

	curl_easy_getinfo(call->h, CURLINFO_RESPONSE_CODE, &call->status);
	if (call->idle > 0)
		call->last_activity = time_monotonic();
	if (call->on_data && call->status >= 200 && call->status < 300) {
		rc = call->on_data(call->data_ud, ptr, n, call->err);
		if (rc) {
			call->cb_rc = rc;
			return 0;
		}
		return n;
	}
	if (call->status >= 300 || call->on_data) {
		/* An error body: keep its beginning for the message. */
		size_t room = DOCKER_ERROR_BODY_MAX - call->resp.len;

		if (sbuf_append(&call->resp, ptr, n < room ? n : room)) {
			call->cb_rc = st_error_set(call->err, ST_ENOMEM, "out of memory reading the answer");
			return 0;
		}
		return n;
	}
	if (call->resp.len + n > DOCKER_RESPONSE_MAX) {
		call->cb_rc = st_error_set(call->err, ST_EPROTO, "answer larger than %u MiB",
					   DOCKER_RESPONSE_MAX >> 20);
		return 0;
	}
	if (sbuf_append(&call->resp, ptr, n)) {
		call->cb_rc = st_error_set(call->err, ST_ENOMEM, "out of memory reading the answer");
		return 0;
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct docker_call *call = ud;
	ssize_t n = call->upload(call->upload_ud, buf, size * nitems, call->err);

	if (n < 0) {
		call->cb_rc = (int)n;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)n;
}

/* libcurl calls this at least once a second, also while nothing arrives:
 * non-zero aborts the transfer. Bytes either way are progress; none for
 * call->idle seconds is a stall. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct docker_call *call = ud;

	(void)dltotal;
	(void)ultotal;
	if (call->cancel && *call->cancel)
		return 1;
	if (call->idle > 0) {
		double now = time_monotonic();

		if (dlnow != call->last_dl || ulnow != call->last_ul) {
			call->last_dl = dlnow;
			call->last_ul = ulnow;
			call->last_activity = now;
		} else if (now - call->last_activity >= call->idle) {
			call->stalled = 1;
			return 1;
		}
	}
	return 0;
}

int docker_version_negotiate(const json_t *version, char *buf, size_t size, struct st_error *err)
{
	return docker_api_negotiate(json_string_value(json_object_get(version, "ApiVersion")),
				    json_string_value(json_object_get(version, "MinAPIVersion")),
				    DOCKER_API_MIN, DOCKER_API_MAX, buf, size, err);
}

static int negotiate(struct docker_client *c, char *buf, size_t size, struct st_error *err)
{
	struct docker_call call;
	json_t *v = NULL;
	int rc;

	docker_call_init(&call, "GET", c->timeout);
	call.unversioned = 1;
	if ((rc = docker_call_path(&call, "/version", NULL, NULL))) {
		st_error_set(err, rc, "out of memory");
		goto out;
	}
	if ((rc = docker_call_json(c, &call, "read the docker version", &v, err)))
		goto out;
	rc = docker_version_negotiate(v, buf, size, err);
out:
	json_decref(v);
	docker_call_release(&call);
	return rc;
}

int docker_api_version(struct docker_client *c, char *buf, size_t size, struct st_error *err)
{
	char v[sizeof(c->api_version)];
	int rc;

	char timed_out[sizeof(c->version_timeout)];

	pthread_mutex_lock(&c->lock);
	snprintf(buf, size, "%s", c->api_version);
	snprintf(timed_out, sizeof(timed_out), "%s", c->version_timeout);
	pthread_mutex_unlock(&c->lock);
	if (buf[0])
		return 0;
	if (timed_out[0]) {
		st_error_set(err, ST_ETIMEOUT, "%s (earlier in this run; not asked again)", timed_out);
		return st_error_hint(err, "is dockerd hung? 'curl --unix-socket %s http://docker/_ping' "
				     "should answer OK at once", c->socket_path);
	}
	/* Two threads may both negotiate the first time: same answer, harmless. */
	if ((rc = negotiate(c, v, sizeof(v), err))) {
		if (rc == ST_ETIMEOUT) {
			pthread_mutex_lock(&c->lock);
			snprintf(c->version_timeout, sizeof(c->version_timeout), "%s", err->message);
			pthread_mutex_unlock(&c->lock);
		}
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	memcpy(c->api_version, v, sizeof(v));
	pthread_mutex_unlock(&c->lock);
	snprintf(buf, size, "%s", v);
	return 0;
}

int docker_client_negotiate(struct docker_client *c, char *version, size_t size, struct st_error *err)
{
	char v[16];
	int rc = docker_api_version(c, v, sizeof(v), err);

	if (!rc && version)
		snprintf(version, size, "%s", v);
	return rc;
}

static long ms(double seconds)
{
	return (long)ceil(seconds * 1000.0);
}

int docker_call_run(struct docker_client *c, struct docker_call *call, const char *what,
		    struct st_error *err)
{
	char ver[16], errbuf[CURL_ERROR_SIZE];
	struct sbuf url = SBUF_INIT;
	struct curl_slist *hdrs = NULL, *h2;
	CURLcode res = CURLE_OK;
	long os_errno = 0;
	int rc = 0;

	call->err = err;
	call->status = 0;
	call->cb_rc = 0;
	call->cancel = c->cancel;
	call->stalled = 0;
	call->last_dl = call->last_ul = 0;
	sbuf_reset(&call->resp);
	errbuf[0] = '\0';
	if (docker_cancelled(c)) {
		rc = st_error_set(err, ST_EABORTED, "interrupted");
		goto wrap;
	}
	if ((rc = check_unreachable(c, err)) != 0)
		goto out;
	if (!call->unversioned && (rc = docker_api_version(c, ver, sizeof(ver), err))) {
		/* The version call below noted it already. */
		goto wrap;
	}
	if (sbuf_puts(&url, "http://docker") ||
	    (!call->unversioned && sbuf_printf(&url, "/v%s", ver)) ||
	    sbuf_puts(&url, sbuf_str(&call->path)) ||
	    (call->query.len && sbuf_printf(&url, "?%s", call->query.buf))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto wrap;
	}
	call->h = curl_easy_init();
	if (!call->h) {
		rc = st_error_set(err, ST_ENOMEM, "cannot create a libcurl handle");
		goto wrap;
	}
	/* "Expect: 100-continue" would stall every POST with a body. */
	hdrs = curl_slist_append(NULL, "Expect:");
	if (hdrs && call->content_type) {
		char ct[128];

		snprintf(ct, sizeof(ct), "Content-Type: %s", call->content_type);
		h2 = curl_slist_append(hdrs, ct);
		hdrs = h2 ? h2 : hdrs;
	}
	if (hdrs && call->upload) {
		h2 = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
		hdrs = h2 ? h2 : hdrs;
	}
	curl_easy_setopt(call->h, CURLOPT_URL, url.buf);
	curl_easy_setopt(call->h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(call->h, CURLOPT_PROXY, "");
	curl_easy_setopt(call->h, CURLOPT_NOSIGNAL, 1L);
	if (call->cancel || call->idle > 0) {
		curl_easy_setopt(call->h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(call->h, CURLOPT_XFERINFODATA, call);
		curl_easy_setopt(call->h, CURLOPT_NOPROGRESS, 0L);
	} else {
		curl_easy_setopt(call->h, CURLOPT_NOPROGRESS, 1L);
	}
	curl_easy_setopt(call->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(call->h, CURLOPT_USERAGENT, "spilttea-ops");
	curl_easy_setopt(call->h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(call->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(call->h, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(call->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(call->h, CURLOPT_CONNECTTIMEOUT_MS,
			 ms(call->timeout > 0 && call->timeout < DOCKER_CONNECT_TIMEOUT ? call->timeout
										: DOCKER_CONNECT_TIMEOUT));
	if (call->timeout > 0)
		curl_easy_setopt(call->h, CURLOPT_TIMEOUT_MS, ms(call->timeout));
	if (!strcmp(call->method, "POST")) {
		curl_easy_setopt(call->h, CURLOPT_POST, 1L);
		if (call->upload) {
			curl_easy_setopt(call->h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(call->h, CURLOPT_READDATA, call);
		} else {
			curl_easy_setopt(call->h, CURLOPT_POSTFIELDS, call->body ? call->body : "");
			curl_easy_setopt(call->h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(call->body ? call->body_len : 0));
		}
	} else if (strcmp(call->method, "GET")) {
		curl_easy_setopt(call->h, CURLOPT_CUSTOMREQUEST, call->method);
	}
	call->last_activity = time_monotonic();
	res = curl_easy_perform(call->h);
	curl_easy_getinfo(call->h, CURLINFO_RESPONSE_CODE, &call->status);
	curl_easy_getinfo(call->h, CURLINFO_OS_ERRNO, &os_errno);
	if (call->cb_rc) {
		rc = call->cb_rc;
	} else if (res == CURLE_ABORTED_BY_CALLBACK && call->cancel && *call->cancel) {
		rc = st_error_set(err, ST_EABORTED, "interrupted");
	} else if (res == CURLE_ABORTED_BY_CALLBACK && call->stalled) {
		rc = docker_stall_error(c, call->idle, call->idle_key, err);
		if (err)
			err->http_status = (int)call->status;
	} else if (call->status >= 400) {
		rc = docker_http_error(call->status, call->resp.buf, call->resp.len, err);
	} else if (res == CURLE_COULDNT_CONNECT) {
		rc = docker_connect_error(c->socket_path, (int)os_errno, err);
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		rc = st_error_set(err, ST_ETIMEOUT, "docker did not finish within %.1fs", call->timeout);
		if (err)
			err->http_status = (int)call->status;
	} else if (res != CURLE_OK) {
		rc = st_error_set(err, ST_ESERVICE, "docker request failed: %s",
				  errbuf[0] ? errbuf : curl_easy_strerror(res));
		if (err)
			err->http_status = (int)call->status;
	} else if (call->status < 100) {
		rc = st_error_set(err, ST_EPROTO, "docker sent no HTTP status");
	}
wrap:
	if (rc)
		wrap_what(err, what);
	/* No answer at all: a refused or missing socket, or a deadline before
	 * the status line. */
	if (rc && call->h && call->status == 0 &&
	    (res == CURLE_COULDNT_CONNECT || res == CURLE_OPERATION_TIMEDOUT) && !call->cb_rc)
		note_unreachable(c, err);
out:
	curl_slist_free_all(hdrs);
	if (call->h)
		curl_easy_cleanup(call->h);
	call->h = NULL;
	sbuf_release(&url);
	return rc;
}

int docker_call_json(struct docker_client *c, struct docker_call *call, const char *what,
		     json_t **out, struct st_error *err)
{
	json_error_t je;
	json_t *v = NULL;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = docker_call_run(c, call, what, err)))
		return rc;
	if (!out || call->resp.len == 0)
		return 0;
	v = json_loadb(call->resp.buf, call->resp.len, JSON_DECODE_ANY, &je);
	if (!v) {
		st_error_set(err, ST_EPROTO, "cannot %s: docker answered malformed JSON (%s)", what, je.text);
		if (err)
			err->http_status = (int)call->status;
		return ST_EPROTO;
	}
	*out = v;
	return 0;
}

int docker_take_id(const json_t *answer, char **id, struct st_error *err)
{
	const char *s = json_string_value(json_object_get(answer, "Id"));

	if (!s || !*s)
		return st_error_set(err, ST_EPROTO, "docker answered without an Id");
	*id = strdup(s);
	if (!*id)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	return 0;
}

/* ---- generic ---- */

int docker_request(struct docker_client *c, const char *method, const char *path, const char *query,
		   const json_t *body, double timeout, long *status, json_t **out, struct st_error *err)
{
	struct docker_call call;
	char *text = NULL, what[256];
	int rc;

	docker_call_init(&call, method, docker_timeout(c, timeout, 0));
	snprintf(what, sizeof(what), "%s '%s'", method, path);
	if (sbuf_puts(&call.path, path) || (query && sbuf_puts(&call.query, query))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			rc = st_error_set(err, ST_ENOMEM, "cannot encode the request body");
			goto out;
		}
		call.body = text;
		call.body_len = strlen(text);
		call.content_type = "application/json";
	}
	rc = docker_call_json(c, &call, what, out, err);
	if (status)
		*status = call.status;
out:
	free(text);
	docker_call_release(&call);
	return rc;
}

/* A call without a body whose JSON answer (if any) goes to out. */
static int simple(struct docker_client *c, const char *method, const char *p1, const char *name,
		  const char *p2, double timeout, const char *what, json_t **out, long *status,
		  struct st_error *err)
{
	struct docker_call call;
	int rc;

	docker_call_init(&call, method, timeout);
	if (docker_call_path(&call, p1, name, p2)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = docker_call_json(c, &call, what, out, err);
	if (status)
		*status = call.status;
out:
	docker_call_release(&call);
	return rc;
}

/* ---- system ---- */

int docker_ping(struct docker_client *c, double timeout, struct st_error *err)
{
	struct docker_call call;
	int rc;

	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	call.unversioned = 1;
	if (docker_call_path(&call, "/_ping", NULL, NULL)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = docker_call_run(c, &call, "ping docker", err)))
		goto out;
	if (strcmp(sbuf_str(&call.resp), "OK")) {
		rc = st_error_set(err, ST_EPROTO, "cannot ping docker: unexpected answer '%.40s'",
				  sbuf_str(&call.resp));
		if (err)
			err->http_status = (int)call.status;
	}
out:
	docker_call_release(&call);
	return rc;
}

int docker_version(struct docker_client *c, double timeout, json_t **out, struct st_error *err)
{
	struct docker_call call;
	int rc;

	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	call.unversioned = 1;
	if (docker_call_path(&call, "/version", NULL, NULL))
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	else
		rc = docker_call_json(c, &call, "read the docker version", out, err);
	docker_call_release(&call);
	return rc;
}

int docker_info(struct docker_client *c, double timeout, json_t **out, struct st_error *err)
{
	return simple(c, "GET", "/info", NULL, NULL, docker_timeout(c, timeout, 0), "read docker info", out,
		      NULL, err);
}

int docker_system_df(struct docker_client *c, double timeout, json_t **out, struct st_error *err)
{
	return simple(c, "GET", "/system/df", NULL, NULL, docker_timeout(c, timeout, 0),
		      "read docker disk usage", out, NULL, err);
}

/* ---- containers ---- */

static int add_filter(json_t *filters, const char *key, const char *const *values)
{
	json_t *arr;

	if (!values || !*values)
		return 0;
	arr = json_array();
	if (!arr || json_object_set_new(filters, key, arr))
		return ST_ENOMEM;
	for (; *values; values++)
		if (json_array_append_new(arr, json_string(*values)))
			return ST_ENOMEM;
	return 0;
}

int docker_container_list(struct docker_client *c, const struct docker_container_filter *f,
			  double timeout, json_t **out, struct st_error *err)
{
	struct docker_call call;
	json_t *filters = json_object();
	char *text = NULL;
	int rc;

	*out = NULL;
	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	if (!filters || docker_call_path(&call, "/containers/json", NULL, NULL) ||
	    (f && (add_filter(filters, "name", f->names) || add_filter(filters, "label", f->labels) ||
		   add_filter(filters, "status", f->statuses))) ||
	    (f && f->all && docker_call_query(&call, "all", "1"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (json_object_size(filters) > 0) {
		text = json_dumps(filters, JSON_COMPACT);
		if (!text || docker_call_query(&call, "filters", text)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = docker_call_json(c, &call, "list containers", out, err);
	if (!rc && !json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = st_error_set(err, ST_EPROTO, "cannot list containers: the answer is not a list");
	}
out:
	free(text);
	json_decref(filters);
	docker_call_release(&call);
	return rc;
}

int docker_container_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			     struct st_error *err)
{
	char what[256];
	int rc;

	snprintf(what, sizeof(what), "inspect container '%s'", name);
	rc = simple(c, "GET", "/containers/", name, "/json", docker_timeout(c, timeout, 0), what, out, NULL,
		    err);
	if (!rc && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = st_error_set(err, ST_EPROTO, "cannot %s: the answer is not an object", what);
	}
	return rc;
}

int docker_container_create(struct docker_client *c, const char *name, const json_t *config,
			    double timeout, char **id, struct st_error *err)
{
	struct docker_call call;
	json_t *answer = NULL;
	char *text = NULL, what[256];
	int rc;

	*id = NULL;
	snprintf(what, sizeof(what), "create container '%s'", name ? name : "(unnamed)");
	docker_call_init(&call, "POST", docker_timeout(c, timeout, 0));
	text = json_dumps(config, JSON_COMPACT);
	if (!text || docker_call_path(&call, "/containers/create", NULL, NULL) ||
	    (name && docker_call_query(&call, "name", name))) {
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
	json_decref(answer);
	free(text);
	docker_call_release(&call);
	return rc;
}

/* POST /containers/{name}/ACTION[?query]; 304 (nothing to do) is success. */
static int container_action(struct docker_client *c, const char *name, const char *action,
			    const char *qkey, const char *qval, double timeout, const char *what,
			    struct st_error *err)
{
	struct docker_call call;
	int rc;

	docker_call_init(&call, "POST", timeout);
	if (docker_call_path(&call, "/containers/", name, action) ||
	    (qkey && docker_call_query(&call, qkey, qval))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = docker_call_run(c, &call, what, err);
out:
	docker_call_release(&call);
	return rc;
}

int docker_container_start(struct docker_client *c, const char *name, double timeout,
			   struct st_error *err)
{
	char what[256];

	snprintf(what, sizeof(what), "start container '%s'", name);
	return container_action(c, name, "/start", NULL, NULL, docker_timeout(c, timeout, 0), what, err);
}

/* Docker's default StopTimeout, for a grace period left to the container. */
#define DOCKER_DEFAULT_GRACE 10

static int stop_like(struct docker_client *c, const char *name, const char *action, const char *verb,
		     int grace, double timeout, struct st_error *err)
{
	double t = docker_timeout(c, timeout, 0);
	char g[24], what[256];

	snprintf(what, sizeof(what), "%s container '%s'", verb, name);
	snprintf(g, sizeof(g), "%d", grace);
	if (t > 0)
		t += grace >= 0 ? grace : DOCKER_DEFAULT_GRACE;
	return container_action(c, name, action, grace >= 0 ? "t" : NULL, g, t, what, err);
}

int docker_container_stop(struct docker_client *c, const char *name, int grace, double timeout,
			  struct st_error *err)
{
	return stop_like(c, name, "/stop", "stop", grace, timeout, err);
}

int docker_container_restart(struct docker_client *c, const char *name, int grace, double timeout,
			     struct st_error *err)
{
	return stop_like(c, name, "/restart", "restart", grace, timeout, err);
}

/* Docker answers 409 "removal of container X is already in progress" when
 * another DELETE of it runs: typically our own earlier request that timed
 * out on the client side while the daemon went on with it (a daemon that
 * was frozen or overloaded). The container is as good as removed: wait
 * until it is gone. */
static int removal_in_progress(const struct st_error *err)
{
	return err->http_status == 409 && strstr(err->message, "already in progress");
}

static int wait_container_gone(struct docker_client *c, const char *name, double timeout,
			       const struct st_error *conflict, struct st_error *err)
{
	double deadline = time_monotonic() + timeout, left;
	json_t *info = NULL;
	int rc;

	/* A request timeout of 0 or less means the client's default: what is
	 * left too short to ask (or to sleep and ask again) ends the wait. */
	while ((left = deadline - time_monotonic()) >= 0.05) {
		st_error_clear(err);
		rc = docker_container_inspect(c, name, left, &info, err);
		json_decref(info);
		info = NULL;
		if (rc == ST_ENOTFOUND) {
			st_error_clear(err);
			return 0;
		}
		if (rc)
			return rc;
		if (time_monotonic() + 0.25 > deadline)
			break;
		if (docker_cancelled(c))
			return st_error_set(err, ST_EABORTED, "interrupted");
		time_sleep(0.2);
	}
	*err = *conflict;
	st_error_wrap(err, "still there after %.1fs", timeout);
	err->code = ST_ETIMEOUT;
	err->http_status = 0; /* a deadline, not the daemon's refusal: callers may retry */
	return ST_ETIMEOUT;
}

int docker_container_remove(struct docker_client *c, const char *name, int force, int volumes,
			    double timeout, struct st_error *err)
{
	struct docker_call call;
	struct st_error conflict;
	char what[256];
	int rc;

	snprintf(what, sizeof(what), "remove container '%s'", name);
	docker_call_init(&call, "DELETE", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/containers/", name, NULL) ||
	    (force && docker_call_query(&call, "force", "1")) ||
	    (volumes && docker_call_query(&call, "v", "1"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = docker_call_run(c, &call, what, err);
	if (rc == ST_ECONFLICT && err && removal_in_progress(err)) {
		conflict = *err;
		rc = wait_container_gone(c, name, docker_timeout(c, timeout, 0), &conflict, err);
	}
out:
	docker_call_release(&call);
	return rc;
}

int docker_container_rename(struct docker_client *c, const char *name, const char *new_name,
			    double timeout, struct st_error *err)
{
	char what[300];

	snprintf(what, sizeof(what), "rename container '%s' to '%s'", name, new_name);
	return container_action(c, name, "/rename", "name", new_name, docker_timeout(c, timeout, 0), what,
				err);
}

int docker_container_wait(struct docker_client *c, const char *name, const char *condition,
			  double timeout, int *exit_status, struct st_error *err)
{
	struct docker_call call;
	json_t *answer = NULL, *code;
	const char *msg;
	char what[256];
	int rc;

	snprintf(what, sizeof(what), "wait for container '%s'", name);
	docker_call_init(&call, "POST", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/containers/", name, "/wait") ||
	    docker_call_query(&call, "condition", condition ? condition : "not-running")) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = docker_call_json(c, &call, what, &answer, err)))
		goto out;
	msg = json_string_value(json_object_get(json_object_get(answer, "Error"), "Message"));
	code = json_object_get(answer, "StatusCode");
	if (msg && *msg) {
		rc = st_error_set(err, ST_ESERVICE, "cannot %s: %s", what, msg);
		if (err)
			err->http_status = (int)call.status;
	} else if (!json_is_integer(code)) {
		rc = st_error_set(err, ST_EPROTO, "cannot %s: the answer has no StatusCode", what);
	} else {
		*exit_status = (int)json_integer_value(code);
	}
out:
	json_decref(answer);
	docker_call_release(&call);
	return rc;
}

int docker_container_stats(struct docker_client *c, const char *name, double timeout, json_t **out,
			   struct st_error *err)
{
	struct docker_call call;
	char what[256];
	int rc;

	snprintf(what, sizeof(what), "read stats of container '%s'", name);
	docker_call_init(&call, "GET", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/containers/", name, "/stats") ||
	    docker_call_query(&call, "stream", "false") || docker_call_query(&call, "one-shot", "true")) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = docker_call_json(c, &call, what, out, err);
	if (!rc && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		rc = st_error_set(err, ST_EPROTO, "cannot %s: the answer is not an object", what);
	}
out:
	docker_call_release(&call);
	return rc;
}

/* ---- logs ---- */

struct logs_ctx {
	struct docker_demux demux;
	struct docker_lines lines;
	docker_line_fn on_line;
	void *ud;
};

static int logs_line(void *ud, const struct docker_log_line *line, struct st_error *err)
{
	struct logs_ctx *lc = ud;
	int rc = lc->on_line(lc->ud, line, err);

	if (!rc)
		return 0;
	if (rc < 0 && err && err->code == rc)
		return rc;
	return st_error_set(err, ST_EABORTED, "stopped by the line callback");
}

static int logs_data(void *ud, const char *data, size_t len, struct st_error *err)
{
	struct logs_ctx *lc = ud;

	return docker_demux_feed(&lc->demux, data, len, err);
}

static int query_time(struct docker_call *call, const char *key, double t)
{
	char buf[48];
	double secs = floor(t);
	long nanos = (long)((t - secs) * 1e9);

	if (nanos > 999999999)
		nanos = 999999999;
	snprintf(buf, sizeof(buf), "%lld.%09ld", (long long)secs, nanos);
	return docker_call_query(call, key, buf);
}

int docker_container_logs(struct docker_client *c, const char *name, const struct docker_logs_opts *o,
			  docker_line_fn on_line, void *ud, struct st_error *err)
{
	static const struct docker_logs_opts defaults;
	struct docker_call call;
	struct logs_ctx lc;
	json_t *info = NULL;
	char what[256], tail[24];
	int rc, tty;

	if (!o)
		o = &defaults;
	snprintf(what, sizeof(what), "read logs of container '%s'", name);
	docker_call_init(&call, "GET", docker_timeout(c, o->timeout, 1));
	/* A log read that is not followed streams a file the daemon has: a
	 * pause as long as a whole API call means it stalled. */
	call.idle = docker_idle(o->idle_timeout, o->follow ? 0 : c->timeout);
	call.idle_key = o->idle_timeout == 0 && !o->follow ? "docker.timeout" : NULL;
	memset(&lc, 0, sizeof(lc));
	/* A container with a TTY logs without frames; only inspect tells. */
	if ((rc = docker_container_inspect(c, name, DOCKER_TIMEOUT_DEFAULT, &info, err))) {
		st_error_wrap(err, "cannot %s", what);
		goto out;
	}
	tty = json_is_true(json_object_get(json_object_get(info, "Config"), "Tty"));
	lc.on_line = on_line;
	lc.ud = ud;
	docker_lines_init(&lc.lines, o->timestamps, tty, o->max_line, logs_line, &lc);
	docker_demux_init(&lc.demux, tty, docker_lines_chunk, &lc.lines);
	if (o->tail > 0)
		snprintf(tail, sizeof(tail), "%d", o->tail);
	else
		snprintf(tail, sizeof(tail), "%s", o->tail == DOCKER_LOGS_TAIL_ALL ? "all" : "0");
	if (docker_call_path(&call, "/containers/", name, "/logs") ||
	    docker_call_query(&call, "stdout", o->no_stdout ? "0" : "1") ||
	    docker_call_query(&call, "stderr", o->no_stderr ? "0" : "1") ||
	    docker_call_query(&call, "timestamps", o->timestamps ? "1" : "0") ||
	    docker_call_query(&call, "follow", o->follow ? "1" : "0") ||
	    docker_call_query(&call, "tail", tail) ||
	    (o->since > 0 && query_time(&call, "since", o->since)) ||
	    (o->until > 0 && query_time(&call, "until", o->until))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	call.on_data = logs_data;
	call.data_ud = &lc;
	if ((rc = docker_call_run(c, &call, what, err)))
		goto out;
	if ((rc = docker_demux_finish(&lc.demux, err)) || (rc = docker_lines_finish(&lc.lines, err)))
		st_error_wrap(err, "cannot %s", what);
out:
	docker_lines_release(&lc.lines);
	json_decref(info);
	docker_call_release(&call);
	return rc;
}

/* ---- volumes ---- */

int docker_volume_list(struct docker_client *c, double timeout, json_t **out, struct st_error *err)
{
	return simple(c, "GET", "/volumes", NULL, NULL, docker_timeout(c, timeout, 0), "list volumes", out,
		      NULL, err);
}

int docker_volume_inspect(struct docker_client *c, const char *name, double timeout, json_t **out,
			  struct st_error *err)
{
	char what[256];

	snprintf(what, sizeof(what), "inspect volume '%s'", name);
	return simple(c, "GET", "/volumes/", name, NULL, docker_timeout(c, timeout, 0), what, out, NULL,
		      err);
}

int docker_volume_create(struct docker_client *c, const char *name, const json_t *labels,
			 double timeout, struct st_error *err)
{
	struct docker_call call;
	json_t *body = NULL;
	char *text = NULL, what[256];
	int rc;

	snprintf(what, sizeof(what), "create volume '%s'", name);
	docker_call_init(&call, "POST", docker_timeout(c, timeout, 0));
	body = json_pack("{s:s}", "Name", name);
	if (body && labels && json_object_set_new(body, "Labels", json_deep_copy(labels))) {
		json_decref(body);
		body = NULL;
	}
	if (!body || !(text = json_dumps(body, JSON_COMPACT)) ||
	    docker_call_path(&call, "/volumes/create", NULL, NULL)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	call.body = text;
	call.body_len = strlen(text);
	call.content_type = "application/json";
	rc = docker_call_run(c, &call, what, err);
out:
	free(text);
	json_decref(body);
	docker_call_release(&call);
	return rc;
}

int docker_volume_remove(struct docker_client *c, const char *name, int force, double timeout,
			 struct st_error *err)
{
	struct docker_call call;
	char what[256];
	int rc;

	snprintf(what, sizeof(what), "remove volume '%s'", name);
	docker_call_init(&call, "DELETE", docker_timeout(c, timeout, 0));
	if (docker_call_path(&call, "/volumes/", name, NULL) ||
	    (force && docker_call_query(&call, "force", "1"))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	rc = docker_call_run(c, &call, what, err);
out:
	docker_call_release(&call);
	return rc;
}
