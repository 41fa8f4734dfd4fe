/*
 * test_docs_config.c - man/spilttea-ops.yaml.5 documents exactly the keys
 * the loader knows: every key of lib/config.c's table (config_schema_walk)
 * has an ".It Ic KEY" entry, and every such entry is a key of the table, so
 * a key added to the table without its documentation, or one documented
 * but gone, fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define MAX_KEYS 512

struct keys {
	char *name[MAX_KEYS];
	unsigned flags[MAX_KEYS];
	size_t n;
};

struct page {
	char *entry[MAX_KEYS];  /* the words after ".It Ic" */
	size_t n;
	char *text;             /* the whole source */
};

static int collect(void *ud, const char *key, unsigned flags)
{
	struct keys *k = ud;

	if (k->n >= MAX_KEYS)
		return 1;
	k->name[k->n] = strdup(key);
	k->flags[k->n] = flags;
	if (!k->name[k->n])
		return 1;
	k->n++;
	return 0;
}

static void keys_free(struct keys *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->name[i]);
}

/* Reads the page and the first word of every ".It Ic WORD" line. */
static void page_load(struct page *p)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char path[4096];
	FILE *f;
	long size;
	char *line, *save = NULL, *copy;

	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "%s/man/spilttea-ops.yaml.5", src ? src : ".");
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	p->text = calloc(1, (size_t)size + 1);
	assert_non_null(p->text);
	assert_int_equal(fread(p->text, 1, (size_t)size, f), (size_t)size);
	fclose(f);

	copy = strdup(p->text);
	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len;

		if (strncmp(line, ".It Ic ", 7) != 0)
			continue;
		line += 7;
		len = strcspn(line, " \t");
		assert_true(p->n < MAX_KEYS);
		p->entry[p->n] = strndup(line, len);
		assert_non_null(p->entry[p->n]);
		p->n++;
	}
	free(copy);
}

static void page_free(struct page *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->entry[i]);
	free(p->text);
}

static int page_has_entry(const struct page *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->entry[i], key) == 0)
			return 1;
	return 0;
}

static void test_every_key_documented(void **state)
{
	struct keys k = { 0 };
	struct page p;
	size_t i, missing = 0;

	(void)state;
	assert_int_equal(config_schema_walk(collect, &k), 0);
	assert_true(k.n > 50);
	page_load(&p);
	for (i = 0; i < k.n; i++) {
		/* Sections are documented by their keys (or a subsection); keys
		 * themselves each need an entry, refused ones included. */
		if (k.flags[i] & CONFIG_KEY_SECTION) {
			if (!strstr(p.text, k.name[i])) {
				print_error("section '%s' is not mentioned in spilttea-ops.yaml(5)\n",
					    k.name[i]);
				missing++;
			}
			continue;
		}
		if (!page_has_entry(&p, k.name[i])) {
			print_error("key '%s' has no '.It Ic %s' entry in spilttea-ops.yaml(5)\n",
				    k.name[i], k.name[i]);
			missing++;
		}
	}
	page_free(&p);
	keys_free(&k);
	assert_int_equal(missing, 0);
}

static void test_every_entry_is_a_key(void **state)
{
	struct keys k = { 0 };
	struct page p;
	size_t i, j, unknown = 0;

	(void)state;
	assert_int_equal(config_schema_walk(collect, &k), 0);
	page_load(&p);
	assert_true(p.n > 50);
	for (i = 0; i < p.n; i++) {
		for (j = 0; j < k.n; j++)
			if (strcmp(p.entry[i], k.name[j]) == 0)
				break;
		if (j == k.n) {
			print_error("spilttea-ops.yaml(5) documents '%s', which the loader does not know\n",
				    p.entry[i]);
			unknown++;
		}
	}
	page_free(&p);
	keys_free(&k);
	assert_int_equal(unknown, 0);
}

/* The walk itself: table order, NAME for the entries of a mapping, flags. */
static void test_walk_shape(void **state)
{
	struct keys k = { 0 };
	size_t i;
	int saw_service_container = 0, saw_refused = 0;

	(void)state;
	assert_int_equal(config_schema_walk(collect, &k), 0);
	assert_string_equal(k.name[0], "state_dir");
	assert_true(k.flags[0] & CONFIG_KEY_REQUIRED);
	for (i = 0; i < k.n; i++) {
		if (!strcmp(k.name[i], "services.NAME.container")) {
			saw_service_container = 1;
			assert_true(k.flags[i] & CONFIG_KEY_REQUIRED);
		}
		if (!strcmp(k.name[i], "postgres.password")) {
			saw_refused = 1;
			assert_true(k.flags[i] & CONFIG_KEY_REFUSED);
		}
		if (!strcmp(k.name[i], "services") || !strcmp(k.name[i], "thresholds.disk_percent"))
			assert_true(k.flags[i] & CONFIG_KEY_SECTION);
	}
	assert_true(saw_service_container);
	assert_true(saw_refused);
	keys_free(&k);
}

static int stop_at(void *ud, const char *key, unsigned flags)
{
	int *count = ud;

	(void)key;
	(void)flags;
	return ++*count == 3 ? 42 : 0;
}

static void test_walk_stops(void **state)
{
	int count = 0;

	(void)state;
	assert_int_equal(config_schema_walk(stop_at, &count), 42);
	assert_int_equal(count, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_shape),
		cmocka_unit_test(test_walk_stops),
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_every_entry_is_a_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
