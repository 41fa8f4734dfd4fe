/*
 * config.c - the configuration schema and the one loader that walks it.
 *
 * The schema is a table of keys (dotted, relative to the table's root) with
 * a type, flags, a default written as it would be in the file, the offset of
 * the field it fills, a range or a list of choices, an optional value check
 * and an optional hook run once the whole file is applied (cross-key rules,
 * computed defaults). The loader, the effective tree behind config show and
 * config_lookup(), and the secret refusal all read the same table, so a new
 * key is one line here plus its field in config.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "accesslog.h"
#include "text.h"
#include "timeutil.h"

enum ctype {
	CT_SECTION,        /* a mapping whose keys are further rows of the same table */
	CT_MAPOF,          /* name -> mapping checked against .items; array + count */
	CT_STRING,         /* char *, owned */
	CT_PATH,           /* char *, owned, made absolute against the config directory */
	CT_INT,            /* long within [min, max] */
	CT_NUMBER,         /* double within [min, max] */
	CT_DURATION,       /* double seconds within [min, max]; "30s", "500ms", "5m" */
	CT_ENUM,           /* int index into .choices */
	CT_LIST,           /* struct config_list of strings */
	CT_SECRET_ENV,     /* struct config_secret: the name of an environment variable */
	CT_SECRET_FILE,    /* struct config_secret: a path */
	CT_LITERAL_SECRET, /* a key that would put a secret in the file: always an error */
};

#define K_REQUIRED 1u
#define K_PATHS 2u      /* CT_LIST: items are paths, made absolute like CT_PATH */

#define PATH_MAX_KEY 512

struct loader {
	struct st_config *cfg;
	struct st_error *err;
	const struct yt_node *root;   /* the parsed document */
};

struct config_key;

/* Returns NULL when value is acceptable, else what is wrong with it (static). */
typedef const char *(*value_check_fn)(const char *value);
/* Runs after the whole file is applied; path is the full dotted key. */
typedef int (*key_hook_fn)(struct loader *ld, const struct config_key *k, void *base,
			   const char *path);

struct config_table {
	const struct config_key *keys;
	size_t n;
	size_t item_size;      /* CT_MAPOF items: size of one item */
	size_t name_off;       /* CT_MAPOF items: char *name in the item */
};

struct config_key {
	const char *key;
	enum ctype type;
	unsigned flags;
	size_t off;                    /* field in the table's base struct */
	size_t count_off;              /* CT_MAPOF: size_t count in the base struct */
	const char *def;               /* default, as it would be written in the file */
	double min, max;               /* CT_INT, CT_NUMBER, CT_DURATION */
	const char *const *choices;    /* CT_ENUM, NULL-terminated */
	value_check_fn valid;          /* scalars: extra check; CT_MAPOF: check of item names */
	key_hook_fn hook;
	const struct config_table *items; /* CT_MAPOF */
};

/* ---- value checks ------------------------------------------------------- */

static const char *valid_docker_host(const char *v)
{
	if (strncmp(v, "unix://", 7) != 0)
		return "is not a unix:// address (only Unix sockets are supported)";
	if (v[7] != '/')
		return "needs an absolute socket path after unix://";
	return NULL;
}

/* Docker's rule for container names: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
static const char *valid_container(const char *v)
{
	const char *p;

	if (!*v)
		return "must not be empty";
	if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9')))
		return "must start with a letter or digit";
	for (p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
			return "may contain only letters, digits, '_', '.' and '-'";
	return NULL;
}

static const char *valid_image(const char *v)
{
	const char *p;

	if (!*v)
		return "must not be empty";
	if (*v == '-')
		return "must not start with '-'";
	for (p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return "must not contain spaces or control characters";
	return NULL;
}

static const char *valid_url(const char *v)
{
	const char *host;

	if (!strncmp(v, "http://", 7))
		host = v + 7;
	else if (!strncmp(v, "https://", 8))
		host = v + 8;
	else
		return "must start with http:// or https://";
	if (!*host || *host == '/')
		return "needs a host";
	return NULL;
}

/* Service names become path components of ${config.services.NAME...}. */
static const char *valid_service_name(const char *v)
{
	const char *p;

	if (!*v)
		return "must not be empty";
	for (p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *p))
			return "may contain only letters, digits, '_' and '-'";
	return NULL;
}

static const char *valid_env_name(const char *v)
{
	const char *p;

	if (!*v)
		return "must not be empty";
	if (*v >= '0' && *v <= '9')
		return "must not start with a digit";
	for (p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", *p))
			return "may contain only letters, digits and '_'";
	return NULL;
}

/* A SCAN pattern that matches every key would log out everything with the
 * cache: that is flush-sessions --all, never a default. */
static const char *valid_session_pattern(const char *v)
{
	if (!strcmp(v, "*"))
		return "matches every key (use 'incident flush-sessions --all' for that)";
	return NULL;
}

/* An iptables chain name (at most 28 characters): it becomes an argument
 * of a root command, so nothing that could read as another option. */
static const char *valid_chain(const char *v)
{
	const char *p;

	for (p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *p))
			break;
	if (*p || strlen(v) > 28 || v[0] == '-')
		return "may contain only letters, digits, '_' and '-' (an iptables chain, at most 28 characters)";
	return NULL;
}

/* ---- hooks (declared here, defined after the loader) -------------------- */

