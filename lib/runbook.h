/*
 * runbook.h - runbook files: loading with positioned errors, and the
 * catalog of built-in and configured runbooks.
 *
 * Format (every key optional unless marked; unknown keys are errors):
 *
 *   name: restart-backend              # required; letters, digits, '-', '_'
 *   description: Restart the backend   # one line for `runbook list`
 *   lock: svc:backend                  # the resource locks held for the run (lock.h):
 *                                      #   a name, or a list of them, which may use
 *                                      #   ${args...} and ${config...} (resolved when
 *                                      #   the run starts): [backup, "db:${args.database}"]
 *   params:                            # NAME -> spec; run NAME key=value
 *     wait:
 *       description: how long to wait for /health
 *       default: 30s                   # a parameter with neither default nor
 *       required: false                #   value is null
 *       secret: false                  # see "Secret parameters" below
 *   steps:                             # required, at least one, run in order
 *     - name: restart                  # required, unique; letters, digits, '-', '_'
 *       description: Restart the container
 *       action: docker.restart         # required; must be registered
 *       args: { container: "${config.services.backend.container}" }
 *       when: "${args.force} == true"  # skip the step unless this holds
 *       check:                         # precondition, before confirm and act;
 *                                      #   an action error counts as "not met"
 *         action: http.probe           # read-only actions only
 *         args: { url: "${config.services.backend.health_url}" }
 *         expect: { status: "!= 200" }
 *         on_fail: abort               # abort (default, exit 3) | skip
 *       confirm: Restart the backend?  # or { prompt: ..., type: WORD }
 *       verify:                        # postcondition, polled; action errors
 *                                      #   count as "not yet"
 *         action: http.probe           # read-only actions only
 *         args: { url: "..." }
 *         expect: { status: 200, "body.status": "== ok" }
 *         timeout: 30s                 # default 30s
 *         interval: 1s                 # default 1s
 *       undo: { action: docker.start, args: { container: "..." } }
 *       continue_on_error: false       # a failure is reported, the run goes on
 *
 * A finding step (diagnose) observes instead of acting: its action must be
 * read-only, it takes no check, confirm, verify, undo or
 * continue_on_error, and it never stops the run. Its result is judged into
 * a finding (engine.h, struct engine_finding) handed to the UI and the
 * journal:
 *
 *     - name: postgres-health
 *       description: PostgreSQL is running and healthy
 *       action: docker.inspect
 *       args: { service: postgres }
 *       finding:
 *         expect: { running: true, health: "!= unhealthy" }  # the healthy state;
 *                                      #   none: informational, always ok
 *         severity: problem            # when expect does not hold: warn | problem
 *         warn_expect: { ... }         # optional, with severity problem: when
 *                                      #   expect holds but this does not: warn
 *         message: "postgres is ${steps.postgres-health.status}"  # what was found
 *         ok: "postgres is healthy"    # optional wording when ok (default message)
 *         evidence: [status, health]   # result paths shown (default: expect's paths)
 *         fix: Start postgres, then the backend.  # what to do when not ok
 *         fix_runbook: start-after-db  # a safe automatic fix (diagnose --fix)
 *         fix_params: { wait: 60s }    # its parameters
 *
 * The finding's templates may use the step's own result. When the action
 * fails, the finding has the given severity and the error ("cannot
 * check"), and no fix (what is wrong is not known); so a check
 * whose failure is the finding uses an action that reports it in its
 * result (http.probe, pg.ping, docker.inspect of a missing container).
 * A step whose `when` or arguments need a value that is not there
 * (an unset ${config} key, a step that did not run) is skipped.
 *
 * Strings may hold ${config.a.b}, ${args.NAME} and ${steps.NAME.FIELD}
 * references (expr.h). At load, ${args.X} must name a declared parameter and
 * ${steps.X} a step that runs before (or, in verify and undo, the step
 * itself; in confirm, the step itself when it has a check: until its action
 * ran, a step's result is its check's); ${config} keys are checked when the
 * run resolves them.
 * Argument names and required arguments are checked against the action's
 * spec, and literal values against its types. An action flagged destructive
 * needs `confirm`. Every error names file:line:column.
 *
 * Secret parameters: a parameter is secret when it says `secret: true`,
 * when its name sounds secret (redact_name_is_secret), or when the runbook
 * passes it (${args.NAME}, anywhere in the value) to an argument that is
 * secret: declared ENGINE_ARG_SECRET, or under a secret-sounding key at any
 * depth (env: { PGPASSWORD: "${args.pw}" }). This is decided at load, so
 * the value is hidden from the start: journal, lock file, plan, and every
 * step, not only from the step that uses it.
 */
#ifndef ST_RUNBOOK_H
#define ST_RUNBOOK_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

struct engine_action;
struct engine_registry;

/* An action with its argument templates (and, for check and verify, what
 * its result must satisfy). */
struct runbook_call {
	const struct engine_action *action;  /* borrowed from the registry */
	json_t *args;                        /* object of templates; never NULL */
	json_t *expect;                      /* object path -> expected, or NULL */
	int line, column;                    /* where the call is written */
};

enum runbook_on_fail { RUNBOOK_ON_FAIL_ABORT, RUNBOOK_ON_FAIL_SKIP };

