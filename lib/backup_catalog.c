/*
 * backup_catalog.c - names, manifests, listing, retention (see backup_catalog.h).
 */
#include "backup_catalog.h"
#include "atomic_file.h"
#include "text.h"
#include "sbuf.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char PREFIX[] = "backup_";

const char *backup_kind_name(enum backup_kind kind)
{
	switch (kind) {
	case BACKUP_KIND_FULL: return "full";
	case BACKUP_KIND_SCHEMA: return "schema";
	case BACKUP_KIND_DATA: return "data";
	}
	return "?";
}

int backup_kind_parse(const char *name, enum backup_kind *out, struct st_error *err)
{
	if (name && !strcmp(name, "full"))
		*out = BACKUP_KIND_FULL;
	else if (name && !strcmp(name, "schema"))
		*out = BACKUP_KIND_SCHEMA;
	else if (name && !strcmp(name, "data"))
		*out = BACKUP_KIND_DATA;
	else
		return st_error_set(err, ST_EUSAGE, "unknown backup kind '%s' (full, schema or data)",
				    name ? name : "");
	return 0;
}

/* ---- names ------------------------------------------------------------- */

static const char *kind_infix(enum backup_kind kind)
{
	return kind == BACKUP_KIND_SCHEMA ? "_schema" : kind == BACKUP_KIND_DATA ? "_data" : "";
}

char *backup_name_format(double t, enum backup_kind kind, enum backup_codec codec, char *out,
			 size_t size)
{
	char stamp[32];

	snprintf(out, size, "%s%s%s%s", PREFIX, time_format_compact(t, stamp, sizeof(stamp)),
		 kind_infix(kind), backup_codec_suffix(codec));
	return out;
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int backup_name_parse(const char *name, struct backup_name *out)
{
	static const struct { const char *infix; enum backup_kind kind; } kinds[] = {
		{ "_schema", BACKUP_KIND_SCHEMA }, { "_data", BACKUP_KIND_DATA }, { "", BACKUP_KIND_FULL },
	};
	static const enum backup_codec codecs[] = { BACKUP_CODEC_GZIP, BACKUP_CODEC_ZSTD, BACKUP_CODEC_NONE };
	const size_t plen = sizeof(PREFIX) - 1;
	struct tm tm;
	struct backup_name bn;
	const char *p;
	int y, mo, d, h, mi, s;
	size_t k, c;
	time_t t;

	if (strncmp(name, PREFIX, plen) != 0 || strlen(name) < plen + 15)
		return -1;
	p = name + plen;
	if (digits(p, 4, &y) || digits(p + 4, 2, &mo) || digits(p + 6, 2, &d) || p[8] != '_' ||
	    digits(p + 9, 2, &h) || digits(p + 11, 2, &mi) || digits(p + 13, 2, &s))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = timegm(&tm);
	/* Rejects 20261332_256199 and the like: timegm normalises them. */
	if (t == (time_t)-1 || tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d ||
	    tm.tm_hour != h || tm.tm_min != mi || tm.tm_sec != s)
		return -1;
	p += 15;
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t il = strlen(kinds[k].infix);

		if (strncmp(p, kinds[k].infix, il) != 0)
			continue;
		for (c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++)
			if (!strcmp(p + il, backup_codec_suffix(codecs[c]))) {
				bn.time = t;
				bn.kind = kinds[k].kind;
				bn.codec = codecs[c];
				if (out)
					*out = bn;
				return 0;
			}
	}
	return -1;
}

char *backup_manifest_name(const char *name, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", name, BACKUP_MANIFEST_SUFFIX);

	return n < 0 || (size_t)n >= size ? NULL : out;
}

int backup_is_partial_name(const char *name)
{
	return name[0] == '.' && !strncmp(name + 1, PREFIX, sizeof(PREFIX) - 1) &&
	       atomic_file_is_partial(name);
}

/* ---- manifest ---------------------------------------------------------- */

void backup_manifest_release(struct backup_manifest *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->ntables; i++)
		free(m->tables[i]);
	free(m->tables);
	for (i = 0; i < m->ncounts; i++)
		free(m->counts[i].table);
	free(m->counts);
	memset(m, 0, sizeof(*m));
}

