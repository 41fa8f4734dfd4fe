/*
 * cmd_deploy.c - `spilttea-ops deploy`: build, record, replace, health
 * gate, automatic rollback (lib/deploy.h); `deploy --list`.
 *
 * Arguments are parsed in one place (parse_args) into struct deploy_args;
 * cmd_deploy() dispatches on what was asked (--list, or a deploy).
 */
#include "cmd.h"
#include "cmd_deploy.h"
#include "cmd_engine.h"
#include "../lib/config.h"
#include "../lib/release.h"
#include "../lib/timeutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char deploy_usage[] =
	"usage: spilttea-ops deploy [all|SERVICE...] [--no-build] [--ref GIT_REF]\n"
	"                           [--strategy recreate|blue-green]\n"
	"       spilttea-ops deploy --list [SERVICE...] [--format text|json]\n"
	"       spilttea-ops deploy --checklist [--attest NAME,...] [--backup]\n"
	"                           [--format text|json|junit]\n"
	"\n"
	"Deploys services as checked steps (the runbook's Docker Deployment):\n"
	"  1. preflight: the definition resolves, the build context or image exists,\n"
	"     the services it depends on (depends_on) are running and healthy\n"
	"  2. build IMAGE:RELEASE and IMAGE:latest through the Docker build API\n"
	"     (.dockerignore honoured), or tag the existing image\n"
	"  3. record the release in STATE_DIR/releases/SERVICE.json\n"
	"  4. replace the container, keeping its name, env, env files, network,\n"
	"     volumes, restart policy, labels and healthcheck (recreate: stop the old\n"
	"     one, start the new one; blue-green: start beside it, switch the proxy)\n"
	"  5. wait until it is running and healthy within deploy.health_timeout\n"
	"  6. scan its first deploy.log_scan seconds of logs for errors\n"
	"  7. remove the old container, keep the last deploy.keep_releases images\n"
	"On any failure the previous container and image are put back and the\n"
	"command exits 1 with the failing probe's URL, status and body. 'all' (the\n"
	"default) deploys every service with a build context in depends_on order.\n"
	"Definitions come from compose_file when configured, else from the running\n"
	"container.\n"
	"\n"
	"  all|SERVICE...    what to deploy (default all)\n"
	"  --no-build        deploy the existing IMAGE:latest as it is\n"
	"  --ref GIT_REF     build that commit's tree of the context (git archive);\n"
	"                    the working tree is not touched\n"
	"  --strategy NAME   recreate (brief downtime) or blue-green (behind the\n"
	"                    proxy; the default for the service behind it)\n"
	"  --list            the release history (also 'rollback --list')\n";

/* After cmd_checklist_usage: the rest of deploy --help. */
static const char deploy_usage_end[] =
	"\n"
	"global options that matter here:\n"
	"  -n, --dry-run   the plan of every step; nothing built, locked or written\n"
	"  -y, --yes       confirm the replacement (needed when there is no terminal)\n"
	"  -v, --verbose   show the image build output\n"
	"\n"
	"exit status: 0 deployed (checklist: every item passed), 1 a step failed and\n"
	"was rolled back (checklist: an item failed), 2 usage or configuration error,\n"
	"3 aborted (precondition not met, confirmation refused, interrupted), 4\n"
	"another deploy or rollback holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops deploy backend --yes\n"
	"  spilttea-ops deploy all --dry-run\n"
	"  spilttea-ops deploy frontend --ref v1.4.2 --yes\n"
	"  spilttea-ops deploy --list backend\n"
	"  spilttea-ops deploy --checklist --attest tests,code-review --format junit\n";

struct deploy_args {
	const char *services[DEPLOY_MAX_TARGETS + 1];
	size_t nservices;
	int list;
	int no_build;
	const char *ref;
	const char *strategy;
};

