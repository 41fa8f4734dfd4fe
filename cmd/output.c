#include "cmd.h"

#include <stdarg.h>
#include <stdio.h>

int cmd_exit_status(int st_code)
{
	switch (st_code) {
	case ST_OK: return ST_EXIT_OK;
	case ST_EUSAGE:
	case ST_ECONFIG: return ST_EXIT_USAGE;
	case ST_EABORTED: return ST_EXIT_ABORTED;
	case ST_ELOCKED: return ST_EXIT_LOCKED;
	default: return ST_EXIT_FAILED;
	}
}

const char *cmd_color_on(int allowed, enum cmd_color c)
{
	if (!allowed)
		return "";
	switch (c) {
	case COLOR_RED: return "\033[31m";
	case COLOR_GREEN: return "\033[32m";
	case COLOR_YELLOW: return "\033[33m";
	case COLOR_BOLD: return "\033[1m";
	case COLOR_DIM: return "\033[2m";
	default: return "";
	}
}

const char *cmd_color_off(int allowed)
{
	return allowed ? "\033[0m" : "";
}

void cmd_print_error(const struct ctx *ctx, const struct st_error *err)
{
	int c = ctx ? ctx->color_stderr : 0;

	fprintf(stderr, "%serror:%s %s\n", cmd_color_on(c, COLOR_RED), cmd_color_off(c),
		err->message[0] ? err->message : st_code_name(err->code));
	if (ctx && ctx->quiet)
		return;
	if (err->hint[0])
		fprintf(stderr, "%shint:%s %s\n", cmd_color_on(c, COLOR_YELLOW), cmd_color_off(c),
			err->hint);
	else if (err->code == ST_EUSAGE && ctx && ctx->command)
		/* a usage error from lib/ that names no next step: the help does */
		fprintf(stderr, "%shint:%s see '%s %s --help'\n", cmd_color_on(c, COLOR_YELLOW),
			cmd_color_off(c), ctx->progname, ctx->command);
}

int cmd_usage_error(const struct ctx *ctx, const char *fmt, ...)
{
	struct st_error err;
	va_list ap;

	st_error_clear(&err);
	err.code = ST_EUSAGE;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	if (ctx && ctx->command)
		snprintf(err.hint, sizeof(err.hint), "see '%s %s --help'", ctx->progname, ctx->command);
	else
		snprintf(err.hint, sizeof(err.hint), "see '%s --help'", ctx ? ctx->progname : "spilttea-ops");
	cmd_print_error(ctx, &err);
	return ST_EXIT_USAGE;
}
