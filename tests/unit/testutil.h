/*
 * testutil.h - small helpers shared by unit tests (temporary directories,
 * reading files back). Header-only: CMake builds each test_*.c alone.
 */
#ifndef ST_TESTUTIL_H
#define ST_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* A fresh directory under $TMPDIR or /tmp; caller frees and removes it. */
static inline char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	char *d;

	snprintf(tmpl, sizeof(tmpl), "%s/spilttea-test-XXXXXX", base && *base ? base : "/tmp");
	d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

/* rm -r of a directory tree made by a test. */
static inline void tu_rmtree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	struct stat st;

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sub = malloc(strlen(path) + strlen(de->d_name) + 2);
		if (!sub)
			continue;
		sprintf(sub, "%s/%s", path, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			tu_rmtree(sub);
		else
			unlink(sub);
		free(sub);
	}
	closedir(d);
	rmdir(path);
}

/* cmocka fixture of a test that works in a scratch directory of its own:
 * *state is its path (tu_mkdtemp), removed (tu_rmtree) and freed after.
 * tu_dir_test(f) is cmocka_unit_test(f) with it. */
static inline int tu_dir_setup(void **state)
{
	*state = tu_mkdtemp();
	return *state ? 0 : -1;
}

static inline int tu_dir_teardown(void **state)
{
	tu_rmtree(*state);
	free(*state);
	return 0;
}

#define tu_dir_test(f) cmocka_unit_test_setup_teardown(f, tu_dir_setup, tu_dir_teardown)

/* Whole file as a NUL-terminated string (caller frees), NULL if unreadable. */
static inline char *tu_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf) {
			size_t got = fread(buf, 1, (size_t)n, f);
			buf[got] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/* Number of directory entries other than . and .. */
static inline int tu_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static inline void tu_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static inline mode_t tu_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (st.st_mode & 07777) : (mode_t)-1;
}

/* Factor for the durations a test plays with when their ratios matter
 * (a 0.2 s task against a 0.4 s deadline), and for wall-clock bounds meant
 * as "well before the timeout": 1 normally, 5 under Valgrind (ctest -T
 * memcheck), where the code runs tens of times slower and threads take
 * turns on one core. */
static inline double tu_time_scale(void)
{
	return RUNNING_ON_VALGRIND ? 5.0 : 1.0;
}

#endif
