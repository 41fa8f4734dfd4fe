/*
 * cgroup_stats.h - a container's CPU and memory figures read straight from
 * the kernel's cgroup files, when the tool runs on the daemon's host.
 *
 * Why: GET /containers/{id}/stats answers only at the daemon's next
 * 1-second collection tick, even with one-shot (platform facts), so a
 * health sweep that asks the API waits up to a second for figures the
 * kernel has at hand. The daemon itself computes them from the same files;
 * reading them gives the same numbers (memory usage, the inactive file
 * cache, CPU time in ns, host CPU time from /proc/stat as the daemon sums
 * it) in microseconds. It is only a fast path: when the container's cgroup
 * is not visible here (another host, rootless, another cgroup parent, the
 * tool inside a container) callers fall back to the API.
 *
 * Layouts tried, for a full 64-hex container id ID:
 *   cgroup v1, cgroupfs driver: memory/docker/ID, cpuacct/docker/ID
 *   cgroup v1, systemd driver:  memory/system.slice/docker-ID.scope, same for cpuacct
 *   cgroup v2, cgroupfs driver: docker/ID
 *   cgroup v2, systemd driver:  system.slice/docker-ID.scope
 */
#ifndef ST_CGROUP_STATS_H
#define ST_CGROUP_STATS_H

#include "docker_stats.h"
#include "error.h"

/* Where the files live: the defaults, or a test's canned tree. */
struct cgroup_roots {
	const char *cgroup;    /* "/sys/fs/cgroup" */
	const char *proc_stat; /* "/proc/stat" */
	double host_ram;       /* bytes; a larger limit is reported as this, as
				* the daemon does (0: no clamping) */
	unsigned online_cpus;  /* 0: sysconf(_SC_NPROCESSORS_ONLN) */
};

/* Fills *out like docker_stats_parse does for a one-shot API sample
 * (has_cpu, has_memory, cpu_total, cpu_system, online_cpus, mem_usage,
 * mem_inactive_file, mem_limit, cgroup_v2, read = now) for the container
 * whose full id is container_id. roots NULL: the defaults.
 * ST_ENOTFOUND when no cgroup of that container is visible (fall back to
 * the API), ST_EPROTO when container_id is not 64 hex digits or a file is
 * there but does not parse. */
int cgroup_stats_read(const char *container_id, const struct cgroup_roots *roots,
		      struct docker_stats_sample *out, struct st_error *err);

/* Host CPU time in ns as the daemon computes system_cpu_usage: the sum of
 * the first seven fields of /proc/stat's "cpu" line, in clock ticks,
 * converted with ticks_per_second (floor of ticks * 1e9 / rate). text is
 * /proc/stat's content. 0 with *ns set, or ST_EPROTO (no such line, or a
 * sum or result beyond 64 bits, or a rate above 2^64 / 1e9). */
int cgroup_parse_proc_stat(const char *text, long ticks_per_second, uint64_t *ns);

/* The value of KEY in a "key value\n" file (memory.stat, cpu.stat).
 * 0 with *value set, ST_ENOTFOUND when absent, ST_EPROTO when not a number. */
int cgroup_parse_keyed(const char *text, const char *key, uint64_t *value);

#endif
