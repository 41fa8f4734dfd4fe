/* Build contexts: the working tree filtered by .dockerignore (exceptions,
 * the Dockerfile always sent, sorted and reproducible), and a commit's tree
 * through git archive (--ref) without touching the working tree. Needs the
 * git program, no service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildctx.h"
#include "sbuf.h"
#include "testutil.h"
#include "timeutil.h"

static int to_sbuf(void *ud, const void *data, size_t len, struct st_error *err)
{
	(void)err;
	return sbuf_append(ud, data, len);
}

static void put(const char *dir, const char *rel, const char *text)
{
	char path[1024], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* "name\n" for every entry of a tar, plus "name=content" for small files. */
static void list_tar(const struct sbuf *a, struct sbuf *out)
{
	size_t off = 0;
	char pax[1024] = "";

	while (off + 512 <= a->len) {
		const char *h = a->buf + off;
		char name[1100];
		unsigned long long size = strtoull(h + 124, NULL, 8);
		char type = h[156];
		size_t i;
		int zero = 1;

		for (i = 0; i < 512; i++)
			if (h[i]) {
				zero = 0;
				break;
			}
		if (zero)
			break;
		off += 512;
		if (type == 'x') {
			const char *p = strstr(a->buf + off, "path=");

			if (p)
				snprintf(pax, sizeof(pax), "%.*s", (int)(strchr(p, '\n') - p - 5), p + 5);
			off += (size + 511) / 512 * 512;
			continue;
		}
		if (*pax)
			snprintf(name, sizeof(name), "%s", pax);
		else if (h[345])
			snprintf(name, sizeof(name), "%.155s/%.100s", h + 345, h);
		else
			snprintf(name, sizeof(name), "%.100s", h);
		pax[0] = '\0';
		if (type == '0' && size < 64)
			sbuf_printf(out, "%s=%.*s\n", name, (int)size, a->buf + off);
		else
			sbuf_printf(out, "%s\n", name);
		off += (size + 511) / 512 * 512;
	}
}

static void produce(struct buildctx *bc, struct sbuf *listing)
{
	struct sbuf tar = SBUF_INIT;
	struct st_error err = { 0 };

	if (buildctx_produce(bc, to_sbuf, &tar, &err) != 0)
		fail_msg("produce: %s", err.message);
	assert_int_equal(tar.len % 512, 0);
	list_tar(&tar, listing);
	sbuf_release(&tar);
}

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static void test_working_tree(void **state)
{
	char *dir = tu_mkdtemp();
	struct buildctx *bc = NULL;
	struct sbuf l = SBUF_INIT;
	struct st_error err = { 0 };

	(void)state;
	put(dir, "Dockerfile", "FROM x\n");
	put(dir, ".dockerignore", "# build junk\n*.log\nnode_modules\nsecrets/\n!secrets/public.pem\nDockerfile\n");
	put(dir, "app.js", "a");
	put(dir, "debug.log", "x");
	put(dir, "src/main.js", "m");
	put(dir, "src/trace.log", "x");
	put(dir, "node_modules/dep/index.js", "x");
	put(dir, "secrets/key.pem", "x");
	put(dir, "secrets/public.pem", "p");
	assert_int_equal(buildctx_open(dir, NULL, NULL, NULL, &bc, &err), 0);
	assert_null(bc->git_toplevel);
	assert_null(bc->git_commit);
	produce(bc, &l);
	/* sorted; Dockerfile and .dockerignore sent although listed; the
	 * excluded secrets/ is entered for its exception but not sent itself */
	assert_string_equal(sbuf_str(&l),
			    ".dockerignore\n"
			    "Dockerfile=FROM x\n\n"
			    "app.js=a\n"
			    "secrets/public.pem=p\n"
			    "src/\n"
			    "src/main.js=m\n"
			    "src/trace.log=x\n");
	/* ("*.log" is only the top level in Docker's rules: "**" reaches down) */
	assert_int_equal(bc->entries, 7);
	buildctx_free(bc);
	sbuf_release(&l);

	/* Errors: no Dockerfile, not a directory, a bad pattern. */
	assert_int_equal(buildctx_open(dir, "Dockerfile.prod", NULL, NULL, &bc, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "no Dockerfile.prod in build context"));
	assert_int_equal(buildctx_open("/nonexistent/ctx", NULL, NULL, NULL, &bc, &err), ST_ENOTFOUND);
	put(dir, ".dockerignore", "ok\n[bad\n");
	assert_int_equal(buildctx_open(dir, NULL, NULL, NULL, &bc, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, ".dockerignore:2:"));
	assert_int_equal(buildctx_open(dir, NULL, "HEAD", NULL, &bc, &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "not in a git work tree"));
	tu_rmtree(dir);
	free(dir);
}

