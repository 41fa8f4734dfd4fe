/*
 * test_health_eval.c - the judgement of each health check, fed with Docker
 * Engine 20.10 answers captured on this machine kind
 * (tests/unit/data/health/, JSON files) and with plain numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health_eval.h"

static json_t *load(const char *name)
{
	char path[512];
	const char *dir = getenv("ST_SOURCE_DIR");
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/unit/data/health/%s", dir ? dir : ".", name);
	j = json_load_file(path, 0, &jerr);
	if (!j)
		fail_msg("%s: %s", path, jerr.text);
	return j;
}

static struct health_result *fresh(struct health_result *r, const char *name)
{
	assert_int_equal(health_result_init(r, name), 0);
	return r;
}

static const struct health_metric *metric(const struct health_result *r, const char *label)
{
	size_t i;

	for (i = 0; i < r->n_metrics; i++)
		if (!strcmp(r->metrics[i].label, label))
			return &r->metrics[i];
	fail_msg("no metric %s", label);
	return NULL;
}

/* 2026-11-27T22:44:24.111Z is when the captured container started */
#define STARTED 1795819464.111495584
static const struct health_threshold pct_th = { 80, 90, 1, 1 };

static void test_container_states(void **state)
{
	struct health_result r;
	json_t *insp = load("inspect.json"), *st = NULL, *prev, *health;

	(void)state;
	health = json_object_get(json_object_get(insp, "State"), "Health");

	/* captured: running, health starting */
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 125, &st), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	assert_non_null(strstr(r.summary, "starting"));
	assert_non_null(strstr(r.summary, "up 2m05s"));
	assert_true(metric(&r, "container.x.uptime")->value > 124.8);
	assert_true(metric(&r, "container.x.restarts")->value == 0);
	assert_int_equal(json_integer_value(json_object_get(st, "restart_count")), 0);
	assert_string_equal(json_string_value(json_object_get(r.details, "health")), "starting");
	health_result_release(&r);
	json_decref(st);

	json_object_set_new(health, "Status", json_string("healthy"));
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 10, &st), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_string_equal(r.summary, "running, healthy, up 10.0s, 0 restarts");
	health_result_release(&r);
	json_decref(st);

	json_object_set_new(health, "Status", json_string("unhealthy"));
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 10, &st), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "unhealthy (2 failed probes): OCI runtime exec failed"));
	health_result_release(&r);
	json_decref(st);

	/* no healthcheck at all: running is enough */
	json_object_del(json_object_get(insp, "State"), "Health");
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 10, &st), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_non_null(strstr(r.summary, "no healthcheck"));
	health_result_release(&r);

	/* restarted since the previous run of the same container: WARNING */
	prev = st;
	json_object_set_new(insp, "RestartCount", json_integer(3));
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, prev, STARTED + 10, &st), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	assert_non_null(strstr(r.summary, "restarted 3 time(s) since the previous check"));
	health_result_release(&r);
	json_decref(st);
	json_decref(prev);

	json_object_set_new(json_object_get(insp, "State"), "Restarting", json_true());
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 10, &st), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "restarting"));
	health_result_release(&r);
	json_decref(st);
	json_decref(insp);

	insp = load("inspect_exited.json");
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, STARTED + 123.1, &st), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_string_equal(r.summary, "exited with code 143 2m00s ago");
	health_result_release(&r);
	json_decref(st);
	json_decref(insp);

	insp = json_pack("{s:s}", "Id", "abc");
	assert_int_equal(health_eval_container(fresh(&r, "container.x"), "x", insp, NULL, 0, &st), 0);
	assert_int_equal(r.status, HEALTH_UNKNOWN);
	health_result_release(&r);
	json_decref(insp);
}

