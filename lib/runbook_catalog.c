/*
 * runbook_catalog.c - built-in runbooks (compiled in by cmake/runbooks.cmake)
 * plus those in the configured runbooks_dir, by name.
 */
#include "runbook.h"
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct item {
	struct runbook_entry e;
	const struct runbook_embedded *emb;  /* built-in, or NULL */
	char *path;                          /* runbooks_dir file, or NULL */
};

struct runbook_catalog {
	const struct engine_registry *reg;
	struct item *items;
	size_t n, cap;
};

static void item_release(struct item *it)
{
	free(it->e.name);
	free(it->e.description);
	free(it->e.source);
	free(it->e.error);
	free(it->path);
	memset(it, 0, sizeof(*it));
}

void runbook_catalog_free(struct runbook_catalog *cat)
{
	size_t i;

	if (!cat)
		return;
	for (i = 0; i < cat->n; i++)
		item_release(&cat->items[i]);
	free(cat->items);
	free(cat);
}

size_t runbook_catalog_count(const struct runbook_catalog *cat)
{
	return cat->n;
}

const struct runbook_entry *runbook_catalog_at(const struct runbook_catalog *cat, size_t i)
{
	return i < cat->n ? &cat->items[i].e : NULL;
}

/* "dir/name.yaml" -> "name" (caller frees); NULL when not a runbook file. */
static char *name_of_file(const char *file)
{
	const char *base = strrchr(file, '/');
	size_t n;

	base = base ? base + 1 : file;
	n = strlen(base);
	if (base[0] == '.')
		return NULL;
	if (n > 5 && !strcmp(base + n - 5, ".yaml"))
		return strndup(base, n - 5);
	if (n > 4 && !strcmp(base + n - 4, ".yml"))
		return strndup(base, n - 4);
	return NULL;
}

static struct item *find_item(const struct runbook_catalog *cat, const char *name)
{
	size_t i;

	for (i = 0; i < cat->n; i++)
		if (!strcmp(cat->items[i].e.name, name))
			return &cat->items[i];
	return NULL;
}

/* Loads the item's runbook and checks that its name matches the file's. */
static int load_item(const struct runbook_catalog *cat, const struct item *it,
		     struct runbook **out, struct st_error *err)
{
	struct runbook *rb = NULL;
	int rc;

	*out = NULL;
	if (it->emb)
		rc = runbook_load_buffer(cat->reg, it->emb->file, it->emb->data, it->emb->len, &rb, err);
	else
		rc = runbook_load_file(cat->reg, it->path, &rb, err);
	if (rc)
		return rc;
	if (strcmp(rb->name, it->e.name) != 0) {
		rc = st_error_set(err, ST_ECONFIG,
				  "%s: runbook name '%s' does not match its file name (expected '%s')",
				  it->emb ? it->emb->file : it->path, rb->name, it->e.name);
		runbook_free(rb);
		return rc;
	}
	if (it->emb) {
		char *src = strdup(RUNBOOK_SOURCE_BUILTIN);

		if (!src) {
			runbook_free(rb);
			return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
		}
		free(rb->source);
		rb->source = src;
	}
	*out = rb;
	return 0;
}

/* Fills description/error of an item by loading it. */
static int describe(struct runbook_catalog *cat, struct item *it)
{
	struct st_error err = { 0 };
	struct runbook *rb = NULL;
	int rc = load_item(cat, it, &rb, &err);

	if (rc == ST_ENOMEM)
		return rc;
	if (rc) {
		it->e.error = strdup(err.message);
		return it->e.error ? 0 : ST_ENOMEM;
	}
	if (rb->description && !(it->e.description = strdup(rb->description)))
		rc = ST_ENOMEM;
	runbook_free(rb);
	return rc;
}

