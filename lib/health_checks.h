/*
 * health_checks.h - the health checks of issue 2 section 5 wired to the real
 * services: the configuration becomes one task per service (lib/health.h
 * runs them concurrently), each task talks to its service through the
 * clients (docker.h, pg.h / pgstat.h, redis.h, http.h) with the task's
 * remaining time as every call's timeout, and judges with health_eval.h.
 *
 * Tasks (each a thread) and the check ids they produce:
 *   http backend      backend.health                (services.backend.health_url)
 *   http frontend     frontend.reachable            (services.frontend.url)
 *   container <c>     container.<c>                 (each of health.containers)
 *   stats             container_cpu.<c>, container_memory.<c>
 *   postgres          postgres.reachable, .connections, .longest_query,
 *                     .longest_transaction, .size  (one connection)
 *   redis             redis.reachable, .memory, .clients, .evictions
 *   docker root disk  disk.docker_root              (GET /info DockerRootDir)
 *   backup disk       disk.backup_dir               (backup.dir)
 *   docker df         docker.df
 *   backend logs      backend.error_rate            (services.backend.container)
 * A check whose configuration is absent (no health_url, no frontend url, no
 * backend service) is not run. Each task owns copies of what it needs, so a
 * task abandoned at its deadline never reads freed configuration; secrets
 * are read by the task itself (config_read_secret) and wiped after use.
 *
 * State kept between runs in state_dir/health-stats.json (0600, written
 * atomically; an unreadable or malformed file counts as empty):
 *   { "stats": { "samples": { "<container>": {id, at, cpu_total, system_cpu, online_cpus} } },
 *     "container.<c>": { "id", "restart_count" },
 *     "redis": { "run_id", "evicted_keys" } }
 * Container figures come from the container's cgroup files when the daemon
 * runs on this host (cgroup_stats.h: the daemon's own sources, read at once),
 * else from the stats API, which answers at the daemon's next 1-second tick.
 * CPU% uses the kept sample of a container when it is at most
 * HEALTH_STATS_MAX_AGE seconds old (the CPU% is then the average since that
 * sample); otherwise the stats task takes a second sample a second after
 * the first (cgroup) or at the daemon's next tick (API).
 */
#ifndef ST_HEALTH_CHECKS_H
#define ST_HEALTH_CHECKS_H

#include <jansson.h>

#include "config.h"
#include "error.h"
#include "health.h"

#define HEALTH_STATE_FILE "health-stats.json"
#define HEALTH_STATS_MAX_AGE 600.0
/* Top entries of the longest queries / transactions lists in details. */
#define HEALTH_PG_TOP 5

/* Builds the tasks for cfg into *tasks (caller passes them to health_run(),
 * which takes them over, or frees them with health_tasks_free()).
 * 0 or ST_ENOMEM. */
int health_tasks_build(const struct st_config *cfg, struct health_task **tasks, size_t *n,
		       struct st_error *err);

/* Releases n tasks and the array. NULL-safe. */
void health_tasks_free(struct health_task *tasks, size_t n);

/* Reads state_dir/health-stats.json into *out (caller decrefs). A missing,
 * unreadable or malformed file gives an empty object: the state only
 * improves CPU% and change detection, it must never fail a run. */
void health_state_load(const char *state_dir, json_t **out);

/* Writes the state atomically (0600), creating state_dir (0700) if needed.
 * 0 or ST_EIO / ST_ENOMEM. */
int health_state_save(const char *state_dir, const json_t *state, struct st_error *err);

/*
 * One full run: builds the tasks, loads the state, runs them (timeout
 * cfg->health.timeout, select: --check patterns, NULL-terminated, or NULL),
 * saves the new state. A state that cannot be saved is not an error of the
 * run (the next run simply takes two stats samples). Returns 0 with rep
 * filled (release with health_report_release()), or ST_EUSAGE (a pattern
 * matches no check), ST_ENOMEM, ST_EFAILED.
 */
int health_check_run(const struct st_config *cfg, const char *const *select,
		     struct health_report *rep, struct st_error *err);

/* A report of one UNKNOWN result "config" saying why the configuration
 * could not be used, so every output format can report it. 0 or ST_ENOMEM. */
int health_report_config_error(struct health_report *rep, const struct st_error *cause);

#endif