static int hook_docker_host(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_redis(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_health_containers(struct loader *ld, const struct config_key *k, void *base,
				  const char *path);
static int hook_threshold(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_proxy(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_list_default(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_env_names(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_attestations(struct loader *ld, const struct config_key *k, void *base, const char *path);
static int hook_trusted_proxies(struct loader *ld, const struct config_key *k, void *base,
				const char *path);
static int hook_log_patterns(struct loader *ld, const struct config_key *k, void *base,
			     const char *path);

/* ---- the schema --------------------------------------------------------- */

static const char *const via_names[] = { "exec", "local", NULL };
/* Indexed by enum backup_codec: CT_ENUM stores the index in the field. */
static const char *const compress_names[] = { "gzip", "zstd", "none", NULL };
_Static_assert(BACKUP_CODEC_GZIP == 0 && BACKUP_CODEC_ZSTD == 1 && BACKUP_CODEC_NONE == 2,
	       "compress_names is indexed by enum backup_codec");
_Static_assert(sizeof(enum backup_codec) == sizeof(int), "CT_ENUM fields are ints");

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define OFF(f) offsetof(struct st_config, f)
#define SOFF(f) offsetof(struct config_service, f)

static const struct config_key service_keys[] = {
	{ .key = "container", .type = CT_STRING, .flags = K_REQUIRED, .off = SOFF(container), .valid = valid_container },
	{ .key = "image", .type = CT_STRING, .off = SOFF(image), .valid = valid_image },
	{ .key = "build", .type = CT_PATH, .off = SOFF(build) },
	{ .key = "health_url", .type = CT_STRING, .off = SOFF(health_url), .valid = valid_url },
	{ .key = "url", .type = CT_STRING, .off = SOFF(url), .valid = valid_url },
	{ .key = "env_file", .type = CT_PATH, .off = SOFF(env_file) },
};

static const struct config_table service_table = {
	service_keys, N_OF(service_keys), sizeof(struct config_service), SOFF(name)
};

#define EOFF(f) offsetof(struct config_env_file, f)

static const struct config_key env_file_keys[] = {
	{ .key = "path", .type = CT_PATH, .flags = K_REQUIRED, .off = EOFF(path) },
	{ .key = "required", .type = CT_LIST, .off = EOFF(required), .hook = hook_env_names },
};

static const struct config_table env_file_table = {
	env_file_keys, N_OF(env_file_keys), sizeof(struct config_env_file), EOFF(name)
};

/* Defaults of list keys (CT_LIST has no textual default): hook_list_default
 * copies them in when the key is absent. */
static const char *const migrate_command_default[] = { "npm", "run", "prisma:migrate", NULL };
static const char *const migrate_resolve_default[] = { "npx", "prisma", "migrate", "resolve", NULL };
static const char *const attestations_default[] = { "tests", "code-review", "security-review", NULL };

/* warn/crit of one metric from the runbook's "Key Metrics to Monitor". */
#define THRESHOLD(name, w, c, hi) \
	{ .key = "thresholds." #name, .type = CT_SECTION, .off = OFF(thresholds.name), .hook = hook_threshold }, \
	{ .key = "thresholds." #name ".warn", .type = CT_NUMBER, .off = OFF(thresholds.name.warn), .def = w, .min = 0, .max = hi }, \
	{ .key = "thresholds." #name ".crit", .type = CT_NUMBER, .off = OFF(thresholds.name.crit), .def = c, .min = 0, .max = hi }

static const struct config_key top_keys[] = {
	{ .key = "state_dir", .type = CT_PATH, .flags = K_REQUIRED, .off = OFF(state_dir) },
	{ .key = "runbooks_dir", .type = CT_PATH, .off = OFF(runbooks_dir) },

	{ .key = "docker", .type = CT_SECTION },
	{ .key = "docker.host", .type = CT_STRING, .off = OFF(docker.host), .def = "unix:///var/run/docker.sock", .valid = valid_docker_host, .hook = hook_docker_host },
	{ .key = "docker.timeout", .type = CT_DURATION, .off = OFF(docker.timeout), .def = "30s", .min = 0.001, .max = 3600 },
	{ .key = "docker.stream_idle_timeout", .type = CT_DURATION, .off = OFF(docker.stream_idle_timeout), .def = "10m", .min = 0, .max = 86400 },

	{ .key = "services", .type = CT_MAPOF, .flags = K_REQUIRED, .off = OFF(services), .count_off = OFF(n_services), .items = &service_table, .valid = valid_service_name },

	{ .key = "postgres", .type = CT_SECTION, .flags = K_REQUIRED },
	{ .key = "postgres.host", .type = CT_STRING, .flags = K_REQUIRED, .off = OFF(postgres.host) },
	{ .key = "postgres.port", .type = CT_INT, .off = OFF(postgres.port), .def = "5432", .min = 1, .max = 65535 },
	{ .key = "postgres.user", .type = CT_STRING, .flags = K_REQUIRED, .off = OFF(postgres.user) },
	{ .key = "postgres.database", .type = CT_STRING, .flags = K_REQUIRED, .off = OFF(postgres.database) },
	{ .key = "postgres.password_env", .type = CT_SECRET_ENV, .off = OFF(postgres.password), .valid = valid_env_name },
	{ .key = "postgres.password_file", .type = CT_SECRET_FILE, .off = OFF(postgres.password) },
	{ .key = "postgres.password", .type = CT_LITERAL_SECRET },
	{ .key = "postgres.connect_timeout", .type = CT_DURATION, .off = OFF(postgres.connect_timeout), .def = "5s", .min = 1, .max = 3600 },
	{ .key = "postgres.statement_timeout", .type = CT_DURATION, .off = OFF(postgres.statement_timeout), .def = "30s", .min = 0.001, .max = 86400 },

	{ .key = "redis", .type = CT_SECTION, .flags = K_REQUIRED, .hook = hook_redis },
	{ .key = "redis.host", .type = CT_STRING, .off = OFF(redis.host) },
	{ .key = "redis.port", .type = CT_INT, .off = OFF(redis.port), .def = "6379", .min = 1, .max = 65535 },
	{ .key = "redis.db", .type = CT_INT, .off = OFF(redis.db), .def = "0", .min = 0, .max = INT_MAX },
	{ .key = "redis.password_env", .type = CT_SECRET_ENV, .off = OFF(redis.password), .valid = valid_env_name },
	{ .key = "redis.password_file", .type = CT_SECRET_FILE, .off = OFF(redis.password) },
	{ .key = "redis.password", .type = CT_LITERAL_SECRET },
	{ .key = "redis.socket", .type = CT_PATH, .off = OFF(redis.socket) },
	{ .key = "redis.timeout", .type = CT_DURATION, .off = OFF(redis.timeout), .def = "2s", .min = 0.001, .max = 3600 },

	{ .key = "backup", .type = CT_SECTION },
	{ .key = "backup.dir", .type = CT_PATH, .off = OFF(backup.dir), .def = "./backups" },
	{ .key = "backup.keep_days", .type = CT_INT, .off = OFF(backup.keep_days), .def = "7", .min = 1, .max = 36500 },
	{ .key = "backup.keep_min", .type = CT_INT, .off = OFF(backup.keep_min), .def = "3", .min = 1, .max = 100000 },
	{ .key = "backup.via", .type = CT_ENUM, .off = OFF(backup.via), .def = "exec", .choices = via_names },
	{ .key = "backup.compress", .type = CT_ENUM, .off = OFF(backup.compress), .def = "gzip", .choices = compress_names },

	{ .key = "proxy", .type = CT_SECTION, .hook = hook_proxy },
	{ .key = "proxy.container", .type = CT_STRING, .off = OFF(proxy.container), .valid = valid_container },
	{ .key = "proxy.service", .type = CT_STRING, .off = OFF(proxy.service), .def = "backend", .valid = valid_service_name },
	{ .key = "proxy.url", .type = CT_STRING, .off = OFF(proxy.url), .valid = valid_url },
	{ .key = "proxy.upstream_file", .type = CT_PATH, .off = OFF(proxy.upstream_file) },
	{ .key = "proxy.upstream_template", .type = CT_STRING, .off = OFF(proxy.upstream_template), .def = "upstream spilttea_backend {\n    server {host}:{port};\n}\n" },
	{ .key = "proxy.upstream_host", .type = CT_STRING, .off = OFF(proxy.upstream_host), .def = "127.0.0.1" },
	{ .key = "proxy.blue_port", .type = CT_INT, .off = OFF(proxy.blue_port), .def = "3001", .min = 1, .max = 65535 },
	{ .key = "proxy.green_port", .type = CT_INT, .off = OFF(proxy.green_port), .def = "3002", .min = 1, .max = 65535 },
	{ .key = "proxy.watch", .type = CT_DURATION, .off = OFF(proxy.watch), .def = "10s", .min = 0, .max = 3600 },
	{ .key = "proxy.drain_timeout", .type = CT_DURATION, .off = OFF(proxy.drain_timeout), .def = "30s", .min = 0.001, .max = 3600 },

	{ .key = "migrate", .type = CT_SECTION },
	{ .key = "migrate.dir", .type = CT_PATH, .off = OFF(migrate.dir), .def = "./prisma/migrations" },
	{ .key = "migrate.service", .type = CT_STRING, .off = OFF(migrate.service), .def = "backend", .valid = valid_service_name },
	{ .key = "migrate.command", .type = CT_LIST, .off = OFF(migrate.command), .choices = migrate_command_default, .hook = hook_list_default },
	{ .key = "migrate.resolve_command", .type = CT_LIST, .off = OFF(migrate.resolve_command), .choices = migrate_resolve_default, .hook = hook_list_default },
	{ .key = "migrate.timeout", .type = CT_DURATION, .off = OFF(migrate.timeout), .def = "10m", .min = 1, .max = 86400 },

	{ .key = "checklist", .type = CT_SECTION },
	{ .key = "checklist.env_files", .type = CT_MAPOF, .off = OFF(checklist.env_files), .count_off = OFF(checklist.n_env_files), .items = &env_file_table, .valid = valid_service_name },
	{ .key = "checklist.attestations", .type = CT_LIST, .off = OFF(checklist.attestations), .choices = attestations_default, .hook = hook_attestations },
	{ .key = "checklist.backup_max_age", .type = CT_DURATION, .off = OFF(checklist.backup_max_age), .def = "24h", .min = 60, .max = 365 * 86400.0 },
	{ .key = "checklist.disk_min_free_percent", .type = CT_NUMBER, .off = OFF(checklist.disk_min_free_percent), .def = "10", .min = 0, .max = 100 },
	{ .key = "notify", .type = CT_SECTION },
	{ .key = "notify.webhook_url", .type = CT_STRING, .off = OFF(notify.webhook_url), .valid = valid_url },

	{ .key = "health", .type = CT_SECTION },
	{ .key = "health.timeout", .type = CT_DURATION, .off = OFF(health.timeout), .def = "5s", .min = 0.001, .max = 3600 },
	{ .key = "health.log_window", .type = CT_DURATION, .off = OFF(health.log_window), .def = "5m", .min = 1, .max = 7 * 86400 },
	{ .key = "health.containers", .type = CT_LIST, .off = OFF(health.containers), .hook = hook_health_containers },

	{ .key = "env_files", .type = CT_LIST, .flags = K_PATHS, .off = OFF(env_files) },

	{ .key = "incident", .type = CT_SECTION },
	{ .key = "incident.session_pattern", .type = CT_STRING, .off = OFF(incident.session_pattern), .def = "sess:*", .valid = valid_session_pattern },
	{ .key = "incident.failed_logins", .type = CT_INT, .off = OFF(incident.failed_logins), .def = "5", .min = 0, .max = 1000000 },
	{ .key = "incident.failed_login_window", .type = CT_DURATION, .off = OFF(incident.failed_login_window), .def = "1h", .min = 1, .max = 366 * 86400.0 },
	{ .key = "incident.restart_timeout", .type = CT_DURATION, .off = OFF(incident.restart_timeout), .def = "60s", .min = 1, .max = 3600 },
	{ .key = "incident.trusted_proxies", .type = CT_LIST, .off = OFF(incident.trusted_proxies), .hook = hook_trusted_proxies },
	{ .key = "incident.firewall_chain", .type = CT_STRING, .off = OFF(incident.firewall_chain), .def = "INPUT", .valid = valid_chain },

	{ .key = "thresholds", .type = CT_SECTION },
	THRESHOLD(api_response_seconds, "1", "2", 3600),
	THRESHOLD(error_rate_percent, "0.5", "1", 100),
	THRESHOLD(db_connections_percent, "80", "90", 100),
	THRESHOLD(redis_memory_percent, "80", "90", 100),
	/* CPU% is per core as docker stats reports it: 4 busy cores are 400%. */
	THRESHOLD(container_cpu_percent, "80", "95", 100000),
	THRESHOLD(container_memory_percent, "80", "95", 100),
	THRESHOLD(disk_percent, "80", "90", 100),

	{ .key = "compose_file", .type = CT_PATH, .off = OFF(compose_file) },
	{ .key = "compose_env_file", .type = CT_PATH, .off = OFF(compose_env_file) },

	{ .key = "deploy", .type = CT_SECTION },
	{ .key = "deploy.keep_releases", .type = CT_INT, .off = OFF(deploy.keep_releases), .def = "5", .min = 1, .max = 1000 },
	{ .key = "deploy.health_timeout", .type = CT_DURATION, .off = OFF(deploy.health_timeout), .def = "60s", .min = 1, .max = 3600 },
	{ .key = "deploy.health_interval", .type = CT_DURATION, .off = OFF(deploy.health_interval), .def = "1s", .min = 0.1, .max = 60 },
	{ .key = "deploy.health_fail_after", .type = CT_INT, .off = OFF(deploy.health_fail_after), .def = "3", .min = 0, .max = 1000 },
	{ .key = "deploy.log_scan", .type = CT_DURATION, .off = OFF(deploy.log_scan), .def = "5s", .min = 0, .max = 600 },
	{ .key = "deploy.log_error_patterns", .type = CT_LIST, .off = OFF(deploy.log_error_patterns), .hook = hook_log_patterns },
	{ .key = "deploy.stop_timeout", .type = CT_INT, .off = OFF(deploy.stop_timeout), .def = "10", .min = 0, .max = 3600 },
};

static const struct config_table top_table = { top_keys, N_OF(top_keys), 0, 0 };

/* ---- small helpers ------------------------------------------------------ */

static int oom(struct loader *ld)
{
	return st_error_set(ld->err, ST_ENOMEM, "out of memory loading the configuration");
}

static void *field(void *base, size_t off)
{
	return (char *)base + off;
}

/* "a" + "b" -> "a.b"; either may be empty. -1 when it does not fit. */
static int join_key(char *buf, size_t size, const char *a, const char *b)
{
	int n;

	if (!a || !*a)
		n = snprintf(buf, size, "%s", b);
	else if (!b || !*b)
		n = snprintf(buf, size, "%s", a);
	else
		n = snprintf(buf, size, "%s.%s", a, b);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static const char *last_part(const char *key)
{
	const char *dot = strrchr(key, '.');

	return dot ? dot + 1 : key;
}

/* 1 when key's parent (everything before the last dot) is exactly parent. */
static int has_parent(const char *key, const char *parent)
{
	const char *dot = strrchr(key, '.');
	size_t plen = strlen(parent);

	if (!dot)
		return plen == 0;
	return (size_t)(dot - key) == plen && strncmp(key, parent, plen) == 0;
}

static const struct config_key *find_key(const struct config_table *t, const char *key)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->keys[i].key, key) == 0)
			return &t->keys[i];
	return NULL;
}

static int has_required_below(const struct config_table *t, const char *section)
{
	size_t len = strlen(section), i;

	for (i = 0; i < t->n; i++)
		if ((t->keys[i].flags & K_REQUIRED) && strncmp(t->keys[i].key, section, len) == 0 &&
		    t->keys[i].key[len] == '.')
			return 1;
	return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64];

	if (lb >= N_OF(row))
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The known key under parent closest to name, when close enough to be a typo. */
static const char *suggest_key(const struct config_table *t, const char *parent, const char *name)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, len = strlen(name), limit, i;

	limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
	for (i = 0; i < t->n; i++) {
		const struct config_key *k = &t->keys[i];
		const char *cand;
		size_t d;

		if (k->type == CT_LITERAL_SECRET || !has_parent(k->key, parent))
			continue;
		cand = last_part(k->key);
		d = strcasecmp(cand, name) == 0 ? 0 : edit_distance(name, cand);
		if (d < best_d) {
			best_d = d;
			best = cand;
		}
	}
	return best && best_d <= limit ? best : NULL;
}

static const char *type_word(const struct config_key *k)
{
	switch (k->type) {
	case CT_SECTION:
	case CT_MAPOF: return "a mapping";
	case CT_STRING: return "a string";
	case CT_PATH: return "a path";
	case CT_INT: return "an integer";
	case CT_NUMBER: return "a number";
	case CT_DURATION: return "a duration like 30s, 500ms or 5m";
	case CT_ENUM: return "one of the listed names";
	case CT_LIST: return "a list";
	case CT_SECRET_ENV: return "the name of an environment variable";
	case CT_SECRET_FILE: return "a path";
	case CT_LITERAL_SECRET: return "absent";
	}
	return "?";
}

static char *resolve_path(const char *dir, const char *p)
{
	char *out;
	size_t n;

	if (p[0] == '/')
		return strdup(p);
	while (p[0] == '.' && p[1] == '/') {
		p += 2;
		while (*p == '/')
			p++;
	}
	if (!*p || !strcmp(p, "."))
		return strdup(dir);
	n = strlen(dir) + 1 + strlen(p) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", p);
	return out;
}

/* ---- applying values ---------------------------------------------------- */

static int range_error(struct loader *ld, const struct config_key *k, const char *path,
		       const struct yt_node *node, const char *text)
{
	char lo[40], hi[40];

	if (k->type == CT_DURATION) {
		time_format_duration_exact(k->min, lo, sizeof(lo));
		time_format_duration_exact(k->max, hi, sizeof(hi));
	} else {
		text_format_number(k->min, lo, sizeof(lo));
		text_format_number(k->max, hi, sizeof(hi));
	}
	return yt_error_at(ld->err, ST_ECONFIG, node, "%s must be between %s and %s, not '%s'", path,
			   lo, hi, text);
}

/* Sets a scalar-typed key from text. node is where the text came from, or
 * NULL for a default (which the tests prove valid). */
static int set_scalar(struct loader *ld, const struct config_key *k, void *base, const char *path,
		      const char *text, const struct yt_node *node)
{
	const char *why;
	char *end;
	char **str;
	struct config_secret *sec;

	switch (k->type) {
	case CT_STRING:
	case CT_PATH:
		str = field(base, k->off);
		if (!*text)
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s must not be empty", path);
		if (k->valid && (why = k->valid(text)))
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s '%s' %s", path, text, why);
		free(*str);
		*str = k->type == CT_PATH ? resolve_path(ld->cfg->dir, text) : strdup(text);
		if (!*str)
			return oom(ld);
		/* No file has a longer name: refused here, not by the first
		 * open() far from the key that set it. */
		if (k->type == CT_PATH && strlen(*str) >= PATH_MAX)
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s is longer than a path can be (%zu bytes, "
					   "at most %d)", path, strlen(*str), PATH_MAX - 1);
		return 0;
	case CT_INT: {
		long v;
		errno = 0;
		v = strtol(text, &end, 10);
		if (errno == ERANGE || (end != text && !*end && (v < k->min || v > k->max)))
			return range_error(ld, k, path, node, text);
		if (end == text || *end)
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s must be an integer, not '%s'",
					   path, text);
		*(long *)field(base, k->off) = v;
		return 0;
	}
	case CT_NUMBER: {
		double v;
		errno = 0;
		v = strtod(text, &end);
		if (errno || end == text || *end || !isfinite(v))
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s must be a number, not '%s'",
					   path, text);
		if (v < k->min || v > k->max)
			return range_error(ld, k, path, node, text);
		*(double *)field(base, k->off) = v;
		return 0;
	}
	case CT_DURATION: {
		double v;
		if (time_parse_duration(text, &v) != 0) {
			/* "-5s" reads as a number: out of range rather than malformed. */
			if (text[0] == '-' && time_parse_duration(text + 1, &v) == 0)
				return range_error(ld, k, path, node, text);
			return yt_error_at(ld->err, ST_ECONFIG, node,
					   "%s must be a duration like 30s, 500ms or 5m, not '%s'", path, text);
		}
		if (v < k->min || v > k->max)
			return range_error(ld, k, path, node, text);
		*(double *)field(base, k->off) = v;
		return 0;
	}
	case CT_ENUM: {
		struct sbuf names = SBUF_INIT;
		int i, rc;
		for (i = 0; k->choices[i]; i++) {
			if (!strcmp(k->choices[i], text)) {
				*(int *)field(base, k->off) = i;
				return 0;
			}
		}
		for (i = 0; k->choices[i]; i++)
			if (sbuf_printf(&names, "%s%s", i ? ", " : "", k->choices[i]) != 0) {
				sbuf_release(&names);
				return oom(ld);
			}
		rc = yt_error_at(ld->err, ST_ECONFIG, node, "%s must be one of %s, not '%s'", path,
				 sbuf_str(&names), text);
		sbuf_release(&names);
		return rc;
	}
	case CT_SECRET_ENV:
	case CT_SECRET_FILE:
		sec = field(base, k->off);
		if (sec->kind != CONFIG_SECRET_NONE)
			return yt_error_at(ld->err, ST_ECONFIG, node,
					   "%s conflicts with %s: give password_env or password_file, not both",
					   path, sec->key);
		if (!*text)
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s must not be empty", path);
		if (k->valid && (why = k->valid(text)))
			return yt_error_at(ld->err, ST_ECONFIG, node, "%s '%s' %s", path, text, why);
		sec->kind = k->type == CT_SECRET_ENV ? CONFIG_SECRET_ENV : CONFIG_SECRET_FILE;
		sec->ref = k->type == CT_SECRET_FILE ? resolve_path(ld->cfg->dir, text) : strdup(text);
		sec->key = strdup(path);
		return sec->ref && sec->key ? 0 : oom(ld);
	default:
		return st_error_set(ld->err, ST_ECONFIG, "%s: not a scalar key", path);
	}
}

static int walk_map(struct loader *ld, const struct config_table *t, void *base, const char *rel,
		    const char *prefix, const struct yt_node *map, const struct yt_node *pos);

/* A key that is absent or written with no value. pos: where to point. */
static int apply_absent(struct loader *ld, const struct config_table *t, const struct config_key *k,
			void *base, const char *prefix, const char *path, const struct yt_node *pos,
			int written_empty)
{
	if ((k->flags & K_REQUIRED) || (k->type == CT_SECTION && has_required_below(t, k->key))) {
		if (written_empty)
			return yt_error_at(ld->err, ST_ECONFIG, pos, "required key '%s' has no value", path);
		return yt_error_at(ld->err, ST_ECONFIG, pos, "missing required key '%s'", path);
	}
	if (k->type == CT_SECTION)
		return walk_map(ld, t, base, k->key, prefix, NULL, pos); /* its defaults */
	if (k->def)
		return set_scalar(ld, k, base, path, k->def, NULL);
	return 0;
}

static int apply_list(struct loader *ld, const struct config_key *k, void *base, const char *path,
		      const struct yt_node *seq)
{
	struct config_list *list = field(base, k->off);
	size_t i;

	list->items = calloc(seq->count ? seq->count : 1, sizeof(*list->items));
	if (!list->items)
		return oom(ld);
	for (i = 0; i < seq->count; i++) {
		const struct yt_node *v = seq->values[i];
		if (v->kind != YT_SCALAR || yt_is_null(v) || !*v->scalar)
			return yt_error_at(ld->err, ST_ECONFIG, v, "%s[%zu] must be a string, not %s", path,
					   i, v->kind == YT_SCALAR ? "empty" : yt_kind_name(v->kind));
		list->items[i] = (k->flags & K_PATHS) ? resolve_path(ld->cfg->dir, v->scalar)
						      : strdup(v->scalar);
		if (!list->items[i])
			return oom(ld);
		list->count++;
	}
	return 0;
}

static int apply_mapof(struct loader *ld, const struct config_key *k, void *base, const char *path,
		       const struct yt_node *map)
{
	const struct config_table *it = k->items;
	size_t *count = field(base, k->count_off);
	char *items;
	size_t i;
	int rc;

	if (map->count == 0)
		return yt_error_at(ld->err, ST_ECONFIG, map, "%s must name at least one entry", path);
	items = calloc(map->count, it->item_size);
	if (!items)
		return oom(ld);
	/* The struct field is a typed pointer (struct config_service *...):
	 * copy the address in rather than write through a void **. */
	memcpy(field(base, k->off), &items, sizeof(items));
	for (i = 0; i < map->count; i++) {
		const char *name = map->keys[i]->scalar;
		char *item = items + i * it->item_size;
		char **namep = (char **)(item + it->name_off);
		char sub[PATH_MAX_KEY];
		const char *why;

		if (join_key(sub, sizeof(sub), path, name) != 0)
			return yt_error_at(ld->err, ST_ECONFIG, map->keys[i], "key '%s' is too long", name);
		if (k->valid && (why = k->valid(name)))
			return yt_error_at(ld->err, ST_ECONFIG, map->keys[i], "%s name '%s' %s", path, name, why);
		*namep = strdup(name);
		if (!*namep)
			return oom(ld);
		(*count)++;
		if (map->values[i]->kind != YT_MAP && !yt_is_null(map->values[i]))
			return yt_error_at(ld->err, ST_ECONFIG, map->values[i], "%s must be a mapping, not a %s",
					   sub, yt_kind_name(map->values[i]->kind));
		rc = walk_map(ld, it, item, "", sub,
			      map->values[i]->kind == YT_MAP ? map->values[i] : NULL, map->keys[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int apply_key(struct loader *ld, const struct config_table *t, const struct config_key *k,
		     void *base, const char *prefix, const char *path, const struct yt_node *value,
		     const struct yt_node *keynode)
{
	if (k->type == CT_LITERAL_SECRET) {
		yt_error_at(ld->err, ST_ECONFIG, keynode,
			    "%s: passwords do not belong in the configuration file", path);
		return st_error_hint(ld->err,
				     "replace it with 'password_env: NAME' (an environment variable) "
				     "or 'password_file: PATH' (a file with mode 0600)");
	}
	if (yt_is_null(value))
		return apply_absent(ld, t, k, base, prefix, path, value, 1);
	switch (k->type) {
	case CT_SECTION:
		if (value->kind != YT_MAP)
			break;
		return walk_map(ld, t, base, k->key, prefix, value, keynode);
	case CT_MAPOF:
		if (value->kind != YT_MAP)
			break;
		return apply_mapof(ld, k, base, path, value);
	case CT_LIST:
		if (value->kind != YT_SEQ)
			break;
		return apply_list(ld, k, base, path, value);
	default:
		if (value->kind != YT_SCALAR)
			break;
		return set_scalar(ld, k, base, path, value->scalar, value);
	}
	return yt_error_at(ld->err, ST_ECONFIG, value, "%s must be %s, not a %s", path, type_word(k),
			   yt_kind_name(value->kind));
}

static int unknown_key(struct loader *ld, const struct config_table *t, const char *rel,
		       const char *path, const struct yt_node *keynode)
{
	const char *guess = suggest_key(t, rel, keynode->scalar);
	struct sbuf known = SBUF_INIT;
	size_t i;
	int rc;

	if (guess)
		rc = yt_error_at(ld->err, ST_ECONFIG, keynode, "unknown key '%s' (did you mean '%s'?)",
				 path, guess);
	else
		rc = yt_error_at(ld->err, ST_ECONFIG, keynode, "unknown key '%s'", path);
	for (i = 0; i < t->n; i++) {
		if (t->keys[i].type == CT_LITERAL_SECRET || !has_parent(t->keys[i].key, rel))
			continue;
		if (sbuf_printf(&known, "%s%s", known.len ? ", " : "", last_part(t->keys[i].key)) != 0) {
			sbuf_release(&known);
			return oom(ld);
		}
	}
	if (known.len) {
		const char *parent_end = strrchr(path, '.');
		if (parent_end)
			st_error_hint(ld->err, "keys under '%.*s': %s", (int)(parent_end - path), path,
				      sbuf_str(&known));
		else
			st_error_hint(ld->err, "top-level keys: %s", sbuf_str(&known));
	}
	sbuf_release(&known);
	return rc;
}

/* Applies map (may be NULL: nothing written) to the keys of t under rel.
 * prefix is prepended to every key in messages ("services.backend").
 * pos names the mapping in messages about missing keys. */
static int walk_map(struct loader *ld, const struct config_table *t, void *base, const char *rel,
		    const char *prefix, const struct yt_node *map, const struct yt_node *pos)
{
	char relkey[PATH_MAX_KEY], path[PATH_MAX_KEY];
	size_t i;
	int rc;

	for (i = 0; map && i < map->count; i++) {
		const struct yt_node *kn = map->keys[i];
		const struct config_key *k;

		if (join_key(relkey, sizeof(relkey), rel, kn->scalar) != 0 ||
		    join_key(path, sizeof(path), prefix, relkey) != 0)
			return yt_error_at(ld->err, ST_ECONFIG, kn, "key '%s' is too long", kn->scalar);
		k = strchr(kn->scalar, '.') ? NULL : find_key(t, relkey);
		if (!k)
			return unknown_key(ld, t, rel, path, kn);
		rc = apply_key(ld, t, k, base, prefix, path, map->values[i], kn);
		if (rc)
			return rc;
	}
	for (i = 0; i < t->n; i++) {
		const struct config_key *k = &t->keys[i];

		if (!has_parent(k->key, rel) || k->type == CT_LITERAL_SECRET)
			continue;
		if (map && yt_map_get(map, last_part(k->key)))
			continue;
		if (join_key(path, sizeof(path), prefix, k->key) != 0)
			return st_error_set(ld->err, ST_ECONFIG, "key '%s' is too long", k->key);
		rc = apply_absent(ld, t, k, base, prefix, path, pos, 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- positions in the parsed document ----------------------------------- */

/* Follows a dotted path through mappings (and sequences by index). Returns
 * the value node or NULL; *key_out gets the key node naming it (the value
 * itself inside a sequence, the root for ""). */
static const void *yt_child(void *ud, const void *node, const char *seg, size_t len, long index)
{
	const struct yt_node *n = node, **key = ud;
	size_t i;

	if (n->kind == YT_MAP) {
		for (i = 0; i < n->count; i++)
			if (strlen(n->keys[i]->scalar) == len && !strncmp(n->keys[i]->scalar, seg, len)) {
				*key = n->keys[i];
				return n->values[i];
			}
	} else if (n->kind == YT_SEQ && index >= 0 && (size_t)index < n->count) {
		return *key = n->values[index];
	}
	return NULL;
}

static const struct yt_node *tree_find(const struct yt_node *root, const char *path,
				       const struct yt_node **key_out)
{
	const struct yt_node *key = root;
	const struct yt_node *n = text_path_walk(root, path, yt_child, &key);

	if (key_out)
		*key_out = n ? key : NULL;
	return n;
}

/* Where to point for path: its key in the file, else the nearest ancestor's. */
static const struct yt_node *doc_pos(const struct loader *ld, const char *path)
{
	char buf[PATH_MAX_KEY];
	const struct yt_node *key = NULL;
	char *dot;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		if (tree_find(ld->root, buf, &key) && key)
			return key;
		dot = strrchr(buf, '.');
		if (!dot)
			return ld->root;
		*dot = '\0';
	}
}

/* ---- hooks -------------------------------------------------------------- */

static int hook_docker_host(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	const char *env = getenv("DOCKER_HOST");
	char **host = field(base, k->off);
	const char *why;

	(void)path;
	if (!env || !*env)
		return 0;
	if ((why = valid_docker_host(env))) {
		st_error_set(ld->err, ST_ECONFIG, "DOCKER_HOST '%s' %s", env, why);
		return st_error_hint(ld->err, "unset DOCKER_HOST or set it to unix:///var/run/docker.sock");
	}
	free(*host);
	*host = strdup(env);
	if (!*host)
		return oom(ld);
	ld->cfg->docker.host_from_env = 1;
	return 0;
}

static int hook_redis(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	struct st_config *cfg = base;

	(void)k;
	if (cfg->redis.host || cfg->redis.socket)
		return 0;
	yt_error_at(ld->err, ST_ECONFIG, doc_pos(ld, path), "missing required key '%s.host'", path);
	return st_error_hint(ld->err, "give redis.host (TCP) or redis.socket (a Unix socket path)");
}

static int hook_health_containers(struct loader *ld, const struct config_key *k, void *base,
				  const char *path)
{
	struct st_config *cfg = ld->cfg;
	struct config_list *list = field(base, k->off);
	const struct yt_node *seq = tree_find(ld->root, path, NULL);
	size_t i, j;

	if (!seq || yt_is_null(seq)) {
		/* Default: every configured service, in file order. */
		list->items = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*list->items));
		if (!list->items)
			return oom(ld);
		for (i = 0; i < cfg->n_services; i++) {
			list->items[i] = strdup(cfg->services[i].name);
			if (!list->items[i])
				return oom(ld);
			list->count++;
		}
		return 0;
	}
	if (list->count == 0)
		return yt_error_at(ld->err, ST_ECONFIG, seq,
				   "%s must name at least one service (leave it out to check every service)",
				   path);
	for (i = 0; i < list->count; i++) {
		if (!config_service(cfg, list->items[i])) {
			struct sbuf names = SBUF_INIT;
			for (j = 0; j < cfg->n_services; j++)
				if (sbuf_printf(&names, "%s%s", j ? ", " : "", cfg->services[j].name) != 0) {
					sbuf_release(&names);
					return oom(ld);
				}
			yt_error_at(ld->err, ST_ECONFIG, seq->values[i], "%s[%zu]: '%s' is not a configured service",
				    path, i, list->items[i]);
			st_error_hint(ld->err, "configured services: %s", sbuf_str(&names));
			sbuf_release(&names);
			return ST_ECONFIG;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(list->items[j], list->items[i]))
				return yt_error_at(ld->err, ST_ECONFIG, seq->values[i],
						   "%s[%zu]: '%s' is listed twice", path, i, list->items[i]);
	}
	return 0;
}

/* Lines of a new container's first logs that fail a deploy. */
static const char *const log_patterns_default[] = {
	"\\b(error|fatal|panic)\\b",
	"unhandled.*(rejection|exception)",
	NULL,
};

static int hook_log_patterns(struct loader *ld, const struct config_key *k, void *base,
			     const char *path)
{
	struct config_list *list = field(base, k->off);
	const struct yt_node *seq = tree_find(ld->root, path, NULL);
	size_t i;

	if (!seq || yt_is_null(seq)) {
		list->items = calloc(N_OF(log_patterns_default), sizeof(*list->items));
		if (!list->items)
			return oom(ld);
		for (i = 0; log_patterns_default[i]; i++) {
			if (!(list->items[i] = strdup(log_patterns_default[i])))
				return oom(ld);
			list->count++;
		}
		return 0;
	}
	for (i = 0; i < list->count; i++) {
		regex_t re;
		int e = regcomp(&re, list->items[i], REG_EXTENDED | REG_ICASE | REG_NOSUB);

		if (e != 0) {
			char msg[128];

			regerror(e, &re, msg, sizeof(msg));
			return yt_error_at(ld->err, ST_ECONFIG, seq->values[i],
					   "%s[%zu]: '%s' is not a regular expression: %s", path, i,
					   list->items[i], msg);
		}
		regfree(&re);
	}
	return 0;
}

static int hook_threshold(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	const struct config_threshold *th = field(base, k->off);
	char warn_path[PATH_MAX_KEY], w[40], c[40];
	const struct yt_node *pos;

	if (th->warn <= th->crit)
		return 0;
	snprintf(warn_path, sizeof(warn_path), "%s.warn", path);
	pos = tree_find(ld->root, warn_path, NULL);
	if (!pos) {
		snprintf(warn_path, sizeof(warn_path), "%s.crit", path);
		pos = tree_find(ld->root, warn_path, NULL);
	}
	if (!pos)
		pos = doc_pos(ld, path);
	text_format_number(th->warn, w, sizeof(w));
	text_format_number(th->crit, c, sizeof(c));
	return yt_error_at(ld->err, ST_ECONFIG, pos, "%s: warn (%s) must not be above crit (%s)", path, w, c);
}

/* A proxy is configured by its container, url and upstream file: all three
 * or none (config show prints the other keys' defaults, which alone mean no
 * proxy). A configured one needs a configured service, two different ports
 * and a template that places the port. */
static int hook_proxy(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	struct st_config *cfg = base;
	const struct config_proxy *p = &cfg->proxy;
	static const char *const need[] = { "container", "url", "upstream_file" };
	const char *have[3];
	size_t i;

	(void)k;
	have[0] = p->container;
	have[1] = p->url;
	have[2] = p->upstream_file;
	if (!have[0] && !have[1] && !have[2])
		return 0;
	for (i = 0; i < N_OF(need); i++)
		if (!have[i])
			return yt_error_at(ld->err, ST_ECONFIG, doc_pos(ld, path),
					   "missing required key '%s.%s'", path, need[i]);
	if (!config_service(cfg, p->service)) {
		yt_error_at(ld->err, ST_ECONFIG, doc_pos(ld, "proxy.service"),
			    "proxy.service: '%s' is not a configured service", p->service);
		return st_error_hint(ld->err, "add services.%s, or name the service behind the proxy",
				     p->service);
	}
	if (p->blue_port == p->green_port)
		return yt_error_at(ld->err, ST_ECONFIG, doc_pos(ld, "proxy.green_port"),
				   "proxy.green_port must differ from proxy.blue_port (%ld): the old and the "
				   "new container run side by side", p->blue_port);
	if (!strstr(p->upstream_template, "{port}"))
		return yt_error_at(ld->err, ST_ECONFIG, doc_pos(ld, "proxy.upstream_template"),
				   "proxy.upstream_template must contain {port}");
	return 0;
}

/* An absent list key gets the NULL-terminated default in k->choices; a
 * present one must not be empty. */
static int hook_list_default(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	struct config_list *list = field(base, k->off);
	const struct yt_node *seq = tree_find(ld->root, path, NULL);
	size_t i, n = 0;

	if (seq && !yt_is_null(seq)) {
		if (list->count == 0)
			return yt_error_at(ld->err, ST_ECONFIG, seq, "%s must not be empty", path);
		return 0;
	}
	while (k->choices[n])
		n++;
	list->items = calloc(n ? n : 1, sizeof(*list->items));
	if (!list->items)
		return oom(ld);
	for (i = 0; i < n; i++) {
		list->items[i] = strdup(k->choices[i]);
		if (!list->items[i])
			return oom(ld);
		list->count++;
	}
	return 0;
}

static int hook_env_names(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	const struct config_list *list = field(base, k->off);
	const struct yt_node *seq = tree_find(ld->root, path, NULL);
	const char *why;
	size_t i;

	for (i = 0; i < list->count; i++)
		if ((why = valid_env_name(list->items[i])))
			return yt_error_at(ld->err, ST_ECONFIG, seq && i < seq->count ? seq->values[i] : doc_pos(ld, path),
					   "%s[%zu] '%s' %s", path, i, list->items[i], why);
	return 0;
}

/* Attestation names are words given on the command line (--attest a,b). */
static int hook_attestations(struct loader *ld, const struct config_key *k, void *base, const char *path)
{
	const struct config_list *list = field(base, k->off);
	const struct yt_node *seq = tree_find(ld->root, path, NULL);
	const char *why;
	size_t i;
	int rc;

	/* [] is allowed: a pipeline that attests nothing. */
	if ((!seq || yt_is_null(seq)) && (rc = hook_list_default(ld, k, base, path)) != 0)
		return rc;
	for (i = 0; i < list->count; i++)
		if ((why = valid_service_name(list->items[i])))
			return yt_error_at(ld->err, ST_ECONFIG, seq && i < seq->count ? seq->values[i] : doc_pos(ld, path),
					   "%s[%zu] '%s' %s", path, i, list->items[i], why);
	return 0;
}

/* Each item an address or network, so top-ips never meets a bad one. */
static int hook_trusted_proxies(struct loader *ld, const struct config_key *k, void *base,
				const char *path)
{
	const struct config_list *list = field(base, k->off);
	size_t i;

	for (i = 0; i < list->count; i++) {
		struct accesslog_trust t = ACCESSLOG_TRUST_INIT;
		struct st_error terr = { 0 };
		const char *item = list->items[i];
		char ipath[PATH_MAX_KEY + 24];
		const struct yt_node *pos;

		if (accesslog_trust_parse(&item, 1, &t, &terr) != 0) {
			if (terr.code == ST_ENOMEM)
				return oom(ld);
			snprintf(ipath, sizeof(ipath), "%s.%zu", path, i);
			pos = tree_find(ld->root, ipath, NULL);
			return yt_error_at(ld->err, ST_ECONFIG, pos ? pos : doc_pos(ld, path), "%s[%zu]: %s",
					   path, i, terr.message);
		}
		accesslog_trust_release(&t);
	}
	return 0;
}

static int run_hooks(struct loader *ld, const struct config_table *t, void *base, const char *prefix)
{
	char path[PATH_MAX_KEY];
	size_t i, j;
	int rc;

	for (i = 0; i < t->n; i++) {
		const struct config_key *k = &t->keys[i];

		if (join_key(path, sizeof(path), prefix, k->key) != 0)
			return st_error_set(ld->err, ST_ECONFIG, "key '%s' is too long", k->key);
		if (k->hook && (rc = k->hook(ld, k, base, path)) != 0)
			return rc;
		if (k->type == CT_MAPOF) {
			char *items;
			size_t count = *(size_t *)field(base, k->count_off);
			memcpy(&items, field(base, k->off), sizeof(items));
			for (j = 0; j < count; j++) {
				char *item = items + j * k->items->item_size;
				char sub[PATH_MAX_KEY];
				if (join_key(sub, sizeof(sub), path, *(char **)(item + k->items->name_off)) != 0)
					return st_error_set(ld->err, ST_ECONFIG, "key '%s' is too long", path);
				if ((rc = run_hooks(ld, k->items, item, sub)) != 0)
					return rc;
			}
		}
	}
	return 0;
}

/* ---- freeing ------------------------------------------------------------ */

static void free_table(const struct config_table *t, void *base)
{
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		const struct config_key *k = &t->keys[i];
		switch (k->type) {
		case CT_STRING:
		case CT_PATH:
			free(*(char **)field(base, k->off));
			*(char **)field(base, k->off) = NULL;
			break;
		case CT_SECRET_ENV:
		case CT_SECRET_FILE: {
			struct config_secret *s = field(base, k->off);
			free(s->ref);
			free(s->key);
			memset(s, 0, sizeof(*s));
			break;
		}
		case CT_LIST: {
			struct config_list *l = field(base, k->off);
			for (j = 0; j < l->count; j++)
				free(l->items[j]);
			free(l->items);
			memset(l, 0, sizeof(*l));
			break;
		}
		case CT_MAPOF: {
			char *items;
			size_t *count = field(base, k->count_off);
			memcpy(&items, field(base, k->off), sizeof(items));
			for (j = 0; items && j < *count; j++) {
				char *item = items + j * k->items->item_size;
				free(*(char **)(item + k->items->name_off));
				free_table(k->items, item);
			}
			free(items);
			memset(field(base, k->off), 0, sizeof(items));
			*count = 0;
			break;
		}
		default:
			break;
		}
	}
}

void config_free(struct st_config *cfg)
{
	if (!cfg)
		return;
	free_table(&top_table, cfg);
	yt_doc_free(cfg->doc);
	yt_doc_free(cfg->effective);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

/* ---- the effective tree ------------------------------------------------- */

struct builder {
	const struct loader *ld;
	struct yt_doc *doc;
};

static struct yt_node *new_node(struct builder *b, enum yt_kind kind, const struct yt_node *pos)
{
	struct yt_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->file = b->doc->file;
	n->line = pos ? pos->line : 0;
	n->column = pos ? pos->column : 0;
	return n;
}

static struct yt_node *new_scalar(struct builder *b, const char *text, int quoted,
				  const struct yt_node *pos)
{
	struct yt_node *n = new_node(b, YT_SCALAR, pos);

	if (!n)
		return NULL;
	n->scalar = strdup(text);
	if (!n->scalar) {
		free(n);
		return NULL;
	}
	n->quoted = quoted;
	return n;
}

static void drop_leaf(struct yt_node *n)
{
	if (n) {
		free(n->scalar);
		free(n);
	}
}

/* Appends key -> value to a mapping (key NULL: value to a sequence). Both are
 * fresh leaves or empty containers; on failure they are freed. */
static int push(struct yt_node *parent, struct yt_node *key, struct yt_node *value)
{
	struct yt_node **vals, **keys;

	if (!value || (parent->kind == YT_MAP && !key))
		goto fail;
	vals = realloc(parent->values, (parent->count + 1) * sizeof(*vals));
	if (!vals)
		goto fail;
	parent->values = vals;
	if (parent->kind == YT_MAP) {
		keys = realloc(parent->keys, (parent->count + 1) * sizeof(*keys));
		if (!keys)
			goto fail;
		parent->keys = keys;
		parent->keys[parent->count] = key;
	}
	parent->values[parent->count++] = value;
	return 0;
fail:
	drop_leaf(key);
	drop_leaf(value);
	return ST_ENOMEM;
}

/* Adds name -> (new node) to map, positioned like path in the parsed file
 * (or like the parent when the file does not have it). Returns the value node. */
static struct yt_node *add_entry(struct builder *b, struct yt_node *map, const char *name,
				 const char *path, enum yt_kind kind, const char *text, int quoted)
{
	const struct yt_node *kpos = NULL, *vpos;
	struct yt_node *key, *value;

	vpos = tree_find(b->ld->root, path, &kpos);
	if (!vpos) {
		kpos = map;
		vpos = map;
	}
	key = new_scalar(b, name, 1, kpos);
	value = kind == YT_SCALAR ? new_scalar(b, text, quoted, vpos) : new_node(b, kind, vpos);
	if (push(map, key, value) != 0)
		return NULL;
	return value;
}

static int build_map(struct builder *b, const struct config_table *t, const void *base,
		     const char *rel, const char *prefix, struct yt_node *map);

static int build_key(struct builder *b, const struct config_table *t, const struct config_key *k,
		     const void *base, const char *prefix, struct yt_node *map)
{
	const void *f = (const char *)base + k->off;
	const char *name = last_part(k->key);
	char path[PATH_MAX_KEY], text[64];
	struct yt_node *v;
	size_t i;

	if (join_key(path, sizeof(path), prefix, k->key) != 0)
		return ST_ENOMEM;
	switch (k->type) {
	case CT_SECTION:
		v = add_entry(b, map, name, path, YT_MAP, NULL, 0);
		return v ? build_map(b, t, base, k->key, prefix, v) : ST_ENOMEM;
	case CT_MAPOF: {
		const char *items;
		size_t count = *(const size_t *)((const char *)base + k->count_off);
		memcpy(&items, f, sizeof(items));
		/* An optional mapping left out stays out: "{}" would not load. */
		if (count == 0)
			return 0;
		v = add_entry(b, map, name, path, YT_MAP, NULL, 0);
		if (!v)
			return ST_ENOMEM;
		for (i = 0; i < count; i++) {
			const char *item = items + i * k->items->item_size;
			const char *iname = *(char *const *)(item + k->items->name_off);
			char sub[PATH_MAX_KEY];
			struct yt_node *iv;
			if (join_key(sub, sizeof(sub), path, iname) != 0)
				return ST_ENOMEM;
			iv = add_entry(b, v, iname, sub, YT_MAP, NULL, 0);
			if (!iv || build_map(b, k->items, item, "", sub, iv) != 0)
				return ST_ENOMEM;
		}
		return 0;
	}
	case CT_LIST: {
		const struct config_list *l = f;
		const struct yt_node *pos;
		char ipath[PATH_MAX_KEY + 24];
		v = add_entry(b, map, name, path, YT_SEQ, NULL, 0);
		if (!v)
			return ST_ENOMEM;
		for (i = 0; i < l->count; i++) {
			snprintf(ipath, sizeof(ipath), "%s.%zu", path, i);
			pos = tree_find(b->ld->root, ipath, NULL);
			if (push(v, NULL, new_scalar(b, l->items[i], 1, pos ? pos : v)) != 0)
				return ST_ENOMEM;
		}
		return 0;
	}
	case CT_STRING:
	case CT_PATH: {
		const char *s = *(char *const *)f;
		if (!s)
			return 0;
		return add_entry(b, map, name, path, YT_SCALAR, s, 1) ? 0 : ST_ENOMEM;
	}
	case CT_INT:
		snprintf(text, sizeof(text), "%ld", *(const long *)f);
		return add_entry(b, map, name, path, YT_SCALAR, text, 0) ? 0 : ST_ENOMEM;
	case CT_NUMBER:
		text_format_number(*(const double *)f, text, sizeof(text));
		return add_entry(b, map, name, path, YT_SCALAR, text, 0) ? 0 : ST_ENOMEM;
	case CT_DURATION:
		time_format_duration_exact(*(const double *)f, text, sizeof(text));
		return add_entry(b, map, name, path, YT_SCALAR, text, 1) ? 0 : ST_ENOMEM;
	case CT_ENUM:
		return add_entry(b, map, name, path, YT_SCALAR, k->choices[*(const int *)f], 1) ? 0 : ST_ENOMEM;
	case CT_SECRET_ENV:
	case CT_SECRET_FILE: {
		const struct config_secret *s = f;
		if (s->kind != (k->type == CT_SECRET_ENV ? CONFIG_SECRET_ENV : CONFIG_SECRET_FILE))
			return 0;
		return add_entry(b, map, name, path, YT_SCALAR, s->ref, 1) ? 0 : ST_ENOMEM;
	}
	case CT_LITERAL_SECRET:
		return 0;
	}
	return 0;
}

static int build_map(struct builder *b, const struct config_table *t, const void *base,
		     const char *rel, const char *prefix, struct yt_node *map)
{
	size_t i;
	int rc;

	for (i = 0; i < t->n; i++) {
		if (!has_parent(t->keys[i].key, rel))
			continue;
		if ((rc = build_key(b, t, &t->keys[i], base, prefix, map)) != 0)
			return rc;
	}
	return 0;
}

static int build_effective(struct loader *ld)
{
	struct builder b;
	struct yt_doc *doc = calloc(1, sizeof(*doc));

	if (!doc)
		return oom(ld);
	b.ld = ld;
	b.doc = doc;
	doc->file = strdup(ld->cfg->doc->file);
	if (doc->file)
		doc->root = new_node(&b, YT_MAP, ld->root);
	if (!doc->root || build_map(&b, &top_table, ld->cfg, "", "", doc->root) != 0) {
		yt_doc_free(doc);
		return oom(ld);
	}
	ld->cfg->effective = doc;
	return 0;
}

/* ---- loading ------------------------------------------------------------ */

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int config_find(const char *explicit_path, char **path_out, const char **source_out,
		struct st_error *err)
{
	const char *env = getenv(CONFIG_ENV_VAR);
	const char *path = NULL, *source = NULL;

	*path_out = NULL;
	*source_out = NULL;
	if (explicit_path) {
		path = explicit_path;
		source = "--config";
	} else if (env && *env) {
		path = env;
		source = "$" CONFIG_ENV_VAR;
	}
	if (path) {
		if (!file_exists(path)) {
			st_error_set(err, ST_ECONFIG, "configuration file '%s' (from %s) does not exist", path,
				     source);
			return st_error_hint(err, "check the path, or start from config.example.yaml");
		}
	} else if (file_exists(CONFIG_LOCAL_PATH)) {
		path = CONFIG_LOCAL_PATH;
		source = CONFIG_LOCAL_PATH;
	} else if (file_exists(CONFIG_SYSTEM_PATH)) {
		path = CONFIG_SYSTEM_PATH;
		source = CONFIG_SYSTEM_PATH;
	} else {
		st_error_set(err, ST_ECONFIG, "no configuration file found");
		return st_error_hint(err,
				     "looked for --config FILE, $" CONFIG_ENV_VAR ", " CONFIG_LOCAL_PATH
				     ", " CONFIG_SYSTEM_PATH "; copy config.example.yaml to one of them");
	}
	*path_out = strdup(path);
	if (!*path_out)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	*source_out = source;
	return 0;
}

/* Absolute directory of the file at path (the directory, not a symlink's target). */
static char *config_dir_of(const char *path)
{
	char *copy = strdup(path), *dir;

	if (!copy)
		return NULL;
	dir = realpath(dirname(copy), NULL);
	free(copy);
	return dir;
}

/* A file the configuration is read from must not be writable by anyone but
 * its owner: whoever can write it chooses the commands, hosts and secret
 * files spilttea-ops uses as root. Checked on the open descriptor that is
 * then read, so the file cannot be swapped between check and read. */
#define CONFIG_MAX_SIZE (4L * 1024 * 1024)

static int read_config_file(const char *path, struct yt_doc **doc, struct st_error *err)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	ssize_t n;
	int fd = -1, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = st_error_set(err, ST_ECONFIG, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = st_error_set(err, ST_ECONFIG, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = st_error_set(err, ST_ECONFIG, "configuration file '%s' is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		rc = st_error_set(err, ST_ECONFIG,
				  "configuration file '%s' is writable by %s (mode %04o); refusing to use it",
				  path, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
				  (unsigned)(st.st_mode & 07777));
		st_error_hint(err, "chmod go-w %s", path);
		goto out;
	}
	if (st.st_size > CONFIG_MAX_SIZE) {
		rc = st_error_set(err, ST_ECONFIG, "configuration file '%s' is too large (%lld bytes, at most %ld)",
				  path, (long long)st.st_size, CONFIG_MAX_SIZE);
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading '%s'", path);
		goto out;
	}
	/* Read at most what fstat saw (+1 to notice growth): a file that grows
	 * while we read is refused rather than read without bound. */
	while (len < (size_t)st.st_size + 1) {
		n = read(fd, data + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = st_error_set(err, ST_ECONFIG, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > (size_t)st.st_size) {
		rc = st_error_set(err, ST_ECONFIG, "configuration file '%s' changed while it was read", path);
		st_error_hint(err, "run the command again");
		goto out;
	}
	rc = yt_parse_buffer(path, data, len, doc, err);
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

/* Checks the parsed cfg->doc and fills cfg (config_load_file and
 * config_load_buffer share it). Takes cfg: on success *out, else freed. */
static int config_from_doc(struct st_config *cfg, const char *path, struct st_config **out,
			   struct st_error *err)
{
	struct loader ld;
	int rc = 0;

	cfg->dir = config_dir_of(path);
	if (!cfg->dir) {
		rc = st_error_set(err, ST_ECONFIG, "cannot resolve the directory of '%s': %s", path,
				  strerror(errno));
		goto out;
	}
	if (!cfg->doc->root) {
		rc = st_error_set(err, ST_ECONFIG, "%s:1:1: configuration file is empty", path);
		st_error_hint(err, "start from config.example.yaml");
		goto out;
	}
	if (cfg->doc->root->kind != YT_MAP) {
		rc = yt_error_at(err, ST_ECONFIG, cfg->doc->root, "configuration must be a mapping, not a %s",
				 yt_kind_name(cfg->doc->root->kind));
		goto out;
	}
	ld.cfg = cfg;
	ld.err = err;
	ld.root = cfg->doc->root;
	rc = walk_map(&ld, &top_table, cfg, "", "", ld.root, ld.root);
	if (!rc)
		rc = run_hooks(&ld, &top_table, cfg, "");
	if (!rc)
		rc = build_effective(&ld);
	if (rc)
		goto out;
	*out = cfg;
	cfg = NULL;
out:
	config_free(cfg);
	return rc;
}

/* A config with path and source set, or NULL (error set) on ENOMEM. */
static struct st_config *config_new(const char *path, const char *source, struct st_error *err)
{
	struct st_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg || !(cfg->path = strdup(path))) {
		free(cfg);
		st_error_set(err, ST_ENOMEM, "out of memory loading '%s'", path);
		return NULL;
	}
	cfg->source = source;
	return cfg;
}

int config_load_file(const char *path, const char *source, struct st_config **out,
		     struct st_error *err)
{
	struct st_config *cfg;
	int rc;

	*out = NULL;
	if (!(cfg = config_new(path, source, err)))
		return ST_ENOMEM;
	rc = read_config_file(path, &cfg->doc, err);
	if (rc) {
		config_free(cfg);
		return rc;
	}
	return config_from_doc(cfg, path, out, err);
}

int config_load_buffer(const char *path, const char *source, const char *data, size_t len,
		       struct st_config **out, struct st_error *err)
{
	struct st_config *cfg;
	int rc;

	*out = NULL;
	if (!(cfg = config_new(path, source, err)))
		return ST_ENOMEM;
	rc = yt_parse_buffer(path, data, len, &cfg->doc, err);
	if (rc) {
		config_free(cfg);
		return rc;
	}
	return config_from_doc(cfg, path, out, err);
}

int config_load(const char *path_or_null, struct st_config **out, struct st_error *err)
{
	char *path = NULL;
	const char *source = NULL;
	int rc;

	*out = NULL;
	rc = config_find(path_or_null, &path, &source, err);
	if (!rc)
		rc = config_load_file(path, source, out, err);
	free(path);
	return rc;
}

/* ---- accessors ---------------------------------------------------------- */

const struct config_service *config_service(const struct st_config *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}

static int table_names_secret(const struct config_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->keys[i].type == CT_LITERAL_SECRET && !strcmp(last_part(t->keys[i].key), name))
			return 1;
		if (t->keys[i].type == CT_MAPOF && table_names_secret(t->keys[i].items, name))
			return 1;
	}
	return 0;
}

int config_path_is_secret(const char *dotted_path)
{
	if (!dotted_path)
		return 0;
	return table_names_secret(&top_table, last_part(dotted_path));
}

const struct yt_node *config_lookup(const struct st_config *cfg, const char *dotted_path)
{
	if (!cfg || !cfg->effective || !dotted_path || !*dotted_path || config_path_is_secret(dotted_path))
		return NULL;
	return tree_find(cfg->effective->root, dotted_path, NULL);
}

/* ---- secrets ------------------------------------------------------------ */

#define SECRET_MAX (64 * 1024)

void config_secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

static int read_secret_file(const struct config_secret *ref, char **out, struct st_error *err)
{
	const char *path = ref->ref;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd = -1, rc = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = st_error_set(err, ST_ECONFIG, "cannot read password file '%s' (%s): %s", path,
				  ref->key, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = st_error_set(err, ST_ECONFIG, "cannot read password file '%s' (%s): %s", path,
				  ref->key, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = st_error_set(err, ST_ECONFIG, "password file '%s' (%s) is not a regular file", path,
				  ref->key);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = st_error_set(err, ST_ECONFIG,
				  "password file '%s' (%s) has mode %04o: group or others may access it",
				  path, ref->key, (unsigned)(st.st_mode & 07777));
		st_error_hint(err, "chmod 600 %s", path);
		goto out;
	}
	buf = malloc(SECRET_MAX + 1);
	if (!buf) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading '%s'", path);
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, SECRET_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = st_error_set(err, ST_ECONFIG, "cannot read password file '%s' (%s): %s", path,
					  ref->key, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_MAX) {
			rc = st_error_set(err, ST_ECONFIG, "password file '%s' (%s) is larger than %d bytes",
					  path, ref->key, SECRET_MAX);
			goto out;
		}
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if (len == 0) {
		rc = st_error_set(err, ST_ECONFIG, "password file '%s' (%s) is empty", path, ref->key);
		goto out;
	}
	if (strlen(buf) != len) {
		rc = st_error_set(err, ST_ECONFIG, "password file '%s' (%s) contains a NUL byte", path,
				  ref->key);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, SECRET_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int config_read_secret(const struct config_secret *ref, char **out, struct st_error *err)
{
	const char *v;

	*out = NULL;
	switch (ref->kind) {
	case CONFIG_SECRET_NONE:
		return 0;
	case CONFIG_SECRET_ENV:
		v = getenv(ref->ref);
		if (!v || !*v) {
			st_error_set(err, ST_ECONFIG, "environment variable '%s' (%s) is %s", ref->ref,
				     ref->key, v ? "empty" : "not set");
			return st_error_hint(err, "export %s before running spilttea-ops, or use password_file",
					     ref->ref);
		}
		*out = strdup(v);
		return *out ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
	case CONFIG_SECRET_FILE:
		return read_secret_file(ref, out, err);
	}
	return st_error_set(err, ST_ECONFIG, "unknown secret reference");
}

/* ---- rendering ---------------------------------------------------------- */

/* 1 when a plain scalar with this text would read back as something other
 * than a string (number, bool, null). */
static int looks_typed(const char *s)
{
	static const char *const words[] = { "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n" };
	char *end;
	size_t i;

	for (i = 0; i < N_OF(words); i++)
		if (!strcasecmp(s, words[i]))
			return 1;
	strtod(s, &end);
	return end != s && !*end;
}

static int yaml_out(void *data, unsigned char *buffer, size_t size)
{
	return sbuf_append(data, buffer, size) == 0;
}

static int emit_scalar(yaml_emitter_t *em, const struct yt_node *n)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

	if (n->quoted && looks_typed(n->scalar))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->scalar,
					  (int)strlen(n->scalar), 1, 1, style))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *em, const struct yt_node *n)
{
	yaml_event_t ev;
	size_t i;

	if (n->kind == YT_SCALAR)
		return emit_scalar(em, n);
	if (n->kind == YT_MAP) {
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
	} else if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
		   !yaml_emitter_emit(em, &ev)) {
		return -1;
	}
	for (i = 0; i < n->count; i++) {
		if (n->kind == YT_MAP && emit_scalar(em, n->keys[i]) != 0)
			return -1;
		if (emit_node(em, n->values[i]) != 0)
			return -1;
	}
	if (n->kind == YT_MAP) {
		if (!yaml_mapping_end_event_initialize(&ev))
			return -1;
	} else if (!yaml_sequence_end_event_initialize(&ev)) {
		return -1;
	}
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int render_yaml(const struct yt_node *root, struct sbuf *out)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, yaml_out, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(&em, &ev))
		goto out;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || !yaml_emitter_emit(&em, &ev))
		goto out;
	if (emit_node(&em, root) != 0)
		goto out;
	if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev))
		goto out;
	if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev))
		goto out;
	rc = yaml_emitter_flush(&em) ? 0 : -1;
out:
	yaml_emitter_delete(&em);
	return rc;
}

int config_render(const struct st_config *cfg, enum config_format format, struct sbuf *out,
		  struct st_error *err)
{
	json_t *j = NULL;
	char *text = NULL;
	int rc = 0;

	if (format == CONFIG_FORMAT_JSON) {
		struct st_error jerr;

		if (yt_to_json(cfg->effective->root, NULL, NULL, &j, &jerr) == 0)
			text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!text || sbuf_puts(out, text) != 0 || sbuf_puts(out, "\n") != 0)
			rc = st_error_set(err, ST_ENOMEM, "out of memory rendering the configuration");
	} else if (render_yaml(cfg->effective->root, out) != 0) {
		rc = st_error_set(err, ST_ENOMEM, "cannot render the configuration as yaml");
	}
	free(text);
	json_decref(j);
	return rc;
}

