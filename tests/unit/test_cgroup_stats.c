/* Container figures from canned cgroup trees (v1 cgroupfs and systemd
 * drivers, v2) and /proc/stat; the agreement with the daemon's own stats on
 * a real container is in tests/integration/test_docker.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_stats.h"
#include "testutil.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char proc_stat[] =
	"cpu  100 20 30 1000 5 6 7 0 0 0\n"
	"cpu0 50 10 15 500 2 3 3 0 0 0\n"
	"intr 12345\n";

static void put(const char *dir, const char *rel, const char *text)
{
	char path[1024], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void roots_for(struct cgroup_roots *r, const char *dir, char *cg, char *ps)
{
	sprintf(cg, "%s/cgroup", dir);
	sprintf(ps, "%s/proc_stat", dir);
	mkdir(cg, 0700);
	put(dir, "proc_stat", proc_stat);
	r->cgroup = cg;
	r->proc_stat = ps;
	r->host_ram = 8e9;
	r->online_cpus = 2;
}

static void test_proc_stat(void **state)
{
	uint64_t ns = 0;

	(void)state;
	/* 1168 ticks at 100 per second: the first seven fields only */
	assert_int_equal(cgroup_parse_proc_stat(proc_stat, 100, &ns), 0);
	assert_true(ns == 11680000000ull);
	assert_int_equal(cgroup_parse_proc_stat("cpu0 1 2 3 4 5 6 7\n", 100, &ns), ST_EPROTO);
	assert_int_equal(cgroup_parse_proc_stat("cpu  1 2 3\n", 100, &ns), ST_EPROTO);
	assert_int_equal(cgroup_parse_proc_stat("cpu  1 2 x 4 5 6 7\n", 100, &ns), ST_EPROTO);
	assert_int_equal(cgroup_parse_proc_stat(proc_stat, 0, &ns), ST_EPROTO);
}

/* Found by fuzz/cgroup_stats (tests/fuzz/regress/cgroup_stats/): a sum of
 * the fields beyond 64 bits wrapped into a small, wrong CPU time. Figures
 * that do not fit are refused; the largest that fit are exact. */
static void test_proc_stat_overflow(void **state)
{
	uint64_t ns = 42;

	(void)state;
	assert_int_equal(cgroup_parse_proc_stat("cpu  18446744073709551615 1 0 0 0 0 0\n", 1000000000L,
						&ns), ST_EPROTO);
	assert_int_equal(cgroup_parse_proc_stat("cpu  1844674407371 0 0 0 0 0 0\n", 100, &ns), ST_EPROTO);
	assert_int_equal(cgroup_parse_proc_stat("cpu  1 0 0 0 0 0 0\n", 20000000000L, &ns), ST_EPROTO);
	assert_true(ns == 42);
	assert_int_equal(cgroup_parse_proc_stat("cpu  18446744073709551615 0 0 0 0 0 0\n",
						1000000000L, &ns), 0);
	assert_true(ns == UINT64_MAX);
	/* 18446744073 ticks at 1 per second: 18446744073000000000 ns fits. */
	assert_int_equal(cgroup_parse_proc_stat("cpu  18446744073 0 0 0 0 0 0\n", 1, &ns), 0);
	assert_true(ns == 18446744073000000000ull);
	assert_int_equal(cgroup_parse_proc_stat("cpu  18446744074 0 0 0 0 0 0\n", 1, &ns), ST_EPROTO);
	/* floor(7 * 1e9 / 3) */
	assert_int_equal(cgroup_parse_proc_stat("cpu  1 1 1 1 1 1 1\n", 3, &ns), 0);
	assert_true(ns == 2333333333ull);
}

static void test_keyed(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(cgroup_parse_keyed("inactive_file 5\ntotal_inactive_file 7\n",
					    "total_inactive_file", &v), 0);
	assert_true(v == 7);
	/* a key that is the suffix of another does not match it */
	assert_int_equal(cgroup_parse_keyed("total_inactive_file 7\n", "inactive_file", &v),
			 ST_ENOTFOUND);
	assert_int_equal(cgroup_parse_keyed("usage_usec abc\n", "usage_usec", &v), ST_EPROTO);
	assert_int_equal(cgroup_parse_keyed("", "usage_usec", &v), ST_ENOTFOUND);
}

