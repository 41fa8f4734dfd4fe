/*
 * engine.h - actions, the action registry, and the step executor that runs
 * a runbook (runbook.h) as checked steps.
 *
 * An action is a C function with a declared argument spec. Each module that
 * provides actions exports one static table (lib/actions_<module>.c,
 * terminated by an entry with name NULL) and lists it in lib/actions.c; the
 * registry concatenates those tables. Tests add fake tables with
 * engine_registry_add().
 *
 * For each step the executor does, in order (see docs in runbook.h for the
 * file format):
 *   when     - condition; false: the step is skipped
 *   check    - precondition action + expect; on_fail abort (ST_EABORTED) or skip
 *   confirm  - through the UI callback; --yes answers it; no terminal and no
 *              --yes: ST_EABORTED with the hint "re-run with --yes"
 *   act      - the action; its JSON result becomes ${steps.NAME...}
 *   verify   - postcondition action + expect, polled every interval until it
 *              holds or timeout passes
 * A finding step (runbook.h) runs its when and its read-only act, judges
 * the result into a finding (ok / warn / problem, evidence, fix) and hands
 * it to ui->finding and the journal; it never stops the run.
 * When a step fails (its act or verify), or the run is aborted or
 * interrupted after some steps acted, the undo of every step whose act
 * succeeded (the failing step's own included when only its verify failed)
 * runs in reverse order. Everything is journaled (journal.h); the run holds
 * the runbook's lock (lock.h) from before the first step to after the last
 * undo. A run refused by the lock (ST_ELOCKED) has done and written nothing.
 *
 * --dry-run (engine_options.dry_run) renders the plan with resolved
 * arguments through the UI and touches nothing: no action runs (not even
 * read-only checks), no lock file, no journal record, nothing on disk.
 *
 * Secrets: arguments declared ENGINE_ARG_SECRET, any argument whose name
 * sounds secret (redact_name_is_secret), and secret parameters (see
 * runbook.h: known at load) appear as "***" in the plan, the journal, the
 * lock file and error messages (their values are also scrubbed from error
 * text that a service may have echoed, and from confirmation prompts).
 *
 * lib/ never prints: the UI callbacks (supplied by cmd/) see every step.
 */
#ifndef ST_ENGINE_H
#define ST_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <jansson.h>

#include "error.h"

struct redact_set;
struct runbook;
struct runbook_step;
struct services;
struct st_config;

/* ---- actions --------------------------------------------------------- */

enum engine_arg_type {
	ENGINE_ARG_STRING,    /* numbers and booleans are taken as their text */
	ENGINE_ARG_INT,       /* integer, or a string holding one */
	ENGINE_ARG_NUMBER,    /* number, or a string holding one (passed as a real) */
	ENGINE_ARG_BOOL,      /* true/false, or "true" "false" "yes" "no" "on" "off" */
	ENGINE_ARG_DURATION,  /* seconds, or "500ms" "30s" "5m" "2h" (passed as real seconds),
				 at most ENGINE_DURATION_MAX */
	ENGINE_ARG_ARRAY,
	ENGINE_ARG_OBJECT,
	ENGINE_ARG_ANY,
};

enum {
	ENGINE_ARG_REQUIRED = 1u << 0,
	ENGINE_ARG_SECRET = 1u << 1,   /* "***" wherever shown */
	/* Must be written out in the runbook: a "${" anywhere in it (nested
	 * values included) is refused at load. For SQL text, whose values go
	 * in as $1, $2 ... parameters, never into the text. */
	ENGINE_ARG_LITERAL = 1u << 2,
};

/* Longest duration an argument may give (366 days): longer ones are typos,
 * and would overflow the int/long milliseconds the clients work in. */
#define ENGINE_DURATION_MAX (366.0 * 86400)

struct engine_arg_spec {
	const char *name;
	enum engine_arg_type type;
	unsigned flags;
	const char *def;       /* default as text, converted like a string value; NULL: none */
	const char *summary;   /* one line for runbook show / docs */
};

enum {
	/* Loses data or interrupts service: a step using it needs `confirm`. */
	ENGINE_ACTION_DESTRUCTIVE = 1u << 0,
	/* Changes nothing: the only kind allowed in check and verify. */
	ENGINE_ACTION_READ_ONLY = 1u << 1,
};

enum engine_phase {
	ENGINE_PHASE_CHECK,
	ENGINE_PHASE_CONFIRM,
	ENGINE_PHASE_ACT,
	ENGINE_PHASE_VERIFY,
	ENGINE_PHASE_UNDO,
};

/* What an action knows about the call it serves. */
struct engine_call {
	const char *runbook;
	const char *step;
	enum engine_phase phase;
	int attempt;                      /* verify polls count 1, 2, ...; else 1 */
	const struct st_config *config;   /* engine_options.config; may be NULL */
	struct services *services;        /* engine_options.services; may be NULL */
	const char *(*lookup_config)(void *ud, const char *path);
	void *config_ud;
	volatile sig_atomic_t *cancel;    /* non-zero when the operator interrupted; may be NULL */
};

