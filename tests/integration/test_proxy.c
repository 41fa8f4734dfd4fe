/*
 * test_proxy.c - lib/proxy.c against the sandbox's spilttea-proxy (nginx):
 * the upstream file it reads, nginx -t and graceful reload through Docker
 * exec, a switch to a second stand-in confirmed by X-Upstream and back,
 * and the failures that must leave the proxy serving where it did: a
 * target that does not answer, and a template nginx rejects.
 * Creates spilttea-test-proxy-upstream (removed at the end) and always
 * puts the upstream file back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "http.h"
#include "proxy.h"
#include "sandbox_env.h"
#include "services.h"
#include "timeutil.h"

#define SPARE "spilttea-test-proxy-upstream"

static struct st_config *cfg;
static struct docker_client *docker;
static char *original;       /* the upstream file as the test found it */
static long live_port;       /* where it routed */

static int setup(void **state)
{
	struct st_error err = { 0 };

	(void)state;
	if (sandbox_require("SPILTTEA_OPS_CONFIG", "ST_PROXY_URL", NULL) != 0)
		return -1;
	if (config_load(getenv("SPILTTEA_OPS_CONFIG"), &cfg, &err) != 0 ||
	    services_docker_open(cfg, &docker, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	if (!cfg->proxy.container) {
		fprintf(stderr, "setup: the sandbox config has no proxy section (scripts/sandbox up)\n");
		return -1;
	}
	if (proxy_read_upstream(&cfg->proxy, &original, &err) != 0 ||
	    proxy_current_port(&cfg->proxy, &live_port, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.message);
		return -1;
	}
	docker_container_remove(docker, SPARE, 1, 1, 10, NULL);
	return 0;
}

static int teardown(void **state)
{
	struct st_error err = { 0 };
	char *now = NULL;

	(void)state;
	docker_container_remove(docker, SPARE, 1, 1, 10, NULL);
	/* Whatever happened, the proxy routes where it did before. */
	if (original && (proxy_read_upstream(&cfg->proxy, &now, &err) != 0 || strcmp(now, original))) {
		atomic_file_write_all(cfg->proxy.upstream_file, original, strlen(original), 0644, &err);
		proxy_reload(docker, &cfg->proxy, &err);
	}
	free(now);
	free(original);
	docker_client_free(docker);
	config_free(cfg);
	return 0;
}

static long other_port(void)
{
	return live_port == cfg->proxy.blue_port ? cfg->proxy.green_port : cfg->proxy.blue_port;
}

/* The backend answers through the proxy, from live_port. */
static void assert_serving_from(long port)
{
	struct proxy_answer ans;
	struct st_error err = { 0 };
	char want[64];

	snprintf(want, sizeof(want), "%s:%ld", cfg->proxy.upstream_host, port);
	assert_int_equal(proxy_request(&cfg->proxy, "/health", 5, &ans, &err), 0);
	assert_int_equal(ans.status, 200);
	assert_string_equal(ans.upstream, want);
}

static void test_reads_and_validates(void **state)
{
	struct st_error err = { 0 };
	json_t *env = NULL, *inspect = NULL;
	char want[32];
	size_t i, left = 99;
	int found = 0;

	(void)state;
	/* The file routes where the backend listens. */
	assert_int_equal(docker_container_inspect(docker, "spilttea-backend", 10, &inspect, &err), 0);
	env = json_object_get(json_object_get(inspect, "Config"), "Env");
	snprintf(want, sizeof(want), "PORT=%ld", live_port);
	for (i = 0; i < json_array_size(env); i++)
		if (!strcmp(json_string_value(json_array_get(env, i)), want))
			found = 1;
	json_decref(inspect);
	assert_true(found);
	assert_serving_from(live_port);

	assert_int_equal(proxy_validate(docker, &cfg->proxy, &err), 0);
	assert_int_equal(proxy_reload(docker, &cfg->proxy, &err), 0);
	assert_int_equal(proxy_wait_drained(docker, &cfg->proxy, 10, &left, &err), 0);
	assert_int_equal(left, 0);
	assert_serving_from(live_port);
}

static int create_spare(long port, struct st_error *err)
{
	json_t *body;
	char penv[32];
	char *id = NULL;
	int rc;

	snprintf(penv, sizeof(penv), "PORT=%ld", port);
	body = json_pack("{s:s, s:[s,s,s,s], s:{s:s, s:s}, s:{s:s, s:b}}",
			 "Image", "spilttea-sandbox/standin:1",
			 "Env", penv, "HOST=127.0.0.1", "STANDIN_ROLE=backend", "STANDIN_VERSION=spare",
			 "Labels", "com.spilttea.test", "1", "com.spilttea.sandbox", "0",
			 "HostConfig", "NetworkMode", "host", "Init", 1);
	rc = docker_container_create(docker, SPARE, body, 10, &id, err);
	json_decref(body);
	free(id);
	if (rc == 0)
		rc = docker_container_start(docker, SPARE, 10, err);
	return rc;
}

static void wait_answers(long port)
{
	char url[64];
	double deadline = time_monotonic() + 20;
	struct http_result res;
	struct st_error err = { 0 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/health", port);
	for (;;) {
		int rc = http_probe(url, 1, NULL, &res, &err);
		long st = res.status;
		http_result_release(&res);
		if (rc == 0 && st == 200)
			return;
		assert_true(time_monotonic() < deadline);
		time_sleep(0.1);
	}
}

static void test_switch_and_back(void **state)
{
	struct st_error err = { 0 };
	struct proxy_switch_result res;
	char *text = NULL;
	long port = 0;

	(void)state;
	assert_int_equal(create_spare(other_port(), &err), 0);
	wait_answers(other_port());

	assert_int_equal(proxy_switch(docker, &cfg->proxy, other_port(), SPARE, "/health", 10, NULL, &res, &err), 0);
	assert_int_equal(res.had_previous, 1);
	assert_int_equal(res.previous_port, live_port);
	assert_int_equal(res.confirmed_by_header, 1);
	assert_int_equal(res.last_status, 200);
	assert_true(res.t_written <= res.t_reloaded && res.t_reloaded <= res.t_confirmed);
	assert_true(res.t_confirmed - res.t_written < 5);
	assert_serving_from(other_port());
	assert_int_equal(proxy_current_port(&cfg->proxy, &port, &err), 0);
	assert_int_equal(port, other_port());
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &text, &err), 0);
	assert_non_null(strstr(text, "# written by spilttea-ops at "));
	assert_non_null(strstr(text, SPARE));
	free(text);
	assert_int_equal(proxy_wait_drained(docker, &cfg->proxy, 10, NULL, &err), 0);

	assert_int_equal(proxy_switch(docker, &cfg->proxy, live_port, "spilttea-backend", "/health", 10, NULL, &res,
				      &err), 0);
	assert_int_equal(res.previous_port, other_port());
	assert_serving_from(live_port);
	assert_int_equal(proxy_wait_drained(docker, &cfg->proxy, 10, NULL, &err), 0);
	assert_int_equal(docker_container_remove(docker, SPARE, 1, 1, 10, &err), 0);
}

/* Nothing listens on the other port: the switch fails, the previous file
 * is back and the proxy serves from the old backend again. */
static void test_switch_to_nothing_goes_back(void **state)
{
	struct st_error err = { 0 };
	struct proxy_switch_result res;
	char *text = NULL, *was = NULL;

	(void)state;
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &was, &err), 0);
	/* nginx names the dead upstream in X-Upstream: given up after a few
	 * 502s, long before the timeout. */
	assert_int_equal(proxy_switch(docker, &cfg->proxy, other_port(), "nothing", "/health", 20, NULL, &res, &err),
			 ST_EFAILED);
	if (!strstr(err.message, "answered 502 from the new upstream"))
		fail_msg("unexpected: %s", err.message);
	assert_true(time_monotonic() - res.t_written < 10);
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &text, &err), 0);
	assert_string_equal(text, was);
	free(text);
	free(was);
	assert_serving_from(live_port);
}

