/*
 * The Docker client's HTTP path against a scripted fake daemon on a Unix
 * socket: host selection, connection failures (fast, with hints), timeouts,
 * version negotiation, error bodies and status mapping, request paths and
 * query encoding, exec over libcurl and over the hijacked connection. The
 * real daemon is exercised in tests/integration/test_docker.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "docker.h"
#include "engine.h"
#include "services.h"
#include "sbuf.h"
#include "testutil.h"
#include "timeutil.h"

/* ---- the fake daemon: one scripted answer per connection ---- */

#define HIJACK_COUNT "@hijack-count" /* 101, read stdin to EOF, answer its size in a frame */
#define EXEC_STREAM "@exec-stream"   /* 200 raw-stream, framed output, no length: until close */
#define HIJACK_CLOSE "@hijack-close" /* 101, stop reading stdin, one frame, close */
#define HIJACK_SILENT "@hijack-silent" /* 101, then nothing for 2 s, close */
#define STREAM_STALL "@stream-stall" /* 200, one frame, then nothing until the client leaves (5 s at most) */
#define BUILD_STALL "@build-stall"   /* 200, one progress line, then the same */

struct fake {
	char dir[64];
	char path[100];
	char host[160];
	int lfd;
	pthread_t thread;
	const char *const *answers;
	struct sbuf requests;     /* every request head and body, in order */
	pthread_mutex_t lock;
};

#define VERSION_143 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n" \
		    "{\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\"}\n"

static void send_str(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Reads one request (head and Content-Length body) into req. */
static void read_request(int fd, struct sbuf *req)
{
	char buf[4096];
	char *end = NULL;
	long clen = 0;

	while (!end) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			return;
		sbuf_append(req, buf, (size_t)n);
		end = strstr(req->buf, "\r\n\r\n");
	}
	{
		const char *cl = strcasestr(req->buf, "content-length:");

		if (cl && cl < end)
			clen = strtol(cl + 15, NULL, 10);
	}
	while ((long)(req->len - (size_t)(end + 4 - req->buf)) < clen) {
		size_t off = (size_t)(end - req->buf);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			return;
		sbuf_append(req, buf, (size_t)n);
		end = req->buf + off;
	}
}

static void hijack_count(int fd)
{
	static const char head[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
				   "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
	unsigned char frame[64];
	char buf[65536], text[48];
	unsigned long long total = 0;
	ssize_t n;
	int len;

	send_str(fd, head, sizeof(head) - 1);
	/* A first stderr frame before reading anything, split in two writes. */
	send_str(fd, "\x02\x00\x00\x00\x00\x00\x00\x06", 8);
	send_str(fd, "ready\n", 6);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += (unsigned long long)n;
	len = snprintf(text, sizeof(text), "got %llu\n", total);
	memcpy(frame, "\x01\x00\x00\x00\x00\x00\x00", 7);
	frame[7] = (unsigned char)len;
	memcpy(frame + 8, text, (size_t)len);
	send_str(fd, (const char *)frame, 8 + (size_t)len);
}

static void exec_stream(int fd)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n";
	static const char body[] = "\x01\x00\x00\x00\x00\x00\x00\x06" "hello\n"
				   "\x02\x00\x00\x00\x00\x00\x00\x05" "oops\n"
				   "\x01\x00\x00\x00\x00\x00\x00\x00"
				   "\x01\x00\x00\x00\x00\x00\x00\x03" "bye";

	send_str(fd, head, sizeof(head) - 1);
	/* In two writes, cutting a frame header. */
	send_str(fd, body, 20);
	usleep(10000);
	send_str(fd, body + 20, sizeof(body) - 1 - 20);
}

static void hijack_close(int fd)
{
	static const char head[] = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

	send_str(fd, head, sizeof(head) - 1);
	/* The process is gone and reads no more stdin (the client's next write
	 * gets EPIPE), but its last output is still on the way. */
	shutdown(fd, SHUT_RD);
	usleep(200 * 1000);
	send_str(fd, "\x01\x00\x00\x00\x00\x00\x00\x03" "bye", 11);
}

static void hijack_silent(int fd)
{
	static const char head[] = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";

	send_str(fd, head, sizeof(head) - 1);
	/* A command that prints nothing for a long time. */
	usleep(2000 * 1000);
}

/* Headers and the start of a body, then silence: a daemon that hangs
 * mid-stream. Ends when the client hangs up. */