enum runbook_severity { RUNBOOK_SEVERITY_WARN = 1, RUNBOOK_SEVERITY_PROBLEM = 2 };

/* How a finding step judges its result (see the format above). */
struct runbook_finding {
	json_t *expect;                      /* path -> expected, or NULL: informational */
	json_t *warn_expect;                 /* or NULL */
	enum runbook_severity severity;      /* when expect does not hold */
	char *message;                       /* template */
	char *ok;                            /* template, or NULL */
	json_t *evidence;                    /* array of result paths, or NULL */
	char *fix;                           /* template, or NULL */
	char *fix_runbook;                   /* runbook name, or NULL */
	json_t *fix_params;                  /* object of templates, or NULL */
	int line, column;
};

struct runbook_step {
	char *name;
	char *description;                   /* may be NULL */
	struct runbook_call act;
	char *when;                          /* condition, or NULL */
	struct runbook_call *check;          /* or NULL */
	enum runbook_on_fail on_fail;
	struct runbook_call *verify;         /* or NULL */
	double verify_timeout;               /* seconds */
	double verify_interval;              /* seconds, > 0 */
	struct runbook_call *undo;           /* or NULL */
	char *confirm;                       /* prompt, or NULL */
	char *confirm_word;                  /* typed confirmation word, or NULL */
	int continue_on_error;
	struct runbook_finding *finding;     /* a finding step, or NULL */
	int line, column;
};

struct runbook_param {
	char *name;
	char *description;                   /* may be NULL */
	json_t *def;                         /* default, or NULL */
	int required;
	int secret;                          /* its value is hidden (see above) */
};

struct runbook {
	char *name;
	char *description;                   /* may be NULL */
	char *source;                        /* file path, or "built-in" */
	char **locks;                        /* lock names as written (may hold ${args...} and
						${config...}), NULL-terminated; NULL: none */
	size_t nlocks;
	struct runbook_param *params;
	size_t nparams;
	struct runbook_step *steps;
	size_t nsteps;
};

#define RUNBOOK_SOURCE_BUILTIN "built-in"
#define RUNBOOK_VERIFY_TIMEOUT 30.0
#define RUNBOOK_VERIFY_INTERVAL 1.0

/* Loads a runbook from memory; file names it in errors. Actions are looked
 * up in reg, which must outlive the runbook. *out is owned by the caller
 * (runbook_free). Errors: ST_ECONFIG ("file:line:column: ..."), ST_ENOMEM. */
int runbook_load_buffer(const struct engine_registry *reg, const char *file, const char *data,
			size_t len, struct runbook **out, struct st_error *err);

/* Same from a file; ST_ENOTFOUND/ST_EIO when it cannot be read. */
int runbook_load_file(const struct engine_registry *reg, const char *path, struct runbook **out,
		      struct st_error *err);

void runbook_free(struct runbook *rb);

/* Appends a lock name (copied) to rb->locks, for runbooks built in C.
 * 0 or ST_ENOMEM (err may be NULL); the name is checked when the run
 * starts. */
int runbook_add_lock(struct runbook *rb, const char *name, struct st_error *err);

/* Borrowed; NULL when rb has no such step / param. */
const struct runbook_step *runbook_find_step(const struct runbook *rb, const char *name);
const struct runbook_param *runbook_find_param(const struct runbook *rb, const char *name);

/* ---- catalog ---------------------------------------------------------- */

/* Runbooks compiled into the binary (generated from runbooks/ by
 * cmake/runbooks.cmake). */
struct runbook_embedded {
	const char *file;                    /* "runbooks/health.yaml" */
	const char *data;
	size_t len;
};
extern const struct runbook_embedded runbook_embedded[];
extern const size_t runbook_embedded_count;

struct runbook_entry {
	char *name;
	char *description;                   /* may be NULL */
	char *source;                        /* file path, or "built-in" */
	char *error;                         /* load error when invalid, else NULL */
	int overrides_builtin;               /* a runbooks_dir file replacing a built-in */
};

struct runbook_catalog;

/* The built-in runbooks plus every *.yaml / *.yml in runbooks_dir (may be
 * NULL), which add to or override built-ins by name. A file's name must be
 * its `name:` plus the extension. Every runbook is loaded; invalid ones are
 * listed with their error rather than failing the catalog. *out owned by
 * the caller (runbook_catalog_free); reg must outlive it. Errors: ST_EIO
 * (runbooks_dir unreadable), ST_ENOMEM. */
int runbook_catalog_open(const struct engine_registry *reg, const char *runbooks_dir,
			 struct runbook_catalog **out, struct st_error *err);

void runbook_catalog_free(struct runbook_catalog *cat);

/* Entries sorted by name; borrowed. */
size_t runbook_catalog_count(const struct runbook_catalog *cat);
const struct runbook_entry *runbook_catalog_at(const struct runbook_catalog *cat, size_t i);

/* Loads a runbook by name, or by path when name_or_path contains a '/' or
 * ends in .yaml/.yml. *out owned by the caller (runbook_free). Errors:
 * ST_ENOTFOUND (hint: runbook list), ST_ECONFIG, ST_EIO, ST_ENOMEM. */
int runbook_catalog_load(const struct runbook_catalog *cat, const char *name_or_path,
			 struct runbook **out, struct st_error *err);

#endif