/* An interrupt while the switch is being confirmed (the confirmation is
 * container_wait with a probe through the proxy, review 2 item 29): the
 * switch stops at once, the previous file is back and the proxy serves
 * from the old backend again. */
static void test_interrupted_switch_goes_back(void **state)
{
	volatile sig_atomic_t cancel = 1;
	struct st_error err = { 0 };
	struct proxy_switch_result res;
	char *text = NULL, *was = NULL;
	double t0 = time_monotonic();

	(void)state;
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &was, &err), 0);
	assert_int_equal(proxy_switch(docker, &cfg->proxy, other_port(), "nothing", "/health", 20, &cancel, &res,
				      &err), ST_EABORTED);
	if (!strstr(err.message, "interrupted while confirming the switch"))
		fail_msg("unexpected: %s", err.message);
	assert_true(time_monotonic() - t0 < 10);
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &text, &err), 0);
	assert_string_equal(text, was);
	free(text);
	free(was);
	assert_serving_from(live_port);
}

/* A template nginx rejects: nginx -t fails, nothing is reloaded, the file
 * is put back. */
static void test_rejected_config_goes_back(void **state)
{
	struct config_proxy bad = cfg->proxy;
	struct st_error err = { 0 };
	char *text = NULL, *was = NULL;

	(void)state;
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &was, &err), 0);
	bad.upstream_template = "upstream spilttea_backend {\n    server {host}:{port}\n}\n";
	assert_int_equal(proxy_switch(docker, &bad, other_port(), "x", "/health", 5, NULL, NULL, &err), ST_EFAILED);
	assert_non_null(strstr(err.message, "rejects its configuration (nginx -t exit 1)"));
	assert_non_null(strstr(err.message, "[emerg]"));
	assert_int_equal(proxy_read_upstream(&cfg->proxy, &text, &err), 0);
	assert_string_equal(text, was);
	free(text);
	free(was);
	assert_int_equal(proxy_validate(docker, &cfg->proxy, &err), 0);
	assert_serving_from(live_port);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_and_validates),
		cmocka_unit_test(test_switch_and_back),
		cmocka_unit_test(test_switch_to_nothing_goes_back),
		cmocka_unit_test(test_interrupted_switch_goes_back),
		cmocka_unit_test(test_rejected_config_goes_back),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
