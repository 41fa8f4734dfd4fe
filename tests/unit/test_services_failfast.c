/*
 * services_set_fail_fast (diagnose) against local sockets, no service: a
 * port that refuses and a port that accepts (in the kernel's backlog) but
 * never answers. The first PostgreSQL or Redis connect waits or fails as
 * always; with fail fast the next ones fail at once with ST_EUNREACHABLE
 * quoting it; without, each tries again. What counts is err->unreachable,
 * set where the connection is made, never the message: a server whose
 * refusal says "connection refused" is there, and a dead peer is dead
 * whatever its message says. http.probe's host:ports likewise. The real
 * stack behind black holes: tests/integration/test_timeouts.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "failfast.h"
#include "http.h"
#include "services.h"
#include "testutil.h"
#include "timeutil.h"

/* A TCP socket on 127.0.0.1 with a free port; listening or not. */
static int local_port(int listening, long *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (listening)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void config_at(struct st_config *cfg, long pg_port, long redis_port)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->postgres.host = "127.0.0.1";
	cfg->postgres.port = pg_port;
	cfg->postgres.user = "spilttea";
	cfg->postgres.database = "spilttea";
	cfg->postgres.connect_timeout = 1;
	cfg->postgres.statement_timeout = 1;
	cfg->redis.host = "127.0.0.1";
	cfg->redis.port = redis_port;
	cfg->redis.timeout = 0.3;
}

static void test_refused(void **state)
{
	struct st_config cfg;
	struct services s;
	struct pg_conn *pg = NULL;
	struct redis_conn *rd = NULL;
	struct st_error err = { 0 };
	long port;
	int fd = local_port(0, &port);

	(void)state;
	config_at(&cfg, port, port);
	services_init(&s, &cfg);
	/* Off: every call tries again. */
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_null(pg);
	services_set_fail_fast(&s, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "refused"));
	assert_int_equal(err.unreachable, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_EUNREACHABLE);
	assert_true(!strncmp(err.message, "postgres unreachable: cannot connect to postgres at '127.0.0.1:", 63));
	assert_non_null(strstr(err.message, "refused"));
	assert_non_null(strstr(err.hint, "spilttea-ops health"));
	assert_null(pg);
	assert_int_equal(services_redis(&s, &rd, &err), ST_ESERVICE);
	assert_int_equal(services_redis(&s, &rd, &err), ST_EUNREACHABLE);
	assert_true(!strncmp(err.message, "redis unreachable: cannot connect to redis at '127.0.0.1:", 57));
	assert_null(rd);
	/* Turning it off (or on again) forgets. */
	services_set_fail_fast(&s, 0);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	services_release(&s);
	close(fd);
}

static void test_no_answer(void **state)
{
	struct st_config cfg;
	struct services s;
	struct pg_conn *pg = NULL;
	struct redis_conn *rd = NULL;
	struct st_error err = { 0 };
	double t0;
	long port;
	int fd = local_port(1, &port);

	(void)state;
	config_at(&cfg, port, port);
	services_init(&s, &cfg);
	services_set_fail_fast(&s, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ETIMEOUT);
	assert_int_equal(err.unreachable, 1);
	t0 = time_monotonic();
	assert_int_equal(services_pg(&s, &pg, &err), ST_EUNREACHABLE);
	assert_int_equal(services_pg(&s, &pg, &err), ST_EUNREACHABLE);
	assert_true(time_monotonic() - t0 < 0.2 * tu_time_scale());
	assert_non_null(strstr(err.message, "postgres unreachable: cannot connect to postgres at '127.0.0.1:"));
	assert_non_null(strstr(err.message, "no answer within 1s"));
	assert_int_equal(services_redis(&s, &rd, &err), ST_ETIMEOUT);
	t0 = time_monotonic();
	assert_int_equal(services_redis(&s, &rd, &err), ST_EUNREACHABLE);
	assert_true(time_monotonic() - t0 < 0.2 * tu_time_scale());
	assert_non_null(strstr(err.message, "redis unreachable: "));
	/* A new run's services start afresh. */
	services_release(&s);
	services_init(&s, &cfg);
	services_set_fail_fast(&s, 1);
	assert_int_equal(services_redis(&s, &rd, &err), ST_ETIMEOUT);
	services_release(&s);
	close(fd);
}

