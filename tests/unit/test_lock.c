#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "lock.h"
#include "testutil.h"

static void test_acquire_release(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;
	struct lock_takeover tk;
	char path[600], expect[64], *text;

	assert_int_equal(lock_acquire(dir, "backup", "spilttea-ops backup", &lock, &tk, &err), 0);
	assert_false(tk.stale);
	snprintf(path, sizeof(path), "%s/locks/backup.lock", dir);
	assert_string_equal(lock_path(lock), path);
	assert_int_equal(tu_mode(path), 0600);
	text = tu_read(path);
	snprintf(expect, sizeof(expect), "pid=%ld\n", (long)getpid());
	assert_non_null(strstr(text, expect));
	assert_non_null(strstr(text, "command=spilttea-ops backup\n"));
	assert_non_null(strstr(text, "started="));
	free(text);
	lock_release(lock);
	assert_int_equal(access(path, F_OK), -1);
	lock_release(NULL);
}

static void test_second_open_in_process_is_refused(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *a = NULL, *b = NULL;

	assert_int_equal(lock_acquire(dir, "restore", "spilttea-ops restore x", &a, NULL, &err), 0);
	assert_int_equal(lock_acquire(dir, "restore", "other", &b, NULL, &err), ST_ELOCKED);
	assert_null(b);
	/* Another name is another lock. */
	assert_int_equal(lock_acquire(dir, "backup", "other", &b, NULL, &err), 0);
	lock_release(b);
	lock_release(a);
}

/* A child holds the lock; the parent is refused with the child's pid and
 * command, then gets it once the child released it. */
static void test_contention_with_fork(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;
	int to_child[2], to_parent[2];
	char c, want[160];
	pid_t pid;
	int status;

	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct st_lock *held = NULL;
		char ok;

		ok = lock_acquire(dir, "backup", "spilttea-ops backup", &held, NULL, &err) == 0 ? 'y' : 'n';
		if (write(to_parent[1], &ok, 1) != 1 || read(to_child[0], &ok, 1) != 1)
			_exit(2);
		lock_release(held);
		ok = 'r';
		if (write(to_parent[1], &ok, 1) != 1)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	assert_int_equal(c, 'y');

	assert_int_equal(lock_acquire(dir, "backup", "spilttea-ops run x", &lock, NULL, &err),
			 ST_ELOCKED);
	snprintf(want, sizeof(want), "backup is locked by pid %ld (spilttea-ops backup) since ",
		 (long)pid);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message '%s' does not start with '%s'", err.message, want);
	snprintf(want, sizeof(want), "'ps -p %ld'", (long)pid);
	assert_non_null(strstr(err.hint, want));
	assert_non_null(strstr(err.hint, "wait for it to finish"));

	assert_int_equal(write(to_child[1], "g", 1), 1);
	assert_int_equal(read(to_parent[0], &c, 1), 1);
	assert_int_equal(c, 'r');
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(lock_acquire(dir, "backup", "spilttea-ops run x", &lock, NULL, &err), 0);
	lock_release(lock);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
}

/* A run that died holding the lock leaves the file; the next run takes it
 * and says so. */
static void test_stale_lock_file(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;
	struct lock_takeover tk;
	char want[96];
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct st_lock *held = NULL;

		if (lock_acquire(dir, "deploy", "spilttea-ops deploy backend", &held, NULL, &err) != 0)
			_exit(1);
		_exit(0); /* dies holding it: the kernel drops the flock, the file stays */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	assert_int_equal(lock_acquire(dir, "deploy", "spilttea-ops deploy backend", &lock, &tk, &err), 0);
	assert_true(tk.stale);
	assert_false(tk.pid_running);
	assert_int_equal(tk.previous.pid, pid);
	assert_string_equal(tk.previous.command, "spilttea-ops deploy backend");
	assert_true(tk.previous.started > 0);
	snprintf(want, sizeof(want), "stale lock from pid %ld (not running), taking it over", (long)pid);
	assert_string_equal(tk.message, want);
	lock_release(lock);
}

