/*
 * cmd_engine.h - what `run` and `runbook` share: the action registry, the
 * runbook catalog for the loaded configuration, the config lookup behind
 * ${config...}, and the terminal UI of the step engine.
 */
#ifndef ST_CMD_ENGINE_H
#define ST_CMD_ENGINE_H

#include "cmd.h"
#include "../lib/engine.h"
#include "../lib/runbook.h"

struct st_config;

/* The ${config.a.b} lookup for engine_options: ud is a struct st_config.
 * Scalars only (mappings and secrets are "not set"). */
const char *cmd_engine_lookup_config(void *ud, const char *path);

/* Registry with every built-in action and the catalog for cfg's runbooks_dir
 * (cfg may be NULL: built-ins only). Both out-params are the caller's
 * (runbook_catalog_free, then engine_registry_free). */
int cmd_engine_open(const struct st_config *cfg, struct engine_registry **reg,
		    struct runbook_catalog **cat, struct st_error *err);

/* The configuration when one can be found, else NULL without error: for
 * commands that work without it (runbook list/show/check). An explicit
 * --config that does not exist, or a file that does not load, is an error.
 * *out: caller frees (config_free). */
int cmd_engine_optional_config(const struct ctx *ctx, struct st_config **out,
			       struct st_error *err);

/* Terminal UI for engine_options.ui: progress lines on stdout (colour when
 * ctx->color_stdout), notices on stderr, confirmations on /dev/tty (or stdin
 * when it is a terminal). */
struct cmd_ui {
	struct ctx *ctx;
	int progress_open;     /* a "... step" line waits for its result */
	char *finding;         /* a finding step's conclusion, printed after its step line; owned */
};
void cmd_engine_ui(struct cmd_ui *state, struct ctx *ctx, struct engine_ui *ui);
/* Frees what the UI state holds. */
void cmd_engine_ui_release(struct cmd_ui *state);

/*
 * Runs the runbook name (built-in or from runbooks_dir) with key=value
 * words, as `run` does: journaled, locked, confirmations through the
 * terminal (--yes answers them), --dry-run prints the plan, Ctrl-C stops
 * after the current step and undoes. quiet: no step lines (for JSON
 * output). *report is filled, with report->results (caller frees with
 * json_decref). Returns 0 or the engine's ST_E* code with err filled
 * (ST_EUSAGE / ST_ECONFIG: the runbook or a parameter is wrong).
 */
int cmd_engine_run_named(struct ctx *ctx, const char *name, int argc, char **kv, int quiet,
			 struct engine_report *report, struct st_error *err);

#endif
