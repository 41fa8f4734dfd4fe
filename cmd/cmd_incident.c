/*
 * cmd_incident.c - `spilttea-ops incident ...`: the runbook's "Security
 * Incident Response" and "Post-Incident Checklist". Each subcommand
 * parses its arguments, builds its runbook (lib/incident_actions.h), runs
 * it through the step engine under the incident id, and prints what the
 * steps found.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "version.h"
#include "../lib/config.h"
#include "../lib/envfile.h"
#include "../lib/incident.h"
#include "../lib/incident_actions.h"
#include "../lib/runbook.h"
#include "../lib/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char incident_usage[] =
	"usage: spilttea-ops incident <subcommand> [options] [--incident ID]\n"
	"\n"
	"Security incident response, journaled under an incident id. Commands attach\n"
	"to the open incident (one is opened when none is); --incident ID picks one.\n"
	"\n"
	"  start [--title TEXT] [--id ID]  open an incident\n"
	"  status                          the open incident and its evidence\n"
	"  snapshot [--archive]            evidence: logs, inspect, database dump,\n"
	"                                  Redis INFO, journal, SHA256SUMS (+ tar.gz)\n"
	"  contain                         snapshot (unless there is one), then stop\n"
	"                                  frontend, backend and the rest (never remove)\n"
	"  investigate [--since 1h] [--threshold N] [--recent 24h] [--limit 20]\n"
	"                                  failed logins per user, new accounts, posts,\n"
	"                                  reports\n"
	"  lock-users ID...                password 'LOCKED', inactive; one transaction\n"
	"  flush-sessions [--pattern P]    delete session keys (SCAN + UNLINK)\n"
	"  flush-sessions --all            Redis FLUSHALL (typed confirmation)\n"
	"  rotate-jwt [--no-restart]       new random JWT_SECRET in the env files, then\n"
	"                                  recreate the services using it, wait healthy\n"
	"  rotate-secret NAME --generate|--from-env VAR [--no-restart]\n"
	"  top-ips [--since 1h] [--limit 20] [--service backend]\n"
	"  block-ip IP [--apply]           print (or run, as root) the iptables rule\n"
	"  report [--output FILE]          Markdown report from the journal\n"
	"  close                           close the open incident\n"
	"\n"
	"--format json: status, snapshot, investigate, lock-users, flush-sessions,\n"
	"top-ips, block-ip. Secrets are never printed or journaled. -n/--dry-run\n"
	"shows the plan; -y/--yes confirms (needed without a terminal).\n"
	"\n"
	"exit status: 0 done, 1 a step failed, 2 usage or configuration error,\n"
	"3 aborted (confirmation refused, no open incident), 4 locked\n"
	"\n"
	"examples:\n"
	"  spilttea-ops incident start --title 'credential stuffing on /login'\n"
	"  spilttea-ops incident contain\n"
	"  spilttea-ops incident investigate --since 2h --format json\n"
	"  spilttea-ops incident lock-users 7 42 && spilttea-ops incident rotate-jwt\n"
	"  spilttea-ops incident report --output incident.md\n";

/* ---- options ---------------------------------------------------------------------- */

struct opts {
	const char *incident;       /* --incident */
	const char *title, *id;     /* start */
	int archive;                /* snapshot */
	double since, recent;       /* investigate, top-ips */
	long threshold, limit;
	int have_threshold, have_limit, have_since;
	const char *pattern;        /* flush-sessions */
	int all;
	const char *from_env;       /* rotate-secret */
	int generate, no_restart;
	const char *service;        /* top-ips */
	int apply;                  /* block-ip */
	const char *output;         /* report */
	char **pos;                 /* positional arguments */
	int npos;
};

/* Value of option argv[*i] ("--x V" or "--x=V"); NULL when a is not it. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

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

static int parse_duration_opt(struct ctx *ctx, const char *name, const char *v, double *out)
{
	if (time_parse_duration(v, out) != 0 || *out <= 0)
		return cmd_usage_error(ctx, "%s must be a duration like 30m, 1h or 2d, not '%s'", name, v);
	return 0;
}

static int parse_long_opt(struct ctx *ctx, const char *name, const char *v, long lo, long hi, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (!*v || *end || n < lo || n > hi)
		return cmd_usage_error(ctx, "%s must be a number from %ld to %ld, not '%s'", name, lo, hi, v);
	*out = n;
	return 0;
}

/* Options of every subcommand; each subcommand then rejects what it does
 * not take. Returns 0 or an exit status. */
