/*
 * cmd_health.c - `spilttea-ops health`: the runbook's "Monitoring and
 * Alerts" as one command. lib/health_checks.c does the work; this file
 * parses options, prints or writes the rendering and maps the worst status
 * to the Nagios exit code.
 *
 * Exit codes follow the Nagios plugin convention, also for failures of the
 * command itself: a configuration error, a bad option or an output file
 * that cannot be written is UNKNOWN (3), and with --format nagios/json/
 * prometheus the configuration error is still reported in that format (a
 * monitoring system reads stdout, a textfile collector reads the file).
 */
#include "cmd.h"
#include "version.h"
#include "../lib/atomic_file.h"
#include "../lib/config.h"
#include "../lib/health.h"
#include "../lib/health_checks.h"
#include "../lib/timeutil.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --watch stops when this many checks it gave up on still hang: each round
 * would add a thread (and a connection) for each of them. */
#define WATCH_MAX_STUCK 16

static const char usage[] =
	"usage: spilttea-ops health [--check NAME]... [--format FMT] [--output FILE]\n"
	"                           [--watch SECONDS] [-q | -v]\n"
	"\n"
	"Runs every \"Monitoring and Alerts\" check at once, each with its own deadline\n"
	"(health.timeout), against the configured thresholds.\n"
	"\n"
	"  --check NAME     a check id, or its group ('postgres'); repeatable\n"
	"  --format FMT     text (default), json, nagios, prometheus\n"
	"  --output FILE    write atomically, mode 0644 (node_exporter textfile)\n"
	"  --watch SECONDS  run again every SECONDS until interrupted (SIGINT, SIGTERM,\n"
	"                   SIGHUP end it after the round in progress, with its status)\n"
	"  -q               text: one status line, and only when not all is OK\n"
	"  -v               details (top queries, last error lines); nagios: long output\n"
	"\n"
	"checks (man spilttea-ops-health says what each one measures):\n"
	"  backend.health  backend.error_rate  frontend.reachable\n"
	"  container.NAME  container_cpu.NAME  container_memory.NAME\n"
	"  postgres.reachable .connections .longest_query .longest_transaction .size\n"
	"  redis.reachable .memory .clients .evictions\n"
	"  disk.docker_root  disk.backup_dir  docker.df\n"
	"\n"
	"exit status (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN: the worst check\n"
	"(CRITICAL > WARNING > UNKNOWN > OK); configuration or usage errors are 3.\n"
	"\n"
	"examples:\n"
	"  spilttea-ops health\n"
	"  spilttea-ops health --check redis --check postgres.connections -v\n"
	"  spilttea-ops health --format nagios\n"
	"  spilttea-ops health --format prometheus --output /var/lib/prom/st.prom\n"
	"  spilttea-ops health --watch 10\n";

