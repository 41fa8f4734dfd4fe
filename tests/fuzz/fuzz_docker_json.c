/*
 * fuzz_docker_json.c - everything that reads a Docker Engine answer as
 * JSON: container inspect (container_state_parse and the health log, the
 * container health check, the create body a deploy derives from it), the
 * container list and system df, exec inspect (exit code), stats (CPU and
 * memory figures, the state-file round trip), version (API negotiation),
 * create answers (Id) and error bodies.
 *
 * The input is one JSON document; every reader gets it, and when it is an
 * array every element too (a list answer is an array of the objects the
 * others read). Readers must never crash on a well-formed document of the
 * wrong shape: that is what a daemon of another version sends.
 */
#include "fuzz.h"

#include <string.h>

#include "compose.h"
#include "container.h"
#include "docker.h"
#include "docker_internal.h"
#include "docker_stats.h"
#include "health.h"
#include "health_eval.h"

static void inspect_readers(const json_t *j, const json_t *prev)
{
	struct container_state st;
	struct health_result r;
	struct st_error err = { 0 };
	json_t *out = NULL, *state = NULL;
	char log[256];
	int rc;

	rc = container_state_parse(j, &st, &err);
	if (rc == 0) {
		FUZZ_CHECK(st.exists == 1);
		FUZZ_CHECK(memchr(st.name, '\0', sizeof(st.name)) && memchr(st.status, '\0', sizeof(st.status)));
		FUZZ_CHECK(memchr(st.health, '\0', sizeof(st.health)) && memchr(st.error, '\0', sizeof(st.error)));
		out = container_state_json(&st, 1795000000.0);
		json_decref(out);
	} else {
		FUZZ_CHECK(rc < 0 && err.message[0] != '\0');
	}
	container_health_log(j, CONTAINER_LOG_LINES, log, sizeof(log));
	FUZZ_CHECK(memchr(log, '\0', sizeof(log)) != NULL);
	container_health_log(j, 1, log, 2);
	if (health_result_init(&r, "container.fuzz") == 0) {
		health_eval_container(&r, "fuzz", j, prev, 1795000000.0, &state);
		json_decref(state);
		health_result_release(&r);
	}
	out = NULL;
	if (compose_body_from_inspect(j, prev, "spilttea-fuzz:latest", &out, &err) == 0)
		FUZZ_CHECK(json_is_object(out));
	json_decref(out);
}

static void stats_readers(const json_t *j)
{
	static const struct health_threshold th = { 80, 95, 1, 1 };
	struct docker_stats_sample cur, pre;
	struct health_stats_sample hs, back;
	struct health_result r;
	struct st_error err = { 0 };
	double pct;
	json_t *kept;

	if (docker_stats_parse(j, &cur, &pre, &err) == 0) {
		if (docker_stats_cpu_percent(&pre, &cur, &pct) == 0)
			FUZZ_CHECK(pct == pct);
		FUZZ_CHECK(docker_stats_mem_used(&cur) <= cur.mem_usage);
		docker_stats_mem_percent(&cur, &pct);
	}
	if (health_stats_parse(j, 1795000000.0, &hs) != 0)
		return;
	kept = health_stats_to_json(&hs);
	/* Only running samples are kept between runs (health_run.c). */
	if (kept && hs.running && health_stats_from_json(kept, &back) == 0) {
		FUZZ_CHECK(back.running == hs.running && !strcmp(back.id, hs.id));
		health_cpu_percent(&back, &hs, &pct);
	}
	json_decref(kept);
	if (health_result_init(&r, "container_cpu.fuzz") == 0) {
		health_eval_cpu(&r, "fuzz", &hs, &hs, &th);
		health_result_release(&r);
	}
	if (health_result_init(&r, "container_memory.fuzz") == 0) {
		health_eval_memory(&r, "fuzz", &hs, 8.0 * 1024 * 1024 * 1024, &th);
		health_result_release(&r);
	}
}

static void other_readers(const json_t *j, const char *text, size_t len)
{
	struct health_result r;
	struct st_error err = { 0 };
	char version[16], *id = NULL;
	int code = 0, rc;

	docker_exec_exit_parse(j, &code);
	rc = docker_version_negotiate(j, version, sizeof(version), &err);
	if (rc == 0)
		FUZZ_CHECK(!strncmp(version, "1.", 2));
	else
		FUZZ_CHECK(rc < 0 && err.message[0] != '\0');
	if (docker_take_id(j, &id, &err) == 0)
		FUZZ_CHECK(id != NULL);
	free(id);
	if (health_result_init(&r, "docker.df") == 0) {
		health_eval_df(&r, j);
		health_result_release(&r);
	}
	memset(&err, 0, sizeof(err));
	rc = docker_http_error(404, text, len, &err);
	FUZZ_CHECK(rc < 0 && err.http_status == 404);
}

static void all_readers(const json_t *j, const json_t *prev, const char *text, size_t len)
{
	inspect_readers(j, prev);
	stats_readers(j);
	other_readers(j, text, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *j, *item;
	size_t i;

	j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
	if (!j)
		return 0;
	all_readers(j, NULL, (const char *)data, size);
	if (json_is_array(j)) {
		json_array_foreach(j, i, item) {
			if (i >= 16)
				break;
			all_readers(item, json_array_get(j, 0), (const char *)data, size);
		}
	}
	json_decref(j);
	return 0;
}