static int parse_opts(struct ctx *ctx, int argc, char **argv, struct opts *o)
{
	int i, only_pos = 0;

	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v;
		int missing = 0;

		if (only_pos || a[0] != '-' || !a[1]) {
			o->pos[o->npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
#define VALUE(name) ((v = opt_value(argc, argv, &i, name, &missing)) != NULL || missing)
		if (VALUE("--incident")) {
			o->incident = v;
		} else if (VALUE("--title")) {
			o->title = v;
		} else if (VALUE("--id")) {
			o->id = v;
		} else if (VALUE("--since")) {
			if (v && parse_duration_opt(ctx, "--since", v, &o->since))
				return ST_EXIT_USAGE;
			o->have_since = 1;
		} else if (VALUE("--recent")) {
			if (v && parse_duration_opt(ctx, "--recent", v, &o->recent))
				return ST_EXIT_USAGE;
		} else if (VALUE("--threshold")) {
			if (v && parse_long_opt(ctx, "--threshold", v, 0, 1000000, &o->threshold))
				return ST_EXIT_USAGE;
			o->have_threshold = 1;
		} else if (VALUE("--limit")) {
			if (v && parse_long_opt(ctx, "--limit", v, 1, 100000, &o->limit))
				return ST_EXIT_USAGE;
			o->have_limit = 1;
		} else if (VALUE("--pattern")) {
			o->pattern = v;
		} else if (VALUE("--from-env")) {
			o->from_env = v;
		} else if (VALUE("--service")) {
			o->service = v;
		} else if (VALUE("--output")) {
			o->output = v;
		} else if (!strcmp(a, "--archive")) {
			o->archive = 1;
		} else if (!strcmp(a, "--all")) {
			o->all = 1;
		} else if (!strcmp(a, "--generate")) {
			o->generate = 1;
		} else if (!strcmp(a, "--no-restart")) {
			o->no_restart = 1;
		} else if (!strcmp(a, "--apply")) {
			o->apply = 1;
		} else {
			return cmd_usage_error(ctx, "unknown option '%s' for 'incident %s'", a, argv[1]);
		}
#undef VALUE
		if (missing)
			return cmd_usage_error(ctx, "option '%s' needs a value", a);
	}
	return 0;
}

/* Rejects options a subcommand does not take. allowed: a string of
 * letters, one per option (see the table). */
static int only(struct ctx *ctx, const char *sub, const struct opts *o, const char *allowed, int max_pos)
{
	static const struct {
		char letter;
		const char *name;
	} names[] = { { 't', "--title" }, { 'i', "--id" }, { 'a', "--archive" }, { 's', "--since" },
		      { 'r', "--recent" }, { 'h', "--threshold" }, { 'l', "--limit" }, { 'p', "--pattern" },
		      { 'A', "--all" }, { 'f', "--from-env" }, { 'g', "--generate" }, { 'n', "--no-restart" },
		      { 'S', "--service" }, { 'y', "--apply" }, { 'o', "--output" } };
	int given[sizeof(names) / sizeof(names[0])];
	size_t k;

	given[0] = o->title != NULL;
	given[1] = o->id != NULL;
	given[2] = o->archive;
	given[3] = o->have_since;
	given[4] = o->recent > 0;
	given[5] = o->have_threshold;
	given[6] = o->have_limit;
	given[7] = o->pattern != NULL;
	given[8] = o->all;
	given[9] = o->from_env != NULL;
	given[10] = o->generate;
	given[11] = o->no_restart;
	given[12] = o->service != NULL;
	given[13] = o->apply;
	given[14] = o->output != NULL;
	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (given[k] && !strchr(allowed, names[k].letter))
			return cmd_usage_error(ctx, "'incident %s' takes no option '%s'", sub, names[k].name);
	if (o->npos > max_pos)
		return cmd_usage_error(ctx, "unexpected argument '%s' for 'incident %s'", o->pos[max_pos], sub);
	return 0;
}

static int want_json(struct ctx *ctx, const char *sub, int json_ok, int *json)
{
	*json = 0;
	if (!ctx->format || !strcmp(ctx->format, "text"))
		return 0;
	if (json_ok && !strcmp(ctx->format, "json")) {
		*json = 1;
		return 0;
	}
	return cmd_usage_error(ctx, "'incident %s' has no format '%s' (%s)", sub, ctx->format,
			       json_ok ? "text or json" : "only text");
}

/* ---- running a runbook ------------------------------------------------------------------ */

/* The incident a command works in: --incident, else the open one, else a
 * new one when open_new (not in dry-run: nothing may be written). */
static int resolve(struct ctx *ctx, const struct opts *o, int open_new, char *id, size_t size)
{
	const char *state = ctx->config->state_dir;
	struct incident_info info;
	struct st_error err = { 0 };
	int rc;

	if (o->incident) {
		if (!incident_id_valid(o->incident))
			return cmd_usage_error(ctx, "'%s' is not an incident id", o->incident);
		if ((rc = incident_load(state, o->incident, &info, &err)) != 0)
			goto fail;
		snprintf(id, size, "%s", o->incident);
		return 0;
	}
	rc = incident_current(state, id, size, &err);
	if (rc == 0)
		return 0;
	if (rc != ST_ENOTFOUND || !open_new)
		goto fail;
	if (ctx->dry_run) {
		snprintf(id, size, "to be opened");
		return 0;
	}
	st_error_clear(&err);
	rc = incident_open(state, NULL, NULL, &info, &err);
	if (rc == ST_ECONFLICT && incident_current(state, id, size, &err) == 0)
		return 0; /* another command opened one a moment ago: work in it */
	if (rc)
		goto fail;
	snprintf(id, size, "%s", info.id);
	if (!ctx->quiet)
		fprintf(stderr, "note: no incident was open: opened %s (name it with "
				"'spilttea-ops incident start --title' next time)\n", info.id);
	return 0;
fail:
	cmd_print_error(ctx, &err);
	return rc == ST_ENOTFOUND ? ST_EXIT_ABORTED : cmd_exit_status(rc);
}

/* Runs rb under incident id with sess. steps: show step progress lines
 * (mutating commands); read-only ones print only their findings. Returns
 * the exit status (0, or what failed, already printed). */
static int run_incident(struct ctx *ctx, const char *id, const struct runbook *rb,
			struct incident_session *sess, int steps)
{
	struct engine_options eo;
	struct engine_report rep;
	struct engine_ui ui;
	struct cmd_ui ui_state;
	struct st_error err = { 0 };
	struct cmd_signals sig;
	json_t *params = NULL;
	int status = ST_EXIT_OK, rc;

	if (engine_params_parse(rb, 0, NULL, &params, &err) != 0) {
		/* The runbook is built here, not written by the operator: one
		 * the engine refuses is our failure, not a usage error. */
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	cmd_engine_ui(&ui_state, ctx, &ui);
	if (!steps) {
		ui.step_start = NULL;
		ui.step_end = NULL;
	}
	memset(&eo, 0, sizeof(eo));
	eo.state_dir = ctx->config->state_dir;
	eo.command_line = ctx->command_line;
	eo.incident = id;
	eo.dry_run = ctx->dry_run;
	eo.assume_yes = ctx->yes;
	eo.lookup_config = cmd_engine_lookup_config;
	eo.config_ud = ctx->config;
	eo.config = ctx->config;
	eo.services = &sess->svc;
	eo.ui = &ui;
	eo.cancel = cmd_signals_catch(&sig);
	sess->cancel = eo.cancel;
	if (ctx->dry_run && !ctx->quiet)
		printf("dry run: nothing will be run, locked or written; incident %s\n", id);
	rc = engine_run(rb, params, &eo, &rep, &err);
	if (rc) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
	} else if (rep.failed) {
		status = ST_EXIT_FAILED;
		if (!ctx->quiet)
			fprintf(stderr, "error: %zu step%s failed (see above; journal run %s)\n", rep.failed,
				rep.failed == 1 ? "" : "s", rep.run_id);
	}
	cmd_signals_restore(&sig);
out:
	json_decref(params);
	return status;
}

static void session_setup(struct incident_session *s, struct ctx *ctx, const char *id)
{
	static char version[96];

	snprintf(version, sizeof(version), "spilttea-ops %s (git %s)", ST_VERSION, ST_GIT_COMMIT);
	incident_session_init(s, ctx->config, id);
	s->tool_version = version;
	s->command_line = ctx->command_line;
}

static void print_json(const json_t *v)
{
	char *t = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	if (t)
		puts(t);
	free(t);
}

static const char *js(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static const char *jtext(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	else if (json_is_true(v))
		snprintf(buf, size, "yes");
	else if (json_is_false(v))
		snprintf(buf, size, "no");
	else
		snprintf(buf, size, "-");
	return buf;
}

static void print_warning(const json_t *out)
{
	if (json_object_get(out, "journal_warning"))
		fprintf(stderr, "warning: not journaled: %s\n", js(out, "journal_warning"));
}

/* Common tail: the runbook built, the session, the run. */
struct job {
	struct runbook *rb;
	struct incident_session sess;
	char id[INCIDENT_ID_MAX + 32];
	int json;
};

static int build_failed(struct ctx *ctx, struct st_error *err)
{
	cmd_print_error(ctx, err);
	return ST_EXIT_FAILED;
}

/* ---- subcommands ------------------------------------------------------------------------------ */

static int sub_start(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	char open_id[INCIDENT_ID_MAX];
	const json_t *out;
	int status;

	if ((status = only(ctx, "start", o, "ti", 0)))
		return status;
	if (o->id && !incident_id_valid(o->id))
		return cmd_usage_error(ctx, "'%s' is not an incident id (letters, digits, '.', '_', '-')", o->id);
	if (incident_current(ctx->config->state_dir, open_id, sizeof(open_id), &err) == 0) {
		st_error_set(&err, ST_ECONFLICT, "incident '%s' is still open", open_id);
		st_error_hint(&err, "close it first with 'spilttea-ops incident close', or keep working in it");
		cmd_print_error(ctx, &err);
		return ST_EXIT_ABORTED;
	}
	if (o->id)
		snprintf(j->id, sizeof(j->id), "%s", o->id);
	else
		incident_id_format(time_wall(), j->id, sizeof(j->id));
	/* Two incidents opened in the same second get a suffix. */
	if (!o->id) {
		char dir[PATH_MAX];
		int n;

		for (n = 2; n < 100; n++) {
			struct stat st;
			if (incident_path(ctx->config->state_dir, j->id, NULL, dir, sizeof(dir), &err) != 0 ||
			    stat(dir, &st) != 0)
				break;
			incident_id_format(time_wall(), j->id, sizeof(j->id));
			snprintf(j->id + strlen(j->id), sizeof(j->id) - strlen(j->id), "-%d", n);
		}
	}
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_start(o->title, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "open");
	if (status == 0 && out && !ctx->quiet) {
		printf("opened incident %s%s%s\n  folder: %s\n", js(out, "id"), *js(out, "title") ? ": " : "",
		       js(out, "title"), js(out, "dir"));
		print_warning(out);
	}
	return status;
}

static int sub_status(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	struct incident_info info;
	char dir[PATH_MAX];
	int status, rc;

	if ((status = only(ctx, "status", o, "", 0)))
		return status;
	if (!o->incident && incident_current(ctx->config->state_dir, j->id, sizeof(j->id), &err) == ST_ENOTFOUND) {
		char last[INCIDENT_ID_MAX];
		int have_last = incident_latest(ctx->config->state_dir, last, sizeof(last), &err) == 0;

		if (j->json) {
			json_t *v = json_pack("{s:b,s:s*}", "open", 0, "last", have_last ? last : NULL);
			print_json(v);
			json_decref(v);
		} else if (!ctx->quiet) {
			printf("no incident is open%s%s%s\n", have_last ? " (the last one: " : "",
			       have_last ? last : "", have_last ? ")" : "");
		}
		return 0;
	}
	if ((status = resolve(ctx, o, 0, j->id, sizeof(j->id))))
		return status;
	if ((rc = incident_load(ctx->config->state_dir, j->id, &info, &err)) != 0) {
		cmd_print_error(ctx, &err);
		return cmd_exit_status(rc);
	}
	if (j->json) {
		json_t *v = json_pack("{s:s,s:s,s:f,s:s,s:b}", "id", info.id, "title", info.title, "opened",
				      info.opened, "opened_by", info.opened_by, "open", info.closed <= 0);
		if (v && incident_snapshot_latest(ctx->config->state_dir, j->id, dir, sizeof(dir), &err) == 0)
			json_object_set_new(v, "evidence", json_string(dir));
		print_json(v);
		json_decref(v);
		return 0;
	}
	{
		char t[40];

		printf("incident %s%s%s (%s)\n  opened %s by %s\n", info.id, info.title[0] ? ": " : "", info.title,
		       info.closed > 0 ? "closed" : "open", time_format_rfc3339(info.opened, t, sizeof(t)),
		       info.opened_by);
		if (incident_snapshot_latest(ctx->config->state_dir, j->id, dir, sizeof(dir), &err) == 0)
			printf("  evidence: %s\n", dir);
		else
			printf("  evidence: none yet (spilttea-ops incident snapshot)\n");
	}
	return 0;
}

static void print_snapshot(const json_t *out)
{
	size_t i;
	json_t *a;

	printf("evidence: %s\n  %lld files, %lld bytes; verify: cd %s && sha256sum -c " INCIDENT_SUMS "\n",
	       js(out, "dir"), (long long)json_integer_value(json_object_get(out, "files")),
	       (long long)json_integer_value(json_object_get(out, "bytes")), js(out, "dir"));
	if (json_object_get(out, "archive"))
		printf("  archive: %s (sha256 %s)\n", js(out, "archive"), js(out, "archive_sha256"));
	json_array_foreach(json_object_get(out, "artefacts"), i, a)
		if (json_object_get(a, "error"))
			printf("  not collected: %s: %s\n", js(a, "what"), js(a, "error"));
	print_warning(out);
}

static int sub_snapshot(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const json_t *out;
	int status;

	if ((status = only(ctx, "snapshot", o, "a", 0)) || (status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_snapshot(o->archive, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "snapshot");
	if (out && j->json)
		print_json(out);
	else if (out && !ctx->quiet)
		print_snapshot(out);
	return status;
}

static int sub_contain(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const json_t *snap;
	int status;
	size_t i;

	if ((status = only(ctx, "contain", o, "", 0)) || (status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_contain(ctx->config, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 1);
	if (ctx->quiet || ctx->dry_run)
		return status;
	snap = incident_session_output(&j->sess, "snapshot");
	if (snap)
		print_snapshot(snap);
	for (i = 0; i < ctx->config->n_services; i++) {
		char step[128];
		const json_t *s;

		snprintf(step, sizeof(step), "stop-%s", ctx->config->services[i].name);
		if ((s = incident_session_output(&j->sess, step)))
			printf("stopped %s (%s)%s\n", js(s, "service"), js(s, "container"),
			       json_is_true(json_object_get(s, "was_running")) ? "" : ": was not running");
	}
	if (status == 0)
		printf("contained: every service is stopped; start them with 'spilttea-ops run start-all' once it is safe\n");
	return status;
}

#define CELL_MAX 44

/* One investigation section as a table with columns sized to fit. */
static void print_section(const json_t *sec, const char *title, const char *const *cols,
			  const char *const *heads)
{
	const json_t *rows = json_object_get(sec, "rows");
	int width[8] = { 0 };
	char buf[64], w[32];
	size_t i, c;
	json_t *r;

	time_format_duration(json_number_value(json_object_get(sec, "window")), w, sizeof(w));
	printf("%s %s: ", title, w);
	if (json_object_get(sec, "error")) {
		printf("FAILED: %s\n\n", js(sec, "error"));
		return;
	}
	printf("%lld", (long long)json_integer_value(json_object_get(sec, "count")));
	if ((long long)json_array_size(rows) < json_integer_value(json_object_get(sec, "count")))
		printf(" (newest %zu listed; --limit N for more)", json_array_size(rows));
	printf("\n");
	if (!json_array_size(rows)) {
		printf("\n");
		return;
	}
	for (c = 0; cols[c] && c < 8; c++) {
		width[c] = (int)strlen(heads[c]);
		json_array_foreach(rows, i, r) {
			int n = (int)strlen(jtext(json_object_get(r, cols[c]), buf, sizeof(buf)));
			if (n > width[c])
				width[c] = n > CELL_MAX ? CELL_MAX : n;
		}
	}
	for (c = 0; cols[c] && c < 8; c++)
		printf("  %-*s", width[c], heads[c]);
	printf("\n");
	json_array_foreach(rows, i, r) {
		for (c = 0; cols[c] && c < 8; c++) {
			const char *t = jtext(json_object_get(r, cols[c]), buf, sizeof(buf));

			if ((int)strlen(t) > CELL_MAX)
				printf("  %.*s...", CELL_MAX - 3, t);
			else
				printf("  %-*s", width[c], t);
		}
		printf("\n");
	}
	printf("\n");
}

static int sub_investigate(struct ctx *ctx, struct opts *o, struct job *j)
{
	static const char *const bf[] = { "id", "email", "failedLoginCount", "lastFailedLogin", "isActive", NULL };
	static const char *const bf_h[] = { "ID", "EMAIL", "FAILED", "LAST FAILED (UTC)", "ACTIVE" };
	static const char *const acc[] = { "id", "email", "createdAt", "isActive", NULL };
	static const char *const acc_h[] = { "ID", "EMAIL", "CREATED (UTC)", "ACTIVE" };
	static const char *const posts[] = { "id", "title", "authorId", "createdAt", NULL };
	static const char *const posts_h[] = { "ID", "TITLE", "AUTHOR", "CREATED (UTC)" };
	static const char *const reps[] = { "id", "postId", "reporterId", "reason", "createdAt", NULL };
	static const char *const reps_h[] = { "ID", "POST", "REPORTER", "REASON", "CREATED (UTC)" };
	struct incident_investigate_opts io;
	struct st_error err = { 0 };
	const json_t *out;
	int status;

	if ((status = only(ctx, "investigate", o, "srhl", 0)) ||
	    (status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	memset(&io, 0, sizeof(io));
	io.window = o->have_since ? o->since : ctx->config->incident.failed_login_window;
	io.threshold = o->have_threshold ? o->threshold : ctx->config->incident.failed_logins;
	io.recent = o->recent > 0 ? o->recent : 86400;
	io.limit = o->have_limit ? o->limit : 20;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_investigate(&io, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "investigate");
	if (!out || ctx->quiet)
		return status;
	if (j->json) {
		print_json(out);
		return status;
	}
	{
		char title[128];

		snprintf(title, sizeof(title), "Brute force: more than %ld failed logins, the last within",
			 io.threshold);
		print_section(json_object_get(out, "brute_force"), title, bf, bf_h);
	}
	print_section(json_object_get(out, "recent_accounts"), "Accounts created within", acc, acc_h);
	print_section(json_object_get(out, "recent_posts"), "Posts created within", posts, posts_h);
	print_section(json_object_get(out, "reports"), "Reports filed within", reps, reps_h);
	print_warning(out);
	return status;
}

static int sub_lock_users(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const json_t *out, *find;
	int status, i;

	if ((status = only(ctx, "lock-users", o, "", 1000000)))
		return status;
	if (o->npos == 0)
		return cmd_usage_error(ctx, "lock-users needs user ids (from 'incident investigate')");
	for (i = 0; i < o->npos; i++)
		if (!incident_user_id_syntax_ok(o->pos[i]))
			return cmd_usage_error(ctx, "'%s' is not a user id (1-64 letters, digits, '_', '-'); "
						    "nothing was changed", o->pos[i]);
	if ((status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_lock_users((const char *const *)o->pos, (size_t)o->npos, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 1);
	out = incident_session_output(&j->sess, "lock");
	find = incident_session_output(&j->sess, "find");
	if (j->json) {
		json_t *v = json_pack("{s:O*,s:O*}", "find", find, "lock", out);
		print_json(v);
		json_decref(v);
		return status;
	}
	if (ctx->quiet)
		return status;
	if (find && json_array_size(json_object_get(find, "missing"))) {
		size_t k;
		json_t *m;

		printf("not found:");
		json_array_foreach(json_object_get(find, "missing"), k, m)
			printf(" %s", json_string_value(m));
		printf("\n");
	}
	if (out) {
		size_t k;
		json_t *m;
		char buf[64];

		printf("locked %lld user%s:", (long long)json_integer_value(json_object_get(out, "count")),
		       json_integer_value(json_object_get(out, "count")) == 1 ? "" : "s");
		json_array_foreach(json_object_get(out, "locked"), k, m)
			printf(" %s", jtext(m, buf, sizeof(buf)));
		printf("\n");
		print_warning(out);
	}
	return status;
}

static int sub_flush(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const char *pattern = o->pattern ? o->pattern : ctx->config->incident.session_pattern;
	const json_t *out;
	int status;

	if ((status = only(ctx, "flush-sessions", o, "pA", 0)))
		return status;
	if (o->all && o->pattern)
		return cmd_usage_error(ctx, "--all deletes every key: give it or --pattern, not both");
	if (!o->all && (!*pattern || !strcmp(pattern, "*")))
		return cmd_usage_error(ctx, "pattern '%s' matches every key: that is 'flush-sessions --all'",
				       pattern);
	if ((status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_flush_sessions(pattern, o->all, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 1);
	out = incident_session_output(&j->sess, o->all ? "flushall" : "flush");
	if (!out || ctx->quiet)
		return status;
	if (j->json)
		print_json(out);
	else if (o->all)
		printf("FLUSHALL: %lld keys deleted\n", (long long)json_integer_value(json_object_get(out, "keys")));
	else
		printf("deleted %lld key%s matching '%s'\n",
		       (long long)json_integer_value(json_object_get(out, "deleted")),
		       json_integer_value(json_object_get(out, "deleted")) == 1 ? "" : "s", pattern);
	print_warning(out);
	return status;
}

static int sub_rotate(struct ctx *ctx, struct opts *o, struct job *j, int jwt)
{
	struct incident_rotate_plan plan;
	struct docker_client *docker = NULL;
	struct st_error err = { 0 };
	const char *variable = jwt ? "JWT_SECRET" : (o->npos ? o->pos[0] : NULL);
	const json_t *w;
	size_t i;
	int status, rc;

	memset(&plan, 0, sizeof(plan));
	if ((status = only(ctx, jwt ? "rotate-jwt" : "rotate-secret", o, jwt ? "n" : "fgn", jwt ? 0 : 1)))
		return status;
	if (!variable)
		return cmd_usage_error(ctx, "rotate-secret needs the variable's NAME");
	if (!envfile_key_valid(variable))
		return cmd_usage_error(ctx, "'%s' is not a variable name (letters, digits, '_')", variable);
	if (!jwt && !!o->generate == !!o->from_env)
		return cmd_usage_error(ctx, "rotate-secret needs exactly one of --generate or --from-env VAR");
	if (o->from_env) {
		const char *v = getenv(o->from_env);

		if (!envfile_key_valid(o->from_env))
			return cmd_usage_error(ctx, "'%s' is not a variable name", o->from_env);
		if (!v || !*v)
			return cmd_usage_error(ctx, "environment variable '%s' is not set or empty", o->from_env);
	}
	if ((status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	if ((rc = services_docker_open(ctx->config, &docker, &err)) != 0 ||
	    (rc = incident_rotate_plan(ctx->config, docker, variable, &plan, &err)) != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
		goto out;
	}
	if (!plan.nfiles && !plan.nservices) {
		st_error_set(&err, ST_ENOTFOUND, "no env file assigns %s and no service's container has it",
			     variable);
		st_error_hint(&err, "list the .env files in 'env_files' (and services.NAME.env_file) of the "
				    "configuration; looked at %zu file%s", plan.nchecked,
			      plan.nchecked == 1 ? "" : "s");
		cmd_print_error(ctx, &err);
		status = ST_EXIT_ABORTED;
		goto out;
	}
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_rotate(ctx->config, variable, o->from_env, &plan, !o->no_restart, &j->rb, &err) != 0) {
		status = build_failed(ctx, &err);
		goto out;
	}
	status = run_incident(ctx, j->id, j->rb, &j->sess, 1);
	if (ctx->quiet || ctx->dry_run)
		goto out;
	w = incident_session_output(&j->sess, plan.nfiles ? "write" : "generate");
	if (w) {
		size_t k;
		json_t *f;

		json_array_foreach(json_object_get(w, "files"), k, f)
			printf("%s replaced in %s (%lld line%s, mode and other lines kept)\n", variable,
			       js(f, "path"), (long long)json_integer_value(json_object_get(f, "lines")),
			       json_integer_value(json_object_get(f, "lines")) == 1 ? "" : "s");
		print_warning(w);
	}
	for (i = 0; i < plan.nservices; i++) {
		char step[128];
		const json_t *r;

		snprintf(step, sizeof(step), "recreate-%s", plan.services[i]);
		if ((r = incident_session_output(&j->sess, step))) {
			printf("recreated %s (%s) with the new value: healthy after %.1f s\n", js(r, "service"),
			       js(r, "container"), json_number_value(json_object_get(r, "healthy_after")));
			if (json_object_get(r, "old_logs"))
				printf("  the old container's logs: %s\n", js(r, "old_logs"));
			if (json_object_get(r, "old_kept"))
				printf("  the old container is kept (stopped) as %s\n", js(r, "old_kept"));
		}
		else if (o->no_restart && status == 0)
			printf("must restart: %s (%s): its container still has the old value\n", plan.services[i],
			       config_service(ctx->config, plan.services[i])->container);
	}
	if (status == 0 && jwt)
		printf("every session signed with the old secret is invalid: all users must log in again\n");
out:
	incident_rotate_plan_release(&plan);
	docker_client_free(docker);
	return status;
}

static int sub_top_ips(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const char *service = o->service ? o->service : "backend";
	const json_t *out;
	size_t i;
	json_t *t;
	int status;

	if ((status = only(ctx, "top-ips", o, "slS", 0)))
		return status;
	if (!config_service(ctx->config, service))
		return cmd_usage_error(ctx, "service '%s' is not configured", service);
	if ((status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_top_ips(service, o->have_since ? o->since : 3600, o->have_limit ? (size_t)o->limit : 20,
				&j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "count");
	if (!out || ctx->quiet)
		return status;
	if (j->json) {
		print_json(out);
		return status;
	}
	{
		char w[32];

		printf("%lld requests from %lld addresses in the last %s (%s logs, %lld lines)\n",
		       (long long)json_integer_value(json_object_get(out, "requests")),
		       (long long)json_integer_value(json_object_get(out, "distinct")),
		       time_format_duration(o->have_since ? o->since : 3600, w, sizeof(w)), js(out, "container"),
		       (long long)json_integer_value(json_object_get(out, "lines")));
	}
	if (json_array_size(json_object_get(out, "top")))
		printf("%10s  %6s  %s\n", "REQUESTS", "%", "CLIENT");
	json_array_foreach(json_object_get(out, "top"), i, t)
		printf("%10lld  %6.2f  %s\n", (long long)json_integer_value(json_object_get(t, "requests")),
		       json_number_value(json_object_get(t, "percent")), js(t, "ip"));
	if (json_is_true(json_object_get(out, "approximate")))
		printf("(more clients than tracked: the address count is an estimate, and each count may be "
		       "a little high)\n");
	print_warning(out);
	return status;
}

static int sub_block_ip(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct accesslog_trust trust = ACCESSLOG_TRUST_INIT;
	struct st_error err = { 0 };
	char canon[ACCESSLOG_IP_MAX];
	const json_t *out;
	int status, family;

	if ((status = only(ctx, "block-ip", o, "y", 1)))
		return status;
	if (o->npos != 1)
		return cmd_usage_error(ctx, "block-ip needs one IP address");
	if (accesslog_trust_parse((const char *const *)ctx->config->incident.trusted_proxies.items,
				  ctx->config->incident.trusted_proxies.count, &trust, &err) != 0)
		return build_failed(ctx, &err);
	family = incident_block_check(o->pos[0], &trust, incident_ssh_connection(), canon, sizeof(canon), &err);
	accesslog_trust_release(&trust);
	if (family < 0) {
		cmd_print_error(ctx, &err);
		return ST_EXIT_USAGE;
	}
	if ((status = resolve(ctx, o, 1, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_block_ip(canon, o->apply, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, o->apply);
	out = incident_session_output(&j->sess, o->apply ? "apply" : "rule");
	if (!out)
		out = incident_session_output(&j->sess, "rule");
	if (!out || ctx->quiet)
		return status;
	if (j->json) {
		print_json(out);
		return status;
	}
	printf("%s\n", js(out, "rule"));
	if (o->apply && status == 0 && json_is_true(json_object_get(out, "already")))
		printf("the rule was there already\n");
	else if (o->apply && status == 0)
		printf("rule added to the %s chain\n", ctx->config->incident.firewall_chain);
	else if (!o->apply)
		fprintf(stderr, "note: not applied; run it as root, or add --apply\n");
	print_warning(out);
	return status;
}

static int sub_report(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const json_t *out;
	int status;

	if ((status = only(ctx, "report", o, "o", 0)))
		return status;
	if ((status = resolve(ctx, o, 0, j->id, sizeof(j->id))) == ST_EXIT_ABORTED && !o->incident) {
		/* No open incident: the last one. */
		if (incident_latest(ctx->config->state_dir, j->id, sizeof(j->id), &err) != 0) {
			cmd_print_error(ctx, &err);
			return ST_EXIT_ABORTED;
		}
		status = 0;
	}
	if (status)
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_report(o->output, &j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "report");
	if (!out)
		return status;
	if (o->output) {
		if (!ctx->quiet)
			printf("report of incident %s written to %s\n", j->id, o->output);
	} else {
		fputs(js(out, "markdown"), stdout);
	}
	return status;
}

static int sub_close(struct ctx *ctx, struct opts *o, struct job *j)
{
	struct st_error err = { 0 };
	const json_t *out;
	int status;

	if ((status = only(ctx, "close", o, "", 0)) || (status = resolve(ctx, o, 0, j->id, sizeof(j->id))))
		return status;
	session_setup(&j->sess, ctx, j->id);
	if (incident_rb_close(&j->rb, &err) != 0)
		return build_failed(ctx, &err);
	status = run_incident(ctx, j->id, j->rb, &j->sess, 0);
	out = incident_session_output(&j->sess, "close");
	if (out && status == 0 && !ctx->quiet) {
		printf("closed incident %s\n  report: spilttea-ops incident report --incident %s\n", js(out, "id"),
		       js(out, "id"));
		print_warning(out);
	}
	return status;
}

int cmd_incident(int argc, char **argv, struct ctx *ctx)
{
	struct opts o;
	struct job j;
	const char *sub;
	int status = ST_EXIT_OK;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(incident_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? ST_EXIT_USAGE : ST_EXIT_OK;
	}
	memset(&o, 0, sizeof(o));
	memset(&j, 0, sizeof(j));
	sub = argv[1];
	o.pos = calloc((size_t)argc + 1, sizeof(*o.pos));
	if (!o.pos) {
		fputs("error: out of memory\n", stderr);
		return ST_EXIT_FAILED;
	}
	if ((status = parse_opts(ctx, argc, argv, &o)) != 0)
		goto out;
	{
		static const char *const json_subs[] = { "status", "snapshot", "investigate", "lock-users",
							  "flush-sessions", "top-ips", "block-ip", NULL };
		int json_ok = 0, k;

		for (k = 0; json_subs[k]; k++)
			json_ok |= !strcmp(sub, json_subs[k]);
		if ((status = want_json(ctx, sub, json_ok, &j.json)) != 0)
			goto out;
	}
	if (!strcmp(sub, "start"))
		status = sub_start(ctx, &o, &j);
	else if (!strcmp(sub, "status"))
		status = sub_status(ctx, &o, &j);
	else if (!strcmp(sub, "snapshot"))
		status = sub_snapshot(ctx, &o, &j);
	else if (!strcmp(sub, "contain"))
		status = sub_contain(ctx, &o, &j);
	else if (!strcmp(sub, "investigate"))
		status = sub_investigate(ctx, &o, &j);
	else if (!strcmp(sub, "lock-users"))
		status = sub_lock_users(ctx, &o, &j);
	else if (!strcmp(sub, "flush-sessions"))
		status = sub_flush(ctx, &o, &j);
	else if (!strcmp(sub, "rotate-jwt"))
		status = sub_rotate(ctx, &o, &j, 1);
	else if (!strcmp(sub, "rotate-secret"))
		status = sub_rotate(ctx, &o, &j, 0);
	else if (!strcmp(sub, "top-ips"))
		status = sub_top_ips(ctx, &o, &j);
	else if (!strcmp(sub, "block-ip"))
		status = sub_block_ip(ctx, &o, &j);
	else if (!strcmp(sub, "report"))
		status = sub_report(ctx, &o, &j);
	else if (!strcmp(sub, "close"))
		status = sub_close(ctx, &o, &j);
	else
		status = cmd_usage_error(ctx, "unknown incident subcommand '%s'", sub);
out:
	if (j.sess.cfg)
		incident_session_release(&j.sess);
	runbook_free(j.rb);
	free(o.pos);
	return status;
}
