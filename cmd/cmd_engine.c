/*
 * cmd_engine.c - glue between the step engine (lib/engine.h) and the
 * terminal: registry and catalog setup, ${config...} lookup, progress lines
 * and confirmations.
 */
#include "cmd_engine.h"
#include "../lib/config.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"
#include "../lib/yamltree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cmd_engine_lookup_config(void *ud, const char *path)
{
	return yt_scalar(config_lookup(ud, path));
}

int cmd_engine_open(const struct st_config *cfg, struct engine_registry **reg,
		    struct runbook_catalog **cat, struct st_error *err)
{
	int rc;

	*cat = NULL;
	if ((rc = engine_registry_new(1, reg, err)) != 0)
		return rc;
	rc = runbook_catalog_open(*reg, cfg ? cfg->runbooks_dir : NULL, cat, err);
	if (rc) {
		engine_registry_free(*reg);
		*reg = NULL;
	}
	return rc;
}

int cmd_engine_optional_config(const struct ctx *ctx, struct st_config **out,
			       struct st_error *err)
{
	struct st_error ferr = { 0 };
	const char *source = NULL;
	char *path = NULL;
	int rc;

	*out = NULL;
	if (ctx->config)
		return st_error_set(err, ST_EUSAGE, "configuration already loaded");
	/* Nothing found by the search order is fine here; a file named
	 * explicitly (--config, $SPILTTEA_OPS_CONFIG) must exist. */
	if (config_find(ctx->config_path, &path, &source, &ferr) != 0) {
		if (ctx->config_path || getenv(CONFIG_ENV_VAR)) {
			*err = ferr;
			return ferr.code;
		}
		return 0;
	}
	rc = config_load_file(path, source, out, err);
	free(path);
	return rc;
}

/* ---- terminal UI ------------------------------------------------------ */

static void close_progress(struct cmd_ui *u)
{
	if (!u->progress_open)
		return;
	fputs("\r\033[K", stdout);
	fflush(stdout);
	u->progress_open = 0;
}

/* stdout closed under us (EPIPE; SIGPIPE is ignored): stop printing, go on
 * running. */
static int stdout_gone(void)
{
	return ferror(stdout);
}

static void ui_plan(void *ud, const char *line)
{
	(void)ud;
	if (!stdout_gone())
		puts(line);
}

static void ui_step_start(void *ud, const struct engine_step_event *ev)
{
	struct cmd_ui *u = ud;
	int c = u->ctx->color_stdout;

	/* Only a terminal gets the line that waits for its result. */
	if (u->ctx->quiet || !u->ctx->stdout_tty || stdout_gone())
		return;
	if (ev->phase == ENGINE_PHASE_UNDO)
		printf("%s… undo %s%s", cmd_color_on(c, COLOR_DIM), ev->step->name, cmd_color_off(c));
	else
		printf("%s… [%zu/%zu] %s%s%s%s", cmd_color_on(c, COLOR_DIM), ev->index + 1, ev->total,
		       ev->step->name, ev->step->description ? ": " : "",
		       ev->step->description ? ev->step->description : "", cmd_color_off(c));
	fflush(stdout);
	u->progress_open = 1;
}

static void ui_step_end(void *ud, const struct engine_step_event *ev)
{
	struct cmd_ui *u = ud;
	int c = u->ctx->color_stdout;
	const char *mark;
	enum cmd_color color;
	char dur[32], tries[48] = "";

	close_progress(u);
	if (u->ctx->quiet || stdout_gone())
		return;
	switch (ev->result) {
	case ENGINE_RESULT_OK: mark = "✓"; color = COLOR_GREEN; break;
	case ENGINE_RESULT_UNDONE: mark = "↶"; color = COLOR_YELLOW; break;
	case ENGINE_RESULT_SKIPPED: mark = "-"; color = COLOR_DIM; break;
	default: mark = "✗"; color = COLOR_RED; break;
	}
	time_format_duration(ev->duration, dur, sizeof(dur));
	if (ev->attempts > 1)
		snprintf(tries, sizeof(tries), ", verified after %d tries", ev->attempts);
	if (ev->phase == ENGINE_PHASE_UNDO)
		printf("%s%s%s undo %s  %s%s\n", cmd_color_on(c, color), mark, cmd_color_off(c),
		       ev->step->name, ev->result == ENGINE_RESULT_UNDONE ? "undone " : "failed ", dur);
	else if (ev->result == ENGINE_RESULT_SKIPPED)
		printf("%s%s [%zu/%zu] %s  skipped%s%s%s%s\n", cmd_color_on(c, color), mark,
		       ev->index + 1, ev->total, ev->step->name, ev->detail ? " (" : "",
		       ev->detail ? ev->detail : "", ev->detail ? ")" : "", cmd_color_off(c));
	else
		printf("%s%s%s [%zu/%zu] %s  %s%s%s%s\n", cmd_color_on(c, color), mark, cmd_color_off(c),
		       ev->index + 1, ev->total, ev->step->name, cmd_color_on(c, COLOR_DIM), dur, tries,
		       cmd_color_off(c));
	/* A failure that stops the run is the final error message; only those
	 * the run survives need their reason here (a finding says it itself). */
	if (ev->detail && *ev->detail && ev->result == ENGINE_RESULT_FAILED && !u->finding &&
	    (ev->phase == ENGINE_PHASE_UNDO || ev->step->continue_on_error || ev->step->finding))
		printf("    %s\n", ev->detail);
	if (u->finding && ev->phase != ENGINE_PHASE_UNDO)
		fputs(u->finding, stdout);
	free(u->finding);
	u->finding = NULL;
	fflush(stdout);
}

