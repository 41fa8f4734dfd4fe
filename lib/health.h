/*
 * health.h - the result model, thresholds, renderers and concurrent runner
 * behind `spilttea-ops health` (the runbook's "Monitoring and Alerts").
 *
 * A check produces one struct health_result: a stable id, a Nagios status,
 * a one-line summary, perfdata-style metrics, optional JSON details and the
 * time it took. Checks are grouped in tasks (one thread each) because some
 * results come from one round trip: the Postgres task opens one connection
 * for all postgres.* results, the stats task samples every container at once.
 *
 * Check ids (stable; scripts, alert rules and --check rely on them):
 *
 *   backend.health              GET services.backend.health_url: 200 and JSON
 *                               status "ok"; latency vs api_response_seconds
 *   backend.error_rate          backend log lines containing "error" (any
 *                               case) vs all lines over health.log_window,
 *                               both streams; vs error_rate_percent
 *   frontend.reachable          GET services.frontend.url answers 2xx/3xx;
 *                               latency vs api_response_seconds
 *   container.<container>       running, Docker health (unhealthy CRITICAL,
 *                               starting WARNING, none OK), restart count
 *                               (WARNING when it grew since the previous run)
 *   container_cpu.<container>   CPU% from two stats samples vs
 *                               container_cpu_percent, computed as `docker
 *                               stats` does (100% = one core; up to N x 100%
 *                               on N CPUs, so the runbook's thresholds keep
 *                               their meaning)
 *   container_memory.<container> memory without inactive file cache vs the
 *                               memory limit (host RAM when unlimited) vs
 *                               container_memory_percent
 *   postgres.reachable          connect + SELECT version(); latency
 *   postgres.connections        client backends vs max_connections -
 *                               superuser_reserved_connections vs
 *                               db_connections_percent
 *   postgres.longest_query      longest active query (top 5 in details)
 *   postgres.longest_transaction oldest open transaction (top 5 in details)
 *   postgres.size               database size (informational)
 *   redis.reachable             connect, AUTH, PING; latency
 *   redis.memory                used_memory vs maxmemory vs
 *                               redis_memory_percent; maxmemory 0 = no limit:
 *                               OK, reported as such
 *   redis.clients               connected_clients vs maxclients (informational)
 *   redis.evictions             evicted_keys (WARNING when it grew since the
 *                               previous run of the same Redis instance)
 *   disk.docker_root            statvfs of Docker's DockerRootDir vs disk_percent
 *   disk.backup_dir             statvfs of backup.dir's filesystem vs disk_percent
 *   docker.df                   Docker `system df` sizes and reclaimable space
 *                               (informational)
 *
 * Status order for "worst" (overall status, exit code): CRITICAL > WARNING >
 * UNKNOWN > OK (monitoring-plugins' max_state_alt), so a check we could not
 * evaluate never hides behind OK and never masks a real alert.
 */
#ifndef ST_HEALTH_H
#define ST_HEALTH_H

#include <stddef.h>

#include <jansson.h>

#include "error.h"

enum health_status {
	HEALTH_OK = 0,
	HEALTH_WARNING = 1,
	HEALTH_CRITICAL = 2,
	HEALTH_UNKNOWN = 3,
};

/* "OK", "WARNING", "CRITICAL", "UNKNOWN" (static). */
const char *health_status_name(int status);

/* The worse of a and b in the order CRITICAL > WARNING > UNKNOWN > OK. */
int health_status_worst(int a, int b);

/*
 * Thresholds, higher is worse. Written to perfdata as the Nagios range
 * "N", which means "alert when the value is outside 0..N": a value equal to
 * the threshold is still fine, a value above it alerts. Our metrics are
 * never negative, so "outside 0..N" and "above N" coincide.
 *   value > crit          -> CRITICAL
 *   value > warn          -> WARNING
 *   otherwise             -> OK
 * A missing bound (has_warn/has_crit 0) never alerts. NaN is UNKNOWN.
 */
struct health_threshold {
	double warn, crit;
	int has_warn, has_crit;
};

int health_threshold_eval(const struct health_threshold *t, double value);

/* Units of a metric's value. Values are always stored in base units. */
enum health_unit {
	HEALTH_UNIT_NONE,     /* plain number (a count of things now) */
	HEALTH_UNIT_SECONDS,  /* Nagios "s" */
	HEALTH_UNIT_PERCENT,  /* Nagios "%"; Prometheus gets the 0..1 ratio */
	HEALTH_UNIT_BYTES,    /* Nagios "B" */
	HEALTH_UNIT_COUNTER,  /* Nagios "c"; Prometheus TYPE counter */
};