/* Value of an option given as "--opt VALUE" or "--opt=VALUE"; NULL when a
 * is not that option. *i advances past a separate value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	*missing = 0;
	if (!strncmp(a, name, n) && a[n] == '=')
		return a + n + 1;
	if (strcmp(a, name))
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int parse_args(int argc, char **argv, struct ctx *ctx, struct deploy_args *a)
{
	int i, missing;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *v;

		if (!strcmp(argv[i], "--"))
			continue;
		if (!strcmp(argv[i], "--list")) {
			a->list = 1;
		} else if (!strcmp(argv[i], "--no-build")) {
			a->no_build = 1;
		} else if ((v = opt_value(argc, argv, &i, "--ref", &missing)) || missing) {
			if (missing || !*v)
				return cmd_usage_error(ctx, "option '--ref' needs a git ref");
			a->ref = v;
		} else if ((v = opt_value(argc, argv, &i, "--strategy", &missing)) || missing) {
			if (missing || !*v)
				return cmd_usage_error(ctx, "option '--strategy' needs recreate or blue-green");
			a->strategy = v;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return cmd_usage_error(ctx, "unknown option '%s'", argv[i]);
		} else {
			if (a->nservices >= DEPLOY_MAX_TARGETS)
				return cmd_usage_error(ctx, "too many services");
			a->services[a->nservices++] = argv[i];
		}
	}
	if (a->no_build && a->ref)
		return cmd_usage_error(ctx, "--no-build and --ref exclude each other (--ref builds)");
	if (a->list && (a->no_build || a->ref || a->strategy))
		return cmd_usage_error(ctx, "--list takes only service names");
	if (ctx->format && strcmp(ctx->format, "text") && !(a->list && !strcmp(ctx->format, "json")))
		return cmd_usage_error(ctx, "deploy has no format '%s' (text; json with --list)", ctx->format);
	return ST_EXIT_OK;
}

int cmd_deploy(int argc, char **argv, struct ctx *ctx)
{
	struct deploy_args a;
	struct deploy_options o;
	int status;

	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		fputs(deploy_usage, stdout);
		fputs(cmd_checklist_usage, stdout);
		fputs(deploy_usage_end, stdout);
		return ST_EXIT_OK;
	}
	for (status = 1; status < argc; status++)
		if (!strcmp(argv[status], "--checklist"))
			return cmd_checklist(argc, argv, ctx);
	if ((status = parse_args(argc, argv, ctx, &a)) != ST_EXIT_OK)
		return status;
	if (a.list)
		return cmd_release_list(ctx, a.services);
	memset(&o, 0, sizeof(o));
	o.mode = a.no_build ? DEPLOY_MODE_NO_BUILD : DEPLOY_MODE_BUILD;
	o.services = a.services;
	o.ref = a.ref;
	o.strategy = a.strategy;
	return cmd_deploy_execute(ctx, &o);
}

/* ---- shared with rollback ---------------------------------------------------- */

static void build_output(void *ud, const char *text)
{
	(void)ud;
	fputs(text, stderr);
}

static const char *sid(const char *id, char *buf, size_t size)
{
	if (!id || !*id)
		return "-";
	if (!strncmp(id, "sha256:", 7))
		id += 7;
	snprintf(buf, size, "%.12s", id);
	return buf;
}

static void print_report(const struct ctx *ctx, const struct deploy_options *o,
			 const struct deploy_report *rep, int rc)
{
	size_t i;
	char d1[32], d2[32], d3[32], s1[16], s2[16];
	const char *verb = o->mode == DEPLOY_MODE_ROLLBACK ? "rolled back" : "deployed";

	if (ctx->quiet || ctx->dry_run)
		return;
	for (i = 0; i < rep->ntargets; i++) {
		const struct deploy_report_target *t = &rep->targets[i];
		FILE *f = rc ? stderr : stdout;

		if (!strcmp(t->result, "deployed"))
			fprintf(f, "%s %s: release %s, image %s (was %s) in %s; build/tag %s, healthy %s "
				"after start\n", verb, t->service, t->release, sid(t->image_id, s1, sizeof(s1)),
				sid(t->previous_image_id, s2, sizeof(s2)),
				time_format_duration(t->t_total, d1, sizeof(d1)),
				time_format_duration(t->t_image, d2, sizeof(d2)),
				time_format_duration(t->t_ready, d3, sizeof(d3)));
		else if (!strcmp(t->result, "rolled back"))
			fprintf(f, "%s: release %s failed and was undone: its previous container and image "
				"%s serve again (journal run %s)\n", t->service, t->release,
				sid(t->previous_image_id, s2, sizeof(s2)), t->run_id);
		else if (!strcmp(t->result, "not started"))
			fprintf(f, "%s: not deployed (an earlier service failed)\n", t->service);
		else if (!strcmp(t->result, "failed") && t->run_id[0])
			fprintf(f, "%s: release %s stopped before it changed anything (journal run %s)\n",
				t->service, t->release, t->run_id);
	}
}

int cmd_deploy_execute(struct ctx *ctx, struct deploy_options *o)
{
	struct deploy_report rep;
	struct st_error err = { 0 };
	struct engine_ui ui;
	struct cmd_ui ui_state;
	struct cmd_signals sig;
	int rc;

	cmd_engine_ui(&ui_state, ctx, &ui);
	o->ui = &ui;
	o->command_line = ctx->command_line;
	o->dry_run = ctx->dry_run;
	o->assume_yes = ctx->yes;
	if (ctx->verbose)
		o->build_output = build_output;

	/* First signal: stop after the current step and roll back. */
	o->cancel = cmd_signals_catch(&sig);
	if (ctx->dry_run && !ctx->quiet)
		printf("dry run: nothing will be built, replaced, locked or written\n");
	rc = deploy_execute(ctx->config, o, &rep, &err);
	if (rc)
		cmd_print_error(ctx, &err);
	print_report(ctx, o, &rep, rc);
	cmd_signals_restore(&sig);
	return cmd_exit_status(rc);
}

