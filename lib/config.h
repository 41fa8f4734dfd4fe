/*
 * config.h - the spilttea-ops configuration file, loaded once into a plain
 * C struct.
 *
 * Search order: --config FILE, else $SPILTTEA_OPS_CONFIG, else
 * ./spilttea-ops.yaml, else /etc/spilttea-ops/config.yaml. The file is YAML
 * (lib/yamltree.h) checked against one schema table in config.c: unknown
 * keys, wrong types, out-of-range values and missing required keys are
 * ST_ECONFIG errors that start with "file:line:column: " and name the full
 * dotted key ("postgres.port"). config.example.yaml at the repository root
 * documents every key.
 *
 * Secrets never live in the file: a password is referenced by
 * `password_env: NAME` or `password_file: PATH` and read only when needed
 * with config_read_secret(). Relative paths in the file (state_dir,
 * runbooks_dir, backup.dir, password_file, services.*.build) are resolved
 * against the directory of the configuration file; every path in
 * struct st_config is absolute.
 *
 * Adding a key: add a field below and one line to the schema table in
 * config.c; config show, config_lookup() and the error paths follow.
 */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stddef.h>

#include "backup_stream.h"
#include "error.h"
#include "sbuf.h"
#include "yamltree.h"

#define CONFIG_ENV_VAR "SPILTTEA_OPS_CONFIG"
#define CONFIG_LOCAL_PATH "./spilttea-ops.yaml"
#define CONFIG_SYSTEM_PATH "/etc/spilttea-ops/config.yaml"

enum config_secret_kind {
	CONFIG_SECRET_NONE = 0,   /* no password configured */
	CONFIG_SECRET_ENV,        /* ref names an environment variable */
	CONFIG_SECRET_FILE,       /* ref is the absolute path of a 0600 file */
};

/* Where a secret lives. Never holds the secret itself. */
struct config_secret {
	enum config_secret_kind kind;
	char *ref;   /* variable name or absolute path; NULL for NONE; owned by the config */
	char *key;   /* key that set it ("postgres.password_env"), for messages; owned */
};

struct config_service {
	char *name;        /* key under services: ("backend") */
	char *container;   /* required: container name */
	char *image;       /* image repository, NULL when not set */
	char *build;       /* absolute path of the build context, NULL when not set */
	char *health_url;  /* http(s) URL of a health endpoint, NULL when not set */
	char *url;         /* http(s) URL where the service answers, NULL when not set */
	char *env_file;    /* absolute path of the env file its container is created with
			      (--env-file / compose env_file: backend/.env), NULL when not set */
};

/* Higher is worse for every metric: warn <= crit is enforced. */
struct config_threshold {
	double warn;
	double crit;
};

struct config_list {
	char **items;      /* owned */
	size_t count;
};

struct config_docker {
	char *host;              /* "unix:///var/run/docker.sock"; DOCKER_HOST wins when set */
	int host_from_env;       /* 1 when host came from DOCKER_HOST */
	double timeout;          /* seconds per API call (default 30) */
	double stream_idle_timeout; /* seconds an exec or build stream may stay silent
				       (default 10m; 0: no limit) */
};

struct config_postgres {
	char *host;              /* required */
	long port;               /* 5432 */
	char *user;              /* required */
	char *database;          /* required */
	struct config_secret password;
	double connect_timeout;  /* seconds (default 5) */
	double statement_timeout;/* seconds (default 30) */
};

struct config_redis {
	char *host;              /* required unless socket is set */
	long port;               /* 6379 */
	long db;                 /* 0 */
	struct config_secret password;
	char *socket;            /* absolute path of a Unix socket, NULL for TCP */
	double timeout;          /* seconds for connect and each command (default 2) */
};

enum config_backup_via { CONFIG_VIA_EXEC = 0, CONFIG_VIA_LOCAL = 1 };

struct config_backup {
	char *dir;               /* absolute; default <config dir>/backups */
	long keep_days;          /* 7 */
	long keep_min;           /* 3: never delete below this many backups */
	int via;                 /* enum config_backup_via (default exec) */
	enum backup_codec compress; /* default gzip */
};

/* The reverse proxy in front of one service (blue/green deploys). The
 * section is optional: container is NULL when there is no proxy. */