/* The Nagios UOM of a unit: "", "s", "%", "B", "c" (static). */
const char *health_unit_uom(enum health_unit unit);

/*
 * One metric: a Nagios perfdata item, a JSON metrics entry and a Prometheus
 * sample. prom_name, help and prom_label are static strings (literals);
 * label and prom_label_value are owned by the result.
 */
struct health_metric {
	char *label;                 /* "redis.used_memory": perfdata label, JSON key */
	const char *prom_name;       /* "redis_memory_used_bytes": after "spilttea_" */
	const char *help;            /* Prometheus HELP text */
	const char *prom_label;      /* extra label name ("container"), or NULL */
	char *prom_label_value;      /* its value, or NULL */
	double value;
	enum health_unit unit;
	struct health_threshold th;
	int has_min, has_max;
	double min, max;
};

struct health_result {
	char *name;                  /* check id, owned */
	int status;                  /* enum health_status */
	char *summary;               /* one line, owned */
	struct health_metric *metrics;
	size_t n_metrics;
	json_t *details;             /* owned reference, NULL when none */
	double duration;             /* seconds; < 0 until set */
};

/* Sets name and UNKNOWN "check did not report". 0 or ST_ENOMEM. */
int health_result_init(struct health_result *r, const char *name);
/* Frees what r owns and zeroes it. NULL-safe. */
void health_result_release(struct health_result *r);

/* Sets status and summary (printf-style; newlines become spaces).
 * Returns 0 or ST_ENOMEM (status is set even then). */
