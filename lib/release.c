/*
 * release.c - per-service release history files and the retention policy
 * (see release.h).
 */
#include "release.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "text.h"
#include "timeutil.h"

/* A history keeps a few dozen releases: far below this. */
#define RELEASE_HISTORY_MAX (16 * 1024 * 1024)

#define RELEASES_DIR "releases"

static int valid_service(const char *s)
{
	const char *p;

	if (!s || !*s || strlen(s) > 100)
		return 0;
	for (p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *p))
			return 0;
	return 1;
}

static void record_release(struct release_record *r)
{
	free(r->image);
	free(r->image_id);
	free(r->previous_image_id);
	free(r->time);
	free(r->user);
	free(r->source);
	free(r->rollback_to);
	free(r->git_commit);
	free(r->git_ref);
	free(r->strategy);
	free(r->status);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

void release_history_free(struct release_history *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->count; i++)
		record_release(&h->records[i]);
	free(h->records);
	free(h->service);
	free(h->path);
	free(h);
}

int release_set(char **field, const char *value, struct st_error *err)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

static int dup_or_null(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int copy_record(struct release_record *dst, const struct release_record *src)
{
	memset(dst, 0, sizeof(*dst));
	snprintf(dst->id, sizeof(dst->id), "%s", src->id);
	dst->git_dirty = src->git_dirty;
	dst->pruned = src->pruned;
	if (dup_or_null(&dst->image, src->image) || dup_or_null(&dst->image_id, src->image_id) ||
	    dup_or_null(&dst->previous_image_id, src->previous_image_id) ||
	    dup_or_null(&dst->time, src->time) || dup_or_null(&dst->user, src->user) ||
	    dup_or_null(&dst->source, src->source) || dup_or_null(&dst->rollback_to, src->rollback_to) ||
	    dup_or_null(&dst->git_commit, src->git_commit) || dup_or_null(&dst->git_ref, src->git_ref) ||
	    dup_or_null(&dst->strategy, src->strategy) || dup_or_null(&dst->status, src->status) ||
	    dup_or_null(&dst->error, src->error)) {
		record_release(dst);
		return -1;
	}
	return 0;
}

struct release_record *release_history_append(struct release_history *h,
					      const struct release_record *rec)
{
	struct release_record *n = realloc(h->records, (h->count + 1) * sizeof(*n));

	if (!n)
		return NULL;
	h->records = n;
	if (copy_record(&h->records[h->count], rec) != 0)
		return NULL;
	return &h->records[h->count++];
}

struct release_record *release_history_find(const struct release_history *h, const char *id)
{
	size_t i;

	for (i = 0; h && id && i < h->count; i++)
		if (!strcmp(h->records[i].id, id))
			return &h->records[i];
	return NULL;
}

void release_new_id(const struct release_history *h, double t, char *id, size_t size)
{
	char base[32];
	int n;

	time_format_compact(t, base, sizeof(base));
	snprintf(id, size, "%s", base);
	for (n = 2; release_history_find(h, id) && n < 10000; n++)
		snprintf(id, size, "%s_%d", base, n);
}

static int is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

const struct release_record *release_current(const struct release_history *h)
{
	size_t i;

	for (i = h ? h->count : 0; i > 0; i--)
		if (is(h->records[i - 1].status, "ok"))
			return &h->records[i - 1];
	return NULL;
}

const struct release_record *release_previous(const struct release_history *h)
{
	const struct release_record *cur = release_current(h);
	size_t i;

	if (!cur)
		return NULL;
	for (i = (size_t)(cur - h->records); i > 0; i--) {
		const struct release_record *r = &h->records[i - 1];

		if (is(r->status, "ok") && !r->pruned && r->image_id && !is(r->image_id, cur->image_id))
			return r;
	}
	return NULL;
}

/* ---- retention ------------------------------------------------------------ */

static int in_list(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s && i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

size_t release_retention(const struct release_history *h, size_t keep, const char *running_image_id,
			 const char *previous_image_id, size_t *drop)
{
	const char **kept;
	unsigned char *dropped;
	size_t i, nkept = 0, counted = 0, ndrop = 0;

	if (!h || h->count == 0)
		return 0;
	kept = calloc(h->count + 2, sizeof(*kept));
	dropped = calloc(h->count, 1);
	if (!kept || !dropped) {
		/* Without memory we remove nothing: keeping images is the safe side. */
		free(kept);
		free(dropped);
		return 0;
	}
	for (i = h->count; i > 0; i--) {
		const struct release_record *r = &h->records[i - 1];
		int live = is(r->status, "ok") || is(r->status, "rolled-back");
		int protect = is(r->status, "pending") || is(r->image_id, running_image_id) ||
			      is(r->image_id, previous_image_id);

		if (r->pruned)
			continue;
		if (!r->image_id) {
			/* Nothing to point a tag at was recorded; leave it alone. */
			continue;
		}
		if (in_list(kept, nkept, r->image_id))
			continue;
		if (live && counted < keep) {
			kept[nkept++] = r->image_id;
			counted++;
		} else if (protect) {
			kept[nkept++] = r->image_id;
		} else {
			dropped[i - 1] = 1;
		}
	}
	/* A dropped release whose image a newer kept one shares never
	 * happens (in_list above), but an older dropped one may share the
	 * image of a newer dropped one: both go. */
	for (i = 0; i < h->count; i++)
		if (dropped[i])
			drop[ndrop++] = i;
	free(kept);
	free(dropped);
	return ndrop;
}

/* ---- files ------------------------------------------------------------------ */

static const char *str_member(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int parse_record(const json_t *o, struct release_record *r)
{
	const char *id = str_member(o, "id");

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) || !id || !*id || strlen(id) >= sizeof(r->id))
		return -1;
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->git_dirty = json_is_true(json_object_get(o, "git_dirty"));
	r->pruned = json_is_true(json_object_get(o, "pruned"));
	if (dup_or_null(&r->image, str_member(o, "image")) ||
	    dup_or_null(&r->image_id, str_member(o, "image_id")) ||
	    dup_or_null(&r->previous_image_id, str_member(o, "previous_image_id")) ||
	    dup_or_null(&r->time, str_member(o, "time")) || dup_or_null(&r->user, str_member(o, "user")) ||
	    dup_or_null(&r->source, str_member(o, "source")) ||
	    dup_or_null(&r->rollback_to, str_member(o, "rollback_to")) ||
	    dup_or_null(&r->git_commit, str_member(o, "git_commit")) ||
	    dup_or_null(&r->git_ref, str_member(o, "git_ref")) ||
	    dup_or_null(&r->strategy, str_member(o, "strategy")) ||
	    dup_or_null(&r->status, str_member(o, "status")) ||
	    dup_or_null(&r->error, str_member(o, "error"))) {
		record_release(r);
		return -2;
	}
	if (!r->status && dup_or_null(&r->status, "ok")) {
		record_release(r);
		return -2;
	}
	return 0;
}

static struct release_history *history_new(const char *path, const char *service)
{
	struct release_history *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->service = strdup(service);
	h->path = strdup(path);
	if (!h->service || !h->path) {
		release_history_free(h);
		return NULL;
	}
	return h;
}

int release_history_parse(const char *path, const char *service, const char *text,
			  struct release_history **out, struct st_error *err)
{
	struct release_history *h = NULL;
	json_t *root = NULL, *list;
	json_error_t jerr;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!(h = history_new(path, service)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	if (text && *text) {
		root = json_loads(text, 0, &jerr);
		if (!root) {
			rc = st_error_set(err, ST_EPROTO, "cannot read release history '%s': line %d: %s",
					  path, jerr.line, jerr.text);
			goto out;
		}
		list = json_object_get(root, "releases");
		if (!json_is_object(root) || !json_is_array(list) ||
		    !is(str_member(root, "service"), service)) {
			rc = st_error_set(err, ST_EPROTO,
					  "cannot read release history '%s': not the history of '%s'", path,
					  service);
			goto out;
		}
		h->records = calloc(json_array_size(list) + 1, sizeof(*h->records));
		if (!h->records) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		for (i = 0; i < json_array_size(list); i++) {
			int r = parse_record(json_array_get(list, i), &h->records[h->count]);

			if (r == -2) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto out;
			}
			if (r != 0) {
				rc = st_error_set(err, ST_EPROTO,
						  "cannot read release history '%s': release %zu has no id",
						  path, i + 1);
				goto out;
			}
			h->count++;
		}
	}
	*out = h;
	h = NULL;
out:
	json_decref(root);
	release_history_free(h);
	return rc;
}

static char *history_path(const char *state_dir, const char *service)
{
	size_t n = strlen(state_dir) + strlen(service) + sizeof(RELEASES_DIR) + 8;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s/%s.json", state_dir, RELEASES_DIR, service);
	return p;
}

int release_history_load(const char *state_dir, const char *service,
			 struct release_history **out, struct st_error *err)
{
	char *path = NULL, *text = NULL;
	int rc = 0;

	*out = NULL;
	if (!valid_service(service))
		return st_error_set(err, ST_EUSAGE, "'%s' is not a service name", service ? service : "");
	if (!(path = history_path(state_dir, service)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	/* No file yet: an empty history. */
	rc = text_read_file(path, RELEASE_HISTORY_MAX, 0, "release history", &text, NULL, err);
	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		rc = 0;
	} else if (rc) {
		goto out;
	}
	rc = release_history_parse(path, service, text, out, err);
out:
	free(text);
	free(path);
	return rc;
}

static int put_str(json_t *o, const char *key, const char *v)
{
	return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

int release_history_save(const struct release_history *h, struct st_error *err)
{
	json_t *root = NULL, *list;
	char *text = NULL, *dir = NULL, *slash;
	size_t i;
	int rc = 0;

	root = json_object();
	list = json_array();
	if (!root || !list || json_object_set_new(root, "service", json_string(h->service)) ||
	    json_object_set_new(root, "releases", list))
		goto nomem;
	for (i = 0; i < h->count; i++) {
		const struct release_record *r = &h->records[i];
		json_t *o = json_object();

		if (!o || json_array_append_new(list, o) || put_str(o, "id", r->id) ||
		    put_str(o, "image", r->image) || put_str(o, "image_id", r->image_id) ||
		    put_str(o, "previous_image_id", r->previous_image_id) ||
		    put_str(o, "time", r->time) || put_str(o, "user", r->user) ||
		    put_str(o, "source", r->source) || put_str(o, "rollback_to", r->rollback_to) ||
		    put_str(o, "git_commit", r->git_commit) ||
		    (r->git_commit && json_object_set_new(o, "git_dirty", json_boolean(r->git_dirty))) ||
		    put_str(o, "git_ref", r->git_ref) || put_str(o, "strategy", r->strategy) ||
		    put_str(o, "status", r->status) || put_str(o, "error", r->error) ||
		    (r->pruned && json_object_set_new(o, "pruned", json_true())))
			goto nomem;
	}
	if (!(text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) || !(dir = strdup(h->path)))
		goto nomem;
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if ((rc = atomic_file_mkdirs(dir, 0700, err)) != 0)
		goto out;
	if ((rc = atomic_file_write_all(h->path, text, strlen(text), 0600, err)) != 0)
		st_error_wrap(err, "cannot save the release history of '%s'", h->service);
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory saving the release history");
out:
	free(text);
	free(dir);
	json_decref(root);
	return rc;
}
