/*
 * Unit tests for the pure parts of lib/backup.c, backup_restore.c and
 * backup_pgtool.c: comparing a restored database with a manifest,
 * Prometheus metrics (with the last success carried over a failure), the
 * webhook body, and finding error lines in pg_dump/psql stderr split at
 * any byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backup.h"
#include "backup_internal.h"

static void manifest(struct backup_manifest *m, enum backup_kind kind, int shared, long long users,
		     long long posts)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->snapshot_shared = shared;
	assert_int_equal(backup_manifest_add_table(m, "public.Post", NULL), 0);
	assert_int_equal(backup_manifest_add_table(m, "public.User", NULL), 0);
	if (users >= 0)
		assert_int_equal(backup_manifest_add_count(m, "User", users, NULL), 0);
	if (posts >= 0)
		assert_int_equal(backup_manifest_add_count(m, "Post", posts, NULL), 0);
}

static void test_compare(void **state)
{
	struct backup_manifest want, got;
	struct st_error err = { 0 };

	(void)state;
	manifest(&want, BACKUP_KIND_FULL, 1, 320, 4000);
	manifest(&got, BACKUP_KIND_FULL, 0, 320, 4000);
	assert_int_equal(backup_compare(&want, &got, "x", &err), 0);
	backup_manifest_release(&got);

	manifest(&got, BACKUP_KIND_FULL, 0, 320, 3999);
	assert_int_equal(backup_compare(&want, &got, "x", &err), ST_EFAILED);
	assert_string_equal(err.message, "table \"Post\" in database 'x' has 3999 rows, the backup had 4000");
	backup_manifest_release(&got);

	/* A missing table, an extra table. */
	manifest(&got, BACKUP_KIND_FULL, 0, 320, 4000);
	free(got.tables[1]);
	got.ntables = 1;
	assert_int_equal(backup_compare(&want, &got, "x", &err), ST_EFAILED);
	assert_string_equal(err.message, "database 'x' lacks table public.User, which the backup has");
	backup_manifest_release(&got);
	manifest(&got, BACKUP_KIND_FULL, 0, 320, 4000);
	assert_int_equal(backup_manifest_add_table(&got, "public.Extra", NULL), 0);
	assert_int_equal(backup_compare(&want, &got, "x", &err), ST_EFAILED);
	assert_string_equal(err.message, "database 'x' has table public.Extra, which the backup lacks");
	backup_manifest_release(&got);
	/* The table vanished: its count is -1, not the manifest's. */
	manifest(&got, BACKUP_KIND_FULL, 0, -1, 4000);
	assert_int_equal(backup_compare(&want, &got, "x", &err), ST_EFAILED);
	backup_manifest_release(&got);
	backup_manifest_release(&want);

	/* Counts not from the dump's snapshot, or a schema backup: tables only. */
	manifest(&want, BACKUP_KIND_FULL, 0, 320, 4000);
	manifest(&got, BACKUP_KIND_FULL, 0, 1, 2);
	assert_int_equal(backup_compare(&want, &got, "x", &err), 0);
	backup_manifest_release(&want);
	manifest(&want, BACKUP_KIND_SCHEMA, 1, -1, -1);
	assert_int_equal(backup_compare(&want, &got, "x", &err), 0);
	backup_manifest_release(&want);
	backup_manifest_release(&got);
}

