/*
 * incident_actions.h - `spilttea-ops incident ...` as runbooks: the
 * incident.* engine actions, the session they share, and the runbooks each
 * subcommand runs.
 *
 * Every subcommand builds a small struct runbook in C (as deploy does; so
 * --dry-run shows its plan like any runbook's) from the actions below and
 * runs it through engine_run() with engine_options.incident set:
 * journal, lock ("incident" for anything that changes something),
 * confirmations and --dry-run come from the engine. The actions are not
 * in the built-in registry (actions.c) because they share one
 * struct incident_session around engine_options.services: the clients,
 * the incident id, what each step found (for the command to print) and,
 * during a rotation, the new secret (never in a result, an argument or the
 * journal).
 */
#ifndef ST_INCIDENT_ACTIONS_H
#define ST_INCIDENT_ACTIONS_H

#include <signal.h>
#include <stddef.h>
#include <jansson.h>

#include "engine.h"
#include "incident.h"
#include "services.h"

struct runbook;

struct incident_saved_file {
	char *path;
	char *content;                /* the file before the rotation; zeroed when released */
	size_t len;
};

struct incident_saved_env {
	char *service;
	char *entry;                  /* "NAME=old value", or "NAME" when it was not set */
};

/* engine_options.services is &session.svc: the generic helpers
 * (actions_util.h) find the clients there, and the incident actions find
 * the session around it. svc must stay the first member. */
struct incident_session {
	struct services svc;          /* clients, opened on first use */
	const struct st_config *cfg;  /* borrowed */
	const char *state_dir;        /* cfg->state_dir */
	char id[INCIDENT_ID_MAX];     /* the incident the run belongs to */
	const char *tool_version;     /* for the evidence manifest */
	const char *command_line;
	volatile sig_atomic_t *cancel;
	json_t *output;               /* step name -> what it found (also on failure); owned */
	char *secret;                 /* rotation: the new value; zeroed when released */
	struct incident_saved_file *saved_files;
	size_t nsaved_files;
	struct incident_saved_env *saved_env;
	size_t nsaved_env;
};

/* cfg and id are required; the rest the caller fills in. */
void incident_session_init(struct incident_session *s, const struct st_config *cfg, const char *id);
/* Closes the clients, zeroes and frees the secret and saved contents. */
void incident_session_release(struct incident_session *s);

/* What step left in the session output; borrowed, NULL when nothing. */
const json_t *incident_session_output(const struct incident_session *s, const char *step);

/* The incident.* actions (engine_registry_add() table). */
extern const struct engine_action incident_actions[];

/*
 * The runbook of each subcommand, built in C like deploy's (source
 * "(incident runbook)", actions from incident_actions[]). Values from the
 * command line must already be checked (ids, addresses, variable names);
 * they are placed as literals (expr_quote), never as templates. *out:
 * caller frees (runbook_free). Errors: ST_ENOMEM; ST_EFAILED when a
 * step names an action that is not in incident_actions[] (a bug).
 */
int incident_rb_start(const char *title, struct runbook **out, struct st_error *err);
int incident_rb_close(struct runbook **out, struct st_error *err);
int incident_rb_snapshot(int archive, struct runbook **out, struct st_error *err);
/* Snapshot unless the incident has evidence, then stop frontend, backend
 * and every other configured service, one confirmation for all. */
int incident_rb_contain(const struct st_config *cfg, struct runbook **out, struct st_error *err);
int incident_rb_investigate(const struct incident_investigate_opts *o, struct runbook **out,
			    struct st_error *err);
int incident_rb_lock_users(const char *const *ids, size_t n, struct runbook **out, struct st_error *err);
/* all: FLUSHALL with the typed confirmation "FLUSHALL"; else SCAN + UNLINK of pattern. */
int incident_rb_flush_sessions(const char *pattern, int all, struct runbook **out, struct st_error *err);
/* from_env NULL: a generated value. restart: recreate plan->services. */
int incident_rb_rotate(const struct st_config *cfg, const char *variable, const char *from_env,
		       const struct incident_rotate_plan *plan, int restart, struct runbook **out,
		       struct st_error *err);
int incident_rb_top_ips(const char *service, double since, size_t limit, struct runbook **out,
			struct st_error *err);
int incident_rb_block_ip(const char *ip, int apply, struct runbook **out, struct st_error *err);
/* output: a file to write the report to (0600), NULL for the session output only. */
int incident_rb_report(const char *output, struct runbook **out, struct st_error *err);

#endif
