/*
 * test_migrate.c - migration folders against _prisma_migrations rows:
 * scanning (what counts as a migration, checksums, order), every state a
 * name can be in, and the record rollback db reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migrate.h"
#include "testutil.h"

static char *tmp;

static int setup(void **state)
{
	(void)state;
	tmp = tu_mkdtemp();
	return tmp ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(tmp);
	free(tmp);
	return 0;
}

static void put(const char *rel, const char *text)
{
	char path[1024], dir[1024], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	/* mkdir -p below tmp */
	for (slash = dir + strlen(tmp) + 1; (slash = strchr(slash, '/')) != NULL; slash++) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	mkdir(dir, 0755);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_scan(void **state)
{
	struct migrate_folder *f = NULL;
	struct st_error err = { 0 };
	size_t n = 0;
	char dir[1024];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/migrations", tmp);
	assert_int_equal(migrate_scan(dir, &f, &n, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "does not exist"));
	assert_non_null(strstr(err.hint, "migrate.dir"));

	put("migrations/20260118140000_add_reports/migration.sql", "CREATE TABLE r();\n");
	put("migrations/20260110093000_init/migration.sql", "abc");
	put("migrations/migration_lock.toml", "provider = \"postgresql\"\n");
	put("migrations/20260120000000_no_sql/README", "not a migration\n");
	put("migrations/.hidden/migration.sql", "x");
	assert_int_equal(migrate_scan(dir, &f, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(f[0].name, "20260110093000_init");
	/* sha256("abc") */
	assert_string_equal(f[0].checksum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_non_null(strstr(f[0].path, "/migrations/20260110093000_init/migration.sql"));
	assert_string_equal(f[1].name, "20260118140000_add_reports");
	migrate_folders_free(f, n);

	/* An empty directory has no migrations. */
	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	mkdir(dir, 0755);
	assert_int_equal(migrate_scan(dir, &f, &n, &err), 0);
	assert_int_equal(n, 0);
	migrate_folders_free(f, n);
}

#define SUM_A "aaaa"
#define SUM_B "bbbb"

static struct migrate_folder folder(const char *name, const char *sum)
{
	struct migrate_folder f;

	memset(&f, 0, sizeof(f));
	f.name = (char *)name;
	f.path = (char *)"/m/migration.sql";
	snprintf(f.checksum, sizeof(f.checksum), "%s", sum);
	return f;
}

static struct migrate_row row(const char *name, const char *sum, double start, double fin, double rb,
			      const char *logs)
{
	struct migrate_row r;

	memset(&r, 0, sizeof(r));
	r.id = (char *)"id";
	r.name = (char *)name;
	r.checksum = (char *)sum;
	r.started_at = start;
	r.finished_at = fin;
	r.rolled_back_at = rb;
	r.logs = (char *)logs;
	return r;
}

static const struct migrate_entry *find(const struct migrate_status *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->count; i++)
		if (!strcmp(st->entries[i].name, name))
			return &st->entries[i];
	fail_msg("no entry '%s'", name);
	return NULL;
}

static void test_status(void **state)
{
	struct migrate_folder folders[6];
	struct migrate_row rows[8];
	struct migrate_status st;
	struct st_error err = { 0 };
	const struct migrate_entry *e;

	(void)state;
	folders[0] = folder("01_init", SUM_A);          /* applied */
	folders[1] = folder("02_changed", SUM_B);       /* applied, file changed since */
	folders[2] = folder("03_new", SUM_A);           /* pending: no row */
	folders[3] = folder("04_broken", SUM_A);        /* failed */
	folders[4] = folder("05_retry", SUM_A);         /* rolled back once, then pending again */
	folders[5] = folder("06_fixed", SUM_A);         /* failed, rolled back, applied */
	rows[0] = row("01_init", SUM_A, 100, 101, 0, NULL);
	rows[1] = row("02_changed", SUM_A, 110, 111, 0, NULL);
	rows[2] = row("04_broken", SUM_A, 120, 0, 0, "ERROR: relation \"Moderator\" does not exist");
	rows[3] = row("05_retry", SUM_A, 130, 0, 135, "ERROR: x");
	rows[4] = row("06_fixed", SUM_A, 140, 0, 145, "ERROR: y");
	rows[5] = row("06_fixed", SUM_A, 150, 151, 0, NULL);
	rows[6] = row("00_gone", SUM_A, 90, 91, 0, NULL);    /* applied, folder gone: missing */
	rows[7] = row("07_undone", SUM_A, 160, 0, 161, NULL); /* only rolled back, no folder */

	assert_int_equal(migrate_status_build(folders, 6, rows, 8, &st, &err), 0);
	assert_int_equal(st.count, 8);
	/* Sorted by name: the order Prisma applies them in. */
	assert_string_equal(st.entries[0].name, "00_gone");
	assert_string_equal(st.entries[7].name, "07_undone");

	assert_int_equal(find(&st, "01_init")->state, MIGRATE_APPLIED);
	assert_int_equal(find(&st, "01_init")->modified, 0);
	assert_true(find(&st, "01_init")->finished_at == 101);
	e = find(&st, "02_changed");
	assert_int_equal(e->state, MIGRATE_APPLIED);
	assert_int_equal(e->modified, 1);
	assert_int_equal(find(&st, "03_new")->state, MIGRATE_PENDING);
	e = find(&st, "04_broken");
	assert_int_equal(e->state, MIGRATE_FAILED);
	assert_string_equal(e->logs, "ERROR: relation \"Moderator\" does not exist");
	assert_true(e->started_at == 120);
	e = find(&st, "05_retry");
	assert_int_equal(e->state, MIGRATE_PENDING);
	assert_int_equal(e->rolled_back_rows, 1);
	e = find(&st, "06_fixed");
	assert_int_equal(e->state, MIGRATE_APPLIED);
	assert_int_equal(e->rolled_back_rows, 1);
	e = find(&st, "00_gone");
	assert_int_equal(e->state, MIGRATE_MISSING);
	assert_int_equal(e->has_folder, 0);
	assert_null(e->path);
	assert_int_equal(find(&st, "07_undone")->state, MIGRATE_ROLLED_BACK);

	assert_int_equal(st.applied, 3);
	assert_int_equal(st.modified, 1);
	assert_int_equal(st.pending, 2);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.missing, 1);
	assert_int_equal(st.rolled_back, 1);
	assert_int_equal(migrate_status_clean(&st), 0);
	migrate_status_release(&st);
	assert_int_equal(st.count, 0);

	/* A failed row whose folder is gone still blocks. */
	assert_int_equal(migrate_status_build(folders, 1, rows + 2, 1, &st, &err), 0);
	assert_int_equal(find(&st, "04_broken")->state, MIGRATE_FAILED);
	assert_int_equal(find(&st, "04_broken")->has_folder, 0);
	assert_int_equal(st.pending, 1);
	migrate_status_release(&st);

	/* Everything applied: clean. Nothing at all: clean too. */
	assert_int_equal(migrate_status_build(folders, 1, rows, 1, &st, &err), 0);
	assert_int_equal(migrate_status_clean(&st), 1);
	migrate_status_release(&st);
	assert_int_equal(migrate_status_build(NULL, 0, NULL, 0, &st, &err), 0);
	assert_int_equal(st.count, 0);
	assert_int_equal(migrate_status_clean(&st), 1);
	migrate_status_release(&st);

	assert_string_equal(migrate_state_name(MIGRATE_ROLLED_BACK), "rolled back");
	assert_string_equal(migrate_state_name(MIGRATE_MISSING), "missing");
}

static void test_last(void **state)
{
	struct migrate_last m, got;
	struct st_error err = { 0 };
	struct stat st;
	char path[1024];

	(void)state;
	assert_int_equal(migrate_last_load(tmp, &got, &err), ST_ENOTFOUND);
	memset(&m, 0, sizeof(m));
	snprintf(m.backup_path, sizeof(m.backup_path), "/b/backup_20260201_100000.sql.gz");
	snprintf(m.time, sizeof(m.time), "2026-02-01T10:00:00.000Z");
	snprintf(m.result, sizeof(m.result), "failed");
	snprintf(m.run_id, sizeof(m.run_id), "20260201_100000-42");
	assert_int_equal(migrate_last_save(tmp, &m, &err), 0);
	assert_int_equal(migrate_last_load(tmp, &got, &err), 0);
	assert_string_equal(got.backup_path, m.backup_path);
	assert_string_equal(got.result, "failed");
	assert_string_equal(got.run_id, m.run_id);
	snprintf(path, sizeof(path), "%s/migrate/last.json", tmp);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	put("migrate/last.json", "{\"backup\": 3}");
	assert_int_equal(migrate_last_load(tmp, &got, &err), ST_EPROTO);
	put("migrate/last.json", "not json");
	assert_int_equal(migrate_last_load(tmp, &got, &err), ST_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test(test_status),
		cmocka_unit_test_setup_teardown(test_last, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