static void test_lock_file_without_content(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;
	struct lock_takeover tk;
	char path[600];

	snprintf(path, sizeof(path), "%s/locks", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/locks/x.lock", dir);
	tu_write(path, "");
	assert_int_equal(lock_acquire(dir, "x", "cmd\nwith newline", &lock, &tk, &err), 0);
	assert_false(tk.stale);
	lock_release(lock);
}

static void test_bad_names(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;

	assert_int_equal(lock_acquire(dir, "../etc", "c", &lock, NULL, &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "invalid lock name '../etc'"));
	assert_int_equal(lock_acquire(dir, "", "c", &lock, NULL, &err), ST_EUSAGE);
	assert_int_equal(lock_acquire(dir, ".hidden", "c", &lock, NULL, &err), ST_EUSAGE);
	assert_int_equal(lock_acquire(dir, "a/b", "c", &lock, NULL, &err), ST_EUSAGE);
	assert_null(lock);
}

static void test_state_dir_not_writable(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct st_lock *lock = NULL;
	char path[600];

	/* A file where the locks directory should be. */
	snprintf(path, sizeof(path), "%s/locks", dir);
	tu_write(path, "not a dir");
	assert_int_equal(lock_acquire(dir, "x", "c", &lock, NULL, &err), ST_EIO);
	assert_non_null(strstr(err.message, "cannot take lock 'x'"));
}

/* The resource names every command uses for what it changes (review 2
 * item 4): a service's container, a database. */
static void test_resource_names(void **state)
{
	struct st_error err = { 0 };
	char buf[80];

	(void)state;
	assert_int_equal(lock_name_service(buf, sizeof(buf), "backend", &err), 0);
	assert_string_equal(buf, "svc:backend");
	assert_int_equal(lock_name_db(buf, sizeof(buf), "spilttea", &err), 0);
	assert_string_equal(buf, "db:spilttea");
	assert_int_equal(lock_name_valid("svc:backend", &err), 0);
	assert_int_equal(lock_name_valid("db:Spilt_Tea-2", &err), 0);
	assert_int_equal(lock_name_db(buf, sizeof(buf), "a/b", &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "invalid lock name 'db:a/b'"));
	assert_int_equal(lock_name_valid(":x", &err), ST_EUSAGE);
}

/* A set is taken whole or not at all: one name held elsewhere leaves none
 * of the others held (no half-locked run), and the message names it. */
static void test_set_all_or_nothing(void **state)
{
	const char *dir = *state;
	const char *const names[] = { "svc:backend", "db:spilttea", "backup" };
	struct st_error err = { 0 };
	struct st_lock *held = NULL, *probe = NULL;
	struct lock_set *set = NULL;
	pid_t pid;
	int status;

	/* Another process holds the database (a lock is per open file: a
	 * holder in this process would be refused as well, but say less). */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct st_error e = { 0 };

		if (lock_acquire(dir, "db:spilttea", "spilttea-ops restore x", &held, NULL, &e) != 0)
			_exit(1);
		sleep(3);
		_exit(0);
	}
	for (int i = 0; i < 100; i++) {
		char path[600];

		snprintf(path, sizeof(path), "%s/locks/db:spilttea.lock", dir);
		if (access(path, F_OK) == 0 && lock_acquire(dir, "db:spilttea", "probe", &probe, NULL, &err) != 0)
			break;
		lock_release(probe);
		probe = NULL;
		usleep(20000);
	}
	assert_int_equal(lock_acquire_set(dir, names, 3, "spilttea-ops migrate up", &set, NULL, &err), ST_ELOCKED);
	assert_null(set);
	if (!strstr(err.message, "db:spilttea is locked by pid") || !strstr(err.message, "spilttea-ops restore x"))
		fail_msg("message: %s", err.message);
	/* The two free ones were let go again. */
	assert_int_equal(lock_acquire(dir, "svc:backend", "c", &probe, NULL, &err), 0);
	lock_release(probe);
	assert_int_equal(lock_acquire(dir, "backup", "c", &probe, NULL, &err), 0);
	lock_release(probe);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	assert_int_equal(lock_acquire_set(dir, names, 3, "spilttea-ops migrate up", &set, NULL, &err), 0);
	lock_release_set(set);
}

/* One fixed order (command locks, then databases, then services; by name
 * within), duplicates once; release removes every file. */
static void test_set_order(void **state)
{
	const char *dir = *state;
	const char *const names[] = { "svc:backend", "incident", "db:spilttea", "svc:backend", "svc:frontend",
				      "backup" };
	struct st_error err = { 0 };
	struct lock_set *set = NULL;
	struct lock_takeover tk;
	char path[600];

	assert_int_equal(lock_acquire_set(dir, names, 6, "c", &set, &tk, &err), 0);
	assert_false(tk.stale);
	assert_int_equal(lock_set_count(set), 5);
	assert_string_equal(lock_set_name(set, 0), "backup");
	assert_string_equal(lock_set_name(set, 1), "incident");
	assert_string_equal(lock_set_name(set, 2), "db:spilttea");
	assert_string_equal(lock_set_name(set, 3), "svc:backend");
	assert_string_equal(lock_set_name(set, 4), "svc:frontend");
	snprintf(path, sizeof(path), "%s/locks/svc:frontend.lock", dir);
	assert_int_equal(access(path, F_OK), 0);
	lock_release_set(set);
	assert_int_equal(access(path, F_OK), -1);
	lock_release_set(NULL);
	/* An empty set is no error and holds nothing. */
	assert_int_equal(lock_acquire_set(dir, names, 0, "c", &set, NULL, &err), 0);
	assert_int_equal(lock_set_count(set), 0);
	lock_release_set(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		tu_dir_test(test_acquire_release),
		tu_dir_test(test_second_open_in_process_is_refused),
		tu_dir_test(test_contention_with_fork),
		tu_dir_test(test_stale_lock_file),
		tu_dir_test(test_lock_file_without_content),
		tu_dir_test(test_bad_names),
		tu_dir_test(test_state_dir_not_writable),
		cmocka_unit_test(test_resource_names),
		tu_dir_test(test_set_all_or_nothing),
		tu_dir_test(test_set_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