int health_result_set(struct health_result *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends a metric and returns it (owned by r) for thresholds, min and max;
 * NULL when out of memory. prom_name/help/prom_label must be static strings;
 * label and prom_label_value are copied. */
struct health_metric *health_result_add_metric(struct health_result *r, const char *label,
					       double value, enum health_unit unit,
					       const char *prom_name, const char *help,
					       const char *prom_label, const char *prom_label_value);

/* Sets the metric's thresholds and returns their evaluation of its value. */
int health_metric_threshold(struct health_metric *m, const struct health_threshold *t);

/* Replaces r's details with d (takes the reference; d may be NULL). */
void health_result_set_details(struct health_result *r, json_t *d);

/* A whole run: results in the order checks were defined. */
struct health_report {
	struct health_result *results;
	size_t n;
	int status;                  /* worst of all results; UNKNOWN when n == 0 */
	double generated_at;         /* wall clock, epoch seconds */
	double duration;             /* seconds the run took */
	size_t abandoned;            /* tasks still running past their deadline */
};

void health_report_release(struct health_report *rep);
/* Recomputes rep->status from the results. */
void health_report_update_status(struct health_report *rep);

/* ---- --check selection ------------------------------------------------ */

/* 1 when pattern selects the check id name: the exact id, or a prefix that
 * ends at a '.' boundary ("postgres" selects "postgres.size" but
 * "container" does not select "container_cpu.x"). */
int health_name_matches(const char *name, const char *pattern);

/* ---- renderers -------------------------------------------------------- */

enum health_format { HEALTH_FORMAT_TEXT, HEALTH_FORMAT_JSON, HEALTH_FORMAT_NAGIOS,
		     HEALTH_FORMAT_PROMETHEUS };

/* Parses "text", "json", "nagios", "prometheus". 0 or ST_EUSAGE. */
int health_format_parse(const char *s, enum health_format *out);

struct health_render_opts {
	int color;                   /* ANSI colour in the text table */
	int verbose;                 /* details (text), long output (nagios) */
	const char *tool_version;    /* "0.1.0", for JSON */
};

/*
 * Text: a table "STATUS  CHECK  SUMMARY  TIME", then a totals line. With
 * verbose, each check's details follow it, indented.
 */
char *health_render_text(const struct health_report *rep, const struct health_render_opts *o);

/*
 * JSON (one object, stable keys):
 *   status        "OK" | "WARNING" | "CRITICAL" | "UNKNOWN" (worst)
 *   exit_code     0..3, the Nagios code of status
 *   generated_at  RFC 3339 UTC with milliseconds
 *   duration_ms   integer, whole run
 *   tool_version  string
 *   counts        {"OK": n, "WARNING": n, "CRITICAL": n, "UNKNOWN": n}
 *   checks        [{ name, status, exit_code, summary, duration_ms,
 *                    metrics: { label: { value, unit, warn, crit, min, max } },
 *                    details }]
 * unit is the Nagios UOM ("" for plain numbers); warn/crit/min/max and
 * details are null when absent.
 */
char *health_render_json(const struct health_report *rep, const struct health_render_opts *o);

/*
 * Nagios plugin output (monitoring-plugins guidelines):
 *   HEALTH CRITICAL - redis.memory: cannot connect ..., ... | 'label'=value[UOM];warn;crit;min;max ...
 * The text lists the non-OK checks, worst first ("N checks OK" when none).
 * Labels are single-quoted when they hold anything but [A-Za-z0-9_.-]; a
 * quote in a label is doubled and '=' becomes '_'. Empty trailing fields are
 * dropped. Values never use exponents. '|' in text becomes '/'. With
 * verbose, one long-output line per check follows: "[STATUS] id: summary".
 */
char *health_render_nagios(const struct health_report *rep, const struct health_render_opts *o);

/*
 * Prometheus text format for node_exporter's textfile collector. Families:
 *   spilttea_health_status                       worst status 0..3
 *   spilttea_health_check_status{check}          0 OK 1 WARNING 2 CRITICAL 3 UNKNOWN
 *   spilttea_health_check_duration_seconds{check}
 *   spilttea_health_last_run_timestamp_seconds
 *   spilttea_<prom_name>{check[,prom_label]}     every metric, base units
 *                                                (percent as a 0..1 ratio)
 * Each family is written once (HELP, TYPE, all its samples together); label
 * values escape backslash, double quote and newline.
 */
char *health_render_prometheus(const struct health_report *rep, const struct health_render_opts *o);

/* Dispatches on fmt. Returns a string the caller frees, NULL when out of memory. */
char *health_render(const struct health_report *rep, enum health_format fmt,
		    const struct health_render_opts *o);

/* ---- concurrent runner ------------------------------------------------ */

/* What a task sees while it runs. */
struct health_task_run {
	double deadline;             /* time_monotonic() by which to return */
	double timeout;              /* the task's budget in seconds */
	const json_t *prev_state;    /* this task's entry from the previous run, or NULL; borrowed */
	json_t *state;               /* set by the task to record state (the runner takes it) */
	struct health_result *results; /* one per name, in the task's names order; pre-set UNKNOWN */
	size_t n_results;
};

/* A task fills run->results[] (status, summary, metrics; duration optional,
 * else the task's wall time) and returns. It must not outlive its deadline
 * by much: every blocking call takes the remaining time as its timeout. */
typedef void (*health_task_fn)(void *arg, struct health_task_run *run);

/* A unit of concurrent work producing the results named in names[]. */
struct health_task {
	char **names;                /* owned, n_names entries */
	size_t n_names;
	health_task_fn fn;
	void *arg;                   /* owned: freed with free_arg after fn returns */
	void (*free_arg)(void *arg);
	char *state_key;             /* owned; key in the state object, or NULL */
};

/* Adds a name to t (copied). 0 or ST_ENOMEM. */
int health_task_add_name(struct health_task *t, const char *name);
/* Frees what t owns (also arg through free_arg). NULL-safe. */
void health_task_release(struct health_task *t);

struct health_run_opts {
	double timeout;              /* seconds per task (health.timeout) */
	const char *const *select;   /* --check patterns, NULL-terminated; NULL = all */
	const json_t *prev_state;    /* {state_key: ...} from the previous run; borrowed, may be NULL */
};

/*
 * Runs the selected tasks, each on its own detached thread, and waits until
 * all have reported or their deadlines (start + timeout) have passed. A task
 * that did not report in time gets CRITICAL "timed out after Ns" for each of
 * its results and is abandoned: its thread keeps its own copy of everything
 * it touches and frees it when it ends, so it can never block or corrupt the
 * caller. Takes ownership of tasks[] contents (each is released here or by
 * its thread). Results not selected are dropped.
 *
 * new_state (may be NULL): receives the previous state with the entries of
 * tasks that finished replaced (caller frees with json_decref).
 * Returns 0, ST_EUSAGE when a select pattern matches no check (message lists
 * the ids), or ST_ENOMEM / ST_EFAILED (thread creation).
 */
int health_run(struct health_task *tasks, size_t n_tasks, const struct health_run_opts *opts,
	       struct health_report *rep, json_t **new_state, struct st_error *err);

/*
 * How many threads health_run() gave up on are still running in this
 * process (each round of a --watch whose check hangs adds one). While any
 * is, or was, the process must end with _exit(), not exit(): exit's atexit
 * handlers (OpenSSL's cleanup) would free what such a thread is using
 * inside a TLS handshake and crash it (exit 139).
 */
size_t health_abandoned_running(void);

#endif