/* Usage errors exit UNKNOWN like every other failure of a plugin. */
static int health_usage_error(const struct ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int health_usage_error(const struct ctx *ctx, const char *fmt, ...)
{
	char msg[ST_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmd_usage_error(ctx, "%s", msg);
	return NAGIOS_UNKNOWN;
}

static int emit(const char *text, const char *output, const struct ctx *ctx)
{
	struct st_error err;

	if (!output) {
		fputs(text, stdout);
		fflush(stdout);
		return 0;
	}
	st_error_clear(&err);
	if (atomic_file_write_all(output, text, strlen(text), 0644, &err) != 0) {
		cmd_print_error(ctx, &err);
		return -1;
	}
	return 0;
}

int cmd_health(int argc, char **argv, struct ctx *ctx)
{
	const char **select = NULL;
	const char *output = NULL;
	enum health_format fmt;
	struct health_render_opts ro;
	struct health_report rep;
	struct st_error err;
	double watch = 0;
	size_t n_select = 0;
	struct cmd_signals sig;
	volatile sig_atomic_t *stop = NULL;
	int status = NAGIOS_UNKNOWN, i, gave_up = 0;

	memset(&rep, 0, sizeof(rep));
	st_error_clear(&err);
	/* hiredis writes with write(): a Redis that closes the connection
	 * under us must be a CRITICAL check, not a plugin killed by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	select = calloc((size_t)argc + 1, sizeof(*select));
	if (!select) {
		fputs("error: out of memory\n", stderr);
		return NAGIOS_UNKNOWN;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			status = NAGIOS_OK;
			goto out;
		}
		if (!strncmp(a, "--check=", 8) || !strncmp(a, "--output=", 9) ||
		    !strncmp(a, "--watch=", 8)) {
			val = strchr(a, '=') + 1;
		} else if (!strcmp(a, "--check") || !strcmp(a, "--output") || !strcmp(a, "--watch")) {
			if (i + 1 >= argc) {
				status = health_usage_error(ctx, "option '%s' needs a value", a);
				goto out;
			}
			val = argv[++i];
		} else {
			status = health_usage_error(ctx, "%s '%s'",
						    a[0] == '-' ? "unknown option" : "unexpected argument", a);
			goto out;
		}
		if (!strncmp(a, "--check", 7)) {
			if (!*val) {
				status = health_usage_error(ctx, "--check needs a check id or prefix");
				goto out;
			}
			select[n_select++] = val;
		} else if (!strncmp(a, "--output", 8)) {
			output = val;
		} else if (time_parse_duration(val, &watch) != 0 || watch < 0.5) {
			status = health_usage_error(ctx, "--watch '%s' is not a duration of at least 0.5s", val);
			goto out;
		}
	}
	if (health_format_parse(ctx->format, &fmt) != 0) {
		status = health_usage_error(ctx, "unknown format '%s' (text, json, nagios, prometheus)",
					    ctx->format);
		goto out;
	}
	memset(&ro, 0, sizeof(ro));
	ro.color = ctx->color_stdout && !output && fmt == HEALTH_FORMAT_TEXT;
	ro.verbose = ctx->verbose;
	ro.tool_version = ST_VERSION;
	/* --watch ends on a signal after the round in progress (bounded by
	 * health.timeout), so --output never leaves a temporary file behind and
	 * the exit status is the last round's. A second signal kills. */
	if (watch > 0)
		stop = cmd_signals_catch(&sig);

	for (;;) {
		double t0 = time_monotonic();
		char *text;
		int rc;

		if (!ctx->config) {
			/* main handed us the configuration error to report ourselves */
			rc = health_report_config_error(&rep, ctx->config_error);
			if (ctx->config_error)
				cmd_print_error(ctx, ctx->config_error);
		} else {
			rc = health_check_run(ctx->config, n_select ? select : NULL, &rep, &err);
			if (rc == ST_EUSAGE) {
				cmd_print_error(ctx, &err);
				status = NAGIOS_UNKNOWN;
				goto out;
			}
		}
		if (rep.abandoned)
			gave_up = 1;
		if (!rc && watch > 0 && health_abandoned_running() > WATCH_MAX_STUCK) {
			st_error_set(&err, ST_ETIMEOUT, "%zu health checks still hang past their timeout; "
				     "--watch stops rather than start more", health_abandoned_running());
			st_error_hint(&err, "find them with 'spilttea-ops health -v' and fix the service");
			cmd_print_error(ctx, &err);
			status = NAGIOS_UNKNOWN;
			goto out;
		}
		if (rc) {
			if (!err.message[0])
				st_error_set(&err, rc, "out of memory");
			cmd_print_error(ctx, &err);
			status = NAGIOS_UNKNOWN;
			goto out;
		}
		status = rep.status;
		if (ctx->quiet && fmt == HEALTH_FORMAT_TEXT) {
			/* -q: nothing when all is OK, else the one status line */
			text = rep.status == HEALTH_OK ? strdup("") : health_render_nagios(&rep, NULL);
			if (text && strstr(text, " | "))
				strcpy(strstr(text, " | "), "\n");
		} else {
			text = health_render(&rep, fmt, &ro);
		}
		if (!text) {
			fputs("error: out of memory rendering the health report\n", stderr);
			status = NAGIOS_UNKNOWN;
			goto out;
		}
		if (watch > 0 && !output && ctx->stdout_tty)
			fputs("\033[H\033[2J", stdout);
		if (emit(text, output, ctx) != 0)
			status = NAGIOS_UNKNOWN;
		free(text);
		health_report_release(&rep);
		if (watch <= 0 || !ctx->config || *stop)
			break;
		if (watch > time_monotonic() - t0 &&
		    time_sleep_cancellable(watch - (time_monotonic() - t0), stop) != 0)
			break;
		if (*stop)
			break;
	}
out:
	if (stop)
		cmd_signals_restore(&sig);
	health_report_release(&rep);
	free(select);
	/* A check given up on may still be inside OpenSSL: exit()'s atexit
	 * cleanup would pull its state away (a crash, exit 139, in place of
	 * the Nagios status), also one just ending (OpenSSL's thread-exit
	 * handlers). Nothing else is left to do: flush and go. */
	if (gave_up || health_abandoned_running() > 0) {
		fflush(stdout);
		fflush(stderr);
		_exit(status);
	}
	return status;
}
