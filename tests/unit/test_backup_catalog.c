/*
 * Unit tests for lib/backup_catalog: names, manifests, directory listing,
 * sweep and delete on a temporary directory, and the retention policy
 * (all old, all failed, mixed, per kind, foreign files, missing manifests,
 * boundaries, and invariants over random listings).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_catalog.h"

#define DAY 86400.0
/* 2026-11-27 22:44:16 UTC */
#define NOW 1795819456.0

static const char SHA[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void test_names(void **state)
{
	struct backup_name bn;
	char name[BACKUP_NAME_MAX], m[BACKUP_NAME_MAX + 8];

	(void)state;
	assert_string_equal(backup_name_format(NOW, BACKUP_KIND_FULL, BACKUP_CODEC_GZIP, name, sizeof(name)),
			    "backup_20261127_224416.sql.gz");
	assert_string_equal(backup_name_format(NOW, BACKUP_KIND_SCHEMA, BACKUP_CODEC_ZSTD, name, sizeof(name)),
			    "backup_20261127_224416_schema.sql.zst");
	assert_string_equal(backup_name_format(NOW, BACKUP_KIND_DATA, BACKUP_CODEC_NONE, name, sizeof(name)),
			    "backup_20261127_224416_data.sql");

	assert_int_equal(backup_name_parse("backup_20261127_224416.sql.gz", &bn), 0);
	assert_int_equal(bn.time, (time_t)NOW);
	assert_int_equal(bn.kind, BACKUP_KIND_FULL);
	assert_int_equal(bn.codec, BACKUP_CODEC_GZIP);
	assert_int_equal(backup_name_parse("backup_20261127_224416_schema.sql.zst", &bn), 0);
	assert_int_equal(bn.kind, BACKUP_KIND_SCHEMA);
	assert_int_equal(bn.codec, BACKUP_CODEC_ZSTD);
	assert_int_equal(backup_name_parse("backup_20261127_224416_data.sql", &bn), 0);
	assert_int_equal(bn.kind, BACKUP_KIND_DATA);
	assert_int_equal(bn.codec, BACKUP_CODEC_NONE);

	/* Not ours: the runbook's daily names, manifests, partials, near misses. */
	assert_int_equal(backup_name_parse("backup_20261127.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261127_224416.sql.gz.json", NULL), -1);
	assert_int_equal(backup_name_parse(".backup_20261127_224416.sql.gz.Ab3dE6.partial", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261127_224416.sql.bz2", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261127_224416_full.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261327_224416.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261131_224416.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("backup_20261127_246016.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("backup_2026112a_224416.sql.gz", NULL), -1);
	assert_int_equal(backup_name_parse("schema_backup.sql", NULL), -1);
	assert_int_equal(backup_name_parse("xbackup_20261127_224416.sql.gz", NULL), -1);

	assert_string_equal(backup_manifest_name("backup_20261127_224416.sql.gz", m, sizeof(m)),
			    "backup_20261127_224416.sql.gz.json");
	assert_true(backup_is_partial_name(".backup_20261127_224416.sql.gz.Ab3dE6.partial"));
	assert_true(backup_is_partial_name(".backup_20261127_224416.sql.gz.json.Ab3dE6.partial"));
	assert_false(backup_is_partial_name(".other.Ab3dE6.partial"));
	assert_false(backup_is_partial_name("backup_20261127_224416.sql.gz"));
}

static void fill_manifest(struct backup_manifest *m, const char *name, uint64_t size, int verified)
{
	struct backup_name bn;

	memset(m, 0, sizeof(*m));
	assert_int_equal(backup_name_parse(name, &bn), 0);
	m->format = BACKUP_MANIFEST_FORMAT;
	snprintf(m->name, sizeof(m->name), "%s", name);
	strcpy(m->database, "spilttea");
	strcpy(m->server_version, "15.18 (Debian 15.18-0+deb12u1)");
	strcpy(m->pg_dump_version, "15.18 (Debian 15.18-0+deb12u1)");
	m->kind = bn.kind;
	m->codec = bn.codec;
	m->level = 1;
	m->bytes_raw = size * 3;
	m->bytes_compressed = size;
	strcpy(m->sha256, SHA);
	m->started = (double)bn.time + 0.25;
	m->duration = 2.5;
	strcpy(m->tool_version, "0.1.0");
	strcpy(m->via, "exec");
	m->verified = verified;
	m->verified_at = verified ? (double)bn.time + 3 : 0;
	m->snapshot_shared = 1;
}

static void test_manifest_json(void **state)
{
	struct backup_manifest m, back;
	struct st_error err = { 0 };
	json_t *j;

	(void)state;
	fill_manifest(&m, "backup_20261127_224416.sql.gz", 1000, 1);
	assert_int_equal(backup_manifest_add_table(&m, "public.Post", &err), 0);
	assert_int_equal(backup_manifest_add_table(&m, "public.User", &err), 0);
	assert_int_equal(backup_manifest_add_count(&m, "User", 320, &err), 0);
	assert_int_equal(backup_manifest_add_count(&m, "Post", 4000, &err), 0);
	j = backup_manifest_to_json(&m);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "started")), "2026-11-27T22:44:16.250Z");
	assert_string_equal(json_string_value(json_object_get(j, "compression")), "gzip");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "row_counts"), "Post")), 4000);

	assert_int_equal(backup_manifest_from_json(j, "x", &back, &err), 0);
	assert_string_equal(back.name, m.name);
	assert_string_equal(back.sha256, SHA);
	assert_int_equal(back.kind, BACKUP_KIND_FULL);
	assert_int_equal(back.codec, BACKUP_CODEC_GZIP);
	assert_int_equal(back.bytes_raw, 3000);
	assert_int_equal(back.bytes_compressed, 1000);
	assert_true(back.started > m.started - 0.001 && back.started < m.started + 0.001);
	assert_true(back.verified_at > m.verified_at - 0.001 && back.verified_at < m.verified_at + 0.001);
	assert_true(back.verified);
	assert_true(back.snapshot_shared);
	assert_int_equal(back.ntables, 2);
	assert_string_equal(back.tables[1], "public.User");
	assert_int_equal(backup_manifest_count(&back, "User"), 320);
	assert_int_equal(backup_manifest_count(&back, "Post"), 4000);
	assert_int_equal(backup_manifest_count(&back, "Report"), -1);
	backup_manifest_release(&back);

	/* Broken manifests are refused with the member named. */
	json_object_del(j, "sha256");
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EPROTO);
	assert_string_equal(err.message, "manifest 'x.json': sha256 is missing");
	json_object_set_new(j, "sha256", json_string("abc"));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EPROTO);
	assert_string_equal(err.message, "manifest 'x.json': sha256 is not 64 hex digits");
	json_object_set_new(j, "sha256", json_string(SHA));
	json_object_set_new(j, "kind", json_string("everything"));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EUSAGE);
	json_object_set_new(j, "kind", json_string("full"));
	json_object_set_new(j, "format", json_integer(2));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EPROTO);
	json_object_set_new(j, "format", json_integer(1));
	json_object_set_new(j, "bytes_raw", json_integer(-5));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EPROTO);
	json_object_set_new(j, "bytes_raw", json_integer(5));
	json_object_set_new(j, "started", json_string("yesterday"));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), ST_EPROTO);
	json_object_set_new(j, "started", json_string("2026-11-27T22:44:16Z"));
	assert_int_equal(backup_manifest_from_json(j, "x.json", &back, &err), 0);
	backup_manifest_release(&back);
	assert_int_equal(backup_manifest_from_json(json_object_get(j, "name"), "x.json", &back, &err), ST_EPROTO);
	json_decref(j);
	backup_manifest_release(&m);
}

