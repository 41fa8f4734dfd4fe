/*
 * deploy.h - deploy and roll back services as checked engine steps: build
 * (or pick) the image, record the release, replace the container through a
 * strategy, gate on health, scan the first logs, and roll back by itself on
 * any failure.
 *
 * One command (deploy or rollback) is one struct deploy_run holding the
 * configuration, the Docker client, the options and one struct
 * deploy_target per service, in depends_on order. The run takes the lock
 * "deploy" (lock.h) for its whole length (not in dry-run): a second deploy
 * or rollback meanwhile fails with ST_ELOCKED (exit 4). Each target is one
 * engine run (engine.h: journaled, confirmations, undo) of these steps:
 *
 *   <svc>-image    check: preflight (definition resolves, image or context
 *                  present, depends_on services running and healthy);
 *                  confirm; act: build IMAGE:RELEASE + IMAGE:latest from the
 *                  context (or --ref's tree), or tag the existing image
 *                  (--no-build, rollback); undo: IMAGE:latest back
 *   <svc>-record   append the release (status "pending") to the history;
 *                  the very first one also records the image that ran
 *                  before; undo: mark it "failed"
 *   <svc>-<op>...  the strategy's ops, in order (recreate: replace, gate,
 *                  logs, cleanup); each may have an undo
 *   <svc>-commit   mark the release "ok"; prune old release images
 *
 * A failing step undoes the acted steps of its target in reverse order, so
 * the previous container and image serve again, and the run stops with
 * ST_EFAILED (exit 1) whose message carries the failing probe (URL, HTTP
 * status, body). Targets deployed before it in the same run stay deployed
 * (`rollback` takes them back); targets after it are not started.
 *
 * ---- writing a strategy (lib/deploy_<name>.c) ----
 *
 * A strategy is a table of ops run between <svc>-record and <svc>-commit.
 * Each op gets the run and its target; it reads what it needs from the
 * target (definition, image, names) and keeps what its undo needs in the
 * target (new_container, old_container) or in t->strategy_state. When any
 * later step fails, the engine runs the undo of every op whose act returned
 * 0, in reverse order; an act that fails half way is not undone by the
 * engine and must put back what it changed before returning (recreate's
 * "replace" does). The helpers below (create body, health gate, log scan,
 * notices, container removal) are what recreate uses; blue/green uses the
 * same. Register the strategy in deploy_strategies[] in deploy.c (before
 * recreate, which is the default for everything).
 */
#ifndef ST_DEPLOY_H
#define ST_DEPLOY_H

#include <signal.h>
#include <stddef.h>
#include <jansson.h>

#include "compose.h"
#include "docker.h"
#include "engine.h"
#include "error.h"
#include "release.h"
#include "services.h"

struct buildctx;

struct st_config;
struct deploy_run;
struct deploy_target;

/* ---- strategies -------------------------------------------------------- */

/* An op's act and undo: 0, or a negative ST_E* code with err filled.
 * *result (act only; may be left NULL) becomes ${steps.<svc>-<op>} and is
 * journaled: never put secrets in it. */
typedef int (*deploy_op_fn)(struct deploy_run *run, struct deploy_target *t, json_t **result,
			    struct st_error *err);
typedef int (*deploy_undo_fn)(struct deploy_run *run, struct deploy_target *t,
			      struct st_error *err);

struct deploy_op {
	const char *name;          /* "replace" -> engine step "backend-replace"; NULL ends a table */
	const char *description;   /* progress line and plan: "replace the container" */
	deploy_op_fn act;
	deploy_undo_fn undo;       /* NULL: nothing to undo */
};

struct deploy_strategy {
	const char *name;          /* "recreate", "blue-green": --strategy NAME */
	const char *summary;       /* one line for --help and the plan */
	/* 1 when this strategy is the default for t (blue/green: the service is
	 * behind the proxy). Strategies are asked in deploy_strategies[] order;
	 * recreate, last, says yes to all. NULL: never the default. Read-only,
	 * also called in dry-run. */
	int (*is_default)(const struct deploy_run *run, const struct deploy_target *t);
	/* Can it deploy t? Called when the run is planned (also in dry-run:
	 * read-only). 0, or ST_ECONFIG/ST_EUSAGE with a hint. NULL: always. */
	int (*check)(struct deploy_run *run, struct deploy_target *t, struct st_error *err);
	const struct deploy_op *ops;  /* terminated by an entry with name NULL */
	/* Frees t->strategy_state; NULL when the strategy keeps none. */
	void (*release)(struct deploy_target *t);
};

/* The built-in recreate strategy (deploy.c): create the new container under
 * a temporary name, stop the old one and rename it NAME-old-RELEASE, rename
 * the new one to NAME and start it (ops "replace"), deploy_gate ("gate"),
 * deploy_scan_logs ("logs"), remove the old container ("cleanup"). Undo of
 * "replace" removes the new container and brings the old one back under
 * NAME (or, when it is gone, recreates it from the definition with the
 * previous image). */
