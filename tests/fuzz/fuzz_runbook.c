/*
 * fuzz_runbook.c - runbook loading (lib/runbook.c, runbook_load_buffer)
 * with every built-in action registered: any bytes either load into a
 * runbook whose steps can all be found by name, or fail with a positioned
 * ST_ECONFIG/ST_ENOMEM message.
 */
#include "fuzz.h"

#include <string.h>

#include "engine.h"
#include "runbook.h"

static struct engine_registry *registry(void)
{
	static struct engine_registry *reg;
	struct st_error err = { 0 };

	if (!reg && engine_registry_new(1, &reg, &err) != 0) {
		fprintf(stderr, "cannot build the action registry: %s\n", err.message);
		abort();
	}
	return reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_error err = { 0 };
	struct runbook *rb = NULL;
	size_t i;
	int rc;

	rc = runbook_load_buffer(registry(), "fuzz.yaml", (const char *)data, size, &rb, &err);
	if (rc) {
		FUZZ_CHECK(rc < 0 && err.code == rc && err.message[0] != '\0');
		FUZZ_CHECK(rb == NULL);
		return 0;
	}
	FUZZ_CHECK(rb != NULL && rb->name != NULL);
	for (i = 0; i < rb->nsteps; i++) {
		const struct runbook_step *s = &rb->steps[i];

		FUZZ_CHECK(s->name != NULL && s->act.action != NULL && s->act.args != NULL);
		FUZZ_CHECK(runbook_find_step(rb, s->name) != NULL);
	}
	for (i = 0; i < rb->nparams; i++)
		FUZZ_CHECK(runbook_find_param(rb, rb->params[i].name) == &rb->params[i]);
	runbook_free(rb);
	return 0;
}