int backup_manifest_add_table(struct backup_manifest *m, const char *table, struct st_error *err)
{
	char **t = realloc(m->tables, (m->ntables + 1) * sizeof(*t));

	if (!t)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	m->tables = t;
	if (!(t[m->ntables] = strdup(table)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	m->ntables++;
	return 0;
}

int backup_manifest_add_count(struct backup_manifest *m, const char *table, long long rows,
			      struct st_error *err)
{
	struct backup_table_count *c = realloc(m->counts, (m->ncounts + 1) * sizeof(*c));

	if (!c)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	m->counts = c;
	if (!(c[m->ncounts].table = strdup(table)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	c[m->ncounts].rows = rows;
	m->ncounts++;
	return 0;
}

long long backup_manifest_count(const struct backup_manifest *m, const char *table)
{
	size_t i;

	for (i = 0; i < m->ncounts; i++)
		if (!strcmp(m->counts[i].table, table))
			return m->counts[i].rows;
	return -1;
}

json_t *backup_manifest_to_json(const struct backup_manifest *m)
{
	char started[40], verified_at[40];
	json_t *j, *tables, *counts;
	size_t i;

	tables = json_array();
	counts = json_object();
	for (i = 0; tables && i < m->ntables; i++)
		json_array_append_new(tables, json_string(m->tables[i]));
	for (i = 0; counts && i < m->ncounts; i++)
		json_object_set_new(counts, m->counts[i].table, json_integer(m->counts[i].rows));
	j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:s,s:s,s:f,s:s,s:s,s:b,s:o,s:o,s:b}",
		      "format", m->format ? m->format : BACKUP_MANIFEST_FORMAT,
		      "name", m->name,
		      "database", m->database,
		      "kind", backup_kind_name(m->kind),
		      "server_version", m->server_version,
		      "pg_dump_version", m->pg_dump_version,
		      "compression", backup_codec_name(m->codec),
		      "compression_level", m->level,
		      "bytes_raw", (json_int_t)m->bytes_raw,
		      "bytes_compressed", (json_int_t)m->bytes_compressed,
		      "sha256", m->sha256,
		      "started", time_format_rfc3339(m->started, started, sizeof(started)),
		      "duration_seconds", round(m->duration * 1000) / 1000,
		      "tool_version", m->tool_version,
		      "via", m->via,
		      "verified", m->verified,
		      "tables", tables,
		      "row_counts", counts,
		      "counts_in_dump_snapshot", m->snapshot_shared);
	if (!j)
		return NULL;
	if (m->verified_at > 0 &&
	    json_object_set_new(j, "verified_at",
				json_string(time_format_rfc3339(m->verified_at, verified_at,
								sizeof(verified_at)))) != 0) {
		json_decref(j);
		return NULL;
	}
	if (m->verify_error[0] && json_object_set_new(j, "verify_error", json_string(m->verify_error)) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* "2026-11-27T22:44:16.123Z" (fraction optional) -> epoch seconds. */
static int parse_rfc3339(const char *s, double *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	double frac = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return -1;
	s += n;
	if (*s == '.') {
		double scale = 0.1;
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			frac += (*s - '0') * scale;
	}
	if (strcmp(s, "Z") != 0)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = (double)timegm(&tm) + frac;
	return 0;
}

static int get_str(const json_t *j, const char *key, char *out, size_t size, int required,
		   const char *what, struct st_error *err)
{
	const json_t *v = json_object_get(j, key);

	if (!v && !required) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		return st_error_set(err, ST_EPROTO, "manifest '%s': %s %s", what, key,
				    v ? "is not a string" : "is missing");
	if (json_string_length(v) >= size)
		return st_error_set(err, ST_EPROTO, "manifest '%s': %s is too long", what, key);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_u64(const json_t *j, const char *key, uint64_t *out, const char *what,
		   struct st_error *err)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return st_error_set(err, ST_EPROTO, "manifest '%s': %s %s", what, key,
				    v ? "is not a count" : "is missing");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

int backup_manifest_from_json(const json_t *j, const char *what, struct backup_manifest *m,
			      struct st_error *err)
{
	char buf[64];
	const json_t *v, *item;
	const char *key;
	size_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(j))
		return st_error_set(err, ST_EPROTO, "manifest '%s' is not a JSON object", what);
	v = json_object_get(j, "format");
	if (!json_is_integer(v) || json_integer_value(v) != BACKUP_MANIFEST_FORMAT)
		return st_error_set(err, ST_EPROTO, "manifest '%s': unknown format (expected %d)", what,
				    BACKUP_MANIFEST_FORMAT);
	m->format = BACKUP_MANIFEST_FORMAT;
	if ((rc = get_str(j, "name", m->name, sizeof(m->name), 1, what, err)) ||
	    (rc = get_str(j, "database", m->database, sizeof(m->database), 1, what, err)) ||
	    (rc = get_str(j, "server_version", m->server_version, sizeof(m->server_version), 0, what, err)) ||
	    (rc = get_str(j, "pg_dump_version", m->pg_dump_version, sizeof(m->pg_dump_version), 0, what, err)) ||
	    (rc = get_str(j, "sha256", m->sha256, sizeof(m->sha256), 1, what, err)) ||
	    (rc = get_str(j, "tool_version", m->tool_version, sizeof(m->tool_version), 0, what, err)) ||
	    (rc = get_str(j, "via", m->via, sizeof(m->via), 0, what, err)) ||
	    (rc = get_str(j, "verify_error", m->verify_error, sizeof(m->verify_error), 0, what, err)) ||
	    (rc = get_u64(j, "bytes_raw", &m->bytes_raw, what, err)) ||
	    (rc = get_u64(j, "bytes_compressed", &m->bytes_compressed, what, err)))
		goto fail;
	if (!is_hex64(m->sha256)) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': sha256 is not 64 hex digits", what);
		goto fail;
	}
	if ((rc = get_str(j, "kind", buf, sizeof(buf), 1, what, err)) ||
	    (rc = backup_kind_parse(buf, &m->kind, err)))
		goto fail;
	if ((rc = get_str(j, "compression", buf, sizeof(buf), 1, what, err)) ||
	    (rc = backup_codec_parse(buf, &m->codec, err)))
		goto fail;
	if ((rc = get_str(j, "started", buf, sizeof(buf), 1, what, err)) != 0)
		goto fail;
	if (parse_rfc3339(buf, &m->started) != 0) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': started is not an RFC 3339 UTC time", what);
		goto fail;
	}
	if ((rc = get_str(j, "verified_at", buf, sizeof(buf), 0, what, err)) != 0)
		goto fail;
	if (buf[0] && parse_rfc3339(buf, &m->verified_at) != 0) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': verified_at is not an RFC 3339 UTC time", what);
		goto fail;
	}
	v = json_object_get(j, "verified");
	if (!json_is_boolean(v)) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': verified is missing", what);
		goto fail;
	}
	m->verified = json_is_true(v);
	m->snapshot_shared = json_is_true(json_object_get(j, "counts_in_dump_snapshot"));
	m->level = (int)json_integer_value(json_object_get(j, "compression_level"));
	m->duration = json_number_value(json_object_get(j, "duration_seconds"));
	v = json_object_get(j, "tables");
	if (v && !json_is_array(v)) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': tables is not a list", what);
		goto fail;
	}
	json_array_foreach(v, i, item) {
		if (!json_is_string(item)) {
			rc = st_error_set(err, ST_EPROTO, "manifest '%s': tables holds a non-string", what);
			goto fail;
		}
		if ((rc = backup_manifest_add_table(m, json_string_value(item), err)) != 0)
			goto fail;
	}
	v = json_object_get(j, "row_counts");
	if (v && !json_is_object(v)) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s': row_counts is not an object", what);
		goto fail;
	}
	json_object_foreach((json_t *)v, key, item) {
		if (!json_is_integer(item)) {
			rc = st_error_set(err, ST_EPROTO, "manifest '%s': row count of '%s' is not a number",
					  what, key);
			goto fail;
		}
		if ((rc = backup_manifest_add_count(m, key, json_integer_value(item), err)) != 0)
			goto fail;
	}
	return 0;