extern const struct deploy_strategy deploy_recreate;
/* Blue/green through the reverse proxy (deploy_bluegreen.c): the default
 * for the service behind proxy.container. */
extern const struct deploy_strategy deploy_bluegreen;

/* Every strategy, NULL-terminated, in the order is_default is asked. */
extern const struct deploy_strategy *const deploy_strategies[];

/* By name; NULL when unknown. */
const struct deploy_strategy *deploy_strategy_find(const char *name);

/* ---- what a run and a target hold -------------------------------------- */

enum deploy_mode {
	DEPLOY_MODE_BUILD,      /* build from the context (or --ref) */
	DEPLOY_MODE_NO_BUILD,   /* deploy IMAGE:latest as it is */
	DEPLOY_MODE_ROLLBACK,   /* deploy a recorded release's image again */
};

struct deploy_target {
	/* Set when the run is planned; borrowed from the run unless noted. */
	const char *service;            /* "backend" */
	const char *container;          /* configured container name: "spilttea-backend" */
	const char *health_url;         /* services.X.health_url, else .url, else NULL */
	const struct compose_service *def; /* compose definition as written (the config's
					       container, image, build and health_url are
					       the fields here), or NULL: the running
					       container is its own definition
					       (compose_body_from_inspect) */
	const struct deploy_strategy *strategy;
	char *image_repo;               /* "spilttea-backend" (no tag); owned */
	char *context;                  /* build context directory, NULL when none; owned */
	char release[64];               /* release id, also the image tag: "20261127_223416" */

	/* Filled by the steps as they run (owned by the target). */
	char *image_ref;                /* "REPO:RELEASE" */
	char *image_id;                 /* "sha256:..." of the image being deployed */
	char *previous_image_id;        /* image the container ran before, NULL when none ran */
	char *previous_latest_id;       /* what REPO:latest was before, NULL when absent */
	json_t *old_inspect;            /* inspect of the container that ran before; NULL */
	char rollback_to[RELEASE_ID_MAX]; /* DEPLOY_MODE_ROLLBACK: the release redeployed */
	char *rollback_image_id;        /* ... and its image; owned */
	struct release_history *history;/* this service's history; owned */

	/* Strategy state: the containers that exist while the deploy runs, for
	 * undo and cleanup. Ids (they survive renames); owned (malloc'ed) by
	 * the target. */
	char *new_container;            /* the new release's container; NULL once undone */
	char *old_container;            /* the container that ran before; NULL once removed
					   (recreate renames it "NAME-old-RELEASE" meanwhile) */
	int old_stopped;                /* the old container was stopped by this run */
	json_t *old_image_inspect;      /* inspect of the old container's image, NULL */
	void *strategy_state;           /* strategy's own; freed by strategy->release */

	/* Private to deploy.c. */
	struct buildctx *build;         /* DEPLOY_MODE_BUILD: the context, from preflight */
	char initial_id[64];            /* release id for the image that ran before the very
					   first deploy, "" when the history has one */
	char replaced_release[64];      /* the release current at plan time, "" when none */
	double t_started;               /* monotonic time the new container was started */

	/* Figures for the report. */
	double t_start;                 /* monotonic seconds when the target's run began */
	double t_image;                 /* seconds to build / tag */
	double t_ready;                 /* start of the new container to healthy */
	double t_live;                  /* monotonic time the new container took traffic */
};

/* Options of a run (cmd/ fills them from the command line). */
struct deploy_options {
	enum deploy_mode mode;
	const char *const *services;    /* names, or "all"; NULL-terminated; NULL/empty: all */
	const char *ref;                /* DEPLOY_MODE_BUILD: git ref to build; NULL: working tree */
	const char *strategy;           /* NULL: each service's default */
	const char *rollback_to;        /* DEPLOY_MODE_ROLLBACK: release id; NULL: the previous */
	int dry_run;
	int assume_yes;
	const char *command_line;       /* journal and lock */
	const struct engine_ui *ui;     /* progress, notices, confirmations; may be NULL */
	volatile sig_atomic_t *cancel;  /* set on SIGINT/SIGTERM; may be NULL */
	/* Build output as it arrives (verbose); may be NULL. */
	void (*build_output)(void *ud, const char *text);
	void *build_output_ud;
};

struct deploy_run {
	/* First member: the engine hands actions &run->svc (engine_call.services),
	 * and deploy's actions get the run back from it. Postgres and Redis
	 * open lazily through it when a strategy needs them. */
	struct services svc;
	const struct st_config *cfg;    /* borrowed */
	const struct deploy_options *opts; /* borrowed */
	struct docker_client *docker;   /* borrowed from svc */
	struct compose_project *compose;/* owned; NULL without compose_file */
	struct deploy_target *targets;  /* owned, in depends_on order */
	size_t ntargets;
	size_t current;                 /* index of the target running now */
	/* The running step's interrupt flag (engine_call.cancel): the
	 * operator's while an act runs, NULL while an undo runs (undo is what
	 * cleans up after an interrupt and must finish). What deploy_cancelled
	 * and the health gate look at; never opts->cancel directly. */
	volatile sig_atomic_t *cancel;
};

