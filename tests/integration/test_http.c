/* lib/http against the sandbox backend and small local servers run here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <strings.h>
#include <sys/time.h>

#include "http.h"
#include "sandbox_env.h"
#include "timeutil.h"

/* ---- a one-shot HTTP server on a thread: canned response, request kept ---- */

struct canned {
	int lfd;
	int port;
	const char *response;
	size_t response_len;
	int connections;              /* how many to serve before the thread ends */
	char request[16384];          /* the last request, NUL-terminated */
	size_t request_len;
	int served;
	char lines[4][64];            /* request line of each connection served */
	pthread_t thread;
};

static void read_request(int fd, struct canned *s)
{
	size_t want = 0;
	char *hdr_end = NULL;
	ssize_t n;

	s->request_len = 0;
	while (s->request_len < sizeof(s->request) - 1) {
		n = recv(fd, s->request + s->request_len, sizeof(s->request) - 1 - s->request_len, 0);
		if (n <= 0)
			break;
		s->request_len += (size_t)n;
		s->request[s->request_len] = '\0';
		if (!hdr_end) {
			hdr_end = strstr(s->request, "\r\n\r\n");
			if (hdr_end) {
				const char *cl = strcasestr(s->request, "\r\nContent-Length:");

				want = (size_t)(hdr_end + 4 - s->request);
				if (cl && cl < hdr_end)
					want += (size_t)strtoul(cl + 17, NULL, 10);
			}
		}
		if (hdr_end && s->request_len >= want)
			break;
	}
}

