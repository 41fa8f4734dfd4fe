/*
 * container_wait(), the one wait-until-healthy loop (review 2 item 29):
 * unhealthy answers in a row fail fast (fail_after), no answer ends the
 * streak, an interrupt ends the wait at once, the timeout says what was
 * seen last; with a health URL, the one rule of what a healthy answer is
 * (2xx/3xx, a JSON status that says ok), against a scripted HTTP server on
 * 127.0.0.1. No container is involved: a probe or a URL alone decides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "container.h"
#include "http.h"
#include "timeutil.h"

/* ---- a scripted probe -------------------------------------------------- */

struct script {
	const enum container_probe_verdict *v;
	size_t n, next;
	volatile sig_atomic_t *set_on_call;   /* set to 1 at the first call, NULL: never */
};

static enum container_probe_verdict scripted(void *ud, double timeout, struct container_wait_report *r)
{
	struct script *s = ud;
	enum container_probe_verdict v = s->v[s->next < s->n ? s->next : s->n - 1];

	(void)timeout;
	s->next++;
	if (s->set_on_call)
		*s->set_on_call = 1;
	snprintf(r->answer, sizeof(r->answer), "probe %zu said %s", s->next,
		 v == CONTAINER_PROBE_OK ? "ok" : v == CONTAINER_PROBE_BAD ? "bad" : "nothing");
	return v;
}

static struct container_wait_opts opts_with(struct script *s, double timeout, double interval, int fail_after)
{
	struct container_wait_opts o;

	memset(&o, 0, sizeof(o));
	o.probe = scripted;
	o.probe_ud = s;
	o.timeout_s = timeout;
	o.interval_s = interval;
	o.fail_after = fail_after;
	return o;
}

static void test_bad_answers_in_a_row_fail_fast(void **state)
{
	static const enum container_probe_verdict v[] = { CONTAINER_PROBE_BAD };
	struct script s = { v, 1, 0, NULL };
	struct container_wait_opts o = opts_with(&s, 30, 0.01, 3);
	struct container_wait_report rep;
	struct st_error err = { 0 };
	double t0 = time_monotonic();

	(void)state;
	assert_int_equal(container_wait(NULL, NULL, &o, &rep, &err), ST_EFAILED);
	assert_true(time_monotonic() - t0 < 5 * tu_time_scale());
	assert_int_equal(rep.probes, 3);
	assert_int_equal(rep.bad_in_row, 3);
	assert_false(rep.ready);
	if (!strstr(err.message, "probe 3 said bad 3 times in a row (after "))
		fail_msg("message: %s", err.message);
}

static void test_no_answer_ends_the_streak(void **state)
{
	static const enum container_probe_verdict v[] = {
		CONTAINER_PROBE_BAD, CONTAINER_PROBE_BAD, CONTAINER_PROBE_NO_ANSWER,
		CONTAINER_PROBE_BAD, CONTAINER_PROBE_BAD, CONTAINER_PROBE_OK,
	};
	struct script s = { v, 6, 0, NULL };
	struct container_wait_opts o = opts_with(&s, 30, 0.01, 3);
	struct container_wait_report rep;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(container_wait(NULL, NULL, &o, &rep, &err), 0);
	assert_true(rep.ready);
	assert_int_equal(rep.probes, 6);
	assert_int_equal(rep.bad_in_row, 0);
	assert_string_equal(rep.reason, "");
}

/* Without fail_after bad answers are waited out until the timeout, whose
 * message says what was seen last. */
static void test_timeout_says_what_it_saw(void **state)
{
	static const enum container_probe_verdict v[] = { CONTAINER_PROBE_BAD };
	struct script s = { v, 1, 0, NULL };
	struct container_wait_opts o = opts_with(&s, 0.3, 0.05, 0);
	struct container_wait_report rep;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(container_wait(NULL, NULL, &o, &rep, &err), ST_ETIMEOUT);
	assert_true(rep.probes >= 3);
	if (!strstr(err.message, "not ready within") || !strstr(err.message, "said bad: (empty body)"))
		fail_msg("message: %s", err.message);
}

/* An interrupt ends a long wait within the cancellable sleep's 50 ms. */
static void test_interrupt_ends_the_wait(void **state)
{
	static const enum container_probe_verdict v[] = { CONTAINER_PROBE_NO_ANSWER };
	volatile sig_atomic_t cancel = 0;
	struct script s = { v, 1, 0, &cancel };
	struct container_wait_opts o = opts_with(&s, 60, 10, 0);
	struct container_wait_report rep;
	struct st_error err = { 0 };
	double t0 = time_monotonic();

	(void)state;
	o.cancel = &cancel;
	assert_int_equal(container_wait(NULL, NULL, &o, &rep, &err), ST_EABORTED);
	assert_true(time_monotonic() - t0 < 1 * tu_time_scale());
	assert_int_equal(rep.probes, 1);
	assert_non_null(strstr(err.message, "interrupted while waiting for probe 1 said nothing"));
}