static void test_git_ref(void **state)
{
	char *repo = tu_mkdtemp(), ctx[600], *v1 = NULL;
	struct buildctx *bc = NULL;
	struct sbuf l = SBUF_INIT;
	struct st_error err = { 0 };
	const char *argv[] = { "git", "rev-parse", "HEAD~1", NULL };
	char longname[300];

	(void)state;
	snprintf(ctx, sizeof(ctx), "%s/services/backend", repo);
	sh("git -C %s init -q && git -C %s config user.email t@t && git -C %s config user.name t", repo,
	   repo, repo);
	put(repo, "services/backend/Dockerfile", "FROM x\nENV V=1\n");
	put(repo, "services/backend/.dockerignore", "*.tmp\n");
	put(repo, "services/backend/a.tmp", "x");
	put(repo, "services/backend/app.js", "v1");
	put(repo, "other/file", "not in the context");
	/* a name longer than 100 bytes: git writes a pax header for it */
	snprintf(longname, sizeof(longname), "services/backend/deep/%.*s.js", 120, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
	put(repo, longname, "L");
	sh("git -C %s add -A && git -C %s commit -qm v1", repo, repo);
	put(repo, "services/backend/Dockerfile", "FROM x\nENV V=2\n");
	put(repo, "services/backend/app.js", "v2");
	put(repo, "services/backend/.dockerignore", "*.tmp\napp.js\n");
	sh("git -C %s commit -qam v2", repo);
	/* uncommitted change in the working tree */
	put(repo, "services/backend/app.js", "dirty");

	assert_int_equal(buildctx_git(repo, argv, 100, &v1, NULL, &err), 0);
	v1[40] = '\0';

	/* --ref HEAD~1: v1's tree and v1's .dockerignore, from a subdirectory */
	if (buildctx_open(ctx, NULL, "HEAD~1", NULL, &bc, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(bc->git_commit, v1);
	assert_string_equal(bc->git_prefix, "services/backend/");
	produce(bc, &l);
	assert_non_null(strstr(sbuf_str(&l), "Dockerfile=FROM x\nENV V=1\n"));
	assert_non_null(strstr(sbuf_str(&l), "app.js=v1\n"));
	assert_non_null(strstr(sbuf_str(&l), "nnnnnnnn.js=L\n"));
	assert_null(strstr(sbuf_str(&l), "a.tmp"));
	assert_null(strstr(sbuf_str(&l), "other/"));
	assert_null(strstr(sbuf_str(&l), "services/"));
	buildctx_free(bc);
	sbuf_reset(&l);

	/* HEAD: v2's .dockerignore now drops app.js */
	assert_int_equal(buildctx_open(ctx, NULL, "HEAD", NULL, &bc, &err), 0);
	produce(bc, &l);
	assert_non_null(strstr(sbuf_str(&l), "ENV V=2"));
	if (strstr(sbuf_str(&l), "app.js="))
		fail_msg("app.js sent: %s", sbuf_str(&l));
	buildctx_free(bc);
	sbuf_reset(&l);

	/* The working tree: dirty, HEAD's commit recorded */
	assert_int_equal(buildctx_open(ctx, NULL, NULL, NULL, &bc, &err), 0);
	assert_non_null(bc->git_commit);
	assert_int_equal(bc->git_dirty, 1);
	buildctx_free(bc);

	/* The working tree was not touched by building refs. */
	{
		FILE *f;
		char buf[16] = "";
		char path[700];

		snprintf(path, sizeof(path), "%s/app.js", ctx);
		f = fopen(path, "r");
		assert_non_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		assert_string_equal(buf, "dirty");
	}

	assert_int_equal(buildctx_open(ctx, NULL, "no-such-ref", NULL, &bc, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "git ref 'no-such-ref' names no commit"));
	free(v1);
	sbuf_release(&l);
	tu_rmtree(repo);
	free(repo);
}

/* ---- a git that hangs (review 2 item 15) ---- */

static volatile sig_atomic_t cancel_flag;

static void *set_cancel_soon(void *arg)
{
	(void)arg;
	time_sleep(0.3);
	cancel_flag = 1;
	return NULL;
}

/* PATH with a 'git' first that says nothing for a minute (exec: the
 * process killed is the one holding the pipes). Returns the old PATH. */
static char *hanging_git(const char *bin)
{
	char path[700], *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	FILE *f;

	snprintf(path, sizeof(path), "%s/git", bin);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nexec sleep 60\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s:%s", bin, old);
	setenv("PATH", path, 1);
	return old;
}

/* The request is gone: asked with a write of nothing, it says stop. */
static int request_gone(void *ud, const void *data, size_t len, struct st_error *err)
{
	(void)ud;
	(void)data;
	(void)len;
	return st_error_set(err, ST_EABORTED, "the build request ended before the context was sent");
}

static void test_hanging_git_is_interruptible(void **state)
{
	char *repo = tu_mkdtemp(), *bin = tu_mkdtemp(), *old_path, *out = NULL;
	const char *argv[] = { "git", "status", NULL };
	struct buildctx *bc = NULL;
	struct sbuf tar = SBUF_INIT;
	struct st_error err = { 0 };
	pthread_t th;
	double t0;

	(void)state;
	sh("git -C %s init -q && git -C %s config user.email t@t && git -C %s config user.name t", repo,
	   repo, repo);
	put(repo, "Dockerfile", "FROM x\n");
	sh("git -C %s add -A && git -C %s commit -qm v1", repo, repo);
	assert_int_equal(buildctx_open(repo, NULL, "HEAD", &cancel_flag, &bc, &err), 0);
	old_path = hanging_git(bin);

	/* buildctx_git: Ctrl-C ends the wait within a poll slice. */
	cancel_flag = 0;
	assert_int_equal(pthread_create(&th, NULL, set_cancel_soon, NULL), 0);
	t0 = time_monotonic();
	assert_int_equal(buildctx_git(repo, argv, 100, &out, &cancel_flag, &err), ST_EABORTED);
	pthread_join(th, NULL);
	assert_true(time_monotonic() - t0 < 3 * tu_time_scale());
	assert_string_equal(err.message, "git status interrupted");
	assert_null(out);

	/* git archive while producing: the same. */
	cancel_flag = 0;
	assert_int_equal(pthread_create(&th, NULL, set_cancel_soon, NULL), 0);
	t0 = time_monotonic();
	assert_int_equal(buildctx_produce(bc, to_sbuf, &tar, &err), ST_EABORTED);
	pthread_join(th, NULL);
	assert_true(time_monotonic() - t0 < 3 * tu_time_scale());
	assert_string_equal(err.message, "git archive interrupted");

	/* ... and when the build request has given up, without any Ctrl-C. */
	cancel_flag = 0;
	t0 = time_monotonic();
	assert_int_equal(buildctx_produce(bc, request_gone, NULL, &err), ST_EABORTED);
	assert_true(time_monotonic() - t0 < 3 * tu_time_scale());

	setenv("PATH", old_path, 1);
	free(old_path);
	buildctx_free(bc);
	sbuf_release(&tar);
	tu_rmtree(repo);
	tu_rmtree(bin);
	free(repo);
	free(bin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_working_tree),
		cmocka_unit_test(test_git_ref),
		cmocka_unit_test(test_hanging_git_is_interruptible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