static void test_stats_cpu_memory(void **state)
{
	struct health_stats_sample a, b, c;
	struct health_result r;
	json_t *j = load("stats.json"), *kept;
	double pct;

	(void)state;
	assert_int_equal(health_stats_parse(j, 1000.0, &b), 0);
	assert_true(b.running);
	assert_string_equal(b.id, "d43ec7e3d7830534fa5075c7740948cd807d0ae934ba3150dda3a1628d28f051");
	assert_true(b.at == 1000.0);
	assert_int_equal(b.s.online_cpus, 2);
	assert_true(b.s.cpu_total == 68272121);
	assert_true(b.s.cpu_system == 1300800000000ULL);
	assert_true(b.s.mem_usage == 778240);
	assert_true(b.s.mem_limit > 0);

	/* round trip through the state file, then one second earlier with
	 * 10 ms less CPU out of 2 s of system time on 2 CPUs = 1% */
	kept = health_stats_to_json(&b);
	assert_int_equal(health_stats_from_json(kept, &a), 0);
	json_decref(kept);
	assert_string_equal(a.id, b.id);
	assert_true(a.s.cpu_total == b.s.cpu_total && a.s.cpu_system == b.s.cpu_system);
	assert_int_equal(a.s.online_cpus, 2);
	a.at -= 1;
	a.s.cpu_total -= 10000000;
	a.s.cpu_system -= 2000000000;
	assert_int_equal(health_cpu_percent(&a, &b, &pct), 0);
	assert_true(fabs(pct - 1.0) < 1e-9);

	assert_int_equal(health_eval_cpu(fresh(&r, "container_cpu.x"), "x", &a, &b, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_non_null(strstr(r.summary, "1.0% CPU over the last 1.0s"));
	assert_true(fabs(metric(&r, "container_cpu.x")->value - 1.0) < 1e-9);
	assert_true(metric(&r, "container_cpu.x")->max == 200);
	health_result_release(&r);

	/* busy: 1.9 s of CPU in 2 s of system time on 2 CPUs = 190% */
	c = b;
	c.s.cpu_total = b.s.cpu_total + 1900000000;
	c.s.cpu_system = b.s.cpu_system + 2000000000;
	assert_int_equal(health_eval_cpu(fresh(&r, "container_cpu.x"), "x", &b, &c, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_true(fabs(metric(&r, "container_cpu.x")->value - 190) < 1e-9);
	health_result_release(&r);

	/* another container (recreated), counters reset, same tick: not comparable */
	c = a;
	strcpy(c.id, "other");
	assert_int_equal(health_cpu_percent(&c, &b, &pct), -1);
	c = a;
	c.s.cpu_total = b.s.cpu_total + 1;
	assert_int_equal(health_cpu_percent(&c, &b, &pct), -1);
	assert_int_equal(health_cpu_percent(&b, &b, &pct), -1);
	assert_int_equal(health_eval_cpu(fresh(&r, "container_cpu.x"), "x", NULL, &b, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_UNKNOWN);
	health_result_release(&r);

	/* memory: no limit set -> limit is host RAM, said so */
	assert_int_equal(health_eval_memory(fresh(&r, "container_memory.x"), "x", &b, (double)b.s.mem_limit, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_non_null(strstr(r.summary, "host RAM (no memory limit set)"));
	health_result_release(&r);

	/* inactive file cache does not count */
	b.s.mem_usage = 900;
	b.s.mem_inactive_file = 100;
	b.s.mem_limit = 1000;
	assert_int_equal(health_eval_memory(fresh(&r, "container_memory.x"), "x", &b, 1e12, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_true(metric(&r, "container_memory.x")->value == 80);
	assert_true(metric(&r, "container_memory.x.used")->value == 800);
	assert_non_null(strstr(r.summary, "limit"));
	assert_null(strstr(r.summary, "host RAM"));
	health_result_release(&r);
	b.s.mem_inactive_file = 0;
	assert_int_equal(health_eval_memory(fresh(&r, "container_memory.x"), "x", &b, 1e12, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	health_result_release(&r);
	json_decref(j);

	/* cgroup v2 names inactive_file */
	j = json_pack("{s:s, s:{s:{s:I}, s:I, s:i}, s:{s:I, s:I, s:{s:I}}}", "id", "v2", "cpu_stats",
		      "cpu_usage", "total_usage", (json_int_t)5, "system_cpu_usage", (json_int_t)10,
		      "online_cpus", 1, "memory_stats", "usage", (json_int_t)500, "limit",
		      (json_int_t)1000, "stats", "inactive_file", (json_int_t)200);
	assert_int_equal(health_stats_parse(j, 0, &c), 0);
	assert_true(c.running);
	assert_true(docker_stats_mem_used(&c.s) == 300);
	json_decref(j);

	j = load("stats_stopped.json");
	assert_int_equal(health_stats_parse(j, 0, &c), 0);
	assert_false(c.running);
	assert_int_equal(health_eval_memory(fresh(&r, "container_memory.x"), "x", &c, 1e12, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_UNKNOWN);
	assert_non_null(strstr(r.summary, "not running"));
	health_result_release(&r);
	json_decref(j);

	j = json_string("nope");
	assert_int_equal(health_stats_parse(j, 0, &c), ST_EPROTO);
	json_decref(j);
	j = json_pack("{s:s}", "id", "x");
	assert_int_equal(health_stats_from_json(j, &c), ST_EPROTO);
	json_decref(j);
}

static void test_df(void **state)
{
	struct health_result r;
	json_t *df = load("df.json"), *img;

	(void)state;
	assert_int_equal(health_eval_df(fresh(&r, "docker.df"), df), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_true(metric(&r, "docker.images")->value == 1982256);
	/* the only image is used by a container: nothing to reclaim */
	assert_true(metric(&r, "docker.images.reclaimable")->value == 0);
	assert_true(metric(&r, "docker.volumes")->value == 0);
	assert_non_null(strstr(r.summary, "images 1.9 MiB"));
	assert_non_null(json_object_get(r.details, "build_cache"));
	health_result_release(&r);

	/* unused image, a stopped container, an orphan volume, idle cache */
	img = json_array_get(json_object_get(df, "Images"), 0);
	json_object_set_new(img, "Containers", json_integer(0));
	json_object_set_new(json_array_get(json_object_get(df, "Containers"), 0), "State",
			    json_string("exited"));
	json_object_set_new(json_array_get(json_object_get(df, "Containers"), 0), "SizeRw",
			    json_integer(100));
	json_object_set_new(df, "Volumes",
			    json_pack("[{s:{s:i, s:i}}, {s:{s:i, s:i}}]", "UsageData", "Size", 10,
				      "RefCount", 0, "UsageData", "Size", 20, "RefCount", 1));
	json_object_set_new(df, "BuildCache",
			    json_pack("[{s:i, s:b, s:b}, {s:i, s:b, s:b}]", "Size", 7, "InUse", 0,
				      "Shared", 0, "Size", 5, "InUse", 1, "Shared", 0));
	assert_int_equal(health_eval_df(fresh(&r, "docker.df"), df), 0);
	assert_true(metric(&r, "docker.images.reclaimable")->value == 1982256);
	assert_true(metric(&r, "docker.containers.reclaimable")->value == 100);
	assert_true(metric(&r, "docker.volumes")->value == 30);
	assert_true(metric(&r, "docker.volumes.reclaimable")->value == 10);
	assert_true(metric(&r, "docker.build_cache")->value == 12);
	assert_true(metric(&r, "docker.build_cache.reclaimable")->value == 7);
	health_result_release(&r);
	json_decref(df);

	df = json_object();
	assert_int_equal(health_eval_df(fresh(&r, "docker.df"), df), 0);
	assert_int_equal(r.status, HEALTH_UNKNOWN);
	health_result_release(&r);
	json_decref(df);
}

static void test_disk(void **state)
{
	struct health_result r;
	struct statvfs st;
	struct health_threshold th = { 80, 90, 1, 1 };

	(void)state;
	memset(&st, 0, sizeof(st));
	st.f_frsize = 4096;
	st.f_blocks = 1000;
	st.f_bfree = 150;  /* 850 used */
	st.f_bavail = 100; /* 50 reserved for root: df shows 850/950 */
	assert_int_equal(health_eval_disk(fresh(&r, "disk.docker_root"), "/var/lib/docker", &st, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	assert_true(fabs(metric(&r, "disk.docker_root")->value - 850.0 / 950 * 100) < 1e-9);
	assert_true(metric(&r, "disk.docker_root.used")->value == 850 * 4096.0);
	assert_true(metric(&r, "disk.docker_root.used")->max == 1000 * 4096.0);
	assert_non_null(strstr(r.summary, "89.5% used on /var/lib/docker"));
	health_result_release(&r);

	memset(&st, 0, sizeof(st));
	assert_int_equal(health_eval_disk(fresh(&r, "disk.backup_dir"), "/b", &st, "note", &th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_non_null(strstr(r.summary, "; note"));
	health_result_release(&r);
}

static void feed(struct health_log_count *c, const char *s)
{
	health_log_count_line(c, s, strlen(s), 0);
}

static void test_log_count(void **state)
{
	struct health_log_count c;
	struct health_result r;
	struct health_threshold th = { 0.5, 1, 1, 1 };

	(void)state;
	memset(&c, 0, sizeof(c));
	feed(&c, "GET /health 200");
	feed(&c, "Error: connect ECONNREFUSED");
	feed(&c, "PrismaClientKnownRequestError");
	feed(&c, "errror is not an error?");  /* still contains "error" later */
	feed(&c, "errror");                   /* does not */
	feed(&c, "eerror");
	feed(&c, "   ");                      /* blank: not a line */
	feed(&c, "");
	/* a line in pieces: counted once, match across the cut found */
	health_log_count_line(&c, "some ER", 7, 1);
	health_log_count_line(&c, "ROR here", 8, 1);
	health_log_count_line(&c, " and error again", 16, 0);
	assert_int_equal(c.lines, 7);
	assert_int_equal(c.errors, 5);

	assert_int_equal(health_eval_error_rate(fresh(&r, "backend.error_rate"), &c, 300, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "5 of 7 log lines in the last 5m00s"));
	assert_true(metric(&r, "backend.log_lines")->value == 7);
	health_result_release(&r);

	memset(&c, 0, sizeof(c));
	assert_int_equal(health_eval_error_rate(fresh(&r, "backend.error_rate"), &c, 300, &th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_string_equal(r.summary, "no log lines in the last 5m00s");
	assert_true(metric(&r, "backend.error_rate")->value == 0);
	health_result_release(&r);

	for (int i = 0; i < 1000; i++)
		feed(&c, "fine");
	feed(&c, "one error");
	assert_int_equal(health_eval_error_rate(fresh(&r, "backend.error_rate"), &c, 60, &th), 0);
	assert_int_equal(r.status, HEALTH_OK); /* 0.0999% */
	health_result_release(&r);
}

static void test_http(void **state)
{
	struct health_result r;
	struct health_threshold th = { 1, 2, 1, 1 };

	(void)state;
	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 200,
					     "{ \"status\": \"ok\" }", 0.012, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_string_equal(r.summary, "status ok in 12ms");
	assert_true(metric(&r, "backend.latency")->th.crit == 2);
	health_result_release(&r);

	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 200,
					     "{\"status\":\"ok\"}", 1.5, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	health_result_release(&r);

	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 200,
					     "{\"status\":\"degraded\"}", 0.01, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "degraded"));
	health_result_release(&r);

	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 200,
					     "not json\n", 0.01, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_null(strchr(r.summary, '\n'));
	health_result_release(&r);

	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 503,
					     "{\"status\":\"ok\"}", 0.01, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "503"));
	health_result_release(&r);

	assert_int_equal(health_eval_backend(fresh(&r, "backend.health"), "http://h/health", 0, NULL,
					     0.001, "connection refused", &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_non_null(strstr(r.summary, "connection refused"));
	health_result_release(&r);

	assert_int_equal(health_eval_frontend(fresh(&r, "frontend.reachable"), "http://h/", 301, 0.01, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	health_result_release(&r);
	assert_int_equal(health_eval_frontend(fresh(&r, "frontend.reachable"), "http://h/", 404, 0.01, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	health_result_release(&r);
	assert_int_equal(health_eval_frontend(fresh(&r, "frontend.reachable"), "http://h/", 200, 2.5, NULL, &th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	health_result_release(&r);
}

static void test_url_display(void **state)
{
	char *u;

	(void)state;
	u = health_url_for_display("https://user:secret@api.example.com:8443/health?token=abc#x");
	assert_string_equal(u, "https://api.example.com:8443/health");
	free(u);
	u = health_url_for_display("http://127.0.0.1:53001/health");
	assert_string_equal(u, "http://127.0.0.1:53001/health");
	free(u);
	u = health_url_for_display("http://h?k=v");
	assert_string_equal(u, "http://h");
	free(u);
	u = health_url_for_display("not a url");
	assert_string_equal(u, "not a url");
	free(u);
}

static void test_pg_redis(void **state)
{
	struct health_result r;
	struct health_threshold low = { 0.001, 0.002, 1, 1 };
	json_t *st = NULL, *prev;

	(void)state;
	assert_int_equal(health_eval_pg_connections(fresh(&r, "postgres.connections"), 6, 97, 100, 3, &pct_th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_non_null(strstr(r.summary, "6 of 97 usable connections"));
	assert_true(fabs(metric(&r, "postgres.connections")->value - 600.0 / 97) < 1e-9);
	health_result_release(&r);
	assert_int_equal(health_eval_pg_connections(fresh(&r, "postgres.connections"), 1, 97, 100, 3, &low), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	health_result_release(&r);

	/* maxmemory 0: no limit, OK, no percentage metric */
	assert_int_equal(health_eval_redis_memory(fresh(&r, "redis.memory"), 1048576, 0, "noeviction", &pct_th), 0);
	assert_int_equal(r.status, HEALTH_OK);
	assert_string_equal(r.summary, "1.0 MiB used, no limit (maxmemory 0)");
	assert_int_equal(r.n_metrics, 2);
	assert_false(metric(&r, "redis.used_memory")->has_max);
	health_result_release(&r);

	assert_int_equal(health_eval_redis_memory(fresh(&r, "redis.memory"), 60 << 20, 64 << 20, "noeviction", &pct_th), 0);
	assert_int_equal(r.status, HEALTH_CRITICAL);
	assert_true(fabs(metric(&r, "redis.memory")->value - 93.75) < 1e-9);
	assert_non_null(strstr(r.summary, "93.8%: 60.0 MiB of 64.0 MiB maxmemory (policy noeviction)"));
	health_result_release(&r);

	assert_int_equal(health_eval_redis_evictions(fresh(&r, "redis.evictions"), 5, "run1", "allkeys-lru", NULL, &st), 0);
	assert_int_equal(r.status, HEALTH_OK);
	health_result_release(&r);
	prev = st;
	assert_int_equal(health_eval_redis_evictions(fresh(&r, "redis.evictions"), 9, "run1", "allkeys-lru", prev, &st), 0);
	assert_int_equal(r.status, HEALTH_WARNING);
	assert_non_null(strstr(r.summary, "4 keys evicted since the previous check"));
	health_result_release(&r);
	json_decref(st);
	/* a restarted Redis (new run_id) starts counting again */
	assert_int_equal(health_eval_redis_evictions(fresh(&r, "redis.evictions"), 9, "run2", "allkeys-lru", prev, &st), 0);
	assert_int_equal(r.status, HEALTH_OK);
	health_result_release(&r);
	json_decref(st);
	json_decref(prev);
	assert_true(health_host_ram() > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_container_states),
		cmocka_unit_test(test_stats_cpu_memory),
		cmocka_unit_test(test_df),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_log_count),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_url_display),
		cmocka_unit_test(test_pg_redis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
