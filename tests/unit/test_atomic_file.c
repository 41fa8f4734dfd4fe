#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "atomic_file.h"
#include "testutil.h"

/* fsync() of a directory fails while this is set (a full or failing disk
 * after the rename): this definition takes the place of libc's for the
 * whole test program. */
static int fail_dir_fsync;

int fsync(int fd)
{
	struct stat st;

	if (fail_dir_fsync && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

struct fx {
	char *dir;
	char path[600];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	fx->dir = tu_mkdtemp();
	assert_non_null(fx->dir);
	snprintf(fx->path, sizeof(fx->path), "%s/data.txt", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	tu_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* Number of ".NAME.XXXXXX.partial" files left in dir. */
static int count_partials(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (atomic_file_is_partial(de->d_name))
			n++;
	closedir(d);
	return n;
}

static void test_write_all_default_mode(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char *got;

	umask(022);
	assert_int_equal(atomic_file_write_all(fx->path, "hello\n", 6, 0, &err), 0);
	got = tu_read(fx->path);
	assert_string_equal(got, "hello\n");
	free(got);
	assert_int_equal(tu_mode(fx->path), 0600);
	assert_int_equal(tu_count_entries(fx->dir), 1);
}

static void test_exact_mode_despite_umask(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };

	umask(077);
	assert_int_equal(atomic_file_write_all(fx->path, "x", 1, 0644, &err), 0);
	assert_int_equal(tu_mode(fx->path), 0644);
	umask(022);
}

static void test_replace_keeps_mode_when_asked(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char *got;

	tu_write(fx->path, "OLD=1\n");
	assert_int_equal(chmod(fx->path, 0640), 0);
	assert_int_equal(atomic_file_write_all(fx->path, "NEW=2\n", 6,
					       0600 | ATOMIC_FILE_PRESERVE_MODE, &err), 0);
	got = tu_read(fx->path);
	assert_string_equal(got, "NEW=2\n");
	free(got);
	assert_int_equal(tu_mode(fx->path), 0640);

	/* Without the flag the given mode wins. */
	assert_int_equal(atomic_file_write_all(fx->path, "N=3\n", 4, 0600, &err), 0);
	assert_int_equal(tu_mode(fx->path), 0600);
}

static void test_preserve_on_new_file_uses_given_mode(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };

	assert_int_equal(atomic_file_write_all(fx->path, "a", 1, 0604 | ATOMIC_FILE_PRESERVE_MODE,
					       &err), 0);
	assert_int_equal(tu_mode(fx->path), 0604);
}

static void test_streaming_commit(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	struct atomic_file *af = NULL;
	char *got;

	assert_int_equal(atomic_file_open(fx->path, 0600, &af, &err), 0);
	assert_string_equal(atomic_file_path(af), fx->path);
	assert_true(atomic_file_is_partial(strrchr(atomic_file_temp_path(af), '/') + 1));
	assert_int_equal(atomic_file_write(af, "one ", 4, &err), 0);
	assert_int_equal(write(atomic_file_fd(af), "two ", 4), 4);
	assert_int_equal(atomic_file_write(af, "three", 5, &err), 0);
	/* Readers do not see anything before commit. */
	assert_int_equal(access(fx->path, F_OK), -1);
	assert_int_equal(atomic_file_commit(af, &err), 0);
	got = tu_read(fx->path);
	assert_string_equal(got, "one two three");
	free(got);
	assert_int_equal(count_partials(fx->dir), 0);
}

static void test_abort_leaves_old_content_and_no_temp(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	struct atomic_file *af = NULL;
	char *got;

	tu_write(fx->path, "precious");
	assert_int_equal(atomic_file_open(fx->path, 0600, &af, &err), 0);
	assert_int_equal(atomic_file_write(af, "half-writ", 9, &err), 0);
	assert_int_equal(count_partials(fx->dir), 1);
	atomic_file_abort(af);
	assert_int_equal(count_partials(fx->dir), 0);
	got = tu_read(fx->path);
	assert_string_equal(got, "precious");
	free(got);
	atomic_file_abort(NULL);
}

static void test_abort_of_new_file_leaves_nothing(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	struct atomic_file *af = NULL;

	assert_int_equal(atomic_file_open(fx->path, 0600, &af, &err), 0);
	assert_int_equal(atomic_file_write(af, "x", 1, &err), 0);
	atomic_file_abort(af);
	assert_int_equal(tu_count_entries(fx->dir), 0);
}

/* A writer killed half way: the final name never appears (or keeps its old
 * content) and only a recognisable partial file is left behind, which does
 * not stop the next writer. */
static void test_crash_before_commit(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	pid_t pid;
	int status;
	char *got;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct atomic_file *af = NULL;

		if (atomic_file_open(fx->path, 0600, &af, &err) != 0 ||
		    atomic_file_write(af, "torn dat", 8, &err) != 0)
			_exit(1);
		_exit(0); /* dies without commit or abort */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(access(fx->path, F_OK), -1);
	assert_int_equal(count_partials(fx->dir), 1);

	assert_int_equal(atomic_file_write_all(fx->path, "whole", 5, 0600, &err), 0);
	got = tu_read(fx->path);
	assert_string_equal(got, "whole");
	free(got);
	assert_int_equal(count_partials(fx->dir), 1); /* the dead writer's, untouched */
}

static void test_missing_directory(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char path[700];

	snprintf(path, sizeof(path), "%s/nope/file", fx->dir);
	assert_int_equal(atomic_file_write_all(path, "x", 1, 0600, &err), ST_EIO);
	assert_non_null(strstr(err.message, "cannot create a temporary file for"));
	assert_non_null(strstr(err.hint, "/nope"));
}

static void test_rename_failure_cleans_up(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char inner[700];

	/* The target is a non-empty directory: rename() must fail. */
	assert_int_equal(mkdir(fx->path, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/keep", fx->path);
	tu_write(inner, "k");
	assert_int_equal(atomic_file_write_all(fx->path, "x", 1, 0600, &err), ST_EIO);
	assert_non_null(strstr(err.message, "cannot rename"));
	assert_int_equal(count_partials(fx->dir), 0);
}

/* A symlinked .env (a deploy tool's shared/ directory): the link stays a
 * link, the file it points to gets the new content with its own mode, and
 * the temporary file is made beside the real file (same file system). */
static void test_symlink_rewrites_the_target(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char real_dir[700], real[760], link2[700], dangling[700];
	struct stat st;
	char *got;

	snprintf(real_dir, sizeof(real_dir), "%s/shared", fx->dir);
	assert_int_equal(mkdir(real_dir, 0700), 0);
	snprintf(real, sizeof(real), "%s/backend.env", real_dir);
	tu_write(real, "JWT_SECRET=old\n");
	assert_int_equal(chmod(real, 0640), 0);
	assert_int_equal(symlink(real, fx->path), 0);
	/* A link to a link: the last one is the file. */
	snprintf(link2, sizeof(link2), "%s/second", fx->dir);
	assert_int_equal(symlink("data.txt", link2), 0);

	assert_int_equal(atomic_file_write_all(link2, "JWT_SECRET=new\n", 15,
					       0600 | ATOMIC_FILE_PRESERVE_MODE, &err), 0);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(lstat(link2, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	got = tu_read(real);
	assert_string_equal(got, "JWT_SECRET=new\n");
	free(got);
	assert_int_equal(tu_mode(real), 0640);
	assert_int_equal(count_partials(fx->dir), 0);
	assert_int_equal(count_partials(real_dir), 0);

	/* A link to nothing is refused, not replaced by a file. */
	snprintf(dangling, sizeof(dangling), "%s/dangling", fx->dir);
	assert_int_equal(symlink("missing/target.env", dangling), 0);
	assert_int_equal(atomic_file_write_all(dangling, "x", 1, 0600, &err), ST_EIO);
	assert_non_null(strstr(err.message, "symbolic link"));
	assert_int_equal(lstat(dangling, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

/* The rename happened but the directory could not be synced: the caller
 * learns both that the commit failed and that the file is in place (a
 * backup keeps its manifest then). */
static void test_commit_reports_the_rename(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	struct atomic_file *af = NULL;
	int renamed = -1;
	char *got;

	assert_int_equal(atomic_file_open(fx->path, 0600, &af, &err), 0);
	assert_int_equal(atomic_file_write(af, "new", 3, &err), 0);
	fail_dir_fsync = 1;
	assert_int_equal(atomic_file_commit_renamed(af, &renamed, &err), ST_EIO);
	fail_dir_fsync = 0;
	assert_non_null(strstr(err.message, "cannot sync directory"));
	assert_int_equal(renamed, 1);
	got = tu_read(fx->path);
	assert_string_equal(got, "new");
	free(got);

	/* Before the rename: nothing in place, renamed says so. */
	assert_int_equal(atomic_file_open(fx->path, 0600, &af, &err), 0);
	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(mkdir(fx->path, 0700), 0);
	{
		char inner[700];

		snprintf(inner, sizeof(inner), "%s/keep", fx->path);
		tu_write(inner, "k");
	}
	renamed = -1;
	assert_int_equal(atomic_file_commit_renamed(af, &renamed, &err), ST_EIO);
	assert_int_equal(renamed, 0);
	assert_int_equal(count_partials(fx->dir), 0);
}

static void test_is_partial(void **state)
{
	(void)state;
	assert_true(atomic_file_is_partial(".backup.sql.gz.Ab3x9Z.partial"));
	assert_true(atomic_file_is_partial(".a.abcdef.partial"));
	assert_false(atomic_file_is_partial("backup.sql.gz"));
	assert_false(atomic_file_is_partial(".partial"));
	assert_false(atomic_file_is_partial("a.abcdef.partial"));
	assert_false(atomic_file_is_partial(".a.abc.partial"));
}

static void test_mkdirs(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char path[700];

	snprintf(path, sizeof(path), "%s/a/b/c/", fx->dir);
	assert_int_equal(atomic_file_mkdirs(path, 0, &err), 0);
	snprintf(path, sizeof(path), "%s/a/b/c", fx->dir);
	assert_int_equal(tu_mode(path), 0700);
	assert_int_equal(atomic_file_mkdirs(path, 0, &err), 0); /* exists: fine */
	tu_write(fx->path, "file");
	snprintf(path, sizeof(path), "%s/sub", fx->path);
	assert_int_equal(atomic_file_mkdirs(path, 0, &err), ST_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_all_default_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_mode_despite_umask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_keeps_mode_when_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preserve_on_new_file_uses_given_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_old_content_and_no_temp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_of_new_file_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_failure_cleans_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_rewrites_the_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_reports_the_rename, setup, teardown),
		cmocka_unit_test(test_is_partial),
		cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