fail:
	backup_manifest_release(m);
	return rc;
}

static int join_path(char *out, size_t size, const char *dir, const char *name, struct st_error *err)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return st_error_set(err, ST_EUSAGE, "path too long: '%s/%s'", dir, name);
	return 0;
}

int backup_manifest_parse(const char *data, size_t len, const char *what, struct backup_manifest *m,
			  struct st_error *err)
{
	json_error_t jerr;
	json_t *j;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len > BACKUP_MANIFEST_MAX)
		return st_error_set(err, ST_EPROTO, "manifest '%s' is too large", what);
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return st_error_set(err, ST_EPROTO, "manifest '%s' is not valid JSON: %s (line %d)", what,
				    jerr.text, jerr.line);
	rc = backup_manifest_from_json(j, what, m, err);
	json_decref(j);
	return rc;
}

/* The whole of fd, which it closes (at most BACKUP_MANIFEST_MAX bytes). *text: caller
 * frees. */
static int read_manifest(int fd, const char *mname, char **text, size_t *len,
			 struct st_error *err)
{
	struct sbuf sb = SBUF_INIT;
	char buf[8192];
	size_t n;
	FILE *f;
	int rc = 0;

	*text = NULL;
	*len = 0;
	if (!(f = fdopen(fd, "rb"))) {
		close(fd);
		return st_error_set(err, ST_EIO, "cannot read manifest '%s': %s", mname, strerror(errno));
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (sb.len + n > BACKUP_MANIFEST_MAX) {
			rc = st_error_set(err, ST_EPROTO, "manifest '%s' is too large", mname);
			goto out;
		}
		if (sbuf_append(&sb, buf, n)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory reading manifest '%s'", mname);
			goto out;
		}
	}
	if (ferror(f)) {
		rc = st_error_set(err, ST_EIO, "cannot read manifest '%s': %s", mname, strerror(errno));
		goto out;
	}
	*len = sb.len;
	*text = sbuf_detach(&sb);
	if (!*text)
		rc = st_error_set(err, ST_ENOMEM, "out of memory reading manifest '%s'", mname);
out:
	sbuf_release(&sb);
	fclose(f);
	return rc;
}