static void stream_stall(int fd, const char *first, size_t len)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n";
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];

	send_str(fd, head, sizeof(head) - 1);
	send_str(fd, first, len);
	while (poll(&p, 1, 5000) > 0 && recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (const char *const *a = f->answers; *a; a++) {
		struct sbuf req = SBUF_INIT;
		int fd = accept(f->lfd, NULL, NULL);

		if (fd < 0)
			break;
		read_request(fd, &req);
		pthread_mutex_lock(&f->lock);
		sbuf_append(&f->requests, req.buf ? req.buf : "", req.len);
		sbuf_puts(&f->requests, "\n----\n");
		pthread_mutex_unlock(&f->lock);
		if (!strcmp(*a, HIJACK_COUNT))
			hijack_count(fd);
		else if (!strcmp(*a, EXEC_STREAM))
			exec_stream(fd);
		else if (!strcmp(*a, HIJACK_CLOSE))
			hijack_close(fd);
		else if (!strcmp(*a, HIJACK_SILENT))
			hijack_silent(fd);
		else if (!strcmp(*a, STREAM_STALL))
			stream_stall(fd, "\x01\x00\x00\x00\x00\x00\x00\x06" "hello\n", 14);
		else if (!strcmp(*a, BUILD_STALL))
			stream_stall(fd, "{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\r\n", 40);
		else
			send_str(fd, *a, strlen(*a));
		close(fd);
		sbuf_release(&req);
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *const *answers, int listen_too)
{
	struct sockaddr_un sun;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->dir, sizeof(f->dir), "/tmp/st-test-docker-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/docker.sock", f->dir);
	snprintf(f->host, sizeof(f->host), "unix://%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (listen_too)
		assert_int_equal(listen(f->lfd, 16), 0);
	f->answers = answers;
	if (answers)
		assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	if (f->answers)
		pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	sbuf_release(&f->requests);
	pthread_mutex_destroy(&f->lock);
}

/* ---- tests ---- */

static void test_host_selection(void **state)
{
	struct docker_client *c = NULL;
	struct st_error err;
	char longpath[200];

	(void)state;
	assert_int_equal(docker_client_new("tcp://127.0.0.1:2375", &c, &err), ST_ECONFIG);
	assert_null(c);
	assert_non_null(strstr(err.message, "only unix:// sockets"));
	assert_non_null(strstr(err.hint, "unix:///var/run/docker.sock"));
	assert_int_equal(docker_client_new("unix://", &c, &err), ST_ECONFIG);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memcpy(longpath, "unix:///", 8);
	assert_int_equal(docker_client_new(longpath, &c, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "too long"));

	setenv("DOCKER_HOST", "unix:///tmp/from-env.sock", 1);
	assert_int_equal(docker_client_new(NULL, &c, &err), 0);
	assert_string_equal(docker_client_host(c), "unix:///tmp/from-env.sock");
	docker_client_free(c);
	/* The configured host wins over the environment. */
	assert_int_equal(docker_client_new("unix:///tmp/from-config.sock", &c, &err), 0);
	assert_string_equal(docker_client_host(c), "unix:///tmp/from-config.sock");
	docker_client_free(c);
	setenv("DOCKER_HOST", "ssh://host", 1);
	assert_int_equal(docker_client_new("", &c, &err), ST_ECONFIG);
	unsetenv("DOCKER_HOST");
	assert_int_equal(docker_client_new(NULL, &c, &err), 0);
	assert_string_equal(docker_client_host(c), DOCKER_DEFAULT_HOST);
	docker_client_free(c);
}

static void test_missing_socket_fails_fast(void **state)
{
	struct docker_client *c = NULL;
	struct st_error err;
	json_t *j = NULL;
	double t0;

	(void)state;
	assert_int_equal(docker_client_new("unix:///tmp/st-no-such-dir/docker.sock", &c, &err), 0);
	t0 = time_monotonic();
	assert_int_equal(docker_ping(c, 30, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "cannot ping docker: cannot connect to docker at "
				"'/tmp/st-no-such-dir/docker.sock': no such socket"));
	assert_non_null(strstr(err.hint, "is dockerd running?"));
	assert_int_equal(err.http_status, 0);
	assert_int_equal(docker_container_inspect(c, "web", 30, &j, &err), ST_ESERVICE);
	assert_null(j);
	assert_non_null(strstr(err.message, "cannot inspect container 'web': "));
	assert_non_null(strstr(err.message, "no such socket"));
	assert_true(time_monotonic() - t0 < 1.0 * tu_time_scale());
	docker_client_free(c);
}

static void test_refused_and_timeout(void **state)
{
	struct docker_client *c = NULL;
	struct st_error err;
	struct fake f;
	double t0;

	(void)state;
	/* Bound but not listening: connection refused. */
	fake_start(&f, NULL, 0);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_ping(c, 30, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "connection refused"));
	assert_non_null(strstr(err.hint, "dockerd"));
	docker_client_free(c);
	fake_stop(&f);
	/* Listening but never answering: the deadline holds. */
	fake_start(&f, NULL, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	t0 = time_monotonic();
	assert_int_equal(docker_ping(c, 0.3, &err), ST_ETIMEOUT);
	assert_true(time_monotonic() - t0 < 1.5 * tu_time_scale());
	assert_non_null(strstr(err.message, "cannot ping docker: docker did not finish within 0.3s"));
	/* The client default applies when the call passes 0. */
	docker_client_set_timeouts(c, 0.2, 0);
	t0 = time_monotonic();
	assert_int_equal(docker_ping(c, DOCKER_TIMEOUT_DEFAULT, &err), ST_ETIMEOUT);
	assert_true(time_monotonic() - t0 < 1.5 * tu_time_scale());
	/* A versioned call waits once for /version; after that timeout the
	 * client does not ask a hung daemon again: the next call fails at once. */
	{
		json_t *out = NULL;
		double first, second;

		t0 = time_monotonic();
		assert_int_equal(docker_container_inspect(c, "x", DOCKER_TIMEOUT_DEFAULT, &out, &err), ST_ETIMEOUT);
		first = time_monotonic() - t0;
		assert_true(first >= 0.15 && first < 1.5 * tu_time_scale());
		assert_non_null(strstr(err.message, "docker did not finish within 0.2s"));
		t0 = time_monotonic();
		assert_int_equal(docker_container_inspect(c, "y", DOCKER_TIMEOUT_DEFAULT, &out, &err), ST_ETIMEOUT);
		second = time_monotonic() - t0;
		assert_true(second < 0.1 * tu_time_scale());
		assert_non_null(strstr(err.message, "docker did not finish within 0.2s (earlier in this run; not asked again)"));
		assert_non_null(strstr(err.hint, "_ping"));
		assert_null(out);
	}
	docker_client_free(c);
	fake_stop(&f);
}

/* Fail fast (diagnose): after one request got no answer, the next fail at
 * once with ST_EUNREACHABLE quoting it, unversioned or not; turning it off
 * forgets it. A refused socket counts too. */
static void test_fail_fast(void **state)
{
	static const char *const refusing[] = {
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 32\r\n\r\n{\"message\":\"connection refused\"}",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 32\r\n\r\n{\"message\":\"connection refused\"}",
		NULL,
	};
	struct docker_client *c = NULL;
	struct st_error err;
	json_t *out = NULL;
	struct fake f;
	double t0;

	(void)state;
	fake_start(&f, NULL, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_fail_fast(c, 1);
	assert_int_equal(docker_ping(c, 0.3, &err), ST_ETIMEOUT);
	assert_int_equal(err.unreachable, 1);
	t0 = time_monotonic();
	assert_int_equal(docker_ping(c, 0.3, &err), ST_EUNREACHABLE);
	assert_string_equal(err.message, "docker unreachable: cannot ping docker: docker did not finish within 0.3s");
	assert_int_equal(docker_container_inspect(c, "x", 0.3, &out, &err), ST_EUNREACHABLE);
	assert_true(time_monotonic() - t0 < 0.2 * tu_time_scale());
	assert_null(out);
	docker_client_set_fail_fast(c, 0);
	t0 = time_monotonic();
	assert_int_equal(docker_ping(c, 0.3, &err), ST_ETIMEOUT);
	assert_true(time_monotonic() - t0 >= 0.25);
	assert_int_equal(docker_ping(c, 0.3, &err), ST_ETIMEOUT);
	docker_client_free(c);
	fake_stop(&f);
	/* Refused: remembered with its hint. */
	fake_start(&f, NULL, 0);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_fail_fast(c, 1);
	assert_int_equal(docker_ping(c, 30, &err), ST_ESERVICE);
	assert_int_equal(err.unreachable, 1);
	assert_int_equal(docker_container_inspect(c, "x", 30, &out, &err), ST_EUNREACHABLE);
	assert_non_null(strstr(err.message, "docker unreachable: cannot ping docker: "));
	assert_non_null(strstr(err.message, "connection refused"));
	assert_non_null(strstr(err.hint, "dockerd"));
	docker_client_free(c);
	fake_stop(&f);
	/* A daemon that answers, even with an error that says "refused", is
	 * there: asked again. */
	fake_start(&f, refusing, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_fail_fast(c, 1);
	assert_int_equal(docker_ping(c, 30, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "connection refused"));
	assert_int_equal(err.unreachable, 0);
	assert_int_equal(docker_ping(c, 30, &err), ST_ESERVICE);
	assert_int_equal(err.http_status, 500);
	docker_client_free(c);
	fake_stop(&f);
}

static void test_permission_denied(void **state)
{
	struct fake f;
	pid_t pid;
	int status = -1;

	(void)state;
	fake_start(&f, NULL, 1);
	assert_int_equal(chmod(f.path, 0), 0);
	/* In a child that is not root (root would pass the permission check). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct docker_client *c = NULL;
		struct st_error err;
		int ok;

		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(3);
		if (docker_client_new(f.host, &c, &err))
			_exit(4);
		ok = docker_ping(c, 5, &err) == ST_ESERVICE && strstr(err.message, "permission denied") &&
		     strstr(err.hint, "'docker' group");
		if (!ok)
			fprintf(stderr, "got: %s / %s\n", err.message, err.hint);
		docker_client_free(c);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fake_stop(&f);
}

static void test_errors_and_paths(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n"
		"{\"message\":\"No such container: nope\"}\n\n\n\n\n",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 409 Conflict\r\nContent-Length: 24\r\n\r\n{\"message\": conflict!!!}",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
		"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n"
		"{\"Id\":\"c0ffee\",\"Warnings\":[]}",
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n"
		"{\"Error\":null,\"StatusCode\":137}\n\n\n\n\n\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"broken\"",
		NULL,
	};
	static const char *const names[] = { "^/web$", NULL };
	static const char *const labels[] = { "app=spilt tea", NULL };
	struct docker_container_filter filter = { .all = 1, .names = names, .labels = labels };
	struct docker_client *c = NULL;
	struct st_error err;
	struct fake f;
	json_t *j = NULL, *config;
	char *id = NULL, version[16];
	int status = -1;

	(void)state;
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_client_negotiate(c, version, sizeof(version), &err), 0);
	assert_string_equal(version, "1.43");
	assert_int_equal(docker_container_inspect(c, "nope", 0, &j, &err), ST_ENOTFOUND);
	assert_null(j);
	assert_int_equal(err.http_status, 404);
	assert_string_equal(err.message, "cannot inspect container 'nope': No such container: nope");
	assert_int_equal(docker_container_remove(c, "web", 1, 1, 0, &err), ST_ESERVICE);
	assert_int_equal(err.http_status, 500);
	assert_string_equal(err.message, "cannot remove container 'web': docker answered HTTP 500 without a message");
	assert_int_equal(docker_container_rename(c, "web", "web-old", 0, &err), ST_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_string_equal(err.message, "cannot rename container 'web' to 'web-old': {\"message\": conflict!!!}");
	assert_int_equal(docker_container_start(c, "web", 0, &err), 0);
	assert_int_equal(docker_container_stop(c, "web", 3, 0, &err), 0);
	assert_int_equal(docker_container_list(c, &filter, 0, &j, &err), 0);
	assert_true(json_is_array(j));
	json_decref(j);
	config = json_pack("{s:s,s:{s:s,s:b}}", "Image", "busybox", "HostConfig", "NetworkMode", "host", "Init", 1);
	assert_int_equal(docker_container_create(c, "spilt tea", config, 0, &id, &err), 0);
	assert_string_equal(id, "c0ffee");
	assert_int_equal(docker_container_wait(c, "web", NULL, DOCKER_TIMEOUT_NONE, &status, &err), 0);
	assert_int_equal(status, 137);
	assert_int_equal(docker_info(c, 0, &j, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "cannot read docker info: docker answered malformed JSON"));
	assert_int_equal(err.http_status, 200);
	docker_client_free(c);
	fake_stop(&f);

	free(id);
	json_decref(config);
}

static void test_request_lines(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
		"HTTP/1.1 201 Created\r\nContent-Length: 13\r\n\r\n{\"Id\":\"abc\"}\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
		NULL,
	};
	static const char *const names[] = { "^/web$", NULL };
	static const char *const labels[] = { "app=spilt tea", NULL };
	struct docker_container_filter filter = { .all = 1, .names = names, .labels = labels };
	struct docker_client *c = NULL;
	struct st_error err;
	struct fake f;
	json_t *j = NULL, *config = json_pack("{s:s}", "Image", "busybox");
	char *id = NULL;
	const char *r;

	(void)state;
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_container_list(c, &filter, 0, &j, &err), 0);
	assert_int_equal(docker_container_create(c, "spilt/tea", config, 0, &id, &err), 0);
	assert_int_equal(docker_container_stop(c, "web", 7, 0, &err), 0);
	assert_int_equal(docker_ping(c, 0, &err), 0);
	docker_client_free(c);
	pthread_join(f.thread, NULL);
	f.answers = NULL;
	r = sbuf_str(&f.requests);
	assert_non_null(strstr(r, "GET /version HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "GET /v1.43/containers/json?all=1&filters="
				"%7B%22name%22%3A%5B%22%5E%2Fweb%24%22%5D%2C%22label%22%3A%5B%22app%3Dspilt%20tea%22%5D%7D"
				" HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "POST /v1.43/containers/create?name=spilt%2Ftea HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(r, "\r\n\r\n{\"Image\":\"busybox\"}"));
	assert_non_null(strstr(r, "POST /v1.43/containers/web/stop?t=7 HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "GET /_ping HTTP/1.1\r\n"));
	assert_null(strstr(r, "Expect:"));
	fake_stop(&f);
	free(id);
	json_decref(j);
	json_decref(config);
}

static void test_version_refused(void **state)
{
	static const char *const old[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n{\"ApiVersion\":\"1.40\",\"MinAPIVersion\":\"1.12\"}\n",
		NULL,
	};
	struct docker_client *c = NULL;
	struct st_error err;
	struct fake f;
	json_t *j = NULL;

	(void)state;
	fake_start(&f, old, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_info(c, 0, &j, &err), ST_ESERVICE);
	assert_string_equal(err.message, "cannot read docker info: docker speaks API 1.40, too old: "
			    "spilttea-ops needs 1.41 or newer");
	assert_non_null(strstr(err.hint, "upgrade the docker engine"));
	docker_client_free(c);
	fake_stop(&f);
}

struct outputs {
	struct sbuf out, err;
};

static int to_out(void *ud, const char *data, size_t len)
{
	return sbuf_append(&((struct outputs *)ud)->out, data, len);
}

static int to_err(void *ud, const char *data, size_t len)
{
	return sbuf_append(&((struct outputs *)ud)->err, data, len);
}

static void test_exec_over_curl(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e1\"}\n",
		/* Like dockerd: no length, the body runs until the connection closes. */
		EXEC_STREAM,
		"HTTP/1.1 200 OK\r\nContent-Length: 49\r\n\r\n{\"ID\":\"e1\",\"Running\":false,\"ExitCode\":3,\"Pid\":1}\n",
		NULL,
	};
	static const char *const argv[] = { "sh", "-c", "echo hello; echo oops >&2; exit 3", NULL };
	static const char *const env[] = { "PGPASSWORD=x", NULL };
	struct docker_client *c = NULL;
	struct st_error err;
	struct outputs o;
	struct fake f;
	int code = -1;
	const char *r;

	(void)state;
	memset(&o, 0, sizeof(o));
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_exec_run(c, "db", argv, env, "postgres", to_out, to_err, &o, &code, &err), 0);
	assert_int_equal(code, 3);
	assert_string_equal(sbuf_str(&o.out), "hello\nbye");
	assert_string_equal(sbuf_str(&o.err), "oops\n");
	docker_client_free(c);
	pthread_join(f.thread, NULL);
	f.answers = NULL;
	r = sbuf_str(&f.requests);
	assert_non_null(strstr(r, "POST /v1.43/containers/db/exec HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "\"Cmd\":[\"sh\",\"-c\",\"echo hello; echo oops >&2; exit 3\"]"));
	assert_non_null(strstr(r, "\"Env\":[\"PGPASSWORD=x\"]"));
	assert_non_null(strstr(r, "\"User\":\"postgres\""));
	assert_non_null(strstr(r, "\"AttachStdin\":false"));
	assert_non_null(strstr(r, "\"Tty\":false"));
	assert_non_null(strstr(r, "POST /v1.43/exec/e1/start HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "{\"Detach\":false,\"Tty\":false}"));
	assert_non_null(strstr(r, "GET /v1.43/exec/e1/json HTTP/1.1\r\n"));
	fake_stop(&f);
	sbuf_release(&o.out);
	sbuf_release(&o.err);
}

struct feed {
	size_t left;
};

static ssize_t feed_read(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct feed *fd = ud;
	size_t n = fd->left < cap ? fd->left : cap;

	(void)err;
	memset(buf, 'z', n);
	fd->left -= n;
	return (ssize_t)n;
}

static ssize_t feed_fail(void *ud, void *buf, size_t cap, struct st_error *err)
{
	(void)ud;
	(void)buf;
	(void)cap;
	return st_error_set(err, ST_EIO, "cannot read 'dump.sql': disk on fire");
}

static void test_exec_stdin_hijack(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e2\"}\n",
		HIJACK_COUNT,
		"HTTP/1.1 200 OK\r\nContent-Length: 34\r\n\r\n{\"Running\":false,\"ExitCode\":0}\n\n\n\n",
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e3\"}\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 39\r\n\r\n{\"message\":\"No such exec instance: e3\"}",
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e4\"}\n",
		HIJACK_COUNT,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e5\"}\n",
		HIJACK_CLOSE,
		"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"Running\":false,\"ExitCode\":0}",
		NULL,
	};
	static const char *const argv[] = { "wc", "-c", NULL };
	struct docker_exec_opts opts;
	struct docker_exec_result res;
	struct docker_client *c = NULL;
	struct st_error err;
	struct outputs o;
	struct feed in = { 3 * 1000 * 1000 + 17 };
	struct fake f;
	const char *r;

	(void)state;
	memset(&o, 0, sizeof(o));
	memset(&opts, 0, sizeof(opts));
	opts.argv = argv;
	opts.on_stdout = to_out;
	opts.on_stderr = to_err;
	opts.ud = &o;
	opts.stdin_read = feed_read;
	opts.stdin_ud = &in;
	opts.timeout = 20;
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	/* All of stdin arrives, and EOF (our shutdown) ends the peer's read. */
	assert_int_equal(docker_exec(c, "db", &opts, &res, &err), 0);
	assert_int_equal(res.exit_code, 0);
	assert_true(res.stdin_complete);
	assert_int_equal(res.stdin_bytes, 3000017);
	assert_string_equal(sbuf_str(&o.out), "got 3000017\n");
	assert_string_equal(sbuf_str(&o.err), "ready\n");
	/* An error answer instead of the upgrade. */
	in.left = 10;
	assert_int_equal(docker_exec(c, "db", &opts, &res, &err), ST_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_string_equal(err.message, "cannot run 'wc' in container 'db': No such exec instance: e3");
	/* A failing reader fails the call with its own error. */
	opts.stdin_read = feed_fail;
	assert_int_equal(docker_exec(c, "db", &opts, &res, &err), ST_EIO);
	assert_string_equal(err.message, "cannot run 'wc' in container 'db': cannot read 'dump.sql': disk on fire");
	assert_false(res.stdin_complete);
	/* The peer goes away while we write: EPIPE, not SIGPIPE (which would
	 * kill this test), and the output that came is delivered. */
	assert_true(signal(SIGPIPE, SIG_DFL) == SIG_DFL);
	sbuf_reset(&o.out);
	in.left = 50 * 1000 * 1000;
	opts.stdin_read = feed_read;
	assert_int_equal(docker_exec(c, "db", &opts, &res, &err), 0);
	assert_false(res.stdin_complete);
	assert_true(in.left > 0);
	assert_string_equal(sbuf_str(&o.out), "bye");
	docker_client_free(c);
	pthread_join(f.thread, NULL);
	f.answers = NULL;
	r = sbuf_str(&f.requests);
	assert_non_null(strstr(r, "\"AttachStdin\":true"));
	assert_non_null(strstr(r, "POST /v1.43/exec/e2/start HTTP/1.1\r\n"));
	assert_non_null(strstr(r, "Connection: Upgrade\r\nUpgrade: tcp\r\n"));
	fake_stop(&f);
	sbuf_release(&o.out);
	sbuf_release(&o.err);
}

static volatile sig_atomic_t cancel_flag;

/* When cancel_later sets cancel_flag: 0.2 s after the fake F received a
 * request containing SEEN (at once when F is NULL; after 30 s at the
 * latest); the time it did in AT. */
struct cancel_when {
	struct fake *f;
	const char *seen;
	double at;
};

static void *cancel_later(void *arg)
{
	struct cancel_when *w = arg;
	int seen = !w->f, i;

	for (i = 0; !seen && i < 3000; i++) {
		pthread_mutex_lock(&w->f->lock);
		seen = strstr(sbuf_str(&w->f->requests), w->seen) != NULL;
		pthread_mutex_unlock(&w->f->lock);
		if (!seen)
			time_sleep(0.01);
	}
	time_sleep(0.2);
	w->at = time_monotonic();
	cancel_flag = 1;
	return NULL;
}

/* Ctrl-C reaches a call that waits on the daemon (review item 5): a request
 * the daemon does not answer, and an exec (stdin over the hijacked
 * connection, no timeout) that prints nothing. Each ends soon after the
 * cancel, measured from the cancel: on a loaded machine the calls
 * before it may take longer than a fixed 0.2 s, and the exec's cancel must
 * land once it has started (before, nothing may still run). */
static void test_cancel_interrupts_waiting_calls(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e9\"}\n",
		HIJACK_SILENT,
		NULL,
	};
	static const char *const argv[] = { "sleep", "1000", NULL };
	struct docker_exec_opts opts;
	struct docker_exec_result res;
	struct docker_client *c = NULL;
	struct st_error err;
	struct feed in = { 0 };
	struct cancel_when w = { 0 };
	struct fake f;
	pthread_t t;
	double t1;
	int rc;

	(void)state;
	/* Listening, never answering: only the cancel can end the wait. */
	fake_start(&f, NULL, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_cancel(c, &cancel_flag);
	cancel_flag = 0;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &w), 0);
	rc = docker_ping(c, 30, &err);
	t1 = time_monotonic();
	pthread_join(t, NULL);
	assert_int_equal(rc, ST_EABORTED);
	/* libcurl calls the progress callback (which sees the cancel) about
	 * once a second while nothing moves: 2 s, where the timeout is 30. */
	if (t1 - w.at >= 2.0 * tu_time_scale())
		fail_msg("the ping ended %.2f s after the cancel", t1 - w.at);
	assert_string_equal(err.message, "cannot ping docker: interrupted");
	/* Already cancelled: nothing is sent. */
	assert_int_equal(docker_ping(c, 30, &err), ST_EABORTED);
	docker_client_free(c);
	fake_stop(&f);

	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_cancel(c, &cancel_flag);
	cancel_flag = 0;
	memset(&opts, 0, sizeof(opts));
	opts.argv = argv;
	opts.stdin_read = feed_read;
	opts.stdin_ud = &in;
	opts.timeout = DOCKER_TIMEOUT_NONE;
	w.f = &f;
	w.seen = "/exec/e9/start";
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &w), 0);
	rc = docker_exec(c, "db", &opts, &res, &err);
	t1 = time_monotonic();
	pthread_join(t, NULL);
	assert_int_equal(rc, ST_EABORTED);
	if (t1 - w.at >= 1.0 * tu_time_scale())
		fail_msg("the exec ended %.2f s after the cancel", t1 - w.at);
	assert_non_null(strstr(err.message, "interrupted"));
	assert_non_null(strstr(err.message, "may still be running"));
	docker_client_free(c);
	fake_stop(&f);
}