struct config_proxy {
	char *container;         /* the nginx container; NULL: no proxy configured */
	char *service;           /* service behind it (default "backend") */
	char *url;               /* where the proxy answers, http(s) */
	char *upstream_file;     /* absolute host path of the upstream block; the proxy must
				    see its directory (a bind-mounted file would keep the old inode) */
	char *upstream_template; /* text with {host}, {port} and {container} */
	char *upstream_host;     /* address the proxy reaches the service at (default 127.0.0.1) */
	long blue_port;          /* the two ports the service alternates between */
	long green_port;
	double watch;            /* seconds of errors and health watched after a switch (10s) */
	double drain_timeout;    /* seconds for the proxy's old workers to finish (30s) */
};

/* Prisma migrations (migrate, deploy --checklist). */
struct config_migrate {
	char *dir;                        /* absolute: the prisma/migrations folder (./prisma/migrations) */
	char *service;                    /* service whose container runs the commands (backend) */
	struct config_list command;       /* default: npm run prisma:migrate */
	struct config_list resolve_command; /* default: npx prisma migrate resolve */
	double timeout;                   /* seconds for one command (10m) */
};

/* One env file of the pre-deploy checklist. */
struct config_env_file {
	char *name;                       /* key under checklist.env_files ("backend") */
	char *path;                       /* absolute */
	struct config_list required;      /* variable names that must be set, non-empty */
};

struct config_checklist {
	struct config_env_file *env_files; /* file order; may be none */
	size_t n_env_files;
	struct config_list attestations;  /* default: tests, code-review, security-review */
	double backup_max_age;            /* seconds (24h) a verified backup may be old when
					     migrations are pending */
	double disk_min_free_percent;     /* (10) of the backup and Docker file systems */
};

struct config_notify {
	char *webhook_url;       /* http(s) URL that gets a JSON POST when a cron job fails; NULL: none */
};

struct config_health {
	double timeout;              /* seconds per check (default 5) */
	double log_window;           /* seconds of backend logs for the error rate (default 300) */
	struct config_list containers; /* service names; default: every service, in file order */
};

struct config_thresholds {
	struct config_threshold api_response_seconds;     /* 1 / 2 */
	struct config_threshold error_rate_percent;       /* 0.5 / 1 */
	struct config_threshold db_connections_percent;   /* 80 / 90 */
	struct config_threshold redis_memory_percent;     /* 80 / 90 */
	struct config_threshold container_cpu_percent;    /* 80 / 95 */
	struct config_threshold container_memory_percent; /* 80 / 95 */
	struct config_threshold disk_percent;             /* 80 / 90 */
};

/* Security Incident Response (spilttea-ops incident). */
struct config_incident {
	char *session_pattern;         /* Redis keys of login sessions, "sess:*" */
	long failed_logins;            /* brute force: more than this many failed logins (5) */
	double failed_login_window;    /* ... within this many seconds (3600) */
	double restart_timeout;        /* recreated containers must be healthy within (60 s) */
	struct config_list trusted_proxies; /* addresses/networks whose X-Forwarded-For is believed */
	char *firewall_chain;          /* where block-ip inserts its rule ("INPUT"; "DOCKER-USER"
					  for ports Docker publishes through its bridge) */
};

/* deploy and rollback: health gate, log scan, image retention. */
struct config_deploy {
	long keep_releases;          /* release images kept per service (5) */
	double health_timeout;       /* seconds the new container has to become healthy (60s) */
	double health_interval;      /* seconds between health checks (1s) */
	long health_fail_after;      /* fail after this many HTTP answers >= 400 in a row (3);
					0: wait for Docker's verdict or the timeout */
	double log_scan;             /* seconds of the new container's first logs scanned (5s); 0: none */
	struct config_list log_error_patterns; /* POSIX extended regexes, case-insensitive */
	long stop_timeout;           /* grace seconds when stopping the old container (10) */
};

struct st_config {
	char *path;              /* the file as found (as given or from the search order) */
	char *dir;               /* absolute directory of path: base of relative paths */
	const char *source;      /* how it was found: "--config", "$SPILTTEA_OPS_CONFIG",
				    CONFIG_LOCAL_PATH or CONFIG_SYSTEM_PATH; static */
	char *state_dir;         /* required */
	char *runbooks_dir;      /* NULL when not set */
	struct config_docker docker;
	struct config_service *services; /* required, at least one; file order */
	size_t n_services;
	struct config_postgres postgres;
	struct config_redis redis;
	struct config_backup backup;
	struct config_proxy proxy;
	struct config_migrate migrate;
	struct config_checklist checklist;
	struct config_notify notify;
	struct config_health health;
	struct config_thresholds thresholds;
	struct config_list env_files;  /* absolute paths of the .env files secrets live in
					  (.env, backend/.env); default none */
	struct config_incident incident;
	char *compose_file;       /* absolute path of docker-compose.yml, NULL: none (the
				     running containers are their own definitions) */
	char *compose_env_file;   /* variables for the compose file, NULL: its directory's .env */
	struct config_deploy deploy;
	struct yt_doc *doc;       /* the file as parsed; owned */
	struct yt_doc *effective; /* defaults filled in, paths absolute, secrets as references
				     only; what config_lookup() and config show read; owned */
};

