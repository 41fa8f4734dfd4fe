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

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: spilttea-ops health [--check NAME]... [--format FMT] [--output FILE]\n"
	"                           [--watch SECONDS] [-v]\n"
	"\n"
	"Runs every check of the runbook's \"Monitoring and Alerts\" at once, each with\n"
	"its own deadline (health.timeout, default 5s), against the thresholds of\n"
	"\"Key Metrics to Monitor\" (thresholds: in the configuration).\n"
	"\n"
	"options:\n"
	"  --check NAME     only checks whose id is NAME or starts with NAME.\n"
	"                   (repeatable; 'postgres' selects every postgres.* check)\n"
	"  --format FMT     text (default), json, nagios, prometheus\n"
	"  --output FILE    write the output to FILE atomically, mode 0644 (for\n"
	"                   node_exporter's textfile directory); nothing on stdout\n"
	"  --watch SECONDS  run again every SECONDS until interrupted\n"
	"  -v               details (top queries, container facts); Nagios long output\n"
	"  -q               text: nothing when all is OK, else one status line\n"
	"\n"
	"checks (ids):\n"
	"  backend.health                200 and {\"status\":\"ok\"}, latency (api_response_seconds)\n"
	"  backend.error_rate            log lines with \"error\" in health.log_window (error_rate_percent)\n"
	"  frontend.reachable            2xx/3xx, latency (api_response_seconds)\n"
	"  container.<name>              running, Docker health, restarts since the last run\n"
	"  container_cpu.<name>          CPU%, 100 = one core (container_cpu_percent)\n"
	"  container_memory.<name>       memory without file cache, of limit (container_memory_percent)\n"
	"  postgres.reachable            connect and query, latency\n"
	"  postgres.connections          of max_connections - reserved (db_connections_percent)\n"
	"  postgres.longest_query        longest active query (top 5 with -v)\n"
	"  postgres.longest_transaction  oldest open transaction (top 5 with -v)\n"
	"  postgres.size                 database size\n"
	"  redis.reachable               connect, AUTH, INFO, latency\n"
	"  redis.memory                  used_memory of maxmemory (redis_memory_percent)\n"
	"  redis.clients                 connected clients\n"
	"  redis.evictions               evicted keys; WARNING when they grew since the last run\n"
	"  disk.docker_root              Docker's data root filesystem (disk_percent)\n"
	"  disk.backup_dir               backup.dir's filesystem (disk_percent)\n"
	"  docker.df                     images, containers, volumes, build cache; reclaimable\n"
	"\n"
	"exit status (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN - the worst\n"
	"check (CRITICAL > WARNING > UNKNOWN > OK); a configuration or usage error,\n"
	"or an output file that cannot be written, is 3 UNKNOWN.\n"
	"\n"
	"examples:\n"
	"  spilttea-ops health\n"
	"  spilttea-ops health --check redis --check postgres.connections -v\n"
	"  spilttea-ops health --format nagios          # check_nrpe / check_by_ssh\n"
	"  spilttea-ops health --format prometheus --output /var/lib/node_exporter/textfile/spilttea.prom\n"
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
	int status = NAGIOS_UNKNOWN, i;

	memset(&rep, 0, sizeof(rep));
	st_error_clear(&err);
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
		if (watch <= 0 || !ctx->config)
			break;
		if (watch > time_monotonic() - t0)
			time_sleep(watch - (time_monotonic() - t0));
	}
out:
	health_report_release(&rep);
	free(select);
	return status;
}