/* Kept until the step's line is printed (step_end comes after). */
static void ui_finding(void *ud, const struct engine_finding *f)
{
	struct cmd_ui *u = ud;
	int c = u->ctx->color_stdout;
	enum cmd_color color = f->status == ENGINE_FINDING_OK     ? COLOR_GREEN
			       : f->status == ENGINE_FINDING_WARN ? COLOR_YELLOW
								  : COLOR_RED;
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	free(u->finding);
	u->finding = NULL;
	if (u->ctx->quiet || !(m = open_memstream(&text, &len)))
		return;
	fprintf(m, "    %s%s%s: %s\n", cmd_color_on(c, color), engine_finding_status_name(f->status),
		cmd_color_off(c), f->message);
	if (f->error)
		fprintf(m, "      cannot check: %s\n", f->error);
	if (f->why)
		fprintf(m, "      %s\n", f->why);
	if (f->fix)
		fprintf(m, "      fix: %s\n", f->fix);
	if (f->fix_runbook)
		fprintf(m, "      automatic fix: spilttea-ops run %s\n", f->fix_runbook);
	if (fclose(m) == 0)
		u->finding = text;
	else
		free(text);
}

static void ui_notice(void *ud, const char *message)
{
	struct cmd_ui *u = ud;

	close_progress(u);
	if (u->ctx->quiet)
		return;
	fprintf(stderr, "%snote:%s %s\n", cmd_color_on(u->ctx->color_stderr, COLOR_YELLOW),
		cmd_color_off(u->ctx->color_stderr), message);
}

/* Reads one line from fd (without its newline) into buf. 0, or -1 when
 * nothing came: end of input, or Ctrl-C at the prompt. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	int got = 0;
	char ch;

	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR) {
			buf[0] = '\0';
			return -1;
		}
		if (r <= 0)
			break;
		got = 1;
		if (ch == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = ch;
	}
	buf[n] = '\0';
	return got ? 0 : -1;
}

static int ui_confirm(void *ud, const char *prompt, const char *word, char *answer, size_t size)
{
	struct cmd_ui *u = ud;
	int fd, own = 0, out;

	close_progress(u);
	/* The terminal itself, even when stdin is a pipe (like sudo and ssh);
	 * failing that stdin when it is one; otherwise nobody can be asked. */
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		own = 1;
		out = fd;
	} else if (u->ctx->stdin_tty) {
		fd = STDIN_FILENO;
		out = STDERR_FILENO;
	} else {
		return 0;
	}
	if (word)
		dprintf(out, "%s\nType '%s' to confirm: ", prompt, word);
	else
		dprintf(out, "%s [y/N] ", prompt);
	if (read_line(fd, answer, size) != 0) {
		answer[0] = '\0';
		dprintf(out, "\n");
	}
	if (own)
		close(fd);
	return 1;
}

void cmd_engine_ui(struct cmd_ui *state, struct ctx *ctx, struct engine_ui *ui)
{
	memset(state, 0, sizeof(*state));
	state->ctx = ctx;
	memset(ui, 0, sizeof(*ui));
	ui->ud = state;
	ui->plan = ui_plan;
	ui->step_start = ui_step_start;
	ui->step_end = ui_step_end;
	ui->notice = ui_notice;
	ui->confirm = ui_confirm;
	ui->finding = ui_finding;
}

void cmd_engine_ui_release(struct cmd_ui *state)
{
	free(state->finding);
	state->finding = NULL;
}

/* ---- running a named runbook ----------------------------------------- */

int cmd_engine_run_named(struct ctx *ctx, const char *name, int argc, char **kv, int quiet,
			 struct engine_report *report, struct st_error *err)
{
	struct engine_registry *reg = NULL;
	struct runbook_catalog *cat = NULL;
	struct runbook *rb = NULL;
	struct engine_options opts;
	struct engine_ui ui;
	struct cmd_ui ui_state = { 0 };
	struct services services;
	struct cmd_signals sig;
	volatile sig_atomic_t *cancel;
	struct ctx quiet_ctx = *ctx;
	json_t *params = NULL;
	int rc;

	memset(report, 0, sizeof(*report));
	services_init(&services, ctx->config);
	/* Ctrl-C, SIGTERM and SIGHUP stop after the current step (also while
	 * the runbooks load: the engine then stops before the first step). */
	cancel = cmd_signals_catch(&sig);
	if ((rc = cmd_engine_open(ctx->config, &reg, &cat, err)) != 0 ||
	    (rc = runbook_catalog_load(cat, name, &rb, err)) != 0 ||
	    (rc = engine_params_parse(rb, argc, kv, &params, err)) != 0)
		goto out;
	quiet_ctx.quiet = ctx->quiet || quiet;
	cmd_engine_ui(&ui_state, &quiet_ctx, &ui);
	memset(&opts, 0, sizeof(opts));
	opts.state_dir = ctx->config->state_dir;
	opts.command_line = ctx->command_line;
	opts.dry_run = ctx->dry_run;
	opts.assume_yes = ctx->yes;
	opts.lookup_config = cmd_engine_lookup_config;
	opts.config_ud = ctx->config;
	opts.config = ctx->config;
	opts.services = &services;
	opts.cancel = cancel;
	opts.ui = &ui;
	opts.keep_results = 1;

	rc = engine_run(rb, params, &opts, report, err);
out:
	cmd_signals_restore(&sig);
	cmd_engine_ui_release(&ui_state);
	services_release(&services);
	json_decref(params);
	runbook_free(rb);
	runbook_catalog_free(cat);
	engine_registry_free(reg);
	return rc;
}