/* Finds the configuration file by the search order above (explicit wins).
 * *path_out: caller frees; *source_out: static. ST_ECONFIG "no configuration
 * file found" (hint: the search order) when none exists, or when the file
 * named by --config or $SPILTTEA_OPS_CONFIG does not exist. */
int config_find(const char *explicit_path, char **path_out, const char **source_out,
		struct st_error *err);

/* Finds (config_find), parses and checks the configuration. On success *out
 * is the caller's (config_free). Errors: ST_ECONFIG with "file:line:column:
 * " and the dotted key; ST_ECONFIG without a position when the file cannot
 * be read, is not a regular file, is larger than 4 MiB, or is writable by
 * its group or others (hint "chmod go-w FILE": whoever can write the file
 * controls what spilttea-ops runs); ST_ENOMEM. DOCKER_HOST, when set,
 * replaces docker.host. */
int config_load(const char *path_or_null, struct st_config **out, struct st_error *err);

/* Same as config_load for a known file; source is stored as given (static). */
int config_load_file(const char *path, const char *source, struct st_config **out,
		     struct st_error *err);

/* Same as config_load_file for bytes already in memory (len bytes, need not
 * be NUL-terminated): path names the file in errors, and its directory,
 * which must exist, is the base of relative paths. Reads no file, so the
 * fuzz target (tests/fuzz/fuzz_config.c) can feed any bytes. */
int config_load_buffer(const char *path, const char *source, const char *data, size_t len,
		       struct st_config **out, struct st_error *err);

void config_free(struct st_config *cfg);

/* Service by name; NULL when not configured. Borrowed from cfg. */
const struct config_service *config_service(const struct st_config *cfg, const char *name);

/* Node of the effective configuration at a dotted path ("postgres.host",
 * "services.backend.container", "health.containers.0"); NULL when absent
 * or when the path names a secret (config_path_is_secret). Borrowed from
 * cfg. Scalars keep the position of the key in the file when it was
 * written there. */
const struct yt_node *config_lookup(const struct st_config *cfg, const char *dotted_path);

/* 1 when a dotted path names a secret value ("postgres.password"): the
 * configuration never holds those and lookups must refuse them. The
 * references password_env / password_file are not secrets. */
int config_path_is_secret(const char *dotted_path);

/* Reads the secret ref points to. *out: caller frees with config_secret_free
 * (NULL when ref->kind is CONFIG_SECRET_NONE; returns 0 then). ST_ECONFIG
 * when the variable is unset or empty (the message names the variable,
 * never a value), or when the file is missing, unreadable, not a regular
 * file, empty, or accessible by group or others (hint: chmod 600 FILE).
 * One trailing newline is stripped. */
int config_read_secret(const struct config_secret *ref, char **out, struct st_error *err);

/* Zeroes s (explicit_bzero) and frees it. NULL-safe. */
void config_secret_free(char *s);

enum config_format { CONFIG_FORMAT_YAML, CONFIG_FORMAT_JSON };

/* Appends the effective configuration to out as YAML or JSON (defaults
 * filled in, secrets only as their password_env/password_file reference).
 * 0 or ST_ENOMEM. */
int config_render(const struct st_config *cfg, enum config_format format, struct sbuf *out,
		  struct st_error *err);

/* ---- the schema --------------------------------------------------------- */

enum {
	CONFIG_KEY_REQUIRED = 1u << 0,
	CONFIG_KEY_SECTION = 1u << 1,   /* a mapping of further keys */
	CONFIG_KEY_REFUSED = 1u << 2,   /* a key that is always an error (a literal password) */
};

/* Called for every key of the schema in table order, as its full dotted
 * path; entries of a name -> mapping section use the placeholder NAME
 * ("services.NAME.container"). Return 0 to go on; anything else stops the
 * walk and is returned. key is valid only during the call. */
typedef int (*config_key_fn)(void *ud, const char *key, unsigned flags);

/* Walks every key the loader knows (what man spilttea-ops.yaml(5) must
 * document). Returns 0, fn's non-zero value, or -1 for a key too long. */
int config_schema_walk(config_key_fn fn, void *ud);

#endif
