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

static int setup(void **state)
{
	*state = tu_mkdtemp();
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	tu_rmtree(*state);
	free(*state);
	return 0;
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acquire_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_in_process_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contention_with_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_lock_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_file_without_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_not_writable, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
