/*
 * cmd_rollback.c - `spilttea-ops rollback`: the previous release's image,
 * from the release history, re-tagged latest and deployed with the same
 * health gate as deploy (lib/deploy.h, DEPLOY_MODE_ROLLBACK);
 * `rollback --list`.
 *
 * Arguments are parsed in one place (parse_args) into struct rollback_args;
 * cmd_rollback() dispatches on what was asked (--list, or an image rollback).
 */
#include "cmd.h"
#include "cmd_deploy.h"

#include <stdio.h>
#include <string.h>

static const char rollback_usage[] =
	"usage: spilttea-ops rollback [backend|frontend|all|SERVICE...] [--to RELEASE]\n"
	"       spilttea-ops rollback --list [SERVICE...] [--format text|json]\n"
	"\n"
	"Puts a service back on the image of an earlier release (the runbook's Quick\n"
	"Rollback): the release comes from the history deploy keeps, its image is tagged\n"
	"IMAGE:latest again and deployed with the same steps and health gate as\n"
	"'spilttea-ops deploy' (preflight, record, replace, wait until healthy, scan the\n"
	"first logs, automatic undo on failure). No image ids to hunt: without --to it\n"
	"is the release before the live one (skipping releases that were themselves\n"
	"rolled back), so rolling back twice goes two releases back. The very first\n"
	"deploy records the image that ran before it, so there is always one to go to.\n"
	"\n"
	"  all|SERVICE...   what to roll back (default all: every service with an\n"
	"                   earlier release)\n"
	"  --to RELEASE     that release instead of the previous one (ids: --list)\n"
	"  --list           the release history: which one is live, where rollback goes\n"
	"\n"
	"Which rollback? (the runbook's Rollback Decision Matrix)\n"
	"  - Frontend bug: roll back the frontend image only:\n"
	"        spilttea-ops rollback frontend\n"
	"  - Backend API error: roll back the backend image only:\n"
	"        spilttea-ops rollback backend\n"
	"  - The wanted version was never deployed here, or its image is gone: rebuild\n"
	"    it from git (git-based rollback), the working tree stays as it is:\n"
	"        spilttea-ops deploy backend --ref COMMIT\n"
	"  - Bad migration: roll the migration back, or restore the pre-migration\n"
	"    backup (migration rollback):\n"
	"        spilttea-ops rollback db\n"
	"  - Database corruption: full database restore from a backup:\n"
	"        spilttea-ops restore BACKUP_FILE\n"
	"  - Config error: no rollback; fix the environment variables (.env) and\n"
	"    restart the service.\n"
	"\n"
	"global options that matter here:\n"
	"  -n, --dry-run   the plan of every step; nothing changed, locked or written\n"
	"  -y, --yes       confirm (needed when there is no terminal)\n"
	"\n"
	"exit status: 0 rolled back, 1 a step failed (and the current release was put\n"
	"back), 2 usage or configuration error (unknown release), 3 aborted (no earlier\n"
	"release, its image is gone, confirmation refused), 4 another deploy or rollback\n"
	"holds the lock\n"
	"\n";

/* After cmd_rollback_db_usage: the examples. */
static const char rollback_usage_end[] =
	"examples:\n"
	"  spilttea-ops rollback backend --yes\n"
	"  spilttea-ops rollback --list backend\n"
	"  spilttea-ops rollback backend --to 20261127_223416 --yes\n"
	"  spilttea-ops rollback all --dry-run\n"
	"  spilttea-ops rollback db\n";

struct rollback_args {
	const char *services[DEPLOY_MAX_TARGETS + 1];
	size_t nservices;
	int list;
	const char *to;
};

static int parse_args(int argc, char **argv, struct ctx *ctx, struct rollback_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "--"))
			continue;
		if (!strcmp(arg, "--list")) {
			a->list = 1;
		} else if (!strcmp(arg, "--to") || !strncmp(arg, "--to=", 5)) {
			const char *v = arg[4] == '=' ? arg + 5 : (i + 1 < argc ? argv[++i] : NULL);

			if (!v || !*v)
				return cmd_usage_error(ctx, "option '--to' needs a release id (see --list)");
			a->to = v;
		} else if (arg[0] == '-' && arg[1]) {
			return cmd_usage_error(ctx, "unknown option '%s'", arg);
		} else {
			if (a->nservices >= DEPLOY_MAX_TARGETS)
				return cmd_usage_error(ctx, "too many services");
			a->services[a->nservices++] = arg;
		}
	}
	if (a->list && a->to)
		return cmd_usage_error(ctx, "--list takes only service names");
	if (a->to && (a->nservices != 1 || !strcmp(a->services[0], "all")))
		return cmd_usage_error(ctx, "--to names a release of one service: give exactly one service");
	if (ctx->format && strcmp(ctx->format, "text") && !(a->list && !strcmp(ctx->format, "json")))
		return cmd_usage_error(ctx, "rollback has no format '%s' (text; json with --list)",
				       ctx->format);
	return ST_EXIT_OK;
}

int cmd_rollback(int argc, char **argv, struct ctx *ctx)
{
	struct rollback_args a;
	struct deploy_options o;
	int status;

	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		fputs(rollback_usage, stdout);
		fputs(cmd_rollback_db_usage, stdout);
		fputs(rollback_usage_end, stdout);
		return ST_EXIT_OK;
	}
	if (argc >= 2 && !strcmp(argv[1], "db"))
		return cmd_rollback_db(argc - 1, argv + 1, ctx);
	if ((status = parse_args(argc, argv, ctx, &a)) != ST_EXIT_OK)
		return status;
	if (a.list)
		return cmd_release_list(ctx, a.services);
	memset(&o, 0, sizeof(o));
	o.mode = DEPLOY_MODE_ROLLBACK;
	o.services = a.services;
	o.rollback_to = a.to;
	return cmd_deploy_execute(ctx, &o);
}
