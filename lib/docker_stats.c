#include "docker_stats.h"
#include "docker_stream.h"
#include "text.h"

#include <string.h>

static int get_u64(const json_t *o, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 1;
	}
	if (json_is_real(v) && json_real_value(v) >= 0) {
		*out = text_double_to_u64(json_real_value(v));
		return 1;
	}
	return 0;
}

static double get_time(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	double t;

	if (!json_is_string(v) || docker_parse_time(json_string_value(v), json_string_length(v), &t))
		return 0;
	/* Go's zero time ("0001-01-01T00:00:00Z") means "no sample". */
	return t > 0 ? t : 0;
}

static void parse_cpu(const json_t *cpu, struct docker_stats_sample *s)
{
	const json_t *percpu = json_object_get(json_object_get(cpu, "cpu_usage"), "percpu_usage");
	uint64_t n;

	s->has_cpu = get_u64(json_object_get(cpu, "cpu_usage"), "total_usage", &s->cpu_total) &&
		     get_u64(cpu, "system_cpu_usage", &s->cpu_system);
	if (get_u64(cpu, "online_cpus", &n) && n > 0)
		s->online_cpus = (unsigned)n;
	else if (json_is_array(percpu) && json_array_size(percpu) > 0)
		s->online_cpus = (unsigned)json_array_size(percpu);
	else
		s->online_cpus = 1;
}

int docker_stats_parse(const json_t *stats, struct docker_stats_sample *cur,
		       struct docker_stats_sample *pre, struct st_error *err)
{
	const json_t *mem, *ms;

	if (!json_is_object(stats))
		return st_error_set(err, ST_EPROTO, "container stats are not a JSON object");
	memset(cur, 0, sizeof(*cur));
	cur->read = get_time(stats, "read");
	parse_cpu(json_object_get(stats, "cpu_stats"), cur);
	mem = json_object_get(stats, "memory_stats");
	cur->has_memory = get_u64(mem, "usage", &cur->mem_usage);
	get_u64(mem, "limit", &cur->mem_limit);
	ms = json_object_get(mem, "stats");
	if (!get_u64(ms, "total_inactive_file", &cur->mem_inactive_file))
		cur->cgroup_v2 = get_u64(ms, "inactive_file", &cur->mem_inactive_file);
	if (pre) {
		memset(pre, 0, sizeof(*pre));
		pre->read = get_time(stats, "preread");
		parse_cpu(json_object_get(stats, "precpu_stats"), pre);
	}
	return 0;
}

int docker_stats_cpu_percent(const struct docker_stats_sample *prev,
			     const struct docker_stats_sample *cur, double *percent)
{
	if (!prev->has_cpu || !cur->has_cpu || cur->cpu_system <= prev->cpu_system ||
	    cur->cpu_total < prev->cpu_total)
		return ST_EPROTO;
	*percent = (double)(cur->cpu_total - prev->cpu_total) /
		   (double)(cur->cpu_system - prev->cpu_system) * (double)cur->online_cpus * 100.0;
	return 0;
}

uint64_t docker_stats_mem_used(const struct docker_stats_sample *s)
{
	if (s->mem_inactive_file < s->mem_usage)
		return s->mem_usage - s->mem_inactive_file;
	return s->mem_usage;
}

int docker_stats_mem_percent(const struct docker_stats_sample *s, double *percent)
{
	if (!s->has_memory || s->mem_limit == 0)
		return ST_EPROTO;
	*percent = (double)docker_stats_mem_used(s) / (double)s->mem_limit * 100.0;
	return 0;
}
