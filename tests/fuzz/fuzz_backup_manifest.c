/*
 * fuzz_backup_manifest.c - backup manifest parsing (lib/backup_catalog.c,
 * backup_manifest_parse): any bytes either parse or fail with ST_EPROTO; a
 * manifest that parses serialises (backup_manifest_to_json) and parses
 * back to the same JSON.
 */
#include "fuzz.h"

#include <string.h>

#include "backup_catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backup_manifest m, again;
	struct st_error err = { 0 };
	json_t *j = NULL, *j2 = NULL;
	char *text = NULL;
	size_t i;
	int rc;

	rc = backup_manifest_parse((const char *)data, size, "fuzz.json", &m, &err);
	if (rc) {
		FUZZ_CHECK(rc < 0 && err.code == rc && err.message[0] != '\0');
		backup_manifest_release(&m);
		return 0;
	}
	for (i = 0; i < m.ntables; i++)
		FUZZ_CHECK(m.tables[i] != NULL);
	for (i = 0; i < m.ncounts; i++)
		backup_manifest_count(&m, m.counts[i].table);
	j = backup_manifest_to_json(&m);
	if (!j)
		goto out;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		goto out;
	rc = backup_manifest_parse(text, strlen(text), "fuzz.json", &again, &err);
	if (rc) {
		fprintf(stderr, "serialised manifest does not parse: %s\n%s\n", err.message, text);
		FUZZ_CHECK(rc == 0);
	}
	j2 = backup_manifest_to_json(&again);
	if (j2 && !json_equal(j, j2)) {
		char *t2 = json_dumps(j2, JSON_COMPACT | JSON_SORT_KEYS);

		fprintf(stderr, "manifest round trip differs\n%s\n%s\n", text, t2 ? t2 : "?");
		free(t2);
		FUZZ_CHECK(0);
	}
	backup_manifest_release(&again);
out:
	free(text);
	json_decref(j);
	json_decref(j2);
	backup_manifest_release(&m);
	return 0;
}