/* ---- the schema, for documentation checks ------------------------------- */

static int walk_table(const struct config_table *t, const char *prefix, config_key_fn fn, void *ud)
{
	char full[PATH_MAX_KEY], item[PATH_MAX_KEY];
	size_t i;
	int rc;

	for (i = 0; i < t->n; i++) {
		const struct config_key *k = &t->keys[i];
		unsigned kflags = 0;

		if (join_key(full, sizeof(full), prefix, k->key) != 0)
			return -1;
		if (k->flags & K_REQUIRED)
			kflags |= CONFIG_KEY_REQUIRED;
		if (k->type == CT_LITERAL_SECRET)
			kflags |= CONFIG_KEY_REFUSED;
		if (k->type == CT_SECTION || k->type == CT_MAPOF)
			kflags |= CONFIG_KEY_SECTION;
		if ((rc = fn(ud, full, kflags)) != 0)
			return rc;
		if (k->type == CT_MAPOF) {
			if (join_key(item, sizeof(item), full, "NAME") != 0)
				return -1;
			if ((rc = walk_table(k->items, item, fn, ud)) != 0)
				return rc;
		}
	}
	return 0;
}

int config_schema_walk(config_key_fn fn, void *ud)
{
	return walk_table(&top_table, "", fn, ud);
}