int backup_manifest_load(const char *dir, const char *name, struct backup_manifest *m,
			 struct st_error *err)
{
	char mname[BACKUP_NAME_MAX + 8], path[4096];
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	if (!backup_manifest_name(name, mname, sizeof(mname)))
		return st_error_set(err, ST_EUSAGE, "backup name too long: '%s'", name);
	if ((rc = join_path(path, sizeof(path), dir, mname, err)) != 0)
		return rc;
	/* Not followed through a symlink: a link to another file would have
	 * its bytes quoted in the JSON error below (and it is not a manifest
	 * this tool wrote: those are regular files, renamed into place). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			return st_error_set(err, ST_EPROTO, "manifest '%s' is a symbolic link", mname);
		return st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO,
				    errno == ENOENT ? "manifest '%s' is missing" : "cannot read manifest '%s': %s",
				    mname, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return st_error_set(err, ST_EPROTO, "manifest '%s' is not a regular file", mname);
	}
	if (st.st_size > BACKUP_MANIFEST_MAX) {
		close(fd);
		return st_error_set(err, ST_EPROTO, "manifest '%s' is too large", mname);
	}
	if ((rc = read_manifest(fd, mname, &text, &len, err)) != 0)
		return rc;
	rc = backup_manifest_parse(text, len, mname, m, err);
	free(text);
	if (rc == 0 && strcmp(m->name, name) != 0) {
		rc = st_error_set(err, ST_EPROTO, "manifest '%s' describes '%s', not '%s'", mname, m->name,
				  name);
		backup_manifest_release(m);
	}
	return rc;
}

int backup_manifest_save(const char *dir, const struct backup_manifest *m, struct st_error *err)
{
	char mname[BACKUP_NAME_MAX + 8], path[4096];
	json_t *j = backup_manifest_to_json(m);
	char *text = NULL;
	int rc;

	if (!j || !(text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if (!backup_manifest_name(m->name, mname, sizeof(mname))) {
		rc = st_error_set(err, ST_EUSAGE, "backup name too long: '%s'", m->name);
		goto out;
	}
	if ((rc = join_path(path, sizeof(path), dir, mname, err)) != 0)
		goto out;
	{
		size_t len = strlen(text);
		char *nl = realloc(text, len + 2);

		if (!nl) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		text = nl;
		text[len] = '\n';
		text[len + 1] = '\0';
	}
	rc = atomic_file_write_all(path, text, strlen(text), 0600, err);
out:
	free(text);
	json_decref(j);
	return rc;
}

/* ---- listing ----------------------------------------------------------- */

void backup_listing_release(struct backup_listing *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->count; i++)
		backup_manifest_release(&l->entries[i].manifest);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

static int newest_first(const void *a, const void *b)
{
	const struct backup_entry *x = a, *y = b;

	if (x->parsed.time != y->parsed.time)
		return x->parsed.time > y->parsed.time ? -1 : 1;
	return strcmp(y->name, x->name);
}

static int manifest_matches(const struct backup_entry *e)
{
	const struct backup_manifest *m = &e->manifest;

	return m->verified && m->bytes_compressed == e->size && m->kind == e->parsed.kind &&
	       m->codec == e->parsed.codec;
}

int backup_list(const char *dir, struct backup_listing *out, struct st_error *err)
{
	DIR *d = NULL;
	struct dirent *de;
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return st_error_set(err, ST_EIO, "cannot read backup directory '%s': %s", dir, strerror(errno));
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct backup_entry *e;
		struct backup_name bn;
		struct st_error merr = { 0 };
		struct stat st;
		size_t nl = strlen(de->d_name);

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (backup_is_partial_name(de->d_name)) {
			out->partials++;
			continue;
		}
		if (backup_name_parse(de->d_name, &bn) != 0) {
			char base[BACKUP_NAME_MAX];
			size_t sl = sizeof(BACKUP_MANIFEST_SUFFIX) - 1;

			/* Our manifests are not foreign files. */
			if (nl > sl && nl - sl < sizeof(base) &&
			    !strcmp(de->d_name + nl - sl, BACKUP_MANIFEST_SUFFIX)) {
				memcpy(base, de->d_name, nl - sl);
				base[nl - sl] = '\0';
				if (backup_name_parse(base, NULL) == 0)
					continue;
			}
			out->foreign++;
			continue;
		}
		if (nl >= BACKUP_NAME_MAX) {
			out->foreign++;
			continue;
		}
		if (out->count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct backup_entry *ne = realloc(out->entries, ncap * sizeof(*ne));
			if (!ne) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory");
				goto out;
			}
			out->entries = ne;
			cap = ncap;
		}
		e = &out->entries[out->count++];
		memset(e, 0, sizeof(*e));
		memcpy(e->name, de->d_name, nl + 1);
		e->ours = 1;
		e->parsed = bn;
		e->size = (uint64_t)st.st_size;
		if (backup_manifest_load(dir, e->name, &e->manifest, &merr) == 0) {
			e->has_manifest = 1;
			e->verified = manifest_matches(e);
		} else {
			text_copy(e->manifest_error, sizeof(e->manifest_error), merr.message);
		}
	}
	if (errno != 0)
		rc = st_error_set(err, ST_EIO, "cannot read backup directory '%s': %s", dir, strerror(errno));
	else if (out->count > 1)
		qsort(out->entries, out->count, sizeof(*out->entries), newest_first);