/* ---- running ------------------------------------------------------------ */

#define DEPLOY_MAX_TARGETS 16

/* One target's outcome and figures. */
struct deploy_report_target {
	char service[64];
	char release[64];
	char image_id[80];              /* deployed (or attempted) image, "" when none */
	char previous_image_id[80];     /* image that ran before, "" when none */
	const char *result;             /* "deployed", "rolled back", "not started", "planned" */
	double t_image;                 /* seconds to build or tag */
	double t_ready;                 /* new container start to healthy */
	double t_total;                 /* the target's whole run */
	char run_id[48];                /* its journal run, "" in dry-run */
};

struct deploy_report {
	size_t ntargets;
	struct deploy_report_target targets[DEPLOY_MAX_TARGETS];
	size_t deployed;                /* targets that went live */
	size_t rolled_back;             /* targets undone after a failure */
	double duration;                /* the whole command */
};

/*
 * Plans and runs a deploy or rollback as described above. In dry-run the
 * plan (every target's steps with resolved arguments) goes through
 * opts->ui->plan and nothing changes: no build, no lock, no journal, no
 * history. report may be NULL.
 * Errors: ST_EUSAGE (unknown service, strategy or release), ST_ECONFIG
 * (compose file), ST_ELOCKED, ST_EABORTED (precondition, confirmation),
 * ST_EFAILED (a step failed; that target was rolled back), ST_ESERVICE.
 */
int deploy_execute(const struct st_config *cfg, const struct deploy_options *opts,
		   struct deploy_report *report, struct st_error *err);

/* ---- helpers for strategies --------------------------------------------- */

/* The Docker client of the run; borrowed. */
struct docker_client *deploy_docker(struct deploy_run *run);

/* 1 when the operator interrupted the running act (never during undo). */
int deploy_cancelled(const struct deploy_run *run);

/* A line for the operator through opts->ui->notice (nothing when absent). */
void deploy_notice(struct deploy_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The container create body for t's new release with Image = image (an id
 * or a reference): from t->def when the service has a compose definition,
 * else from t->old_inspect with the fields inherited from the old image
 * taken from the new one (compose_body_from_inspect). The caller may edit
 * it (deploy_body_set_env) before docker_container_create(). *body: caller
 * decrefs. Contains env values (secrets): never journal or print it. */
int deploy_create_body(struct deploy_run *run, struct deploy_target *t, const char *image,
		       json_t **body, struct st_error *err);

/* Sets NAME=value in body's Env (replacing NAME's earlier value). */
int deploy_body_set_env(json_t *body, const char *name, const char *value, struct st_error *err);

/* What the health gate saw last: the probe that failed (or passed). */
struct deploy_gate_report {
	char url[512];                  /* probed URL, "" when only Docker health was used */
	long status;                    /* HTTP status of the last probe, 0: no answer */
	char body[512];                 /* start of its body, or why there was no answer */
	char docker_health[32];         /* "healthy", "unhealthy", "starting", "" (none) */
	char docker_probe[512];         /* output of Docker's last health probe, "" */
	double waited;                  /* seconds from the call to the verdict */
};

/*
 * The health gate, container_wait() (container.h) with the deploy
 * settings: waits until container is running and healthy: Docker's health
 * status when the container has a healthcheck (and url, when given,
 * answers healthy too), else url answering healthy (2xx or 3xx; a JSON
 * "status" must say ok), else running for CONTAINER_SETTLE_S. Checks every
 * deploy.health_interval. Fails at once when the container exits or
 * restarts or Docker calls it unhealthy, after deploy.health_fail_after
 * unhealthy answers in a row from url (an app that answers but is broken),
 * or at deploy.health_timeout. On failure ST_EFAILED with the URL (shown
 * without user:password and query), status and body of the failing probe
 * (and Docker's last probe output) in the message; ST_EABORTED when the
 * running act is interrupted (run->cancel). url may be NULL. rep may be
 * NULL.
 */
int deploy_gate(struct deploy_run *run, struct deploy_target *t, const char *container,
		const char *url, struct deploy_gate_report *rep, struct st_error *err);

/* Reads container's logs from its start up to deploy.log_scan seconds after
 * it (waiting for the window to pass) and fails (ST_EFAILED, quoting the
 * line) on the first line matching one of deploy.log_error_patterns. */
int deploy_scan_logs(struct deploy_run *run, struct deploy_target *t, const char *container,
		     struct st_error *err);

/* Stops (grace deploy.stop_timeout) and removes a container; absent is fine. */
int deploy_remove_container(struct deploy_run *run, const char *container, struct st_error *err);

#endif