static struct item *add_item(struct runbook_catalog *cat)
{
	if (cat->n == cat->cap) {
		size_t cap = cat->cap ? cat->cap * 2 : 16;
		struct item *p = realloc(cat->items, cap * sizeof(*p));

		if (!p)
			return NULL;
		cat->items = p;
		cat->cap = cap;
	}
	memset(&cat->items[cat->n], 0, sizeof(cat->items[0]));
	return &cat->items[cat->n++];
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->e.name, ((const struct item *)b)->e.name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(struct runbook_catalog *cat, const char *dir, struct st_error *err)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = 0;

	d = opendir(dir);
	if (!d) {
		rc = st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO,
				  "cannot read runbooks_dir '%s': %s", dir, strerror(errno));
		st_error_hint(err, "fix runbooks_dir in the configuration or create the directory");
		return rc;
	}
	/* Sorted, so that the order of loading (and errors) is stable. */
	while ((de = readdir(d)) != NULL) {
		char *name = name_of_file(de->d_name);

		if (!name)
			continue;
		free(name);
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*p));
			if (!p)
				goto nomem;
			names = p;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		char *path = malloc(strlen(dir) + strlen(names[i]) + 2);
		char *name = name_of_file(names[i]);
		struct stat st;
		struct item *it;

		if (!path || !name) {
			free(path);
			free(name);
			goto nomem;
		}
		sprintf(path, "%s/%s", dir, names[i]);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(path);
			free(name);
			continue;
		}
		it = find_item(cat, name);
		if (it && !it->emb) {
			/* name.yaml and name.yml: the first in sort order wins. */
			free(path);
			free(name);
			continue;
		}
		if (it) {
			item_release(it);
			it->e.overrides_builtin = 1;
		} else if (!(it = add_item(cat))) {
			free(path);
			free(name);
			goto nomem;
		}
		it->e.name = name;
		it->path = path;
		if (!(it->e.source = strdup(path)) || describe(cat, it) != 0)
			goto nomem;
	}
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory reading runbooks_dir '%s'", dir);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int runbook_catalog_open(const struct engine_registry *reg, const char *runbooks_dir,
			 struct runbook_catalog **out, struct st_error *err)
{
	struct runbook_catalog *cat = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	cat = calloc(1, sizeof(*cat));
	if (!cat)
		return st_error_set(err, ST_ENOMEM, "out of memory opening the runbook catalog");
	cat->reg = reg;
	for (i = 0; i < runbook_embedded_count; i++) {
		struct item *it = add_item(cat);

		if (!it || !(it->e.name = name_of_file(runbook_embedded[i].file)) ||
		    !(it->e.source = strdup(RUNBOOK_SOURCE_BUILTIN))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory opening the runbook catalog");
			goto out;
		}
		it->emb = &runbook_embedded[i];
		if (describe(cat, it) != 0) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory opening the runbook catalog");
			goto out;
		}
	}
	if (runbooks_dir && *runbooks_dir && (rc = add_dir(cat, runbooks_dir, err)) != 0)
		goto out;
	qsort(cat->items, cat->n, sizeof(*cat->items), cmp_name);
	*out = cat;
	cat = NULL;
out:
	runbook_catalog_free(cat);
	return rc;
}

static int looks_like_path(const char *s)
{
	size_t n = strlen(s);

	return strchr(s, '/') || (n > 5 && !strcmp(s + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(s + n - 4, ".yml"));
}

int runbook_catalog_load(const struct runbook_catalog *cat, const char *name_or_path,
			 struct runbook **out, struct st_error *err)
{
	const struct item *it;

	*out = NULL;
	if (looks_like_path(name_or_path))
		return runbook_load_file(cat->reg, name_or_path, out, err);
	it = find_item(cat, name_or_path);
	if (!it) {
		st_error_set(err, ST_ENOTFOUND, "unknown runbook '%s'", name_or_path);
		return st_error_hint(err, "see 'spilttea-ops runbook list'");
	}
	return load_item(cat, it, out, err);
}
