/*
 * fuzz_config.c - configuration loading (lib/config.c via
 * config_load_buffer): any bytes either load or fail with a positioned
 * ST_ECONFIG/ST_ENOMEM message. A configuration that loads renders as YAML
 * and JSON, and its YAML rendering loads again and renders the same (the
 * effective configuration is a fixed point of render + load).
 */
#include "fuzz.h"

#include <string.h>

#include "config.h"
#include "sbuf.h"
#include "yamltree.h"

/* The directory must exist: relative paths in the file are resolved
 * against it. / always does. */
#define FUZZ_CONFIG_PATH "/fuzz-config.yaml"

static void check_error(int rc, const struct st_error *err)
{
	FUZZ_CHECK(rc < 0);
	FUZZ_CHECK(err->code == rc);
	FUZZ_CHECK(err->message[0] != '\0');
	FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

static void exercise(const struct st_config *cfg)
{
	static const char *const paths[] = {
		"state_dir", "docker.host", "postgres.host", "postgres.port", "postgres.password",
		"redis.password", "services.backend.container", "health.containers.0",
		"backup.keep_daily", "", ".", "services..x", "thresholds",
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct yt_node *n = config_lookup(cfg, paths[i]);

		if (config_path_is_secret(paths[i]))
			FUZZ_CHECK(n == NULL);
	}
	for (i = 0; i < cfg->n_services; i++) {
		FUZZ_CHECK(cfg->services[i].name != NULL);
		FUZZ_CHECK(config_service(cfg, cfg->services[i].name) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_error err = { 0 };
	struct st_config *cfg = NULL, *again = NULL;
	struct sbuf yaml = SBUF_INIT, json = SBUF_INIT, yaml2 = SBUF_INIT;
	int rc;

	rc = config_load_buffer(FUZZ_CONFIG_PATH, "fuzz", (const char *)data, size, &cfg, &err);
	if (rc) {
		check_error(rc, &err);
		FUZZ_CHECK(cfg == NULL);
		goto out;
	}
	FUZZ_CHECK(cfg != NULL && cfg->state_dir != NULL && cfg->n_services > 0);
	exercise(cfg);
	if (config_render(cfg, CONFIG_FORMAT_JSON, &json, &err) != 0)
		goto out;
	if (config_render(cfg, CONFIG_FORMAT_YAML, &yaml, &err) != 0)
		goto out;
	rc = config_load_buffer(FUZZ_CONFIG_PATH, "fuzz", yaml.buf, yaml.len, &again, &err);
	if (rc == ST_ENOMEM)
		goto out;
	if (rc) {
		fprintf(stderr, "rendered configuration does not load: %s\n---\n%s---\n", err.message,
			sbuf_str(&yaml));
		FUZZ_CHECK(rc == 0);
	}
	if (config_render(again, CONFIG_FORMAT_YAML, &yaml2, &err) != 0)
		goto out;
	if (yaml.len != yaml2.len || memcmp(yaml.buf, yaml2.buf, yaml.len) != 0) {
		fprintf(stderr, "render(load(render(cfg))) differs\n--- first\n%s--- second\n%s---\n",
			sbuf_str(&yaml), sbuf_str(&yaml2));
		FUZZ_CHECK(0);
	}
out:
	config_free(again);
	config_free(cfg);
	sbuf_release(&yaml);
	sbuf_release(&yaml2);
	sbuf_release(&json);
	return 0;
}