static void test_v1_cgroupfs(void **state)
{
	char *dir = tu_mkdtemp(), cg[600], ps[600];
	struct cgroup_roots r;
	struct docker_stats_sample s;
	struct st_error err;
	double pct;

	(void)state;
	roots_for(&r, dir, cg, ps);
	put(cg, "memory/docker/" ID "/memory.usage_in_bytes", "104857600\n");
	/* unlimited: reported as host RAM, as the daemon does */
	put(cg, "memory/docker/" ID "/memory.limit_in_bytes", "9223372036854771712\n");
	put(cg, "memory/docker/" ID "/memory.stat",
	    "cache 1\ninactive_file 10485760\ntotal_cache 2\ntotal_inactive_file 20971520\n");
	put(cg, "cpuacct/docker/" ID "/cpuacct.usage", "2000000000\n");
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), 0);
	assert_true(s.has_cpu && s.has_memory && !s.cgroup_v2);
	assert_true(s.mem_usage == 104857600u);
	assert_true(s.mem_inactive_file == 20971520u);
	assert_true(s.mem_limit == 8000000000u);
	assert_true(s.cpu_total == 2000000000u);
	assert_true(s.online_cpus == 2);
	assert_true(s.cpu_system > 0 && s.read > 0);
	assert_true(docker_stats_mem_used(&s) == 104857600u - 20971520u);
	assert_int_equal(docker_stats_mem_percent(&s, &pct), 0);
	assert_true(pct > 1.0 && pct < 1.1);
	tu_rmtree(dir);
	free(dir);
}

static void test_v1_systemd_and_v2(void **state)
{
	char *dir = tu_mkdtemp(), cg[600], ps[600];
	struct cgroup_roots r;
	struct docker_stats_sample s;
	struct st_error err;

	(void)state;
	roots_for(&r, dir, cg, ps);
	put(cg, "memory/system.slice/docker-" ID ".scope/memory.usage_in_bytes", "4096\n");
	put(cg, "memory/system.slice/docker-" ID ".scope/memory.limit_in_bytes", "1073741824\n");
	put(cg, "memory/system.slice/docker-" ID ".scope/memory.stat", "total_inactive_file 0\n");
	put(cg, "cpuacct/system.slice/docker-" ID ".scope/cpuacct.usage", "5\n");
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), 0);
	assert_true(s.mem_limit == 1073741824u && s.cpu_total == 5);
	tu_rmtree(dir);
	free(dir);

	dir = tu_mkdtemp();
	roots_for(&r, dir, cg, ps);
	put(cg, "docker/" ID "/memory.current", "52428800\n");
	put(cg, "docker/" ID "/memory.max", "max\n");
	put(cg, "docker/" ID "/memory.stat", "anon 1\ninactive_file 4194304\nactive_file 3\n");
	put(cg, "docker/" ID "/cpu.stat", "usage_usec 9000000\nuser_usec 1\n");
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), 0);
	assert_true(s.cgroup_v2);
	assert_true(s.mem_usage == 52428800u && s.mem_inactive_file == 4194304u);
	assert_true(s.mem_limit == 8000000000u);
	assert_true(s.cpu_total == 9000000000u);
	tu_rmtree(dir);
	free(dir);
}

static void test_not_here(void **state)
{
	char *dir = tu_mkdtemp(), cg[600], ps[600];
	struct cgroup_roots r;
	struct docker_stats_sample s;
	struct st_error err;

	(void)state;
	roots_for(&r, dir, cg, ps);
	/* no such container: fall back to the API */
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), ST_ENOTFOUND);
	/* the container stopped between the directory check and the reads */
	mkdir(cg, 0700);
	put(cg, "memory/docker/" ID "/memory.stat", "total_inactive_file 0\n");
	put(cg, "cpuacct/docker/" ID "/cpuacct.usage", "5\n");
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), ST_ENOTFOUND);
	/* a short or non-hex id is never looked up (no path games) */
	assert_int_equal(cgroup_stats_read("0123456789ab", &r, &s, &err), ST_EPROTO);
	assert_int_equal(cgroup_stats_read("../../../../etc/passwd", &r, &s, &err), ST_EPROTO);
	/* garbage in a file is an error, not a zero */
	put(cg, "memory/docker/" ID "/memory.usage_in_bytes", "lots\n");
	put(cg, "memory/docker/" ID "/memory.limit_in_bytes", "1\n");
	assert_int_equal(cgroup_stats_read(ID, &r, &s, &err), ST_EPROTO);
	assert_non_null(strstr(err.message, "memory.usage_in_bytes"));
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_stat),
		cmocka_unit_test(test_proc_stat_overflow),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_v1_cgroupfs),
		cmocka_unit_test(test_v1_systemd_and_v2),
		cmocka_unit_test(test_not_here),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