static void *canned_main(void *arg)
{
	struct canned *s = arg;
	int i;

	for (i = 0; i < s->connections; i++) {
		size_t off = 0;
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			break;
		read_request(fd, s);
		if (i < 4) {
			size_t n = strcspn(s->request, "\r\n");

			snprintf(s->lines[i], sizeof(s->lines[i]), "%.*s", (int)n, s->request);
		}
		while (off < s->response_len) {
			ssize_t n = send(fd, s->response + off, s->response_len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break; /* the client may stop reading (truncation test) */
			off += (size_t)n;
		}
		shutdown(fd, SHUT_WR);
		close(fd);
		s->served++;
	}
	return NULL;
}

static void canned_start(struct canned *s, const char *response, size_t len, int connections)
{
	struct timeval tv = { 5, 0 };

	memset(s, 0, sizeof(*s));
	s->lfd = test_listen(8, &s->port);
	assert_true(s->lfd >= 0);
	/* accept() gives up after 5 s, so a failed test leaves no thread
	 * blocked for ever (and canned_stop() returns). */
	assert_int_equal(setsockopt(s->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	s->response = response;
	s->response_len = len;
	s->connections = connections;
	assert_int_equal(pthread_create(&s->thread, NULL, canned_main, s), 0);
}

static void canned_stop(struct canned *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

/* ---- tests ---- */

static void test_backend_health(void **state)
{
	struct st_error err = { 0 };
	struct http_result res;
	char url[512];

	(void)state;
	snprintf(url, sizeof(url), "%s/health", sandbox_env("ST_BACKEND_URL"));
	assert_int_equal(http_probe(url, 2, "ok", &res, &err), 0);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.match, HTTP_MATCH_FOUND);
	assert_true(res.latency_s > 0 && res.latency_s < 2);
	assert_non_null(strstr(res.body, "ok"));
	assert_int_equal(strlen(res.body), res.body_len);
	assert_int_equal(res.body_truncated, 0);
	assert_string_equal(res.error, "");
	http_result_release(&res);

	/* No expectation: not asked. */
	assert_int_equal(http_probe(url, 2, NULL, &res, &err), 0);
	assert_int_equal(res.match, HTTP_MATCH_NOT_ASKED);
	http_result_release(&res);
}

static void test_not_found_is_a_result(void **state)
{
	struct st_error err = { 0 };
	struct http_result res;
	char url[512];

	(void)state;
	snprintf(url, sizeof(url), "%s/spilttea-test-no-such-path", sandbox_env("ST_BACKEND_URL"));
	assert_int_equal(http_probe(url, 2, NULL, &res, &err), 0);
	assert_int_equal(res.status, 404);
	assert_string_equal(res.error, "");
	http_result_release(&res);
}

static void test_refused_fast(void **state)
{
	struct st_error err = { 0 };
	struct http_result res;
	char url[256];
	double t0, elapsed;

	(void)state;
	snprintf(url, sizeof(url), "http://user:hunter2@127.0.0.1:%d/health?token=s3cr3t", test_closed_port());
	t0 = time_monotonic();
	assert_int_equal(http_probe(url, 2, "ok", &res, &err), ST_ESERVICE);
	elapsed = time_monotonic() - t0;
	assert_true(elapsed < 0.5);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.match, HTTP_MATCH_MISSING);
	assert_non_null(strstr(res.error, "refused"));
	assert_non_null(strstr(err.message, "refused"));
	assert_non_null(strstr(err.message, "/health'"));
	assert_null(strstr(err.message, "hunter2"));
	assert_null(strstr(err.message, "s3cr3t"));
	assert_non_null(res.body);
	assert_int_equal(res.body_len, 0);
	assert_true(res.latency_s >= 0 && res.latency_s < 0.5);
	http_result_release(&res);
}

static void test_timeout_honoured(void **state)
{
	struct st_error err = { 0 };
	struct http_result res;
	char url[128];
	int lfd, port = 0;
	double t0, elapsed;

	(void)state;
	/* Listening but never accepting: the kernel completes the handshake,
	 * the request goes out, no answer ever comes. */
	lfd = test_listen(8, &port);
	assert_true(lfd >= 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
	t0 = time_monotonic();
	assert_int_equal(http_probe(url, 0.5, NULL, &res, &err), ST_ETIMEOUT);
	elapsed = time_monotonic() - t0;
	assert_true(elapsed >= 0.49 && elapsed < 0.7);
	assert_true(res.latency_s >= 0.49 && res.latency_s < 0.7);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.error, "no response within 0.5s"));
	assert_non_null(strstr(err.message, "no response within 0.5s"));
	http_result_release(&res);
	close(lfd);
}

static void test_body_kept_and_truncated(void **state)
{
	const size_t body_len = 100 * 1024;
	struct st_error err = { 0 };
	struct http_result res;
	struct canned srv;
	char *response = malloc(body_len + 256);
	char url[128];
	int hdr;

	(void)state;
	assert_non_null(response);
	hdr = sprintf(response, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n", body_len);
	memset(response + hdr, 'x', body_len);
	memcpy(response + hdr, "START", 5);
	memcpy(response + hdr + body_len - 3, "END", 3);
	canned_start(&srv, response, (size_t)hdr + body_len, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", srv.port);
	assert_int_equal(http_probe(url, 2, "START", &res, &err), 0);
	canned_stop(&srv);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.body_len, HTTP_BODY_MAX);
	assert_int_equal(res.body_truncated, 1);
	assert_int_equal(strlen(res.body), HTTP_BODY_MAX);
	assert_string_equal(res.content_type, "text/plain");
	assert_int_equal(res.match, HTTP_MATCH_FOUND);
	assert_non_null(strstr(srv.request, "GET /big HTTP/1.1\r\n"));
	http_result_release(&res);

	/* "END" lies beyond the kept 64 KiB: missing. */
	canned_start(&srv, response, (size_t)hdr + body_len, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", srv.port);
	assert_int_equal(http_probe(url, 2, "END", &res, &err), 0);
	canned_stop(&srv);
	assert_int_equal(res.match, HTTP_MATCH_MISSING);
	http_result_release(&res);
	free(response);
}

static void test_body_with_nul_and_server_error(void **state)
{
	static const char response[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 12\r\n"
				       "Connection: close\r\n\r\nab\0cd\"ok\":1}";
	struct st_error err = { 0 };
	struct http_result res;
	struct canned srv;
	char url[128];

	(void)state;
	canned_start(&srv, response, sizeof(response) - 1, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", srv.port);
	assert_int_equal(http_probe(url, 2, "\"ok\"", &res, &err), 0);
	canned_stop(&srv);
	assert_int_equal(res.status, 500); /* a status is a result, not an error */
	assert_int_equal(res.body_len, 12);
	assert_int_equal(res.match, HTTP_MATCH_FOUND); /* found past the NUL byte */
	http_result_release(&res);
}

static void test_no_redirect_no_proxy(void **state)
{
	static const char response[] = "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n"
				       "Connection: close\r\n\r\n";
	struct st_error err = { 0 };
	struct http_result res;
	struct canned srv;
	char url[128], proxy[128];

	(void)state;
	/* A proxy that refuses everything: used, it would fail the probe. */
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", test_closed_port());
	setenv("http_proxy", proxy, 1);
	setenv("HTTP_PROXY", proxy, 1);
	setenv("ALL_PROXY", proxy, 1);
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	canned_start(&srv, response, sizeof(response) - 1, 2);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv.port);
	assert_int_equal(http_probe(url, 1, NULL, &res, &err), 0);
	assert_int_equal(res.status, 302);
	http_result_release(&res);
	assert_int_equal(http_probe(url, 1, NULL, &res, &err), 0);
	assert_int_equal(res.status, 302);
	http_result_release(&res);
	canned_stop(&srv);
	/* Had Location been followed, the second connection would ask for it. */
	assert_int_equal(srv.served, 2);
	assert_string_equal(srv.lines[0], "GET / HTTP/1.1");
	assert_string_equal(srv.lines[1], "GET / HTTP/1.1");
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("ALL_PROXY");
}

static void test_bad_urls(void **state)
{
	struct st_error err = { 0 };
	struct http_result res;
	long status = 7;

	(void)state;
	assert_int_equal(http_probe("file:///etc/passwd", 1, "root", &res, &err), ST_EUSAGE);
	assert_non_null(strstr(res.error, "only http and https"));
	assert_int_equal(res.status, 0);
	http_result_release(&res);
	assert_int_equal(http_probe("not a url", 1, NULL, &res, &err), ST_EUSAGE);
	http_result_release(&res);
	assert_int_equal(http_post_json("gopher://x/secret", "{}", 1, &status, &err), ST_EUSAGE);
	assert_int_equal(status, 0);
}

static void test_post_json(void **state)
{
	static const char ok[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
	static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"
				  "invalid_payload";
	const char *body = "{\"text\":\"backup done\",\"n\":1}";
	struct st_error err = { 0 };
	struct canned srv;
	char url[128];
	long status = 0;

	(void)state;
	canned_start(&srv, ok, sizeof(ok) - 1, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/T000/SECRET-token", srv.port);
	assert_int_equal(http_post_json(url, body, 2, &status, &err), 0);
	canned_stop(&srv);
	assert_int_equal(status, 204);
	assert_non_null(strstr(srv.request, "POST /hooks/T000/SECRET-token HTTP/1.1\r\n"));
	assert_non_null(strcasestr(srv.request, "\r\nContent-Type: application/json\r\n"));
	assert_string_equal(strstr(srv.request, "\r\n\r\n") + 4, body);

	canned_start(&srv, bad, sizeof(bad) - 1, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/T000/SECRET-token", srv.port);
	assert_int_equal(http_post_json(url, body, 2, &status, &err), ST_ESERVICE);
	canned_stop(&srv);
	assert_int_equal(status, 400);
	assert_int_equal(err.http_status, 400);
	assert_non_null(strstr(err.message, "400"));
	assert_non_null(strstr(err.message, "invalid_payload"));
	assert_null(strstr(err.message, "SECRET"));

	/* Nobody there. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/SECRET", test_closed_port());
	assert_int_equal(http_post_json(url, body, 2, &status, &err), ST_ESERVICE);
	assert_int_equal(status, 0);
	assert_null(strstr(err.message, "SECRET"));
}

struct prober {
	char url[512];
	int ok;
};

static void *probe_many(void *arg)
{
	struct prober *p = arg;
	int i;

	for (i = 0; i < 10; i++) {
		struct st_error err = { 0 };
		struct http_result res;

		if (http_probe(p->url, 2, "ok", &res, &err) == 0 && res.status == 200 && res.match == HTTP_MATCH_FOUND)
			p->ok++;
		http_result_release(&res);
	}
	return NULL;
}

static void test_concurrent_probes(void **state)
{
	struct prober probers[6];
	pthread_t threads[6];
	int i;

	(void)state;
	for (i = 0; i < 6; i++) {
		snprintf(probers[i].url, sizeof(probers[i].url), "%s/health", sandbox_env("ST_BACKEND_URL"));
		probers[i].ok = 0;
		assert_int_equal(pthread_create(&threads[i], NULL, probe_many, &probers[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(probers[i].ok, 10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_health),
		cmocka_unit_test(test_not_found_is_a_result),
		cmocka_unit_test(test_refused_fast),
		cmocka_unit_test(test_timeout_honoured),
		cmocka_unit_test(test_body_kept_and_truncated),
		cmocka_unit_test(test_body_with_nul_and_server_error),
		cmocka_unit_test(test_no_redirect_no_proxy),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_post_json),
		cmocka_unit_test(test_concurrent_probes),
	};
	struct st_error err = { 0 };

	if (sandbox_require("ST_BACKEND_URL", (const char *)NULL) != 0)
		return 1;
	/* Before any thread, as main() of the program does. */
	if (http_global_init(&err) != 0) {
		fprintf(stderr, "error: %s\n", err.message);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