/* ---- release history ----------------------------------------------------------- */

static json_t *record_json(const struct release_record *r, int live, int target)
{
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, "
			      "s:b, s:b}",
			      "id", r->id, "image", r->image, "image_id", r->image_id, "previous_image_id",
			      r->previous_image_id, "time", r->time, "user", r->user, "source", r->source,
			      "status", r->status, "git_commit", r->git_commit, "strategy", r->strategy,
			      "error", r->error, "live", live, "rollback_target", target, "pruned", r->pruned);

	if (o && r->rollback_to)
		json_object_set_new(o, "rollback_to", json_string(r->rollback_to));
	if (o && r->git_commit)
		json_object_set_new(o, "git_dirty", json_boolean(r->git_dirty));
	return o;
}

static void print_history(const struct release_history *h, int color)
{
	const struct release_record *cur = release_current(h), *prev = release_previous(h);
	size_t i;
	char s1[16];

	printf("%s%s%s\n", cmd_color_on(color, COLOR_BOLD), h->service, cmd_color_off(color));
	if (h->count == 0) {
		printf("  no releases yet (the first deploy records the image running before it)\n");
		return;
	}
	printf("  %-20s %-12s %-12s %-9s %-13s %-20s %s\n", "RELEASE", "STATUS", "IMAGE", "SOURCE", "GIT",
	       "TIME", "BY");
	for (i = h->count; i > 0; i--) {
		const struct release_record *r = &h->records[i - 1];
		char git[24], status[40], when[24];

		snprintf(git, sizeof(git), "%.10s%s", r->git_commit ? r->git_commit : "-",
			 r->git_commit && r->git_dirty ? "+dirty" : "");
		snprintf(status, sizeof(status), "%s", r->status ? r->status : "?");
		snprintf(when, sizeof(when), "%.19s", r->time ? r->time : "-");
		printf("  %-20s %-12s %-12s %-9s %-13s %-20s %s", r->id, status,
		       r->pruned ? "(pruned)" : sid(r->image_id, s1, sizeof(s1)), r->source ? r->source : "-",
		       git, when, r->user ? r->user : "-");
		if (r->rollback_to)
			printf("  (back to %s)", r->rollback_to);
		if (r == cur)
			printf("  %s<- live%s", cmd_color_on(color, COLOR_GREEN), cmd_color_off(color));
		if (r == prev)
			printf("  <- rollback goes here");
		putchar('\n');
		if (r->error && r->status && !strcmp(r->status, "failed"))
			printf("      why: %s\n", r->error);
	}
}

int cmd_release_list(struct ctx *ctx, const char *const *services)
{
	const struct st_config *cfg = ctx->config;
	json_t *all = NULL;
	size_t i;
	int json = ctx->format && !strcmp(ctx->format, "json");
	int every = !services || !services[0] || !strcmp(services[0], "all");
	int status = ST_EXIT_OK, shown = 0;

	if (json && !(all = json_object())) {
		fputs("error: out of memory\n", stderr);
		return ST_EXIT_FAILED;
	}
	for (i = 0; every ? i < cfg->n_services : services[i] != NULL; i++) {
		const char *name = every ? cfg->services[i].name : services[i];
		const struct config_service *cs = config_service(cfg, name);
		struct release_history *h = NULL;
		struct st_error err = { 0 };

		if (!cs) {
			status = cmd_usage_error(ctx, "unknown service '%s'", name);
			goto out;
		}
		if (release_history_load(cfg->state_dir, name, &h, &err) != 0) {
			cmd_print_error(ctx, &err);
			status = cmd_exit_status(err.code);
			goto out;
		}
		/* Services that are never deployed (postgres, redis) have nothing
		 * to show. */
		if (every && h->count == 0 && !cs->image && !cs->build) {
			release_history_free(h);
			continue;
		}
		if (json) {
			const struct release_record *cur = release_current(h), *prev = release_previous(h);
			json_t *list = json_array();
			size_t j;

			for (j = 0; list && j < h->count; j++)
				json_array_append_new(list, record_json(&h->records[j], &h->records[j] == cur,
									&h->records[j] == prev));
			json_object_set_new(all, name, list ? list : json_null());
		} else {
			if (shown++ > 0)
				putchar('\n');
			print_history(h, ctx->color_stdout);
		}
		release_history_free(h);
	}
	if (json) {
		char *text = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (text)
			puts(text);
		free(text);
	}
out:
	json_decref(all);
	return status;
}