static void test_metrics(void **state)
{
	struct backup_report r;
	struct sbuf first = SBUF_INIT, second = SBUF_INIT;
	struct st_error err = { 0 };

	(void)state;
	memset(&r, 0, sizeof(r));
	r.ok = 1;
	r.kind = BACKUP_KIND_FULL;
	r.finished = 1795819456.5;
	r.duration = 2.25;
	r.size = 137797;
	assert_int_equal(backup_metrics_render(&r, NULL, &first, &err), 0);
	assert_non_null(strstr(first.buf, "# TYPE spilttea_backup_last_run_success gauge\n"
					  "spilttea_backup_last_run_success{kind=\"full\"} 1\n"));
	assert_non_null(strstr(first.buf, "spilttea_backup_last_success_timestamp_seconds{kind=\"full\"} 1795819456.500\n"));
	assert_non_null(strstr(first.buf, "spilttea_backup_last_success_size_bytes{kind=\"full\"} 137797\n"));
	assert_non_null(strstr(first.buf, "spilttea_backup_last_run_duration_seconds{kind=\"full\"} 2.250\n"));

	/* A failure keeps the last success from the previous file. */
	r.ok = 0;
	r.finished = 1795905856.0;
	r.size = 0;
	r.error = "cannot connect";
	assert_int_equal(backup_metrics_render(&r, first.buf, &second, &err), 0);
	assert_non_null(strstr(second.buf, "spilttea_backup_last_run_success{kind=\"full\"} 0\n"));
	assert_non_null(strstr(second.buf, "spilttea_backup_last_run_timestamp_seconds{kind=\"full\"} 1795905856.000\n"));
	assert_non_null(strstr(second.buf, "spilttea_backup_last_success_timestamp_seconds{kind=\"full\"} 1795819456.500\n"));
	assert_non_null(strstr(second.buf, "spilttea_backup_last_success_size_bytes{kind=\"full\"} 137797\n"));
	sbuf_release(&second);
	/* Never a success: no success lines at all. */
	assert_int_equal(backup_metrics_render(&r, NULL, &second, &err), 0);
	assert_null(strstr(second.buf, "last_success"));
	sbuf_release(&second);
	/* Another kind's success is not ours. */
	r.kind = BACKUP_KIND_SCHEMA;
	assert_int_equal(backup_metrics_render(&r, first.buf, &second, &err), 0);
	assert_null(strstr(second.buf, "last_success"));
	sbuf_release(&second);
	sbuf_release(&first);
}

static void test_webhook_body(void **state)
{
	struct backup_report r;
	json_error_t jerr;
	json_t *j;
	char *body;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.kind = BACKUP_KIND_DATA;
	r.database = "spilttea";
	r.finished = 1795819456.5;
	r.error = "pg_dump failed (exit 1): \"quoted\"";
	body = backup_webhook_body(&r);
	assert_non_null(body);
	j = json_loads(body, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "event")), "backup_failed");
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "data");
	assert_string_equal(json_string_value(json_object_get(j, "database")), "spilttea");
	assert_string_equal(json_string_value(json_object_get(j, "error")), "pg_dump failed (exit 1): \"quoted\"");
	assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-11-27T22:44:16.500Z");
	json_decref(j);
	free(body);
}

static void test_stderr_lines(void **state)
{
	static const char text[] =
		"pg_dump: warning: there are circular foreign-key constraints on this table:\n"
		"pg_dump: detail: Post\n"
		"psql:<stdin>:45: ERROR:  relation \"x\" does not exist\n"
		"pg_dump: error: query failed\n"
		"last line without newline";
	size_t len = strlen(text), i;

	(void)state;
	for (i = 0; i <= len; i += 3) {
		struct pgtool_stderr s;

		memset(&s, 0, sizeof(s));
		pgtool_stderr_feed(&s, text, i);
		pgtool_stderr_feed(&s, text + i, len - i);
		pgtool_stderr_finish(&s);
		assert_string_equal(s.first_line,
				    "pg_dump: warning: there are circular foreign-key constraints on this table:");
		assert_string_equal(s.error_line, "psql:<stdin>:45: ERROR:  relation \"x\" does not exist");
		assert_int_equal(s.bytes, len);
		assert_int_equal(s.text_len, len);
	}
	{
		struct pgtool_stderr s;

		memset(&s, 0, sizeof(s));
		pgtool_stderr_feed(&s, "pg_dump: warning: only a warning\n", 33);
		pgtool_stderr_finish(&s);
		assert_string_equal(s.error_line, "");
	}
	{
		/* Far more stderr than kept: the error line is still found. */
		struct pgtool_stderr s;
		char noise[1000];

		memset(&s, 0, sizeof(s));
		memset(noise, 'n', sizeof(noise) - 1);
		noise[sizeof(noise) - 1] = '\n';
		for (i = 0; i < 100; i++)
			pgtool_stderr_feed(&s, noise, sizeof(noise));
		pgtool_stderr_feed(&s, "FATAL:  terminating connection\n", 31);
		pgtool_stderr_finish(&s);
		assert_string_equal(s.error_line, "FATAL:  terminating connection");
		assert_int_equal(s.text_len, PGTOOL_STDERR_KEEP - 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_webhook_body),
		cmocka_unit_test(test_stderr_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
