/*
 * main.c - global options, the one command table, and the setup every
 * command shares. Global options are accepted anywhere on the command line
 * (before or after the command name) up to a literal "--".
 */
#include "cmd.h"
#include "version.h"
#include "../lib/config.h"
#include "../lib/http.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	cmd_fn fn;
	unsigned flags;
	const char *summary;
};

static const struct command commands[] = {
	{ "help", cmd_help, 0, "show help for spilttea-ops or one command" },
	{ "config", cmd_config, CMD_NEEDS_CONFIG, "check the configuration or show it with defaults" },
	{ "runbook", cmd_runbook, 0, "list runbooks and actions, show a runbook's plan, check files" },
	{ "run", cmd_run, CMD_NEEDS_CONFIG, "run a runbook step by step (checked, journaled, locked)" },
	{ "deploy", cmd_deploy, CMD_NEEDS_CONFIG, "build and deploy services; health gate, automatic rollback" },
	{ "rollback", cmd_rollback, CMD_NEEDS_CONFIG, "put services back on an earlier release's image" },
	{ "health", cmd_health, CMD_NEEDS_CONFIG | CMD_REPORTS_CONFIG_ERROR,
	  "run every monitoring check at once (Nagios exit codes)" },
	{ "incident", cmd_incident, CMD_NEEDS_CONFIG, "security incident response: evidence, containment, report" },
	{ "backup", cmd_backup, CMD_NEEDS_CONFIG, "verified database backups; list, verify, prune, test-restore" },
	{ "restore", cmd_restore, CMD_NEEDS_CONFIG, "restore a backup into a new database and swap it in" },
	{ "migrate", cmd_migrate, CMD_NEEDS_CONFIG, "Prisma migrations: status, plan, up (backup first), resolve" },
	{ "logs", cmd_logs, CMD_NEEDS_CONFIG, "show, filter and count the services' logs" },
	{ "db", cmd_db, CMD_NEEDS_CONFIG, "database sizes, connections, slow queries; kill-idle, vacuum" },
	{ "cache", cmd_cache, CMD_NEEDS_CONFIG, "Redis memory, clients, hit rate; clear keys by pattern" },
	{ "diagnose", cmd_diagnose, CMD_NEEDS_CONFIG, "find the runbook's common issues; --fix applies safe fixes" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_usage[] =
	"usage: spilttea-ops [global options] <command> [arguments]\n"
	"\n"
	"Runs the Spilt Tea operations runbook as checked steps.\n"
	"\n"
	"global options (accepted before or after the command):\n"
	"  -c, --config FILE   configuration file (default: $SPILTTEA_OPS_CONFIG,\n"
	"                      ./spilttea-ops.yaml, /etc/spilttea-ops/config.yaml)\n"
	"  -n, --dry-run       print the plan with resolved arguments; change nothing\n"
	"  -y, --yes           answer yes to confirmations (needed without a terminal)\n"
	"  -q, --quiet         print nothing on success, one line on failure\n"
	"  -v, --verbose       more detail (repeat for more)\n"
	"      --format FMT    output format: text, json, ... (per command)\n"
	"      --no-color      no colour (also when NO_COLOR is set or not a terminal)\n"
	"      --version       print version and git commit\n"
	"  -h, --help          this help; 'spilttea-ops help CMD' for a command\n"
	"\n"
	"exit status (all commands but health):\n"
	"  0 done, 1 a step failed, 2 usage or configuration error,\n"
	"  3 aborted (precondition not met, confirmation refused),\n"
	"  4 another run holds the lock\n"
	"health uses Nagios codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n";

/* The global help: usage, the command table, examples. */
static void print_global_help(FILE *out)
{
	size_t i;

	fputs(global_usage, out);
	fputs("\ncommands:\n", out);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\nexamples:\n"
	      "  spilttea-ops health\n"
	      "  spilttea-ops --dry-run deploy backend\n"
	      "  spilttea-ops help backup\n", out);
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int cmd_help(int argc, char **argv, struct ctx *ctx)
{
	const struct command *c;
	char *help_argv[] = { NULL, "--help", NULL };

	if (argc < 2 || (argc == 2 && !strcmp(argv[1], "--help"))) {
		print_global_help(stdout);
		return ST_EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c) {
		ctx->command = NULL; /* the hint names the global help, not 'help --help' */
		return cmd_usage_error(ctx, "unknown command '%s'", argv[1]);
	}
	if (c->fn == cmd_help)
		return cmd_help(1, argv, ctx);
	help_argv[0] = (char *)c->name;
	ctx->command = c->name;
	return c->fn(2, help_argv, ctx);
}

/* Joins argv with spaces for the journal (caller frees). */
static char *join_command_line(int argc, char **argv)
{
	size_t len = 1;
	char *s, *p;
	int i;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	for (i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);
		memcpy(p, argv[i], n);
		p += n;
		*p++ = i + 1 < argc ? ' ' : '\0';
	}
	if (p == s)
		*p = '\0';
	return s;
}

static int env_no_color(void)
{
	const char *v = getenv("NO_COLOR");
	return v && *v;
}

int main(int argc, char **argv)
{
	struct ctx ctx;
	struct st_error init_err;
	struct st_error config_err = { 0 };
	const struct command *c = NULL;
	char **rest = NULL;
	int nrest = 0;
	int want_help = 0, want_version = 0, no_color = 0;
	int only_positional = 0;
	int status = ST_EXIT_OK;
	int i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.progname = "spilttea-ops";
	ctx.stdin_tty = isatty(STDIN_FILENO);
	ctx.stdout_tty = isatty(STDOUT_FILENO);

	/* A closed stdout (`| head`, `| true`) or a peer closing a socket
	 * (hiredis writes with write()) must be an error to handle, not a
	 * death in the middle of a step that skips undo, journal and lock
	 * release. The UI stops printing once stdout is gone. */
	signal(SIGPIPE, SIG_IGN);

	/* libcurl's global state must exist before any thread (health probes
	 * run concurrently) makes a handle. */
	if (http_global_init(&init_err) != 0) {
		cmd_print_error(&ctx, &init_err);
		return ST_EXIT_FAILED;
	}

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest) {
		fputs("error: out of memory\n", stderr);
		return ST_EXIT_FAILED;
	}

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (only_positional || a[0] != '-' || !a[1]) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_positional = 1;
			rest[nrest++] = argv[i];
			continue;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "--format")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "error: option '%s' needs a value\n"
					"hint: see 'spilttea-ops --help'\n", a);
				status = ST_EXIT_USAGE;
				goto out;
			}
			if (a[2] == 'f')
				ctx.format = argv[++i];
			else
				ctx.config_path = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			ctx.config_path = a + 9;
		} else if (!strncmp(a, "--format=", 9)) {
			ctx.format = a + 9;
		} else if (!strcmp(a, "--dry-run")) {
			ctx.dry_run = 1;
		} else if (!strcmp(a, "--yes")) {
			ctx.yes = 1;
		} else if (!strcmp(a, "--quiet")) {
			ctx.quiet = 1;
		} else if (!strcmp(a, "--verbose")) {
			ctx.verbose++;
		} else if (!strcmp(a, "--no-color") || !strcmp(a, "--no-colour")) {
			no_color = 1;
		} else if (!strcmp(a, "--version")) {
			want_version = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			want_help = 1;
		} else if (a[1] != '-' && strspn(a + 1, "nyqv") == strlen(a + 1)) {
			const char *f;
			for (f = a + 1; *f; f++) {
				if (*f == 'n') ctx.dry_run = 1;
				else if (*f == 'y') ctx.yes = 1;
				else if (*f == 'q') ctx.quiet = 1;
				else ctx.verbose++;
			}
		} else {
			rest[nrest++] = argv[i]; /* a command's own option */
		}
	}

	ctx.color_stdout = !no_color && !env_no_color() && ctx.stdout_tty;
	ctx.color_stderr = !no_color && !env_no_color() && isatty(STDERR_FILENO);

	if (want_version) {
		printf("spilttea-ops %s (git %s)\n", ST_VERSION, ST_GIT_COMMIT);
		goto out;
	}
	if (nrest == 0) {
		print_global_help(want_help ? stdout : stderr);
		status = want_help ? ST_EXIT_OK : ST_EXIT_USAGE;
		goto out;
	}
	c = find_command(rest[0]);
	if (!c) {
		fprintf(stderr, "error: unknown %s '%s'\nhint: see 'spilttea-ops --help'\n",
			rest[0][0] == '-' ? "option" : "command", rest[0]);
		status = ST_EXIT_USAGE;
		goto out;
	}
	ctx.command = c->name;
	ctx.command_line = join_command_line(argc, argv);
	if (want_help) {
		char *help_argv[] = { (char *)c->name, "--help", NULL };
		status = c->fn(2, help_argv, &ctx);
		goto out;
	}
	if (c->flags & CMD_NEEDS_CONFIG) {
		if (config_load(ctx.config_path, &ctx.config, &config_err) != 0) {
			ctx.config = NULL;
			if (c->flags & CMD_REPORTS_CONFIG_ERROR) {
				ctx.config_error = &config_err;
			} else {
				cmd_print_error(&ctx, &config_err);
				status = ST_EXIT_USAGE;
				goto out;
			}
		}
	}
	status = c->fn(nrest, rest, &ctx);
out:
	config_free(ctx.config);
	free(ctx.command_line);
	free(rest);
	return status;
}
