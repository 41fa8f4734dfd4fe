/* Release history: files (round trip, mode, malformed), ids, the current
 * and previous release through deploys, failures and rollbacks, and the
 * image retention policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "release.h"
#include "testutil.h"

static struct release_history *empty(void)
{
	struct release_history *h = NULL;
	struct st_error err = { 0 };

	assert_int_equal(release_history_parse("mem", "backend", NULL, &h, &err), 0);
	return h;
}

static void add(struct release_history *h, const char *id, const char *image_id, const char *status)
{
	struct release_record r;

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.image = (char *)"spilttea-backend";
	r.image_id = (char *)image_id;
	r.status = (char *)status;
	r.source = (char *)"build";
	assert_non_null(release_history_append(h, &r));
}

static void test_round_trip(void **state)
{
	char *dir = tu_mkdtemp(), path[1024];
	struct release_history *h = NULL, *back = NULL;
	struct release_record r;
	struct st_error err = { 0 };
	struct stat st;

	(void)state;
	assert_int_equal(release_history_load(dir, "backend", &h, &err), 0);
	assert_int_equal(h->count, 0);
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "20261127_223416");
	r.image = (char *)"spilttea-backend";
	r.image_id = (char *)"sha256:bbb";
	r.previous_image_id = (char *)"sha256:aaa";
	r.time = (char *)"2026-11-27T22:34:16.123Z";
	r.user = (char *)"alice";
	r.source = (char *)"build";
	r.git_commit = (char *)"3f2a9c";
	r.git_dirty = 1;
	r.git_ref = (char *)"v1.2";
	r.strategy = (char *)"recreate";
	r.status = (char *)"pending";
	assert_non_null(release_history_append(h, &r));
	assert_int_equal(release_set(&h->records[0].status, "failed", &err), 0);
	assert_int_equal(release_set(&h->records[0].error, "gate: 500", &err), 0);
	assert_int_equal(release_history_save(h, &err), 0);

	snprintf(path, sizeof(path), "%s/releases/backend.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/releases", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	assert_int_equal(release_history_load(dir, "backend", &back, &err), 0);
	assert_int_equal(back->count, 1);
	assert_string_equal(back->records[0].id, "20261127_223416");
	assert_string_equal(back->records[0].image_id, "sha256:bbb");
	assert_string_equal(back->records[0].previous_image_id, "sha256:aaa");
	assert_string_equal(back->records[0].user, "alice");
	assert_string_equal(back->records[0].git_commit, "3f2a9c");
	assert_int_equal(back->records[0].git_dirty, 1);
	assert_string_equal(back->records[0].git_ref, "v1.2");
	assert_string_equal(back->records[0].status, "failed");
	assert_string_equal(back->records[0].error, "gate: 500");
	assert_null(back->records[0].rollback_to);
	assert_int_equal(back->records[0].pruned, 0);

	release_history_free(h);
	release_history_free(back);
	tu_rmtree(dir);
	free(dir);
}

static void test_malformed(void **state)
{
	struct release_history *h = NULL;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(release_history_parse("/s/releases/backend.json", "backend", "{not json", &h, &err),
			 ST_EPROTO);
	assert_non_null(strstr(err.message, "/s/releases/backend.json"));
	assert_int_equal(release_history_parse("f", "backend",
					       "{\"service\":\"frontend\",\"releases\":[]}", &h, &err),
			 ST_EPROTO);
	assert_non_null(strstr(err.message, "not the history of 'backend'"));
	assert_int_equal(release_history_parse("f", "backend",
					       "{\"service\":\"backend\",\"releases\":[{\"image\":\"x\"}]}",
					       &h, &err),
			 ST_EPROTO);
	assert_non_null(strstr(err.message, "release 1 has no id"));
	assert_null(h);
	assert_int_equal(release_history_load("/tmp", "../etc", &h, &err), ST_EUSAGE);
}

static void test_ids(void **state)
{
	struct release_history *h = empty();
	char id[RELEASE_ID_MAX];
	double t = 1795818856.5; /* 2026-11-27T22:34:16Z */

	(void)state;
	release_new_id(h, t, id, sizeof(id));
	assert_string_equal(id, "20261127_223416");
	add(h, id, "sha256:a", "ok");
	release_new_id(h, t, id, sizeof(id));
	assert_string_equal(id, "20261127_223416_2");
	add(h, id, "sha256:b", "ok");
	release_new_id(h, t, id, sizeof(id));
	assert_string_equal(id, "20261127_223416_3");
	assert_non_null(release_history_find(h, "20261127_223416_2"));
	assert_null(release_history_find(h, "nope"));
	release_history_free(h);
}