/* A timed-out exec says that the command may still run in the container. */
static void test_exec_timeout_says_it_may_still_run(void **state)
{
	static const char *const answers[] = {
		VERSION_143,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e8\"}\n",
		HIJACK_SILENT,
		NULL,
	};
	static const char *const argv[] = { "sleep", "1000", NULL };
	struct docker_exec_opts opts;
	struct docker_exec_result res;
	struct docker_client *c = NULL;
	struct st_error err;
	struct feed in = { 0 };
	struct fake f;

	(void)state;
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	memset(&opts, 0, sizeof(opts));
	opts.argv = argv;
	opts.stdin_read = feed_read;
	opts.stdin_ud = &in;
	/* The deadline covers the requests before the stream too: 1.5 s, so
	 * that on a loaded machine they are surely answered in time (with
	 * 0.3 s the upgrade's answer could be what timed out) and the silent
	 * stream (2 s from the upgrade on) is what the deadline cuts. */
	opts.timeout = 1.5;
	assert_int_equal(docker_exec(c, "db", &opts, &res, &err), ST_ETIMEOUT);
	assert_string_equal(err.message, "cannot run 'sleep' in container 'db': not finished within 1.5s "
			    "(the command may still be running in the container)");
	docker_client_free(c);
	fake_stop(&f);
}

