/*
 * lib/backup.h against the sandbox's PostgreSQL, for what the command-line
 * tests (test_backup.sh) cannot reach: a directory that cannot be synced
 * after the rename that publishes a backup, a counted table locked by
 * another session, a database with an ICU locale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backup.h"
#include "config.h"
#include "sandbox_env.h"
#include "services.h"
#include "timeutil.h"
#include "../unit/testutil.h"

static struct st_config *cfg;
static struct docker_client *docker;

/* fsync() of the directory fault_dir fails from its fault_after-th call on
 * (a disk that fails after the rename): this definition takes the place of
 * libc's for the whole test program. */
static struct stat fault_dir;
static int fault_armed, fault_after, fault_seen;

int fsync(int fd)
{
	struct stat st;

	if (fault_armed && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == fault_dir.st_dev &&
	    st.st_ino == fault_dir.st_ino && ++fault_seen >= fault_after) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

static int setup(void **state)
{
	struct st_error err = { 0 };

	(void)state;
	if (sandbox_require("SPILTTEA_OPS_CONFIG", NULL) != 0)
		return -1;
	if (config_load(getenv("SPILTTEA_OPS_CONFIG"), &cfg, &err) != 0 ||
	    services_docker_open(cfg, &docker, &err) != 0) {
		fprintf(stderr, "cannot use the sandbox: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	docker_client_free(docker);
	config_free(cfg);
	return 0;
}

static void request_init(struct backup_request *rq, const char *dir)
{
	memset(rq, 0, sizeof(*rq));
	rq->cfg = cfg;
	rq->docker = docker;
	rq->dir = dir;
	rq->kind = BACKUP_KIND_SCHEMA; /* small and quick; the path is the same */
	rq->codec = BACKUP_CODEC_GZIP;
	rq->via = cfg->backup.via;
	rq->lock = 1;
	rq->command_line = "test_backup_lib";
}

/* The manifest is written first, then the rename publishes the backup. If
 * syncing the directory fails after that rename, the backup is in place
 * under its final name: its manifest must stay with it (a backup without
 * one is never counted, verified or restored). */
static void test_manifest_kept_when_published(void **state)
{
	char *dir = tu_mkdtemp();
	struct backup_request rq;
	struct backup_outcome out;
	struct backup_manifest m;
	struct st_error err = { 0 };
	const char *base;
	int rc;

	(void)state;
	assert_non_null(dir);
	assert_int_equal(stat(dir, &fault_dir), 0);
	request_init(&rq, dir);
	fault_seen = 0;
	fault_after = 2; /* the manifest's directory sync passes, the backup's fails */
	fault_armed = 1;
	rc = backup_create(&rq, &out, &err);
	fault_armed = 0;
	assert_int_equal(rc, ST_EIO);
	assert_non_null(strstr(err.message, "cannot sync directory"));
	assert_int_equal(fault_seen, 2);
	base = strrchr(out.path, '/') + 1;
	assert_int_equal(access(out.path, F_OK), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(backup_manifest_load(dir, base, &m, &err), 0);
	assert_string_equal(m.sha256, out.manifest.sha256);
	backup_manifest_release(&m);
	backup_manifest_release(&out.manifest);

	/* A failure before the rename leaves neither. */
	request_init(&rq, dir);
	fault_seen = 0;
	fault_after = 1;
	fault_armed = 1;
	rc = backup_create(&rq, &out, &err);
	fault_armed = 0;
	assert_int_equal(rc, ST_EIO);
	assert_int_equal(tu_count_entries(dir), 2);
	backup_manifest_release(&out.manifest);
	tu_rmtree(dir);
	free(dir);
}

/* SQL on the maintenance database or db, failing the test when it fails. */
static void sql(struct pg_conn *conn, const char *text)
{
	struct st_error err = { 0 };

	if (pg_exec(conn, text, 0, NULL, 30, &err) != 0)
		fail_msg("%s: %s", text, err.message);
}

/* A migration holds "Post" exclusively (an idle transaction after LOCK
 * TABLE): the row counts for the manifest must not wait behind it for
 * ever, and nothing may wait longer than the backup's lock_wait (review 2
 * item 14). Before, the count queued behind the lock while the main
 * thread waited to join it, and pg_dump waited its five minutes. */
static void test_counts_do_not_hang_on_a_lock(void **state)
{
	static const char db[] = "spilttea_test_counts";
	struct pg_conn *admin = NULL, *holder = NULL;
	struct backup_request rq;
	struct backup_outcome out;
	struct st_error err = { 0 };
	char *dir = tu_mkdtemp();
	double t0;
	int rc;

	(void)state;
	assert_int_equal(services_pg_connect(cfg, "postgres", "spilttea-test", &admin, &err), 0);
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_counts WITH (FORCE)");
	sql(admin, "CREATE DATABASE spilttea_test_counts");
	assert_int_equal(services_pg_connect(cfg, db, "spilttea-test", &holder, &err), 0);
	sql(holder, "CREATE TABLE \"User\" (id int)");
	sql(holder, "CREATE TABLE \"Post\" (id int)");
	sql(holder, "INSERT INTO \"User\" SELECT generate_series(1, 10)");
	sql(holder, "INSERT INTO \"Post\" VALUES (1)");
	sql(holder, "BEGIN");
	sql(holder, "LOCK TABLE \"Post\" IN ACCESS EXCLUSIVE MODE");

	request_init(&rq, dir);
	rq.database = db;
	rq.kind = BACKUP_KIND_FULL;
	rq.lock_wait = 2;
	t0 = time_monotonic();
	rc = backup_create(&rq, &out, &err);
	assert_true(time_monotonic() - t0 < 20);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err.message, "Post"));
	assert_non_null(strstr(err.message, "locked"));
	assert_int_equal(tu_count_entries(dir), 0);
	backup_manifest_release(&out.manifest);

	/* Once the lock is gone the same backup works and counts. */
	sql(holder, "ROLLBACK");
	request_init(&rq, dir);
	rq.database = db;
	rq.kind = BACKUP_KIND_FULL;
	rq.lock_wait = 2;
	assert_int_equal(backup_create(&rq, &out, &err), 0);
	assert_int_equal(backup_manifest_count(&out.manifest, "User"), 10);
	assert_int_equal(backup_manifest_count(&out.manifest, "Post"), 1);
	backup_manifest_release(&out.manifest);

	pg_close(holder);
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_counts WITH (FORCE)");
	pg_close(admin);
	tu_rmtree(dir);
	free(dir);
}

/* The value of one row and column, NULL-safe for the test. */
static char *value_of(struct pg_conn *conn, const char *q)
{
	struct st_error err = { 0 };
	char *v = NULL;

	if (pg_query_text(conn, q, 0, NULL, 30, &v, &err) != 0)
		fail_msg("%s: %s", q, err.message);
	return v;
}

/* A database with an ICU locale (PostgreSQL 15): the database a restore
 * creates in its place must sort and compare the same way (review 2 item
 * 23). Before, only datcollate and datctype were copied: the copy fell back
 * to the libc provider. */
static void test_db_create_keeps_the_icu_locale(void **state)
{
	struct pg_conn *admin = NULL;
	struct st_error err = { 0 };
	char *v;

	(void)state;
	assert_int_equal(services_pg_connect(cfg, "postgres", "spilttea-test", &admin, &err), 0);
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_icu WITH (FORCE)");
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_icu_copy WITH (FORCE)");
	sql(admin, "CREATE DATABASE spilttea_test_icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'");
	if (backup_db_create(admin, "spilttea_test_icu_copy", "spilttea_test_icu", &err) != 0)
		fail_msg("backup_db_create: %s", err.message);
	v = value_of(admin, "SELECT datlocprovider::text || ' ' || coalesce(daticulocale, '-') FROM pg_database "
			    "WHERE datname = 'spilttea_test_icu_copy'");
	assert_string_equal(v, "i de-DE");
	free(v);
	v = value_of(admin, "SELECT (SELECT datcollate || ' ' || datctype FROM pg_database WHERE datname = "
			    "'spilttea_test_icu') = (SELECT datcollate || ' ' || datctype FROM pg_database WHERE "
			    "datname = 'spilttea_test_icu_copy')");
	assert_string_equal(v, "t");
	free(v);
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_icu WITH (FORCE)");
	sql(admin, "DROP DATABASE IF EXISTS spilttea_test_icu_copy WITH (FORCE)");
	pg_close(admin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_kept_when_published),
		cmocka_unit_test(test_counts_do_not_hang_on_a_lock),
		cmocka_unit_test(test_db_create_keeps_the_icu_locale),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