static void test_current_and_previous(void **state)
{
	struct release_history *h = empty();

	(void)state;
	assert_null(release_current(h));
	assert_null(release_previous(h));
	add(h, "r0", "sha256:A", "ok");      /* initial */
	assert_string_equal(release_current(h)->id, "r0");
	assert_null(release_previous(h));
	add(h, "r1", "sha256:B", "ok");
	assert_string_equal(release_current(h)->id, "r1");
	assert_string_equal(release_previous(h)->id, "r0");
	/* A failed deploy changes neither. */
	add(h, "r2", "sha256:C", "failed");
	assert_string_equal(release_current(h)->id, "r1");
	assert_string_equal(release_previous(h)->id, "r0");
	/* Same image again (a no-build deploy of latest): previous skips it. */
	add(h, "r3", "sha256:B", "ok");
	assert_string_equal(release_current(h)->id, "r3");
	assert_string_equal(release_previous(h)->id, "r0");
	add(h, "r4", "sha256:D", "ok");
	assert_string_equal(release_previous(h)->id, "r3");
	/* rollback: r4 marked rolled-back, a rollback release runs r3's image;
	 * the next rollback goes further back, not to r4. */
	assert_int_equal(release_set(&h->records[4].status, "rolled-back", NULL), 0);
	add(h, "r5", "sha256:B", "ok");
	assert_string_equal(release_current(h)->id, "r5");
	assert_string_equal(release_previous(h)->id, "r0");
	/* A pruned release cannot be gone back to. */
	h->records[0].pruned = 1;
	assert_null(release_previous(h));
	release_history_free(h);
}

static size_t retention(struct release_history *h, size_t keep, const char *run, const char *prev,
			char *out, size_t size)
{
	size_t drop[32], n, i;

	n = release_retention(h, keep, run, prev, drop);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", h->records[drop[i]].id);
	return n;
}

static void test_retention(void **state)
{
	struct release_history *h = empty();
	char got[256];

	(void)state;
	assert_int_equal(retention(h, 3, NULL, NULL, got, sizeof(got)), 0);
	add(h, "r1", "sha256:1", "ok");
	add(h, "r2", "sha256:2", "ok");
	add(h, "r3", "sha256:3", "failed");
	add(h, "r4", "sha256:4", "ok");
	add(h, "r5", "sha256:5", "ok");
	add(h, "r6", "sha256:6", "ok");

	/* Keep the 3 newest live images; the failed one goes. */
	retention(h, 3, "sha256:6", "sha256:5", got, sizeof(got));
	assert_string_equal(got, "r1,r2,r3");
	/* keep 1: running and previous are kept anyway. */
	retention(h, 1, "sha256:6", "sha256:5", got, sizeof(got));
	assert_string_equal(got, "r1,r2,r3,r4");
	/* An old previous (after rollbacks) is never removed. */
	retention(h, 1, "sha256:6", "sha256:1", got, sizeof(got));
	assert_string_equal(got, "r2,r3,r4,r5");
	/* Running an old image (rolled back to r2): protected too. */
	retention(h, 2, "sha256:2", NULL, got, sizeof(got));
	assert_string_equal(got, "r1,r3,r4");
	/* Large keep: nothing but the failed one. */
	retention(h, 10, "sha256:6", "sha256:5", got, sizeof(got));
	assert_string_equal(got, "r3");

	/* A pending release (a deploy in flight) is never touched, and pruned
	 * ones are not listed again. */
	add(h, "r7", "sha256:7", "pending");
	h->records[0].pruned = 1;
	retention(h, 1, "sha256:6", "sha256:5", got, sizeof(got));
	assert_string_equal(got, "r2,r3,r4");

	/* Releases sharing an image (a rollback release) keep their tags. */
	add(h, "r8", "sha256:4", "ok");
	retention(h, 2, "sha256:4", "sha256:6", got, sizeof(got));
	assert_string_equal(got, "r2,r3,r5");
	release_history_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_current_and_previous),
		cmocka_unit_test(test_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