/*
 * The function behind an action. args holds every declared argument that
 * has a value, already converted to its declared type (missing optional
 * arguments are absent); it is borrowed. On success return 0 and set
 * *result to a new JSON value (an object, ideally; NULL counts as {}), which
 * the engine owns from then on. On failure return a negative ST_E* code
 * with err filled and leave *result NULL.
 */
typedef int (*engine_action_fn)(struct engine_call *call, const json_t *args, json_t **result,
				struct st_error *err);

struct engine_action {
	const char *name;          /* "docker.restart"; NULL ends a table */
	const char *summary;
	const struct engine_arg_spec *args;  /* ends with { NULL }; may be NULL for none */
	unsigned flags;            /* ENGINE_ACTION_* */
	engine_action_fn run;
};

/* 1 when the run was interrupted. */
int engine_call_cancelled(const struct engine_call *call);

/* Sleeps up to seconds, returning early with ST_EABORTED ("interrupted")
 * when the run is cancelled. For actions that wait. */
int engine_call_sleep(const struct engine_call *call, double seconds, struct st_error *err);

/* ---- registry -------------------------------------------------------- */

struct engine_registry;

/* A registry holding every built-in table (lib/actions.c) when
 * with_builtins, else empty. *out owned by the caller
 * (engine_registry_free). ST_ENOMEM, or ST_ECONFLICT for a name defined
 * twice. */
int engine_registry_new(int with_builtins, struct engine_registry **out, struct st_error *err);

/* Adds a table (terminated by a NULL name), which must outlive the
 * registry. ST_ECONFLICT when a name is already registered, ST_EUSAGE for
 * an action without a run function. */
int engine_registry_add(struct engine_registry *reg, const struct engine_action *table,
			struct st_error *err);

/* Borrowed; NULL when unknown. */
const struct engine_action *engine_registry_find(const struct engine_registry *reg,
						 const char *name);
size_t engine_registry_count(const struct engine_registry *reg);
const struct engine_action *engine_registry_at(const struct engine_registry *reg, size_t i);

void engine_registry_free(struct engine_registry *reg);

/* Looks an argument up in an action's spec; NULL when not declared. */
const struct engine_arg_spec *engine_action_arg(const struct engine_action *action,
						const char *name);

/* Converts one value to the type of spec (see enum engine_arg_type). *out
 * is a new reference. ST_EUSAGE with "argument 'NAME' must be ..." on a
 * mismatch. */
int engine_arg_convert(const struct engine_arg_spec *spec, const json_t *value, json_t **out,
		       struct st_error *err);

/* Builds the argument object an action receives from resolved values:
 * applies defaults, converts types, rejects unknown and missing required
 * arguments (ST_EUSAGE). *out is a new reference. */
int engine_args_prepare(const struct engine_action *action, const json_t *resolved, json_t **out,
			struct st_error *err);

/* A copy of args with secret arguments (declared or by name) as "***".
 * Caller frees (json_decref); NULL on ENOMEM. */
json_t *engine_args_redacted(const struct engine_action *action, const json_t *args);

/* ---- running ---------------------------------------------------------- */

enum engine_result {
	ENGINE_RESULT_OK,
	ENGINE_RESULT_SKIPPED,
	ENGINE_RESULT_FAILED,
	ENGINE_RESULT_UNDONE,
	ENGINE_RESULT_ABORTED,
	ENGINE_RESULT_DRY_RUN,
};

/* "ok", "skipped", "failed", "undone", "aborted", "dry-run". */
const char *engine_result_name(enum engine_result r);
/* "check", "confirm", "act", "verify", "undo". */
const char *engine_phase_name(enum engine_phase p);

struct engine_step_event {
	const struct runbook_step *step;
	size_t index;                 /* 0-based */
	size_t total;
	enum engine_phase phase;      /* ENGINE_PHASE_ACT for a step, _UNDO for its undo */
	enum engine_result result;    /* step_end only */
	double duration;              /* step_end only, seconds */
	int attempts;                 /* verify polls made, 0 when no verify ran */
	const char *detail;           /* why skipped/failed/aborted (redacted), or NULL */
	int code;                     /* a skip that is a failure to check: ST_EUNREACHABLE (its
					 service timed out or refused earlier in the run, see
					 services_set_fail_fast) or ST_ETIMEOUT (the run's
					 deadline passed); 0 for other skips and results */
};

enum engine_finding_status {
	ENGINE_FINDING_OK = 0,
	ENGINE_FINDING_WARN = 1,
	ENGINE_FINDING_PROBLEM = 2,
};

/* "ok", "warn", "problem". */
const char *engine_finding_status_name(enum engine_finding_status s);

/* What a finding step concluded. Everything is borrowed for the callback;
 * texts are resolved and redacted. */
struct engine_finding {
	const struct runbook_step *step;
	enum engine_finding_status status;
	const char *message;          /* what was found (the ok wording when ok) */
	const char *why;              /* the comparison that did not hold, or NULL */
	const char *error;            /* the action failed: its error ("cannot check"), or NULL */
	const json_t *evidence;       /* object: result path -> value (absent: null); never NULL */
	const char *fix;              /* what to do, or NULL (NULL when ok or when the
					 action failed) */
	const char *fix_runbook;      /* a safe automatic fix, or NULL (NULL when ok or
					 when the action failed) */
	const json_t *fix_params;     /* its parameters, resolved: an object, never NULL */
};