out:
	closedir(d);
	if (rc)
		backup_listing_release(out);
	return rc;
}

const struct backup_entry *backup_listing_find(const struct backup_listing *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		if (!strcmp(l->entries[i].name, name))
			return &l->entries[i];
	return NULL;
}

/* ---- retention --------------------------------------------------------- */

const char *backup_verdict_text(enum backup_verdict v)
{
	switch (v) {
	case BACKUP_KEEP_FOREIGN: return "kept: not a spilttea-ops backup";
	case BACKUP_KEEP_NO_MANIFEST: return "kept: no readable manifest";
	case BACKUP_KEEP_NEWEST: return "kept: among the newest verified of its database and kind (keep_min)";
	case BACKUP_KEEP_YOUNG: return "kept: younger than keep_days";
	case BACKUP_DELETE_OLD: return "delete: older than keep_days";
	}
	return "?";
}

int backup_verdict_deletes(enum backup_verdict v)
{
	return v == BACKUP_DELETE_OLD;
}

void backup_retention_plan(const struct backup_entry *entries, size_t n, double now,
			   const struct backup_retention *policy, enum backup_verdict *verdicts)
{
	const double max_age = (double)policy->keep_days * 86400.0;
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct backup_entry *e = &entries[i];

		if (!e->ours)
			verdicts[i] = BACKUP_KEEP_FOREIGN;
		else if (!e->has_manifest)
			verdicts[i] = BACKUP_KEEP_NO_MANIFEST;
		else if (now - (double)e->parsed.time > max_age)
			verdicts[i] = BACKUP_DELETE_OLD;
		else
			verdicts[i] = BACKUP_KEEP_YOUNG;
	}
	/* Per database (the manifest's) and kind, protect the keep_min newest
	 * verified: repeatedly pick the newest unprotected one of the group (n
	 * is small: a directory of backups). A group is handled once, from its
	 * first member in the listing. */
	for (i = 0; i < n; i++) {
		const struct backup_entry *g = &entries[i];
		long kept;

		if (!g->ours || !g->has_manifest || !g->verified)
			continue;
		for (j = 0; j < i; j++)
			if (entries[j].ours && entries[j].has_manifest && entries[j].verified &&
			    entries[j].parsed.kind == g->parsed.kind &&
			    !strcmp(entries[j].manifest.database, g->manifest.database))
				break;
		if (j < i)
			continue;
		for (kept = 0; kept < policy->keep_min; kept++) {
			size_t best = n;

			for (j = 0; j < n; j++) {
				const struct backup_entry *e = &entries[j];

				if (!e->ours || !e->has_manifest || !e->verified ||
				    e->parsed.kind != g->parsed.kind ||
				    strcmp(e->manifest.database, g->manifest.database) != 0 ||
				    verdicts[j] == BACKUP_KEEP_NEWEST)
					continue;
				if (best == n || e->parsed.time > entries[best].parsed.time ||
				    (e->parsed.time == entries[best].parsed.time &&
				     strcmp(e->name, entries[best].name) > 0))
					best = j;
			}
			if (best == n)
				break;
			verdicts[best] = BACKUP_KEEP_NEWEST;
		}
	}
}

