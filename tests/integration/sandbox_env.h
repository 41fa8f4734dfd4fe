/*
 * sandbox_env.h - what integration tests read from the sandbox contract
 * (HACKING.md, "Sandbox contract"), plus small socket helpers for failure
 * cases. Header-only: every function is static inline so a test file uses
 * what it needs without unused-function warnings.
 *
 * main() of an integration test calls sandbox_require(...) first: without
 * the sandbox the test FAILS (exit 1) with a message saying how to get it,
 * it never skips.
 */
#ifndef ST_TEST_SANDBOX_ENV_H
#define ST_TEST_SANDBOX_ENV_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pg.h"
#include "redis.h"

/* Checks ST_SANDBOX_DIR and then each named variable (NULL-terminated
 * list). Prints what is missing on stderr; 0 or -1. */
static inline int sandbox_require(const char *first, ...)
{
	const char *dir = getenv("ST_SANDBOX_DIR");
	const char *name;
	va_list ap;
	int rc = 0;

	if (!dir || !*dir) {
		fprintf(stderr,
			"error: ST_SANDBOX_DIR is not set: integration tests need the sandbox\n"
			"hint: run 'scripts/sandbox up' then 'set -a; . .sandbox/env; set +a' "
			"(scripts/test does both)\n");
		return -1;
	}
	va_start(ap, first);
	for (name = first; name; name = va_arg(ap, const char *)) {
		const char *v = getenv(name);

		if (!v || !*v) {
			fprintf(stderr, "error: %s is not set although ST_SANDBOX_DIR is '%s'\n"
				"hint: re-source %s/env (written by 'scripts/sandbox up')\n", name, dir, dir);
			rc = -1;
		}
	}
	va_end(ap);
	return rc;
}

/* Value of a variable sandbox_require() checked; borrowed. */
static inline const char *sandbox_env(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "";
}

static inline int sandbox_env_int(const char *name)
{
	return atoi(sandbox_env(name));
}

/* Contents of the file the variable file_var names, without the trailing
 * newline; caller frees. NULL (and a message on stderr) when unreadable. */
static inline char *sandbox_read_secret(const char *file_var)
{
	const char *path = sandbox_env(file_var);
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "error: cannot read '%s' (%s): %s\n", path, file_var, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return strdup(buf);
}

/* The sandbox's PostgreSQL. *password is caller-freed and referenced by p. */
static inline int sandbox_pg_params(struct pg_params *p, char **password)
{
	memset(p, 0, sizeof(*p));
	*password = sandbox_read_secret("ST_PG_PASSWORD_FILE");
	if (!*password)
		return -1;
	p->host = sandbox_env("ST_PG_HOST");
	p->port = sandbox_env_int("ST_PG_PORT");
	p->user = sandbox_env("ST_PG_USER");
	p->database = sandbox_env("ST_PG_DATABASE");
	p->password = *password;
	p->connect_timeout_s = 5;
	p->application_name = "spilttea-test";
	return 0;
}

/* The sandbox's Redis. *password is caller-freed and referenced by p. */
static inline int sandbox_redis_params(struct redis_params *p, char **password)
{
	memset(p, 0, sizeof(*p));
	*password = sandbox_read_secret("ST_REDIS_PASSWORD_FILE");
	if (!*password)
		return -1;
	p->host = sandbox_env("ST_REDIS_HOST");
	p->port = sandbox_env_int("ST_REDIS_PORT");
	p->password = *password;
	p->connect_timeout_s = 2;
	p->command_timeout_s = 5;
	return 0;
}

/* A loopback listener on an ephemeral port (*port set); the fd, or -1. */
static inline int test_listen(int backlog, int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* A loopback port nothing listens on (bound, then released): connecting
 * is refused at once. */
static inline int test_closed_port(void)
{
	int port = 0, fd = test_listen(1, &port);

	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

/*
 * A listener whose accept queue is full, so the kernel drops further SYNs
 * and a connect() hangs until the client's own timeout: the way to test
 * connect timeouts on loopback. fillers[] (nfill entries) receive the
 * sockets that fill the queue; close them and the listener after the test.
 */
static inline int test_full_listener(int *port, int *fillers, int nfill)
{
	struct sockaddr_in a;
	int fd = test_listen(0, port), i;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)*port);
	for (i = 0; i < nfill; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fillers[i] >= 0)
			(void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
	}
	usleep(100 * 1000);
	return fd;
}

#endif