static void test_nothing_to_wait_for(void **state)
{
	struct container_wait_opts o;
	struct st_error err = { 0 };

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(container_wait(NULL, NULL, &o, NULL, &err), ST_EUSAGE);
}

/* ---- a scripted HTTP server: one answer per connection ------------------- */

struct server {
	int lfd;
	int port;
	const char *const *answers;
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *sv = arg;
	const char *const *a;

	for (a = sv->answers; *a; a++) {
		char buf[4096];
		int fd = accept(sv->lfd, NULL, NULL);

		if (fd < 0)
			break;
		if (recv(fd, buf, sizeof(buf), 0) > 0 && send(fd, *a, strlen(*a), MSG_NOSIGNAL) < 0)
			perror("send");
		close(fd);
	}
	return NULL;
}

static void server_start(struct server *sv, const char *const *answers)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1;

	memset(sv, 0, sizeof(*sv));
	sv->answers = answers;
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	setsockopt(sv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(sv->lfd, 8), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&sin, &len), 0);
	sv->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void server_stop(struct server *sv)
{
	shutdown(sv->lfd, SHUT_RDWR);
	close(sv->lfd);
	pthread_join(sv->thread, NULL);
}

static const char a500[] = "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 4\r\n\r\nboom";
static const char a200_error[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 18\r\n\r\n{\"status\":\"error\"}";
static const char a200_ok[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";
static const char a302[] = "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
static const char a204[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";

static int wait_url(const char *const *answers, int fail_after, struct container_wait_report *rep,
		    struct st_error *err)
{
	struct server sv;
	struct container_wait_opts o;
	char url[128];
	int rc;

	server_start(&sv, answers);
	snprintf(url, sizeof(url), "http://ops:pa55@127.0.0.1:%d/health?token=t0ken", sv.port);
	memset(&o, 0, sizeof(o));
	o.health_url = url;
	o.timeout_s = 20;
	o.interval_s = 0.01;
	o.fail_after = fail_after;
	rc = container_wait(NULL, NULL, &o, rep, err);
	server_stop(&sv);
	return rc;
}

/* >= 400 and a 200 whose JSON status is not ok are unhealthy answers. */
static void test_url_unhealthy_answers_fail_fast(void **state)
{
	static const char *const answers[] = { a500, a200_error, a500, NULL };
	struct container_wait_report rep;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(wait_url(answers, 3, &rep, &err), ST_EFAILED);
	assert_int_equal(rep.probes, 3);
	assert_int_equal(rep.http_status, 500);
	if (!strstr(err.message, "/health answered 500 3 times in a row (after ") || !strstr(err.message, ": boom"))
		fail_msg("message: %s", err.message);
	/* shown without user:password and query */
	assert_null(strstr(err.message, "pa55"));
	assert_null(strstr(err.message, "t0ken"));
}

/* 2xx and 3xx are healthy (a JSON status, when a 2xx body has one, must say
 * ok): each of these ends the wait at once. */
static void test_url_healthy_answers(void **state)
{
	static const char *const ok[] = { a200_ok, NULL };
	static const char *const redirect[] = { a302, NULL };
	static const char *const empty[] = { a204, NULL };
	static const char *const later[] = { a200_error, a500, a200_ok, NULL };
	const char *const *cases[] = { ok, redirect, empty };
	struct container_wait_report rep;
	struct st_error err = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(wait_url(cases[i], 3, &rep, &err), 0);
		assert_true(rep.ready);
		assert_int_equal(rep.probes, 1);
	}
	assert_int_equal(wait_url(later, 3, &rep, &err), 0);
	assert_int_equal(rep.probes, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_answers_in_a_row_fail_fast),
		cmocka_unit_test(test_no_answer_ends_the_streak),
		cmocka_unit_test(test_timeout_says_what_it_saw),
		cmocka_unit_test(test_interrupt_ends_the_wait),
		cmocka_unit_test(test_nothing_to_wait_for),
		cmocka_unit_test(test_url_unhealthy_answers_fail_fast),
		cmocka_unit_test(test_url_healthy_answers),
	};
	struct st_error err = { 0 };

	if (http_global_init(&err) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
