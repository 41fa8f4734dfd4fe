/*
 * cmd_config.c - `spilttea-ops config check|show`: the configuration as
 * main loaded it (the command is flagged CMD_NEEDS_CONFIG, so a file that
 * does not load never gets here: main prints the positioned error, exit 2).
 */
#include "cmd.h"
#include "../lib/config.h"

#include <stdio.h>
#include <string.h>

static const char config_usage[] =
	"usage: spilttea-ops config check\n"
	"       spilttea-ops config show [--format yaml|json]\n"
	"\n"
	"Loads the configuration (--config FILE, else $SPILTTEA_OPS_CONFIG, else\n"
	"./spilttea-ops.yaml, else /etc/spilttea-ops/config.yaml) and checks every key.\n"
	"\n"
	"  check   print 'configuration OK: FILE', or the error as FILE:LINE:COLUMN\n"
	"  show    print the effective configuration: defaults filled in, relative\n"
	"          paths made absolute, DOCKER_HOST applied; passwords only as their\n"
	"          password_env / password_file reference, never their value\n"
	"\n"
	"exit status: 0 valid, 2 usage or configuration error\n"
	"\n"
	"examples:\n"
	"  spilttea-ops config check\n"
	"  spilttea-ops --config /etc/spilttea-ops/config.yaml config show --format json\n";

int cmd_config(int argc, char **argv, struct ctx *ctx)
{
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	enum config_format fmt = CONFIG_FORMAT_YAML;
	int status = ST_EXIT_OK;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		fputs(config_usage, stdout);
		goto out;
	}
	if (argc < 2) {
		status = cmd_usage_error(ctx, "config needs a subcommand: check or show");
		goto out;
	}
	if (argc > 2) {
		status = cmd_usage_error(ctx, "unexpected argument '%s'", argv[2]);
		goto out;
	}
	if (!strcmp(argv[1], "check")) {
		if (ctx->format && strcmp(ctx->format, "text")) {
			status = cmd_usage_error(ctx, "config check has no format '%s' (only text)", ctx->format);
			goto out;
		}
		if (!ctx->quiet)
			printf("configuration OK: %s\n", ctx->config->path);
		goto out;
	}
	if (strcmp(argv[1], "show")) {
		status = cmd_usage_error(ctx, "unknown config subcommand '%s'", argv[1]);
		goto out;
	}
	if (!ctx->format || !strcmp(ctx->format, "yaml") || !strcmp(ctx->format, "text")) {
		fmt = CONFIG_FORMAT_YAML;
		if (sbuf_printf(&out, "# effective configuration from %s (found by %s)\n",
				ctx->config->path, ctx->config->source) != 0) {
			st_error_set(&err, ST_ENOMEM, "out of memory");
			cmd_print_error(ctx, &err);
			status = ST_EXIT_FAILED;
			goto out;
		}
	} else if (!strcmp(ctx->format, "json")) {
		fmt = CONFIG_FORMAT_JSON;
	} else {
		status = cmd_usage_error(ctx, "config show has no format '%s' (yaml or json)", ctx->format);
		goto out;
	}
	if (config_render(ctx->config, fmt, &out, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(err.code);
		goto out;
	}
	fputs(sbuf_str(&out), stdout);
out:
	sbuf_release(&out);
	return status;
}
