/*
 * docker_stats.h - CPU and memory figures from GET /containers/{id}/stats.
 *
 * Pure functions on the stats JSON, so health can sample every container at
 * once, keep a sample across runs (state_dir) and compute later. Facts they
 * rest on: a one-shot sample (stream=false&one-shot=true) has an empty
 * precpu_stats, so CPU% needs two samples; memory "used" excludes the
 * inactive file cache like `docker stats` does: usage minus
 * stats.total_inactive_file (cgroup v1) or stats.inactive_file (cgroup v2).
 */
#ifndef ST_DOCKER_STATS_H
#define ST_DOCKER_STATS_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

struct docker_stats_sample {
	double read;                /* "read": sample time, epoch seconds; 0 if absent */
	int has_cpu;                /* cpu_total and cpu_system are present */
	uint64_t cpu_total;         /* cpu_usage.total_usage, ns of CPU time */
	uint64_t cpu_system;        /* system_cpu_usage, ns of host CPU time (all CPUs) */
	unsigned online_cpus;       /* online_cpus, else len(percpu_usage), else 1 */
	int has_memory;             /* mem_usage is present */
	uint64_t mem_usage;         /* memory_stats.usage */
	uint64_t mem_inactive_file; /* total_inactive_file (v1) or inactive_file (v2), 0 if absent */
	uint64_t mem_limit;         /* memory_stats.limit (host RAM when no limit is set) */
	int cgroup_v2;              /* the inactive figure came from inactive_file */
};

/* Reads the current sample ("cpu_stats", "memory_stats", "read") and, when
 * pre is not NULL, the previous one from "precpu_stats"/"preread" (has_cpu
 * 0 when empty, as with one-shot). ST_EPROTO when stats is not an object. */
int docker_stats_parse(const json_t *stats, struct docker_stats_sample *cur,
		       struct docker_stats_sample *pre, struct st_error *err);

/* CPU% between two samples of one container, as `docker stats` shows it:
 * delta(container) / delta(system) * online_cpus * 100 (so 200 = two cores
 * busy). 0 with *percent set, or ST_EPROTO when the samples
 * cannot give a figure (a sample lacks CPU data, system time did not move,
 * the counter went backwards because the container restarted). */
int docker_stats_cpu_percent(const struct docker_stats_sample *prev,
			     const struct docker_stats_sample *cur, double *percent);

/* Memory in use without the inactive file cache (never below 0). */
uint64_t docker_stats_mem_used(const struct docker_stats_sample *s);

/* used / limit * 100. 0, or ST_EPROTO without memory data or limit. */
int docker_stats_mem_percent(const struct docker_stats_sample *s, double *percent);

#endif