struct engine_ui {
	void *ud;
	/* One line of a plan (dry-run, runbook show), without newline. */
	void (*plan)(void *ud, const char *line);
	void (*step_start)(void *ud, const struct engine_step_event *ev);
	void (*step_end)(void *ud, const struct engine_step_event *ev);
	/* Something the operator should know that is not a step: a stale lock
	 * taken over, a journal write that failed, undo starting. */
	void (*notice)(void *ud, const char *message);
	/* Asks the operator. word is NULL for a yes/no question, else the word
	 * to type. Write what was answered into answer (NUL-terminated) and
	 * return 1; return 0 when nobody can be asked (not a terminal). The
	 * engine judges the answer: "y"/"yes" (any case) for yes/no, the exact
	 * word for typed confirmations. */
	int (*confirm)(void *ud, const char *prompt, const char *word, char *answer, size_t size);
	/* A finding step's conclusion (may be NULL). */
	void (*finding)(void *ud, const struct engine_finding *finding);
};

struct engine_options {
	const char *state_dir;        /* lock and journal; required unless dry_run */
	const char *command_line;     /* for the journal and the lock file */
	const char *incident;         /* incident id for the journal, or NULL */
	int dry_run;
	int assume_yes;               /* --yes */
	const char *(*lookup_config)(void *ud, const char *path);  /* ${config.*}; may be NULL */
	void *config_ud;
	const struct st_config *config;/* handed to actions (service names, timeouts); may be NULL */
	struct services *services;    /* handed to actions as engine_call.services: the
					 per-run Docker, Postgres and Redis clients (services.h),
					 opened lazily on first use; may be NULL (actions that
					 need a client then fail) */
	volatile sig_atomic_t *cancel;/* set by a signal handler; may be NULL */
	const struct engine_ui *ui;   /* may be NULL: nothing shown, nobody asked */
	int keep_results;             /* hand the act results to engine_report.results */
	/* Steps not started by this time_monotonic() instant are skipped
	 * (engine_step_event.code ST_ETIMEOUT); 0: none. For read-only runs
	 * (diagnose): a step started before it may still run to its own
	 * timeouts. deadline_s is the budget it came from, for the message. */
	double deadline;
	double deadline_s;
};

struct engine_report {
	char run_id[48];              /* journal run id, empty for dry-run */
	size_t ok, skipped, failed, undone, undo_failed;
	size_t findings[3];           /* by enum engine_finding_status */
	double duration;
	int journal_failed;           /* some journal record could not be written */
	/* With engine_options.keep_results: step name -> act result of every
	 * step that acted, for callers that report what a runbook did (bytes
	 * reclaimed, keys deleted). Caller frees (json_decref); NULL otherwise. */
	json_t *results;
};

/* Parses "key=value" words against the runbook's params: unknown names,
 * malformed words, values that are not UTF-8 and missing required params
 * are ST_EUSAGE; defaults fill
 * the rest (params without a default or value are null). *out (an object)
 * is a new reference. */
int engine_params_parse(const struct runbook *rb, int argc, char *const *argv, json_t **out,
			struct st_error *err);

/* Adds the values of rb's secret parameters (runbook_param.secret; see
 * runbook.h) found in params to set. 0 or ST_ENOMEM. */
int engine_params_secrets(const struct runbook *rb, const json_t *params, struct redact_set *set);

/* A copy of params with the value of every secret parameter as "***".
 * Caller frees (json_decref); NULL on ENOMEM. */
json_t *engine_params_redacted(const struct runbook *rb, const json_t *params);

/* Runs rb with params from engine_params_parse(). report may be NULL.
 * Errors: ST_EUSAGE (bad options), ST_ELOCKED, ST_EABORTED (check abort,
 * confirmation refused or impossible, interrupted), ST_EFAILED ("step 'x'
 * failed: ..."), ST_ECONFIG (state_dir unusable: no lock or journal file
 * could be made, so nothing ran; a ${config} value not set, in dry-run),
 * ST_EIO (the journal could not be written mid-run). */
int engine_run(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
	       struct engine_report *report, struct st_error *err);

/* The runbook's lock names (runbook.locks) with their ${args...} and
 * ${config...} resolved from params and opts->lookup_config, each checked
 * (lock_name_valid). *out: rb->nlocks strings plus a NULL; caller frees
 * with engine_lock_names_free(). Errors: ST_EUSAGE (not a lock name once
 * resolved, or it would carry a secret parameter's value into a file name
 * and messages), ST_ECONFIG (a ${config} value that is not set), ST_ENOMEM. */
int engine_lock_names(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
		      char ***out, struct st_error *err);
void engine_lock_names_free(char **names);

/* Renders the plan through opts->ui->plan. With params, ${args} and
 * ${config} are resolved (dry-run); without, every reference stays as
 * written (runbook show). Runs nothing. ST_ECONFIG for a ${config} value
 * that is not set. */
int engine_plan(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
		struct st_error *err);

#endif