static int sync_dir(const char *dir, struct st_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0 || fsync(fd) != 0)
		rc = st_error_set(err, ST_EIO, "cannot sync directory '%s': %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int backup_delete(const char *dir, const char *name, struct st_error *err)
{
	char path[4096], mname[BACKUP_NAME_MAX + 8];
	int rc;

	if (backup_name_parse(name, NULL) != 0)
		return st_error_set(err, ST_EUSAGE, "'%s' is not a spilttea-ops backup name", name);
	if ((rc = join_path(path, sizeof(path), dir, name, err)) != 0)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return st_error_set(err, ST_EIO, "cannot delete '%s': %s", path, strerror(errno));
	backup_manifest_name(name, mname, sizeof(mname));
	if ((rc = join_path(path, sizeof(path), dir, mname, err)) != 0)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return st_error_set(err, ST_EIO, "cannot delete '%s': %s", path, strerror(errno));
	return sync_dir(dir, err);
}

int backup_sweep(const char *dir, size_t *removed, struct st_error *err)
{
	DIR *d;
	struct dirent *de;
	size_t count = 0;
	int rc = 0;

	if (removed)
		*removed = 0;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return st_error_set(err, ST_EIO, "cannot read backup directory '%s': %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		const size_t sl = sizeof(BACKUP_MANIFEST_SUFFIX) - 1;
		size_t nl = strlen(de->d_name);
		struct stat st;
		int drop = 0;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (backup_is_partial_name(de->d_name)) {
			drop = 1;
		} else if (nl > sl && nl - sl < BACKUP_NAME_MAX &&
			   !strcmp(de->d_name + nl - sl, BACKUP_MANIFEST_SUFFIX)) {
			char base[BACKUP_NAME_MAX];

			memcpy(base, de->d_name, nl - sl);
			base[nl - sl] = '\0';
			drop = backup_name_parse(base, NULL) == 0 &&
			       fstatat(dirfd(d), base, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
		}
		if (!drop)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
			rc = st_error_set(err, ST_EIO, "cannot remove '%s/%s': %s", dir, de->d_name,
					  strerror(errno));
			break;
		}
		count++;
	}
	closedir(d);
	if (removed)
		*removed = count;
	if (rc == 0 && count > 0)
		rc = sync_dir(dir, err);
	return rc;
}