/* The rule alone: only a failure flagged unreachable is remembered, what
 * its message says does not matter. */
static void test_flag_not_message(void **state)
{
	struct st_down d;
	struct st_error e = { 0 }, out = { 0 };

	(void)state;
	st_down_reset(&d, 1);
	st_error_set(&e, ST_ESERVICE, "cannot connect to redis at 'x': connection refused");
	st_down_note(&d, &e);
	assert_int_equal(st_down_check(&d, "redis", &out), 0);
	st_error_set(&e, ST_ESERVICE, "cannot connect to postgres at 'x': something no one matches on");
	st_error_hint(&e, "look");
	st_error_mark_unreachable(&e);
	st_error_wrap(&e, "while checking");
	assert_int_equal(e.unreachable, 1);
	st_down_note(&d, &e);
	assert_int_equal(st_down_check(&d, "postgres", &out), ST_EUNREACHABLE);
	assert_string_equal(out.message,
			    "postgres unreachable: while checking: cannot connect to postgres at 'x': something no one matches on");
	assert_string_equal(out.hint, "look");
	/* Off: nothing is remembered. */
	st_down_reset(&d, 0);
	st_down_note(&d, &e);
	assert_int_equal(st_down_check(&d, "postgres", &out), 0);
	/* st_error_set starts afresh. */
	st_error_set(&e, ST_EIO, "x");
	assert_int_equal(e.unreachable, 0);
	assert_int_equal(st_text_quotes_unreachable_errno("could not connect: Connection refused"), 1);
	assert_int_equal(st_text_quotes_unreachable_errno("connection refused by policy"), 0);
}

/* A server on 127.0.0.1 that answers every connection the same way and
 * closes: Redis (one error reply), PostgreSQL (declines SSL/GSS, then a
 * FATAL ErrorResponse to the startup packet) or HTTP (one response). */
enum fake_kind { FAKE_REDIS, FAKE_PG, FAKE_HTTP };

struct fake {
	int fd;
	long port;
	enum fake_kind kind;
	const char *say;
	pthread_t thread;
};

static int read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void pg_answer(int c, const char *say)
{
	unsigned char hdr[8], rest[1024], msg[600];
	uint32_t len, code, n;
	size_t m = 0, sl = strlen(say);

	for (;;) {
		if (read_full(c, hdr, 8))
			return;
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
		code = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
		if (code == 80877103 || code == 80877104) { /* SSLRequest, GSSENCRequest */
			if (write(c, "N", 1) != 1)
				return;
			continue;
		}
		if (len < 8 || len - 8 > sizeof(rest) || read_full(c, rest, len - 8))
			return;
		break;
	}
	msg[m++] = 'E';
	m += 4;
	memcpy(msg + m, "SFATAL\0VFATAL\0C28000\0M", 22);
	m += 22;
	memcpy(msg + m, say, sl + 1);
	m += sl + 1;
	msg[m++] = '\0';
	n = (uint32_t)(m - 1);
	msg[1] = (unsigned char)(n >> 24);
	msg[2] = (unsigned char)(n >> 16);
	msg[3] = (unsigned char)(n >> 8);
	msg[4] = (unsigned char)n;
	/* No cmocka assert here: this runs in the fake's thread. A short
	 * write shows in the test thread as a connect error other than the
	 * one it expects. */
	if (write(c, msg, m) != (ssize_t)m)
		return;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char buf[4096];
	int c;

	while ((c = accept(f->fd, NULL, NULL)) >= 0) {
		if (f->kind == FAKE_PG) {
			pg_answer(c, f->say);
		} else if (read(c, buf, sizeof(buf)) > 0) {
			/* One read holds a Redis command or a small GET. */
			if (write(c, f->say, strlen(f->say)) < 0)
				break;
		}
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, enum fake_kind kind, const char *say)
{
	f->fd = local_port(1, &f->port);
	f->kind = kind;
	f->say = say;
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	pthread_join(f->thread, NULL);
	close(f->fd);
}

/* Servers that turn us away with "refused" in their words are there: fail
 * fast must not take them for down. */
static void test_refusing_server_is_not_down(void **state)
{
	struct st_config cfg;
	struct services s;
	struct pg_conn *pg = NULL;
	struct redis_conn *rd = NULL;
	struct st_error err = { 0 };
	struct fake fpg, frd;

	(void)state;
	fake_start(&fpg, FAKE_PG, "no pg_hba.conf entry for host \"127.0.0.1\": Connection refused");
	fake_start(&frd, FAKE_REDIS, "-ERR Connection refused by the ACL policy\r\n");
	config_at(&cfg, fpg.port, frd.port);
	setenv("ST_TEST_FAILFAST_PW", "pw", 1);
	cfg.redis.password.kind = CONFIG_SECRET_ENV;
	cfg.redis.password.ref = "ST_TEST_FAILFAST_PW";
	cfg.redis.password.key = "redis.password_env";
	services_init(&s, &cfg);
	services_set_fail_fast(&s, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "Connection refused"));
	assert_int_equal(err.unreachable, 0);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_null(pg);
	assert_int_equal(services_redis(&s, &rd, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "refused"));
	assert_int_equal(err.unreachable, 0);
	assert_int_equal(services_redis(&s, &rd, &err), ST_ESERVICE);
	assert_null(rd);
	services_release(&s);
	fake_stop(&fpg);
	fake_stop(&frd);
	unsetenv("ST_TEST_FAILFAST_PW");
}

