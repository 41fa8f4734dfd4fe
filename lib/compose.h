/*
 * compose.h - service definitions: the subset of docker-compose.yml the
 * Spilt Tea stack uses, turned into Docker container create bodies; and,
 * without a compose file, a running container as its own definition.
 *
 * Compose keys read (per service): image, build (a path, or context,
 * dockerfile, args), container_name, environment (map or list), env_file
 * (string or list), ports, volumes (short and long syntax, type bind or
 * volume), depends_on (list, or map with condition service_started |
 * service_healthy | service_completed_successfully), healthcheck (test,
 * interval, timeout, retries, start_period, disable), restart, network_mode,
 * labels (map or list); also command, entrypoint, init, user, working_dir,
 * stop_signal, stop_grace_period and logging (driver, options), which the
 * sandbox needs. Extension keys (x-*) are ignored. Any other key changes
 * behaviour we would not reproduce: it is an ST_ECONFIG error at
 * file:line:column naming the key. Top level: services (required), version,
 * name, volumes (name, external), x-*; networks, secrets and configs are
 * errors.
 *
 * Variables: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message},
 * ${VAR?message}, $VAR and $$ are interpolated in every scalar, from the
 * environment first and then from the env file (compose's `.env` in the
 * compose file's directory, or the file given to compose_load). Relative
 * paths (build context, env_file, bind sources) are relative to the
 * compose file's directory. Named volumes get the project prefix
 * ("<project>_<name>") unless the top-level volume sets `name` or
 * `external`, as compose does; the project is `name:` or the directory's
 * name.
 */
#ifndef ST_COMPOSE_H
#define ST_COMPOSE_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

enum compose_condition {
	COMPOSE_STARTED,              /* service_started (the list form) */
	COMPOSE_HEALTHY,              /* service_healthy */
	COMPOSE_COMPLETED,            /* service_completed_successfully */
};

struct compose_dep {
	char *service;
	enum compose_condition condition;
};

struct compose_service {
	char *name;                   /* key under services: */
	char *container_name;         /* NULL when not set */
	char *image;                  /* "repo[:tag]", NULL when not set */
	char *build_context;          /* absolute, NULL without build */
	char *dockerfile;             /* relative to the context, NULL: "Dockerfile" */
	char **build_args;            /* "NAME=value", NULL-terminated; never NULL */
	struct compose_dep *deps;
	size_t ndeps;
	/* Docker create body without Image: Env (env_file then environment),
	 * Labels, Cmd, Entrypoint, Healthcheck, ExposedPorts, User,
	 * WorkingDir, StopSignal, StopTimeout and HostConfig (Binds,
	 * NetworkMode, RestartPolicy, PortBindings, Init, LogConfig). Env
	 * holds env_file values: secrets, never print it. */
	json_t *config;
	int line, column;             /* where the service is defined */
};

struct compose_project {
	char *file;                   /* as given */
	char *dir;                    /* absolute directory of file */
	char *name;                   /* project name */
	struct compose_service *services; /* file order */
	size_t nservices;
};

/* Loads and checks a compose file. env_file: variables for interpolation
 * (NULL: DIR/.env when it exists). Env files named by services are read
 * now. *out: caller frees (compose_free). Errors: ST_ECONFIG
 * ("file:line:column: ..."), ST_EIO, ST_ENOTFOUND (the file), ST_ENOMEM. */
int compose_load(const char *path, const char *env_file, struct compose_project **out,
		 struct st_error *err);

/* Same from memory: name for messages, dir for relative paths (absolute),
 * vars: extra variables as an object NAME -> string (may be NULL), looked
 * up after the environment. Env files are read relative to dir. */
int compose_load_buffer(const char *name, const char *dir, const char *data, size_t len,
			const json_t *vars, struct compose_project **out, struct st_error *err);

void compose_free(struct compose_project *p);

/* By name; NULL when absent. Borrowed. */
const struct compose_service *compose_find(const struct compose_project *p, const char *name);

/* Reads a dotenv file ("NAME=value" lines, # comments, optional "export ",
 * single or double quotes) into obj as NAME -> value (later lines win).
 * what names the file in messages. ST_EIO, ST_ECONFIG (bad line, with
 * file:line). */
int compose_read_env_file(const char *path, json_t *obj, struct st_error *err);

/*
 * Orders names so that each comes after what it depends on (depends_on
 * within names). deps_of(ud, name, &deps, &ndeps) gives a service's
 * dependencies (borrowed). order[] receives indexes into names. ST_ECONFIG
 * on a cycle (naming it).
 */
typedef void (*compose_deps_fn)(void *ud, const char *name, const struct compose_dep **deps,
				size_t *ndeps);
int compose_order(const char *const *names, size_t n, compose_deps_fn deps_of, void *ud,
		  size_t *order, struct st_error *err);

/* ---- a running container as its own definition ------------------------- */

/*
 * The create body that recreates a container (its GET /containers/{id}/json)
 * with another image: Config, HostConfig (binds, network mode, init, log
 * config, restart policy, mounts...), the primary network's endpoint and
 * its anonymous volumes (kept by name, so their data survives), labels and
 * env, with Image = image. Fields the container merely inherited from its
 * old image (old_image: GET /images/{id}/json) are left out so the new
 * image's apply: Cmd and Entrypoint equal to the old image's, Env entries
 * and Labels equal to the old image's, a Healthcheck, WorkingDir, User,
 * StopSignal, ExposedPorts and Volumes equal to the old image's. (An
 * explicit value equal to the old image's default cannot be told apart and
 * is treated as inherited.) Runtime fields (Hostname under host or default
 * networking, MacAddress, ArgsEscaped...) are dropped. *body: caller
 * decrefs; it holds env values (secrets). ST_EPROTO when the inspect lacks
 * Config or HostConfig; ST_EUSAGE for a container on several networks.
 */
int compose_body_from_inspect(const json_t *container, const json_t *old_image, const char *image,
			      json_t **body, struct st_error *err);

/* The create body of a compose service with Image = image (a copy of
 * svc->config). *body: caller decrefs. */
int compose_body(const struct compose_service *svc, const char *image, json_t **body,
		 struct st_error *err);

/* Parses a compose duration ("1m30s", "500ms", "2s", "1h") into seconds.
 * 0 or -1 (malformed, or longer than Docker's int64 nanoseconds hold). */
int compose_parse_duration(const char *text, double *seconds);

#endif
