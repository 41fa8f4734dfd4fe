/*
 * services_set_fail_fast (diagnose) against local sockets, no service: a
 * port that refuses and a port that accepts (in the kernel's backlog) but
 * never answers. The first PostgreSQL or Redis connect waits or fails as
 * always; with fail fast the next ones fail at once with ST_EUNREACHABLE
 * quoting it; without, each tries again. The real stack behind black
 * holes: tests/integration/test_timeouts.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_no_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