/* A missing Unix socket (Redis) or socket directory (PostgreSQL) is a
 * service that is not there. */
static void test_no_socket(void **state)
{
	struct st_config cfg;
	struct services s;
	struct pg_conn *pg = NULL;
	struct redis_conn *rd = NULL;
	struct st_error err = { 0 };
	char *dir = tu_mkdtemp(), sock[512];

	(void)state;
	config_at(&cfg, 5432, 6379);
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	cfg.postgres.host = dir;
	cfg.redis.socket = sock;
	services_init(&s, &cfg);
	services_set_fail_fast(&s, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_ESERVICE);
	assert_int_equal(err.unreachable, 1);
	assert_int_equal(services_pg(&s, &pg, &err), ST_EUNREACHABLE);
	assert_true(!strncmp(err.message, "postgres unreachable: cannot connect to postgres at '", 53));
	assert_int_equal(services_redis(&s, &rd, &err), ST_ESERVICE);
	assert_int_equal(err.unreachable, 1);
	assert_int_equal(services_redis(&s, &rd, &err), ST_EUNREACHABLE);
	assert_non_null(strstr(err.message, "redis unreachable: cannot connect to redis at '"));
	services_release(&s);
	tu_rmtree(dir);
	free(dir);
}

/* http.probe: a host:port that refused or did not answer is not probed
 * again in the run (any path); one that answered, even 500, is; another
 * port is; off, each probe goes out. */