static int count_lines(void *ud, const struct docker_log_line *line, struct st_error *err)
{
	(void)line;
	(void)err;
	(*(int *)ud)++;
	return 0;
}

static ssize_t tiny_context(void *ud, void *buf, size_t cap, struct st_error *err)
{
	int *sent = ud;

	(void)err;
	if (*sent || cap < 512)
		return 0;
	memset(buf, 0, 512);
	*sent = 1;
	return 512;
}

#define INSPECT_NO_TTY "HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"Config\":{\"Tty\":false}}"

/* Streams whose daemon sends headers and a first piece, then nothing: log
 * reads stall after the request timeout (or their own idle_timeout), exec
 * and build streams after the client's stream idle timeout; each fails
 * with what stalled, for how long, and the setting to raise. */
static void test_stalled_streams(void **state)
{
	static const char *const logs_answers[] = {
		VERSION_143, INSPECT_NO_TTY, STREAM_STALL, INSPECT_NO_TTY, STREAM_STALL, NULL,
	};
	static const char *const exec_answers[] = {
		VERSION_143,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e1\"}\n",
		STREAM_STALL,
		"HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{\"Id\":\"e2\"}\n",
		HIJACK_SILENT,
		NULL,
	};
	static const char *const build_answers[] = { VERSION_143, BUILD_STALL, NULL };
	static const char *const argv[] = { "pg_dump", "app", NULL };
	static const char *const tags[] = { "web:1", NULL };
	struct docker_client *c = NULL;
	struct docker_logs_opts lo;
	struct docker_exec_opts eo;
	struct docker_build_opts bo;
	struct st_error err;
	struct outputs out;
	struct feed in = { 0 };
	char *image = NULL;
	struct fake f;
	int lines = 0, sent = 0;
	double t0, el;

	(void)state;
	/* Logs: the request timeout (0.5s) is the idle default. */
	fake_start(&f, logs_answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_timeouts(c, 0.5, 0);
	memset(&lo, 0, sizeof(lo));
	lo.timeout = 60;
	t0 = time_monotonic();
	assert_int_equal(docker_container_logs(c, "web", &lo, count_lines, &lines, &err), ST_ETIMEOUT);
	el = time_monotonic() - t0;
	assert_true(el >= 0.45 && el < 3 * tu_time_scale());
	assert_int_equal(lines, 1);
	assert_string_equal(err.message, "cannot read logs of container 'web': stalled: no data from docker for 0.5s");
	assert_non_null(strstr(err.hint, "raise docker.timeout"));
	assert_int_equal(err.http_status, 200);
	/* Its own idle timeout: no setting to name. */
	lo.idle_timeout = 0.3;
	assert_int_equal(docker_container_logs(c, "web", &lo, count_lines, &lines, &err), ST_ETIMEOUT);
	assert_non_null(strstr(err.message, "stalled: no data from docker for 0.3s"));
	assert_null(strstr(err.hint, "raise"));
	docker_client_free(c);
	fake_stop(&f);

	/* Exec, over libcurl and over the hijacked connection: the stream idle. */
	memset(&out, 0, sizeof(out));
	fake_start(&f, exec_answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_stream_idle(c, 0.4, "docker.stream_idle_timeout");
	memset(&eo, 0, sizeof(eo));
	eo.argv = argv;
	eo.on_stdout = to_out;
	eo.ud = &out;
	t0 = time_monotonic();
	assert_int_equal(docker_exec(c, "db", &eo, NULL, &err), ST_ETIMEOUT);
	el = time_monotonic() - t0;
	assert_true(el >= 0.35 && el < 3 * tu_time_scale());
	assert_string_equal(sbuf_str(&out.out), "hello\n");
	assert_string_equal(err.message, "cannot run 'pg_dump' in container 'db': stalled: no data from docker "
			    "for 0.4s (the command may still be running in the container)");
	assert_non_null(strstr(err.hint, "raise docker.stream_idle_timeout"));
	eo.stdin_read = feed_read;
	eo.stdin_ud = &in;
	t0 = time_monotonic();
	assert_int_equal(docker_exec(c, "db", &eo, NULL, &err), ST_ETIMEOUT);
	el = time_monotonic() - t0;
	assert_true(el >= 0.35 && el < 1.8 * tu_time_scale());
	assert_non_null(strstr(err.message, "stalled: no data from docker for 0.4s"));
	docker_client_free(c);
	fake_stop(&f);
	sbuf_release(&out.out);

	/* Build progress. */
	fake_start(&f, build_answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	docker_client_set_stream_idle(c, 0.4, "docker.stream_idle_timeout");
	memset(&bo, 0, sizeof(bo));
	bo.tags = tags;
	t0 = time_monotonic();
	assert_int_equal(docker_image_build(c, &bo, tiny_context, &sent, &image, &err), ST_ETIMEOUT);
	el = time_monotonic() - t0;
	assert_true(el >= 0.35 && el < 3 * tu_time_scale());
	assert_null(image);
	assert_non_null(strstr(err.message, "stalled: no data from docker for 0.4s"));
	docker_client_free(c);
	fake_stop(&f);
}

/* Waiting for a health URL that does not answer: reason and message show
 * the URL without user:password and query (review item 15). */
static void test_wait_ready_hides_url_secrets(void **state)
{
	static const char inspect[] =
		"{\"Name\":\"/web\",\"Id\":\"abc\",\"State\":{\"Status\":\"running\",\"Running\":true,"
		"\"StartedAt\":\"2026-01-01T00:00:00Z\"},\"Config\":{\"Image\":\"busybox\"},\"Image\":\"sha\"}";
	char ok[600];
	const char *answers[] = { VERSION_143, ok, NULL };
	struct container_wait_report rep;
	struct docker_client *c = NULL;
	struct st_error err = { 0 };
	struct fake f;

	(void)state;
	snprintf(ok, sizeof(ok), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s", sizeof(inspect) - 1, inspect);
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(container_wait_ready(c, "web", "http://ops:pa55word@127.0.0.1:1/health?token=t0ken",
					      0.2, 1, &rep, &err), ST_ETIMEOUT);
	assert_null(strstr(err.message, "pa55word"));
	assert_null(strstr(err.message, "t0ken"));
	assert_null(strstr(rep.reason, "pa55word"));
	assert_null(strstr(rep.reason, "t0ken"));
	assert_string_equal(rep.url, "http://127.0.0.1:1/health");
	assert_non_null(strstr(rep.reason, "GET http://127.0.0.1:1/health: no response"));
	docker_client_free(c);
	fake_stop(&f);
}

/* Runs a built-in action against the fake daemon through a services
 * struct that holds only the docker client. */
static int run_action(struct docker_client *c, const char *name, const char *json, json_t **result,
		      struct st_error *err)
{
	struct engine_registry *reg = NULL;
	const struct engine_action *a;
	struct services svc;
	struct engine_call call;
	json_t *raw = json_loads(json, 0, NULL), *args = NULL;
	int rc;

	*result = NULL;
	assert_int_equal(engine_registry_new(1, &reg, err), 0);
	assert_non_null(a = engine_registry_find(reg, name));
	memset(&svc, 0, sizeof(svc));
	svc.docker = c;
	memset(&call, 0, sizeof(call));
	call.phase = ENGINE_PHASE_ACT;
	call.services = &svc;
	rc = engine_args_prepare(a, raw, &args, err);
	if (rc == 0)
		rc = a->run(&call, args, result, err);
	json_decref(raw);
	json_decref(args);
	engine_registry_free(reg);
	return rc;
}

/* The container stopped; reading its state back failed. The stop happened,
 * so the step succeeded (its undo must run if the run fails later), and
 * the result says the state is unknown (review item 10). */
static void test_stop_succeeds_when_state_unreadable(void **state)
{
	static const char inspect[] =
		"{\"Name\":\"/web\",\"Id\":\"abc\",\"State\":{\"Status\":\"running\",\"Running\":true,"
		"\"StartedAt\":\"2026-01-01T00:00:00Z\"},\"Config\":{\"Image\":\"busybox\"},\"Image\":\"sha\"}";
	char ok[600];
	const char *answers[] = {
		VERSION_143, ok, "HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 25\r\n\r\n{\"message\":\"daemon busy\"}",
		NULL,
	};
	struct docker_client *c = NULL;
	struct st_error err = { 0 };
	json_t *r = NULL;
	struct fake f;

	(void)state;
	snprintf(ok, sizeof(ok), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s", sizeof(inspect) - 1, inspect);
	fake_start(&f, answers, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(run_action(c, "docker.stop", "{\"container\":\"web\"}", &r, &err), 0);
	assert_true(json_is_true(json_object_get(r, "state_unknown")));
	assert_true(json_is_true(json_object_get(r, "was_running")));
	assert_string_equal(json_string_value(json_object_get(r, "container")), "web");
	assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "daemon busy"));
	json_decref(r);
	docker_client_free(c);
	assert_non_null(strstr(sbuf_str(&f.requests), "POST /v1.43/containers/web/stop"));
	fake_stop(&f);
}

/* A DELETE answered "removal ... already in progress" (our own earlier
 * request that timed out client-side, still running in the daemon) waits
 * until the container is gone and succeeds; still there at the deadline is
 * a timeout the deploy undo may retry, not the daemon's refusal. */
#define CONFLICT_IN_PROGRESS                                                                       \
	"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 61\r\n\r\n"   \
	"{\"message\":\"removal of container web is already in progress\"}"
#define INSPECT_STILL_THERE                                                                        \
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n"         \
	"{\"Id\":\"abc\",\"Name\":\"/web\"}"
#define INSPECT_GONE                                                                               \
	"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n"  \
	"{\"message\":\"No such container: web\"}"

static void test_remove_waits_for_removal_in_progress(void **state)
{
	const char *gone[] = { VERSION_143, CONFLICT_IN_PROGRESS, INSPECT_STILL_THERE, INSPECT_GONE, NULL };
	const char *stuck[] = { VERSION_143, CONFLICT_IN_PROGRESS, INSPECT_STILL_THERE, INSPECT_STILL_THERE,
				INSPECT_STILL_THERE, INSPECT_STILL_THERE, INSPECT_STILL_THERE,
				INSPECT_STILL_THERE, INSPECT_STILL_THERE, INSPECT_STILL_THERE, NULL };
	const char *refused[] = { VERSION_143,
				  "HTTP/1.1 409 Conflict\r\nContent-Length: 57\r\n\r\n"
				  "{\"message\":\"You cannot remove a running container web. \"}",
				  NULL };
	struct docker_client *c = NULL;
	struct st_error err = { 0 };
	struct fake f;
	const char *reqs;

	(void)state;
	fake_start(&f, gone, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_container_remove(c, "web", 1, 0, 5, &err), 0);
	assert_int_equal(err.code, 0);
	docker_client_free(c);
	c = NULL;
	reqs = sbuf_str(&f.requests);
	assert_non_null(strstr(reqs, "DELETE /v1.43/containers/web?force=1"));
	assert_non_null(strstr(reqs, "GET /v1.43/containers/web/json"));
	fake_stop(&f);

	/* Never gone: a timeout without an HTTP status, naming the conflict. */
	fake_start(&f, stuck, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_container_remove(c, "web", 1, 0, 1, &err), ST_ETIMEOUT);
	assert_int_equal(err.http_status, 0);
	assert_non_null(strstr(err.message, "already in progress"));
	assert_non_null(strstr(err.message, "still there after 1.0s"));
	docker_client_free(c);
	c = NULL;
	/* the fake still waits for its unused answers: wake its accept() */
	shutdown(f.lfd, SHUT_RDWR);
	fake_stop(&f);

	/* Any other conflict is the daemon's refusal, unchanged. */
	fake_start(&f, refused, 1);
	assert_int_equal(docker_client_new(f.host, &c, &err), 0);
	assert_int_equal(docker_container_remove(c, "web", 0, 0, 5, &err), ST_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_non_null(strstr(err.message, "cannot remove a running container"));
	docker_client_free(c);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_selection),
		cmocka_unit_test(test_missing_socket_fails_fast),
		cmocka_unit_test(test_refused_and_timeout),
		cmocka_unit_test(test_fail_fast),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_errors_and_paths),
		cmocka_unit_test(test_request_lines),
		cmocka_unit_test(test_version_refused),
		cmocka_unit_test(test_exec_over_curl),
		cmocka_unit_test(test_exec_stdin_hijack),
		cmocka_unit_test(test_stop_succeeds_when_state_unreadable),
		cmocka_unit_test(test_cancel_interrupts_waiting_calls),
		cmocka_unit_test(test_exec_timeout_says_it_may_still_run),
		cmocka_unit_test(test_stalled_streams),
		cmocka_unit_test(test_wait_ready_hides_url_secrets),
		cmocka_unit_test(test_remove_waits_for_removal_in_progress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