/* ---- directory --------------------------------------------------------- */

static char dir[64];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/st-backup-catalog-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, size_t size)
{
	char path[256];
	char *buf = calloc(1, size + 1);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static int exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void put_backup(const char *name, size_t size, int verified)
{
	struct backup_manifest m;
	struct st_error err = { 0 };
	char path[256];
	struct stat st;

	put(name, size);
	fill_manifest(&m, name, size, verified);
	assert_int_equal(backup_manifest_save(dir, &m, &err), 0);
	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	backup_manifest_release(&m);
}

static void test_list_sweep_delete(void **state)
{
	struct backup_listing l;
	struct st_error err = { 0 };
	struct backup_manifest m;
	const struct backup_entry *e;
	size_t removed;

	(void)state;
	put_backup("backup_20261120_020000.sql.gz", 100, 1);
	put_backup("backup_20261121_020000.sql.gz", 100, 1);
	put_backup("backup_20261122_020000_schema.sql.zst", 10, 1);
	put_backup("backup_20261123_020000.sql.gz", 100, 0);     /* failed a later verify */
	put_backup("backup_20261124_020000.sql.gz", 100, 1);
	put("backup_20261124_020000.sql.gz", 99);                 /* size no longer matches */
	put("backup_20261125_020000.sql.gz", 50);                 /* no manifest */
	put("backup_20261126_020000.sql.gz", 50);
	put("backup_20261126_020000.sql.gz.json", 5);             /* manifest that is not JSON */
	put("backup_20261101.sql.gz", 10);                        /* the runbook's cron names */
	put("notes.txt", 10);
	put(".backup_20261127_020000.sql.gz.Ab3dE6.partial", 10); /* a killed run */
	put("backup_20261119_020000.sql.gz.json", 5);             /* manifest whose backup is gone */

	assert_int_equal(backup_list(dir, &l, &err), 0);
	assert_int_equal(l.count, 7);
	assert_int_equal(l.foreign, 2);
	assert_int_equal(l.partials, 1);
	assert_string_equal(l.entries[0].name, "backup_20261126_020000.sql.gz");
	assert_false(l.entries[0].has_manifest);
	assert_non_null(strstr(l.entries[0].manifest_error, "is not valid JSON"));
	assert_string_equal(l.entries[1].name, "backup_20261125_020000.sql.gz");
	assert_false(l.entries[1].has_manifest);
	assert_string_equal(l.entries[1].manifest_error, "manifest 'backup_20261125_020000.sql.gz.json' is missing");
	e = backup_listing_find(&l, "backup_20261124_020000.sql.gz");
	assert_non_null(e);
	assert_true(e->has_manifest);
	assert_false(e->verified);
	assert_int_equal(e->size, 99);
	e = backup_listing_find(&l, "backup_20261123_020000.sql.gz");
	assert_true(e->has_manifest);
	assert_false(e->verified);
	e = backup_listing_find(&l, "backup_20261122_020000_schema.sql.zst");
	assert_true(e->verified);
	assert_int_equal(e->parsed.kind, BACKUP_KIND_SCHEMA);
	assert_string_equal(l.entries[6].name, "backup_20261120_020000.sql.gz");
	assert_null(backup_listing_find(&l, "notes.txt"));
	backup_listing_release(&l);

	/* The manifest must describe its own file. */
	put("backup_20261118_020000.sql.gz", 100);
	{
		char from[256], to[256];
		snprintf(from, sizeof(from), "%s/backup_20261120_020000.sql.gz.json", dir);
		snprintf(to, sizeof(to), "%s/backup_20261118_020000.sql.gz.json", dir);
		assert_int_equal(link(from, to), 0);
	}
	assert_int_equal(backup_manifest_load(dir, "backup_20261118_020000.sql.gz", &m, &err), ST_EPROTO);
	assert_string_equal(err.message, "manifest 'backup_20261118_020000.sql.gz.json' describes "
					 "'backup_20261120_020000.sql.gz', not 'backup_20261118_020000.sql.gz'");

	/* Sweep: the partial and the orphan manifest go; the rest stays. */
	assert_int_equal(backup_sweep(dir, &removed, &err), 0);
	assert_int_equal(removed, 2);
	assert_false(exists(".backup_20261127_020000.sql.gz.Ab3dE6.partial"));
	assert_false(exists("backup_20261119_020000.sql.gz.json"));
	assert_true(exists("notes.txt"));
	assert_true(exists("backup_20261101.sql.gz"));
	assert_true(exists("backup_20261126_020000.sql.gz.json"));
	assert_true(exists("backup_20261118_020000.sql.gz.json"));

	/* Delete takes the backup and its manifest, and refuses foreign names. */
	assert_int_equal(backup_delete(dir, "backup_20261120_020000.sql.gz", &err), 0);
	assert_false(exists("backup_20261120_020000.sql.gz"));
	assert_false(exists("backup_20261120_020000.sql.gz.json"));
	assert_int_equal(backup_delete(dir, "notes.txt", &err), ST_EUSAGE);
	assert_true(exists("notes.txt"));

	/* A missing directory is an empty listing. */
	{
		char missing[128];
		snprintf(missing, sizeof(missing), "%s/nope", dir);
		assert_int_equal(backup_list(missing, &l, &err), 0);
		assert_int_equal(l.count, 0);
		backup_listing_release(&l);
	}
}

/* ---- retention --------------------------------------------------------- */

struct spec {
	const char *name;
	int manifest;
	int verified;
};

static struct backup_entry *entries_of(const struct spec *s, size_t n)
{
	struct backup_entry *e = calloc(n, sizeof(*e));
	size_t i;

	assert_non_null(e);
	for (i = 0; i < n; i++) {
		snprintf(e[i].name, sizeof(e[i].name), "%s", s[i].name);
		e[i].ours = backup_name_parse(s[i].name, &e[i].parsed) == 0;
		e[i].has_manifest = e[i].ours && s[i].manifest;
		e[i].verified = e[i].has_manifest && s[i].verified;
	}
	return e;
}

static void plan(const struct spec *s, size_t n, long keep_days, long keep_min, double now,
		 enum backup_verdict *v)
{
	struct backup_retention p = { keep_days, keep_min };
	struct backup_entry *e = entries_of(s, n);

	backup_retention_plan(e, n, now, &p, v);
	free(e);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_retention_all_old(void **state)
{
	/* Months old, all verified: keep_min newest survive, never fewer. */
	static const struct spec s[] = {
		{ "backup_20260101_020000.sql.gz", 1, 1 },
		{ "backup_20260105_020000.sql.gz", 1, 1 },
		{ "backup_20260102_020000.sql.gz", 1, 1 },
		{ "backup_20260104_020000.sql.gz", 1, 1 },
		{ "backup_20260103_020000.sql.gz", 1, 1 },
	};
	enum backup_verdict v[N(s)];

	(void)state;
	plan(s, N(s), 7, 3, NOW, v);
	assert_int_equal(v[0], BACKUP_DELETE_OLD);
	assert_int_equal(v[1], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[2], BACKUP_DELETE_OLD);
	assert_int_equal(v[3], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[4], BACKUP_KEEP_NEWEST);
	/* keep_min above the count keeps all. */
	plan(s, N(s), 7, 10, NOW, v);
	assert_int_equal(v[0], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[2], BACKUP_KEEP_NEWEST);
}

static void test_retention_all_failed(void **state)
{
	/* Nothing verified: nothing is protected, old ones go, young ones stay. */
	static const struct spec s[] = {
		{ "backup_20261101_020000.sql.gz", 1, 0 },
		{ "backup_20261102_020000.sql.gz", 1, 0 },
		{ "backup_20261126_020000.sql.gz", 1, 0 },
	};
	enum backup_verdict v[N(s)];

	(void)state;
	plan(s, N(s), 7, 3, NOW, v);
	assert_int_equal(v[0], BACKUP_DELETE_OLD);
	assert_int_equal(v[1], BACKUP_DELETE_OLD);
	assert_int_equal(v[2], BACKUP_KEEP_YOUNG);
}

static void test_retention_mixed(void **state)
{
	/* The newest runs failed verification: the last good ones are kept
	 * however old, which is what age-only rotation got wrong. */
	static const struct spec s[] = {
		{ "backup_20261001_020000.sql.gz", 1, 1 },
		{ "backup_20261002_020000.sql.gz", 1, 1 },
		{ "backup_20261003_020000.sql.gz", 1, 0 },
		{ "backup_20261004_020000.sql.gz", 1, 1 },
		{ "backup_20261010_020000.sql.gz", 1, 0 },
		{ "backup_20261011_020000.sql.gz", 1, 0 },
		{ "backup_20261125_020000.sql.gz", 1, 0 },
		{ "backup_20261126_020000.sql.gz", 1, 1 },
		{ "backup_20260901_020000.sql.gz", 1, 1 },
	};
	enum backup_verdict v[N(s)];

	(void)state;
	plan(s, N(s), 7, 3, NOW, v);
	assert_int_equal(v[0], BACKUP_DELETE_OLD);   /* 4th newest verified */
	assert_int_equal(v[1], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[2], BACKUP_DELETE_OLD);
	assert_int_equal(v[3], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[4], BACKUP_DELETE_OLD);
	assert_int_equal(v[5], BACKUP_DELETE_OLD);
	assert_int_equal(v[6], BACKUP_KEEP_YOUNG);
	assert_int_equal(v[7], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[8], BACKUP_DELETE_OLD);
}

static void test_retention_foreign_and_missing_manifest(void **state)
{
	static const struct spec s[] = {
		{ "backup_20250101.sql.gz", 1, 1 },            /* runbook cron name */
		{ "important.sql", 1, 1 },
		{ "backup_20250101_020000.sql.gz", 0, 0 },     /* ours, no manifest */
		{ "backup_20250102_020000.sql.gz", 1, 1 },
		{ "backup_20250103_020000.sql.gz", 1, 1 },
	};
	enum backup_verdict v[N(s)];

	(void)state;
	plan(s, N(s), 1, 1, NOW, v);
	assert_int_equal(v[0], BACKUP_KEEP_FOREIGN);
	assert_int_equal(v[1], BACKUP_KEEP_FOREIGN);
	assert_int_equal(v[2], BACKUP_KEEP_NO_MANIFEST);
	assert_int_equal(v[3], BACKUP_DELETE_OLD);
	assert_int_equal(v[4], BACKUP_KEEP_NEWEST);
	assert_false(backup_verdict_deletes(v[0]));
	assert_false(backup_verdict_deletes(v[2]));
	assert_true(backup_verdict_deletes(v[3]));
}

static void test_retention_per_kind_and_bounds(void **state)
{
	/* Newer schema-only backups do not push the full ones out. */
	static const struct spec s[] = {
		{ "backup_20260101_020000.sql.gz", 1, 1 },
		{ "backup_20260102_020000.sql.gz", 1, 1 },
		{ "backup_20260110_020000_schema.sql.gz", 1, 1 },
		{ "backup_20260111_020000_schema.sql.gz", 1, 1 },
		{ "backup_20260112_020000_schema.sql.gz", 1, 1 },
		{ "backup_20260113_020000_data.sql.zst", 1, 1 },
	};
	static const struct spec b[] = {
		{ "backup_20261120_224416.sql.gz", 1, 0 },     /* exactly 7 days old */
		{ "backup_20261120_224415.sql.gz", 1, 0 },     /* one second more */
		{ "backup_20261120_224417.sql.gz", 1, 0 },
	};
	enum backup_verdict v[N(s)], w[N(b)];

	(void)state;
	plan(s, N(s), 7, 2, NOW, v);
	assert_int_equal(v[0], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[1], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[2], BACKUP_DELETE_OLD);
	assert_int_equal(v[3], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[4], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[5], BACKUP_KEEP_NEWEST);
	plan(b, N(b), 7, 1, NOW, w);
	assert_int_equal(w[0], BACKUP_KEEP_YOUNG);
	assert_int_equal(w[1], BACKUP_DELETE_OLD);
	assert_int_equal(w[2], BACKUP_KEEP_YOUNG);
	/* Empty listing. */
	plan(s, 0, 7, 3, NOW, v);
}

/* Review 2 item 5: two fresh backups of a scratch database must not make
 * the live database's old backups deletable. keep_min is per database and
 * kind. */
static void test_retention_per_database(void **state)
{
	static const struct spec s[] = {
		{ "backup_20261001_020000.sql.gz", 1, 1 },
		{ "backup_20261002_020000.sql.gz", 1, 1 },
		{ "backup_20261003_020000.sql.gz", 1, 1 },
		{ "backup_20261004_020000.sql.gz", 1, 1 },
		{ "backup_20261126_010000.sql.gz", 1, 1 },
		{ "backup_20261126_020000.sql.gz", 1, 1 },
		{ "backup_20261126_030000.sql.gz", 1, 1 },
		{ "backup_20261126_040000.sql.gz", 1, 1 },
	};
	struct backup_retention p = { 7, 3 };
	struct backup_entry *e = entries_of(s, N(s));
	enum backup_verdict v[N(s)];
	size_t i;

	(void)state;
	for (i = 0; i < N(s); i++)
		strcpy(e[i].manifest.database, i < 4 ? "spilttea" : "scratch");
	backup_retention_plan(e, N(s), NOW, &p, v);
	free(e);
	assert_int_equal(v[0], BACKUP_DELETE_OLD);
	for (i = 1; i <= 3; i++)
		assert_int_equal(v[i], BACKUP_KEEP_NEWEST);
	assert_int_equal(v[4], BACKUP_KEEP_YOUNG);
	for (i = 5; i <= 7; i++)
		assert_int_equal(v[i], BACKUP_KEEP_NEWEST);
}

/* Invariants over random listings. */
static void test_retention_random(void **state)
{
	unsigned seed = 42;
	int round;

	(void)state;
	for (round = 0; round < 2000; round++) {
		struct spec s[24];
		char names[24][BACKUP_NAME_MAX];
		enum backup_verdict v[24];
		struct backup_entry *e;
		struct backup_retention p;
		size_t n, i, j;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % 24;
		p.keep_days = 1 + (long)((seed >> 4) % 10);
		p.keep_min = 1 + (long)((seed >> 12) % 5);
		for (i = 0; i < n; i++) {
			unsigned r;

			seed = seed * 1103515245u + 12345u;
			r = seed >> 4;
			if (r % 11 == 0)
				snprintf(names[i], sizeof(names[i]), "foreign%zu.sql.gz", i);
			else
				backup_name_format(NOW - (double)(r % (30 * 86400)), (enum backup_kind)(r % 3),
						   (enum backup_codec)((r >> 3) % 3), names[i], sizeof(names[i]));
			s[i].name = names[i];
			s[i].manifest = (r >> 7) % 6 != 0;
			s[i].verified = (r >> 9) % 3 != 0;
		}
		e = entries_of(s, n);
		for (i = 0; i < n; i++)
			strcpy(e[i].manifest.database, (seed >> (i % 20)) & 1 ? "a" : "b");
		backup_retention_plan(e, n, NOW, &p, v);
		for (i = 0; i < n; i++) {
			long newer = 0;

			if (!backup_verdict_deletes(v[i]))
				continue;
			assert_true(e[i].ours);
			assert_true(e[i].has_manifest);
			assert_true(NOW - (double)e[i].parsed.time > p.keep_days * DAY);
			if (!e[i].verified)
				continue;
			/* A deleted verified backup has keep_min newer verified ones of its
			 * database and kind, all kept. */
			for (j = 0; j < n; j++)
				if (j != i && e[j].verified && e[j].parsed.kind == e[i].parsed.kind &&
				    !strcmp(e[j].manifest.database, e[i].manifest.database) &&
				    (e[j].parsed.time > e[i].parsed.time ||
				     (e[j].parsed.time == e[i].parsed.time && strcmp(e[j].name, e[i].name) > 0))) {
					newer++;
				}
			assert_true(newer >= p.keep_min);
		}
		free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_manifest_json),
		cmocka_unit_test(test_list_sweep_delete),
		cmocka_unit_test(test_retention_all_old),
		cmocka_unit_test(test_retention_all_failed),
		cmocka_unit_test(test_retention_mixed),
		cmocka_unit_test(test_retention_foreign_and_missing_manifest),
		cmocka_unit_test(test_retention_per_kind_and_bounds),
		cmocka_unit_test(test_retention_per_database),
		cmocka_unit_test(test_retention_random),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