static void test_http_probe(void **state)
{
	struct http_down_set set;
	struct http_result res;
	struct st_error err = { 0 };
	struct fake f500;
	char url[128], url2[128];
	long dead, deaf;
	int fd_dead = local_port(0, &dead), fd_deaf = local_port(1, &deaf);
	double t0;

	(void)state;
	http_down_reset(&set, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/health", dead);
	snprintf(url2, sizeof(url2), "http://127.0.0.1:%ld/", dead);
	assert_int_equal(http_probe_failfast(&set, url, 2, NULL, &res, &err), ST_ESERVICE);
	assert_int_equal(err.unreachable, 1);
	assert_string_equal(res.error, "connection refused");
	http_result_release(&res);
	assert_int_equal(http_probe_failfast(&set, url2, 2, "ok", &res, &err), ST_EUNREACHABLE);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.match, HTTP_MATCH_MISSING);
	assert_non_null(res.body);
	assert_non_null(strstr(res.url, "http://127.0.0.1:"));
	assert_non_null(strstr(res.error, " unreachable: connection refused"));
	assert_non_null(strstr(err.message, " unreachable: request to 'http://127.0.0.1:"));
	http_result_release(&res);

	/* No status line within the timeout: the next one returns at once. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/health", deaf);
	assert_int_equal(http_probe_failfast(&set, url, 0.3, NULL, &res, &err), ST_ETIMEOUT);
	http_result_release(&res);
	t0 = time_monotonic();
	assert_int_equal(http_probe_failfast(&set, url, 0.3, NULL, &res, &err), ST_EUNREACHABLE);
	assert_true(time_monotonic() - t0 < 0.1 * tu_time_scale());
	assert_non_null(strstr(res.error, "unreachable: no response within 0.3s"));
	http_result_release(&res);

	/* An answer, whatever it is, means the server is there. */
	fake_start(&f500, FAKE_HTTP, "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/health", f500.port);
	assert_int_equal(http_probe_failfast(&set, url, 2, NULL, &res, &err), 0);
	assert_int_equal(res.status, 500);
	http_result_release(&res);
	assert_int_equal(http_probe_failfast(&set, url, 2, NULL, &res, &err), 0);
	http_result_release(&res);
	fake_stop(&f500);

	/* Off (and forgetting): the dead port is asked again. */
	http_down_reset(&set, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/health", dead);
	assert_int_equal(http_probe_failfast(&set, url, 2, NULL, &res, &err), ST_ESERVICE);
	http_result_release(&res);
	assert_int_equal(http_probe_failfast(&set, url, 2, NULL, &res, &err), ST_ESERVICE);
	http_result_release(&res);
	assert_int_equal(http_probe_failfast(NULL, url, 2, NULL, &res, &err), ST_ESERVICE);
	http_result_release(&res);
	close(fd_dead);
	close(fd_deaf);
}

/* Probing ahead: deaf ports cost one timeout together, then their probes
 * fail at once; a port that answers is probed as usual. */
static void test_http_probe_ahead(void **state)
{
	struct http_down_set set;
	struct http_result res;
	struct st_error err = { 0 };
	struct fake f500;
	char u1[128], u2[128], u3[128], u4[128];
	const char *urls[4] = { u1, u2, u3, u4 };
	const double timeouts[4] = { 0.5, 0.5, 0.5, 2 };
	long p1, p2;
	int fd1 = local_port(1, &p1), fd2 = local_port(1, &p2);
	double t0;

	(void)state;
	fake_start(&f500, FAKE_HTTP, "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
	snprintf(u1, sizeof(u1), "http://127.0.0.1:%ld/health", p1);
	snprintf(u2, sizeof(u2), "http://127.0.0.1:%ld/", p2);
	snprintf(u3, sizeof(u3), "http://127.0.0.1:%ld/other", p1);
	snprintf(u4, sizeof(u4), "http://127.0.0.1:%ld/", f500.port);
	/* Off: nothing is sent. */
	http_down_reset(&set, 0);
	t0 = time_monotonic();
	http_probe_ahead(&set, urls, timeouts, 4);
	assert_true(time_monotonic() - t0 < 0.2 * tu_time_scale());
	http_down_reset(&set, 1);
	t0 = time_monotonic();
	http_probe_ahead(&set, urls, timeouts, 4);
	assert_true(time_monotonic() - t0 >= 0.45);
	assert_true(time_monotonic() - t0 < 0.9 * tu_time_scale());
	assert_int_equal(set.n, 2);
	t0 = time_monotonic();
	assert_int_equal(http_probe_failfast(&set, u1, 0.5, NULL, &res, &err), ST_EUNREACHABLE);
	http_result_release(&res);
	assert_int_equal(http_probe_failfast(&set, u2, 0.5, NULL, &res, &err), ST_EUNREACHABLE);
	assert_non_null(strstr(res.error, "unreachable: no response within 0.5s"));
	http_result_release(&res);
	assert_true(time_monotonic() - t0 < 0.2 * tu_time_scale());
	assert_int_equal(http_probe_failfast(&set, u4, 2, NULL, &res, &err), 0);
	assert_int_equal(res.status, 500);
	http_result_release(&res);
	fake_stop(&f500);
	close(fd1);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_no_answer),
		cmocka_unit_test(test_flag_not_message),
		cmocka_unit_test(test_refusing_server_is_not_down),
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_http_probe),
		cmocka_unit_test(test_http_probe_ahead),
	};

	http_global_init(NULL);

	return cmocka_run_group_tests(tests, NULL, NULL);
}
