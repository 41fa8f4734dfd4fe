/* CPU% and memory figures from canned stats JSON (cgroup v1 and v2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "docker_stats.h"

/* Docker 20.10 on cgroup v1, one-shot: precpu_stats is empty. */
static const char v1_first[] =
	"{\"read\":\"2026-11-27T22:34:17.250000000Z\",\"preread\":\"0001-01-01T00:00:00Z\","
	"\"pids_stats\":{\"current\":3},"
	"\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":2000000000,\"percpu_usage\":[1200000000,800000000],"
	"\"usage_in_kernelmode\":300000000,\"usage_in_usermode\":1500000000},"
	"\"system_cpu_usage\":100000000000,\"online_cpus\":2,"
	"\"throttling_data\":{\"periods\":0,\"throttled_periods\":0,\"throttled_time\":0}},"
	"\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":0,\"usage_in_kernelmode\":0,\"usage_in_usermode\":0},"
	"\"throttling_data\":{\"periods\":0,\"throttled_periods\":0,\"throttled_time\":0}},"
	"\"memory_stats\":{\"usage\":104857600,\"max_usage\":120000000,"
	"\"stats\":{\"active_anon\":50000000,\"inactive_file\":10485760,\"total_inactive_file\":20971520,"
	"\"total_rss\":60000000},\"limit\":8348520448},"
	"\"name\":\"/spilttea-postgres\",\"id\":\"0123456789ab\"}";

/* The same container one tick later: 0.5 s of CPU in 2 s of host CPU time. */
static const char v1_second[] =
	"{\"read\":\"2026-11-27T22:34:18.250000000Z\","
	"\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":2500000000,\"percpu_usage\":[1500000000,1000000000]},"
	"\"system_cpu_usage\":102000000000,\"online_cpus\":2},"
	"\"memory_stats\":{\"usage\":104857600,"
	"\"stats\":{\"inactive_file\":10485760,\"total_inactive_file\":20971520},\"limit\":8348520448}}";

/* cgroup v2: no total_* keys, no percpu_usage; a memory limit is set. */
static const char v2_stream[] =
	"{\"read\":\"2026-11-27T22:34:18.000000000Z\",\"preread\":\"2026-11-27T22:34:17.000000000Z\","
	"\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":9000000000,\"usage_in_kernelmode\":1,"
	"\"usage_in_usermode\":2},\"system_cpu_usage\":504000000000,\"online_cpus\":4},"
	"\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":6000000000},\"system_cpu_usage\":500000000000,"
	"\"online_cpus\":4},"
	"\"memory_stats\":{\"usage\":52428800,\"stats\":{\"anon\":40000000,\"file\":12000000,"
	"\"inactive_file\":4194304,\"active_file\":1000000},\"limit\":1073741824}}";

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	if (!j)
		fail_msg("canned JSON does not parse: %s at %d", je.text, je.position);
	return j;
}

static void test_v1_two_samples(void **state)
{
	struct docker_stats_sample a, pre, b;
	struct st_error err;
	json_t *j1 = load(v1_first), *j2 = load(v1_second);
	double pct;

	(void)state;
	assert_int_equal(docker_stats_parse(j1, &a, &pre, &err), 0);
	assert_true(a.has_cpu);
	assert_int_equal(a.cpu_total, 2000000000ULL);
	assert_int_equal(a.cpu_system, 100000000000ULL);
	assert_int_equal(a.online_cpus, 2);
	assert_true(fabs(a.read - 1795818857.25) < 1e-6);
	/* One-shot: nothing to compare with in the same sample. */
	assert_false(pre.has_cpu);
	assert_true(pre.read == 0);
	assert_int_equal(docker_stats_cpu_percent(&pre, &a, &pct), ST_EPROTO);
	/* Memory: usage minus total_inactive_file on cgroup v1. */
	assert_false(a.cgroup_v2);
	assert_int_equal(a.mem_inactive_file, 20971520ULL);
	assert_int_equal(docker_stats_mem_used(&a), 104857600ULL - 20971520ULL);
	assert_int_equal(docker_stats_mem_percent(&a, &pct), 0);
	assert_true(fabs(pct - 83886080.0 / 8348520448.0 * 100.0) < 1e-9);

	assert_int_equal(docker_stats_parse(j2, &b, NULL, &err), 0);
	assert_int_equal(docker_stats_cpu_percent(&a, &b, &pct), 0);
	/* 0.5 s / 2 s of host time * 2 CPUs = 50 % */
	assert_true(fabs(pct - 50.0) < 1e-9);
	/* Reversed (container restarted: counter went back): no figure. */
	assert_int_equal(docker_stats_cpu_percent(&b, &a, &pct), ST_EPROTO);
	/* Same sample twice: system time did not move. */
	assert_int_equal(docker_stats_cpu_percent(&a, &a, &pct), ST_EPROTO);
	json_decref(j1);
	json_decref(j2);
}

static void test_v2_streamed(void **state)
{
	struct docker_stats_sample cur, pre;
	struct st_error err;
	json_t *j = load(v2_stream);
	double pct;

	(void)state;
	assert_int_equal(docker_stats_parse(j, &cur, &pre, &err), 0);
	assert_true(pre.has_cpu);
	assert_true(fabs(cur.read - pre.read - 1.0) < 1e-6);
	assert_int_equal(cur.online_cpus, 4);
	assert_int_equal(docker_stats_cpu_percent(&pre, &cur, &pct), 0);
	/* 3 s of CPU in 4 s of host time on 4 CPUs = 300 % (three cores busy). */
	assert_true(fabs(pct - 300.0) < 1e-9);
	assert_true(cur.cgroup_v2);
	assert_int_equal(docker_stats_mem_used(&cur), 52428800ULL - 4194304ULL);
	assert_int_equal(docker_stats_mem_percent(&cur, &pct), 0);
	assert_true(fabs(pct - 48234496.0 / 1073741824.0 * 100.0) < 1e-9);
	json_decref(j);
}

static void test_odd_input(void **state)
{
	struct docker_stats_sample s;
	struct st_error err;
	json_t *arr = json_array();
	json_t *j = load("{\"memory_stats\":{\"usage\":100,\"stats\":{\"inactive_file\":500}},"
			 "\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":5,\"percpu_usage\":[1,2,2]},"
			 "\"system_cpu_usage\":10}}");
	json_t *empty = load("{}");
	double pct;

	(void)state;
	assert_int_equal(docker_stats_parse(arr, &s, NULL, &err), ST_EPROTO);
	assert_int_equal(docker_stats_parse(j, &s, NULL, &err), 0);
	/* online_cpus absent: the per-CPU list decides. */
	assert_int_equal(s.online_cpus, 3);
	/* More inactive cache than usage: never below zero. */
	assert_int_equal(docker_stats_mem_used(&s), 100);
	/* No limit reported: no percentage. */
	assert_int_equal(docker_stats_mem_percent(&s, &pct), ST_EPROTO);
	/* A stopped container's stats are all zero/absent. */
	assert_int_equal(docker_stats_parse(empty, &s, NULL, &err), 0);
	assert_false(s.has_cpu);
	assert_false(s.has_memory);
	assert_int_equal(s.online_cpus, 1);
	assert_int_equal(docker_stats_mem_percent(&s, &pct), ST_EPROTO);
	json_decref(arr);
	json_decref(j);
	json_decref(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_two_samples),
		cmocka_unit_test(test_v2_streamed),
		cmocka_unit_test(test_odd_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
