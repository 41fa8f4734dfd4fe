/* The streaming ustar writer: headers read back, long names both ways,
 * files and trees from disk, and GNU tar reading what we wrote. */
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

#include "sbuf.h"
#include "tar.h"

static int to_sbuf(void *ud, const void *data, size_t len, struct st_error *err)
{
	(void)err;
	return sbuf_append(ud, data, len);
}

/* ---- a minimal reader, to check what we wrote ---- */

struct entry {
	char name[1024];
	char link[1024];
	char type;
	unsigned mode;
	uint64_t size;
	long long mtime;
	const char *data;
	int gnu;          /* GNU magic */
	int prefixed;     /* name came through the ustar prefix field */
};

static uint64_t octal(const char *f, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(f[i] - '0');
	return v;
}

static int read_archive(const struct sbuf *a, struct entry *out, int max)
{
	size_t off = 0;
	int n = 0;
	char longname[1024] = "", longlink[1024] = "";

	assert_int_equal(a->len % 512, 0);
	for (;;) {
		const char *h = a->buf + off;
		unsigned sum = 0, want;
		struct entry *e;
		uint64_t size;

		assert_true(off + 512 <= a->len);
		if (!memcmp(h, (char[512]){ 0 }, 512)) {
			/* End: two zero blocks, nothing after. */
			assert_int_equal(off + 1024, a->len);
			assert_memory_equal(h + 512, (char[512]){ 0 }, 512);
			return n;
		}
		for (int i = 0; i < 512; i++)
			sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
		want = (unsigned)octal(h + 148, 8);
		assert_int_equal(sum, want);
		size = octal(h + 124, 12);
		if (h[156] == 'L' || h[156] == 'K') {
			assert_string_equal(h, "././@LongLink");
			assert_true(size < sizeof(longname));
			memcpy(h[156] == 'L' ? longname : longlink, h + 512, size);
			off += 512 + (size + 511) / 512 * 512;
			continue;
		}
		assert_true(n < max);
		e = &out[n++];
		memset(e, 0, sizeof(*e));
		e->gnu = !memcmp(h + 257, "ustar  \0", 8);
		if (!e->gnu)
			assert_memory_equal(h + 257, "ustar\0" "00", 8);
		if (longname[0]) {
			snprintf(e->name, sizeof(e->name), "%s", longname);
			longname[0] = '\0';
		} else if (!e->gnu && h[345]) {
			snprintf(e->name, sizeof(e->name), "%.155s/%.100s", h + 345, h);
			e->prefixed = 1;
		} else {
			snprintf(e->name, sizeof(e->name), "%.100s", h);
		}
		if (longlink[0]) {
			snprintf(e->link, sizeof(e->link), "%s", longlink);
			longlink[0] = '\0';
		} else {
			snprintf(e->link, sizeof(e->link), "%.100s", h + 157);
		}
		e->type = h[156];
		e->mode = (unsigned)octal(h + 100, 8);
		e->size = size;
		e->mtime = (long long)octal(h + 136, 12);
		e->data = h + 512;
		assert_int_equal(octal(h + 108, 8), 0); /* uid */
		off += 512 + (size + 511) / 512 * 512;
	}
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- tests ---- */

static void test_memory_dir_symlink(void **state)
{
	struct sbuf a = SBUF_INIT;
	struct tar_writer tw;
	struct st_error err;
	struct entry e[8];

	(void)state;
	tar_writer_init(&tw, to_sbuf, &a);
	tw.mtime = 1795818856;
	assert_int_equal(tar_add_dir(&tw, "bin", 0755, &err), 0);
	assert_int_equal(tar_add_memory(&tw, "/Dockerfile", "FROM scratch\n", 13, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, "empty", "", 0, 0600, &err), 0);
	assert_int_equal(tar_add_symlink(&tw, "bin/sh", "busybox", &err), 0);
	assert_int_equal(tar_add_memory(&tw, "block", (char[512]){ 'x' }, 512, 0644, &err), 0);
	assert_int_equal(tar_finish(&tw, &err), 0);
	assert_int_equal(tw.offset, a.len);
	assert_int_equal(read_archive(&a, e, 8), 5);
	assert_string_equal(e[0].name, "bin/");
	assert_int_equal(e[0].type, '5');
	assert_int_equal(e[0].mode, 0755);
	assert_string_equal(e[1].name, "Dockerfile");
	assert_int_equal(e[1].type, '0');
	assert_int_equal(e[1].size, 13);
	assert_int_equal(e[1].mtime, 1795818856);
	assert_memory_equal(e[1].data, "FROM scratch\n", 13);
	assert_int_equal(e[2].size, 0);
	assert_int_equal(e[2].mode, 0600);
	assert_string_equal(e[3].name, "bin/sh");
	assert_int_equal(e[3].type, '2');
	assert_string_equal(e[3].link, "busybox");
	assert_int_equal(e[4].size, 512);
	/* After finishing, nothing more goes in. */
	assert_int_equal(tar_add_dir(&tw, "late", 0755, &err), ST_EUSAGE);
	assert_int_equal(tar_add_memory(&tw, "", "x", 1, 0644, &err), ST_EUSAGE);
	sbuf_release(&a);
}

static void test_long_names(void **state)
{
	struct sbuf a = SBUF_INIT, name = SBUF_INIT;
	struct tar_writer tw;
	struct st_error err;
	struct entry e[8];
	char *seg = repeat('d', 90), *flat = repeat('f', 120), *deep = NULL, *target = repeat('t', 150);

	(void)state;
	/* 90 + 1 + 90 = 181 bytes, splits at the '/' into prefix and name. */
	assert_int_equal(sbuf_printf(&name, "%s/%s", seg, seg), 0);
	/* 300 bytes: too long for ustar. */
	deep = repeat('p', 300);
	for (int i = 50; i < 300; i += 50)
		deep[i] = '/';
	tar_writer_init(&tw, to_sbuf, &a);
	assert_int_equal(tar_add_memory(&tw, name.buf, "a", 1, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, flat, "b", 1, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, deep, "c", 1, 0644, &err), 0);
	assert_int_equal(tar_add_symlink(&tw, "link", target, &err), 0);
	/* Exactly 100 bytes still fits the name field without a terminator. */
	flat[100] = '\0';
	assert_int_equal(tar_add_memory(&tw, flat, "d", 1, 0644, &err), 0);
	assert_int_equal(tar_finish(&tw, &err), 0);
	assert_int_equal(read_archive(&a, e, 8), 5);
	assert_string_equal(e[0].name, name.buf);
	assert_true(e[0].prefixed);
	assert_false(e[0].gnu);
	flat[100] = 'f';
	assert_string_equal(e[1].name, flat);
	assert_true(e[1].gnu);
	assert_string_equal(e[2].name, deep);
	assert_true(e[2].gnu);
	assert_string_equal(e[3].link, target);
	assert_true(e[3].gnu);
	flat[100] = '\0';
	assert_string_equal(e[4].name, flat);
	assert_false(e[4].gnu);
	free(seg);
	free(flat);
	free(deep);
	free(target);
	sbuf_release(&name);
	sbuf_release(&a);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

struct tmp {
	char dir[64];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/st-test-tar-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
}

static void tmp_remove(struct tmp *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	assert_int_equal(system(cmd), 0);
}

static int skip_named_skip(void *ud, const char *name, const struct stat *st, struct st_error *err)
{
	const char *base = strrchr(name, '/');

	(void)st;
	(void)err;
	(*(int *)ud)++;
	base = base ? base + 1 : name;
	return strncmp(base, "skip", 4) != 0;
}

/* Between the walk's lstat and the open, app.env becomes a symlink to a
 * file outside the tree (the filter runs in that gap). */
struct swap {
	const char *victim;   /* path to replace */
	const char *target;   /* where the symlink points */
};

static int swap_for_symlink(void *ud, const char *name, const struct stat *st, struct st_error *err)
{
	struct swap *s = ud;

	(void)st;
	(void)err;
	if (!strcmp(name, "app.env")) {
		assert_int_equal(unlink(s->victim), 0);
		assert_int_equal(symlink(s->target, s->victim), 0);
	}
	return 1;
}

/* Review item 19: the archive never carries what a symlink swapped in after
 * the lstat points to. */
static void test_symlink_race(void **state)
{
	struct sbuf a = SBUF_INIT;
	struct tar_writer tw;
	struct st_error err;
	struct tmp t;
	char ctx[128], victim[160], secret[160];
	struct swap s;

	(void)state;
	tmp_make(&t);
	snprintf(ctx, sizeof(ctx), "%s/ctx", t.dir);
	assert_int_equal(mkdir(ctx, 0755), 0);
	snprintf(victim, sizeof(victim), "%s/app.env", ctx);
	write_file(victim, "HARMLESS=1\n", 11, 0644);
	snprintf(secret, sizeof(secret), "%s/secret", t.dir);
	write_file(secret, "TOP-SECRET\n", 11, 0600);
	s.victim = victim;
	s.target = secret;
	tar_writer_init(&tw, to_sbuf, &a);
	assert_int_equal(tar_add_tree(&tw, NULL, ctx, swap_for_symlink, &s, &err), ST_EIO);
	assert_non_null(strstr(err.message, "changed while being archived"));
	assert_null(memmem(a.buf ? a.buf : "", a.len, "TOP-SECRET", 10));
	tmp_remove(&t);
	sbuf_release(&a);
}

static void test_files_and_tree(void **state)
{
	struct sbuf a = SBUF_INIT;
	struct tar_writer tw;
	struct st_error err;
	struct entry e[16];
	struct tmp t;
	struct stat st;
	char path[256], *data = malloc(100000);
	int seen = 0, n;

	(void)state;
	assert_non_null(data);
	for (int i = 0; i < 100000; i++)
		data[i] = (char)(i * 7 + i / 256);
	tmp_make(&t);
	snprintf(path, sizeof(path), "%s/ctx", t.dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/ctx/big.bin", t.dir);
	write_file(path, data, 100000, 0640);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/ctx/Dockerfile", t.dir);
	write_file(path, "FROM scratch\n", 13, 0644);
	snprintf(path, sizeof(path), "%s/ctx/skip.me", t.dir);
	write_file(path, "no", 2, 0644);
	snprintf(path, sizeof(path), "%s/ctx/sub", t.dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/ctx/sub/a.txt", t.dir);
	write_file(path, "A", 1, 0644);
	snprintf(path, sizeof(path), "%s/ctx/sub/link", t.dir);
	assert_int_equal(symlink("a.txt", path), 0);
	snprintf(path, sizeof(path), "%s/ctx/skipdir", t.dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/ctx/skipdir/hidden", t.dir);
	write_file(path, "H", 1, 0644);

	tar_writer_init(&tw, to_sbuf, &a);
	snprintf(path, sizeof(path), "%s/ctx", t.dir);
	assert_int_equal(tar_add_tree(&tw, NULL, path, skip_named_skip, &seen, &err), 0);
	assert_int_equal(tar_add_tree(&tw, "/copy/", path, NULL, NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/ctx/big.bin", t.dir);
	assert_int_equal(tar_add_file(&tw, "again.bin", path, &err), 0);
	assert_int_equal(tar_finish(&tw, &err), 0);
	n = read_archive(&a, e, 16);
	/* Byte order: "Dockerfile" < "big.bin" < "sub"; skip* left out with
	 * everything below skipdir (never shown to the filter). */
	assert_int_equal(seen, 7);
	assert_int_equal(n, 5 + 8 + 1);
	assert_string_equal(e[0].name, "Dockerfile");
	assert_string_equal(e[1].name, "big.bin");
	assert_int_equal(e[1].size, 100000);
	assert_int_equal(e[1].mode, 0640);
	assert_int_equal(e[1].mtime, (long long)st.st_mtime);
	assert_memory_equal(e[1].data, data, 100000);
	assert_string_equal(e[2].name, "sub/");
	assert_int_equal(e[2].mode, 0700);
	assert_string_equal(e[3].name, "sub/a.txt");
	assert_string_equal(e[4].name, "sub/link");
	assert_int_equal(e[4].type, '2');
	assert_string_equal(e[4].link, "a.txt");
	assert_string_equal(e[5].name, "copy/Dockerfile");
	assert_string_equal(e[7].name, "copy/skip.me");
	assert_string_equal(e[8].name, "copy/skipdir/");
	assert_string_equal(e[9].name, "copy/skipdir/hidden");
	assert_string_equal(e[12].name, "copy/sub/link");
	assert_string_equal(e[13].name, "again.bin");
	assert_memory_equal(e[13].data, data, 100000);

	/* Errors: missing file, a directory where a file is expected. */
	sbuf_reset(&a);
	tar_writer_init(&tw, to_sbuf, &a);
	snprintf(path, sizeof(path), "%s/ctx/missing", t.dir);
	assert_int_equal(tar_add_file(&tw, "m", path, &err), ST_EIO);
	assert_non_null(strstr(err.message, "No such file"));
	snprintf(path, sizeof(path), "%s/ctx/sub", t.dir);
	assert_int_equal(tar_add_file(&tw, "d", path, &err), ST_EUSAGE);
	/* Nothing was written, so the writer is still usable. */
	assert_int_equal(tar_add_path(&tw, "d", path, &err), 0);
	assert_int_equal(tar_finish(&tw, &err), 0);
	assert_int_equal(read_archive(&a, e, 16), 1);
	assert_string_equal(e[0].name, "d/");
	tmp_remove(&t);
	free(data);
	sbuf_release(&a);
}

static int fail_after(void *ud, const void *data, size_t len, struct st_error *err)
{
	size_t *budget = ud;

	(void)data;
	if (len > *budget)
		return st_error_set(err, ST_EIO, "disk full");
	*budget -= len;
	return 0;
}

static void test_write_failure_poisons(void **state)
{
	struct tar_writer tw;
	struct st_error err;
	size_t budget = 1024 + 100; /* the first entry, then part of a header */

	(void)state;
	tar_writer_init(&tw, fail_after, &budget);
	assert_int_equal(tar_add_memory(&tw, "a", "1", 1, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, "b", "2", 1, 0644, &err), ST_EIO);
	assert_string_equal(err.message, "disk full");
	budget = 1 << 20;
	assert_int_equal(tar_add_memory(&tw, "c", "3", 1, 0644, &err), ST_EIO);
	assert_non_null(strstr(err.message, "earlier error"));
	assert_int_equal(tar_finish(&tw, &err), ST_EIO);
}

static int to_fd(void *ud, const void *data, size_t len, struct st_error *err)
{
	if (write(*(int *)ud, data, len) != (ssize_t)len)
		return st_error_set(err, ST_EIO, "short write");
	return 0;
}

static void test_gnu_tar_reads_it(void **state)
{
	struct tar_writer tw;
	struct st_error err;
	struct sbuf longname = SBUF_INIT, out = SBUF_INIT;
	struct tmp t;
	char path[256], cmd[1024], buf[4096];
	char *seg = repeat('n', 80), *huge = repeat('h', 200);
	FILE *p;
	size_t n;
	int fd;

	(void)state;
	tmp_make(&t);
	assert_int_equal(sbuf_printf(&longname, "%s/%s/%s", seg, seg, seg), 0);
	snprintf(path, sizeof(path), "%s/out.tar", t.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	tar_writer_init(&tw, to_fd, &fd);
	tw.mtime = 1795818856;
	assert_int_equal(tar_add_dir(&tw, "etc", 0755, &err), 0);
	assert_int_equal(tar_add_memory(&tw, "etc/hostname", "spilttea\n", 9, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, longname.buf, "long via GNU\n", 13, 0644, &err), 0);
	assert_int_equal(tar_add_memory(&tw, huge, "huge\n", 5, 0644, &err), 0);
	assert_int_equal(tar_add_symlink(&tw, "etc/link", "hostname", &err), 0);
	assert_int_equal(tar_finish(&tw, &err), 0);
	close(fd);

	snprintf(cmd, sizeof(cmd), "tar -tvf '%s' 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		assert_int_equal(sbuf_append(&out, buf, n), 0);
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(out.buf, "drwxr-xr-x root/root "));
	assert_non_null(strstr(out.buf, " etc/\n"));
	assert_non_null(strstr(out.buf, "-rw-r--r-- root/root "));
	assert_non_null(strstr(out.buf, " etc/hostname\n"));
	assert_non_null(strstr(out.buf, longname.buf));
	assert_non_null(strstr(out.buf, huge));
	assert_non_null(strstr(out.buf, "etc/link -> hostname"));
	assert_null(strstr(out.buf, "warning"));

	snprintf(cmd, sizeof(cmd), "tar -xOf '%s' '%s' '%s'", path, longname.buf, huge);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_string_equal(buf, "long via GNU\nhuge\n");
	tmp_remove(&t);
	free(seg);
	free(huge);
	sbuf_release(&longname);
	sbuf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_symlink_race),
		cmocka_unit_test(test_memory_dir_symlink),
		cmocka_unit_test(test_long_names),
		cmocka_unit_test(test_files_and_tree),
		cmocka_unit_test(test_write_failure_poisons),
		cmocka_unit_test(test_gnu_tar_reads_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
