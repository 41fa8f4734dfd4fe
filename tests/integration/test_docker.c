/*
 * The Docker client against the real daemon ($DOCKER_HOST or the default
 * socket). Builds spilttea-test-busybox:latest through docker_image_build_from
 * from a tar context holding Debian's static busybox, then runs containers,
 * execs (with 50 MB of stdin), logs, stats, renames, stops, removes.
 * Everything created is named spilttea-test-* and removed in the group
 * teardown, also when a test failed. Fails (does not skip) without a daemon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_stats.h"
#include "docker.h"
#include "health_eval.h"
#include "sbuf.h"
#include "tar.h"
#include "timeutil.h"

#define IMAGE "spilttea-test-busybox"
#define IMAGE_LATEST IMAGE ":latest"
#define C_SLEEP "spilttea-test-docker-sleep"
#define C_RENAMED "spilttea-test-docker-renamed"
#define C_LOGS "spilttea-test-docker-logs"
#define C_FOLLOW "spilttea-test-docker-follow"
#define C_IDLE "spilttea-test-docker-idle"
#define C_MANY "spilttea-test-docker-manyfiles"
#define VOLUME "spilttea-test-docker-vol"
#define BUSYBOX "/bin/busybox"
#define MB50 (50u * 1024 * 1024)

static struct docker_client *dc;
static char *image_id;

/* ---- the test image ---- */

static const char dockerfile_head[] =
	"FROM scratch\n"
	"ARG GREETING\n"
	"LABEL spilttea.test.greeting=$GREETING\n"
	"COPY rootfs/ /\n";

static const char *const applets[] = {
	"sh", "cat", "head", "wc", "sha256sum", "sleep", "echo", "tr", "id", "true", "false", NULL,
};

struct context {
	const char *dockerfile_tail;  /* after dockerfile_head */
	const char *dockerfile_name;  /* path inside the context */
	int fail_after_dockerfile;    /* producer error in the middle */
};

static int context_produce(void *ud, docker_write_fn write, void *wud, struct st_error *err)
{
	const struct context *ctx = ud;
	struct sbuf df = SBUF_INIT, link = SBUF_INIT;
	struct tar_writer tw;
	int rc;

	tar_writer_init(&tw, write, wud);
	tw.mtime = 1795818856;
	if (sbuf_puts(&df, dockerfile_head) || sbuf_puts(&df, ctx->dockerfile_tail)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = tar_add_dir(&tw, "docker", 0755, err)) ||
	    (rc = tar_add_memory(&tw, ctx->dockerfile_name, df.buf, df.len, 0644, err)))
		goto out;
	if (ctx->fail_after_dockerfile) {
		rc = st_error_set(err, ST_EIO, "cannot read 'rootfs': injected failure");
		goto out;
	}
	if ((rc = tar_add_dir(&tw, "rootfs", 0755, err)) || (rc = tar_add_dir(&tw, "rootfs/bin", 0755, err)) ||
	    (rc = tar_add_file(&tw, "rootfs/bin/busybox", BUSYBOX, err)))
		goto out;
	for (const char *const *a = applets; *a; a++) {
		sbuf_reset(&link);
		if (sbuf_printf(&link, "rootfs/bin/%s", *a)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = tar_add_symlink(&tw, link.buf, "busybox", err)))
			goto out;
	}
	rc = tar_finish(&tw, err);
out:
	sbuf_release(&df);
	sbuf_release(&link);
	return rc;
}

struct progress {
	struct sbuf text;
};

static int on_progress(void *ud, const char *text)
{
	return sbuf_puts(&((struct progress *)ud)->text, text);
}

static const char *const build_args[] = { "GREETING=hello from spilttea", NULL };

static int build(const struct context *ctx, const char *const *tags, struct progress *p, char **id,
		 struct st_error *err)
{
	struct docker_build_opts o;

	memset(&o, 0, sizeof(o));
	o.tags = tags;
	o.dockerfile = ctx->dockerfile_name;
	o.build_args = build_args;
	o.on_progress = on_progress;
	o.ud = p;
	o.timeout = 120;
	return docker_image_build_from(dc, &o, context_produce, (void *)ctx, id, err);
}

/* ---- setup / teardown ---- */

static void remove_leftovers(void)
{
	static const char *const names[] = { "^/spilttea-test-docker-", NULL };
	struct docker_container_filter f = { .all = 1, .names = names };
	struct st_error err;
	json_t *list = NULL, *c;
	size_t i;

	if (docker_container_list(dc, &f, 0, &list, &err) == 0) {
		json_array_foreach(list, i, c) {
			const char *id = json_string_value(json_object_get(c, "Id"));

			if (id && docker_container_remove(dc, id, 1, 1, 0, &err))
				fprintf(stderr, "teardown: %s\n", err.message);
		}
	}
	json_decref(list);
	docker_image_remove(dc, IMAGE ":tagged", 1, 0, &err);
	docker_image_remove(dc, IMAGE ":build2", 1, 0, &err);
	docker_image_remove(dc, IMAGE_LATEST, 1, 0, &err);
	docker_volume_remove(dc, VOLUME, 1, 0, &err);
}

static int group_setup(void **state)
{
	static const char *const tags[] = { IMAGE_LATEST, IMAGE ":build2", NULL };
	struct context ctx = { "CMD [\"/bin/sleep\", \"300\"]\n", "docker/Test.Dockerfile", 0 };
	struct progress p = { SBUF_INIT };
	struct st_error err;
	char version[16];
	double t0;

	(void)state;
	if (docker_client_new(NULL, &dc, &err) || docker_client_negotiate(dc, version, sizeof(version), &err)) {
		fprintf(stderr, "docker is not usable: %s\nhint: %s\n", err.message, err.hint);
		return -1;
	}
	remove_leftovers();
	t0 = time_monotonic();
	if (build(&ctx, tags, &p, &image_id, &err)) {
		fprintf(stderr, "cannot build the test image: %s\n%s\n", err.message, sbuf_str(&p.text));
		sbuf_release(&p.text);
		return -1;
	}
	fprintf(stderr, "# API %s, built %s (%s) in %.2fs\n", version, IMAGE_LATEST, image_id,
		time_monotonic() - t0);
	sbuf_release(&p.text);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (dc)
		remove_leftovers();
	free(image_id);
	docker_client_free(dc);
	return 0;
}

static json_t *container_config(const char *const *cmd)
{
	json_t *argv = json_array();

	for (; *cmd; cmd++)
		json_array_append_new(argv, json_string(*cmd));
	return json_pack("{s:s,s:o,s:{s:s},s:{s:s,s:b}}", "Image", IMAGE_LATEST, "Cmd", argv, "Labels",
			 "spilttea.test", "docker", "HostConfig", "NetworkMode", "host", "Init", 1);
}

static void create_container(const char *name, const char *const *cmd, int start)
{
	struct st_error err;
	json_t *config = container_config(cmd);
	char *id = NULL;

	assert_non_null(config);
	if (docker_container_create(dc, name, config, 0, &id, &err))
		fail_msg("%s", err.message);
	assert_true(strlen(id) == 64);
	if (start && docker_container_start(dc, name, 0, &err))
		fail_msg("%s", err.message);
	free(id);
	json_decref(config);
}

/* ---- system ---- */

static void test_system(void **state)
{
	struct st_error err;
	json_t *j = NULL;
	char version[16];

	(void)state;
	assert_int_equal(docker_ping(dc, 5, &err), 0);
	assert_int_equal(docker_client_negotiate(dc, version, sizeof(version), &err), 0);
	assert_int_equal(docker_version(dc, 0, &j, &err), 0);
	assert_non_null(json_string_value(json_object_get(j, "ApiVersion")));
	/* We speak the daemon's version when it is within our range. */
	if (!strcmp(json_string_value(json_object_get(j, "ApiVersion")), "1.41"))
		assert_string_equal(version, "1.41");
	json_decref(j);
	assert_int_equal(docker_info(dc, 0, &j, &err), 0);
	assert_true(strlen(json_string_value(json_object_get(j, "DockerRootDir"))) > 1);
	json_decref(j);
	assert_int_equal(docker_system_df(dc, 0, &j, &err), 0);
	assert_true(json_is_array(json_object_get(j, "Images")));
	assert_true(json_is_integer(json_object_get(j, "LayersSize")));
	json_decref(j);
}

/* ---- build ---- */

static void test_build_result(void **state)
{
	struct st_error err;
	json_t *img = NULL, *tags;
	const char *label;

	(void)state;
	assert_int_equal(docker_image_inspect(dc, IMAGE_LATEST, 0, &img, &err), 0);
	assert_string_equal(json_string_value(json_object_get(img, "Id")), image_id);
	tags = json_object_get(img, "RepoTags");
	assert_int_equal(json_array_size(tags), 2);
	label = json_string_value(json_object_get(json_object_get(json_object_get(img, "Config"), "Labels"),
						  "spilttea.test.greeting"));
	assert_non_null(label);
	assert_string_equal(label, "hello from spilttea");
	json_decref(img);
}

static void test_build_failures(void **state)
{
	static const char *const fail_tags[] = { "spilttea-test-docker-fail:latest", NULL };
	struct context bogus = { "BOGUS instruction\n", "Dockerfile", 0 };
	struct context run_false = { "RUN [\"/bin/busybox\", \"false\"]\n", "Dockerfile", 0 };
	struct context partial = { "CMD [\"/bin/true\"]\n", "Dockerfile", 1 };
	struct progress p = { SBUF_INIT };
	struct st_error err;
	json_t *img = NULL;
	char *id = NULL;
	int rc;

	(void)state;
	/* An unknown instruction: the daemon's own words come back. */
	rc = build(&bogus, fail_tags, &p, &id, &err);
	fprintf(stderr, "# bad instruction: rc %d, HTTP %d: %s\n", rc, err.http_status, err.message);
	assert_true(rc == ST_EFAILED || rc == ST_EUSAGE || rc == ST_ESERVICE);
	assert_null(id);
	assert_non_null(strstr(err.message, "cannot build image 'spilttea-test-docker-fail:latest': "));
	assert_non_null(strcasestr(err.message, "unknown instruction: BOGUS"));
	/* A step that fails: HTTP 200, and only the final error line tells. */
	sbuf_reset(&p.text);
	rc = build(&run_false, fail_tags, &p, &id, &err);
	fprintf(stderr, "# failing RUN: rc %d, HTTP %d: %s\n", rc, err.http_status, err.message);
	assert_int_equal(rc, ST_EFAILED);
	assert_int_equal(err.http_status, 200);
	assert_null(id);
	assert_non_null(strstr(err.message, "image build failed: "));
	assert_non_null(strstr(err.message, "returned a non-zero code: 1"));
	assert_non_null(strstr(sbuf_str(&p.text), "Step 5/5 : RUN"));
	/* The context producer fails half-way: the build never runs on a partial context. */
	rc = build(&partial, fail_tags, &p, &id, &err);
	assert_int_equal(rc, ST_EIO);
	assert_non_null(strstr(err.message, "injected failure"));
	assert_null(id);
	assert_int_equal(docker_image_inspect(dc, fail_tags[0], 0, &img, &err), ST_ENOTFOUND);
	sbuf_release(&p.text);
}

/* ---- containers ---- */

static const char *const sleep_cmd[] = { "/bin/sleep", "300", NULL };

static void test_container_lifecycle(void **state)
{
	static const char *const labels[] = { "spilttea.test=docker", NULL };
	static const char *const names[] = { "^/" C_SLEEP "$", NULL };
	struct docker_container_filter by_label = { .labels = labels };
	struct docker_container_filter by_name = { .all = 1, .names = names };
	struct st_error err;
	json_t *j = NULL, *config = container_config(sleep_cmd);
	char *id = NULL;
	size_t i;
	json_t *c;
	int found = 0;

	(void)state;
	create_container(C_SLEEP, sleep_cmd, 1);
	/* The name is taken now. */
	assert_int_equal(docker_container_create(dc, C_SLEEP, config, 0, &id, &err), ST_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_non_null(strstr(err.message, "is already in use"));
	assert_null(id);
	/* Starting a running container is not an error (304). */
	assert_int_equal(docker_container_start(dc, C_SLEEP, 0, &err), 0);
	assert_int_equal(docker_container_inspect(dc, C_SLEEP, 0, &j, &err), 0);
	assert_true(json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "HostConfig"), "NetworkMode")),
			    "host");
	assert_true(json_is_true(json_object_get(json_object_get(j, "HostConfig"), "Init")));
	json_decref(j);
	assert_int_equal(docker_container_list(dc, &by_label, 0, &j, &err), 0);
	json_array_foreach(j, i, c) {
		json_t *n = json_array_get(json_object_get(c, "Names"), 0);

		found += !strcmp(json_string_value(n), "/" C_SLEEP);
	}
	assert_int_equal(found, 1);
	json_decref(j);
	assert_int_equal(docker_container_list(dc, &by_name, 0, &j, &err), 0);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	json_decref(config);
}

/* ---- exec ---- */

struct outputs {
	struct sbuf out, err;
	size_t max_piece;
	uint64_t out_bytes;
	int count_only;
};

static int to_out(void *ud, const char *data, size_t len)
{
	struct outputs *o = ud;

	o->out_bytes += len;
	if (len > o->max_piece)
		o->max_piece = len;
	return o->count_only ? 0 : sbuf_append(&o->out, data, len);
}

static int to_err(void *ud, const char *data, size_t len)
{
	return sbuf_append(&((struct outputs *)ud)->err, data, len);
}

static void outputs_release(struct outputs *o)
{
	sbuf_release(&o->out);
	sbuf_release(&o->err);
}

static void test_exec_output(void **state)
{
	static const char *const script[] = { "sh", "-c", "echo hello; echo oops >&2; echo more; exit 3", NULL };
	static const char *const whoami[] = { "sh", "-c", "echo \"$FOO\"; id -u", NULL };
	static const char *const env[] = { "FOO=bar baz", NULL };
	static const char *const big[] = { "head", "-c", "20000000", "/dev/zero", NULL };
	static const char *const missing[] = { "/bin/no-such-program", NULL };
	struct outputs o;
	struct st_error err;
	int code = -1;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(docker_exec_run(dc, C_SLEEP, script, NULL, NULL, to_out, to_err, &o, &code, &err), 0);
	assert_int_equal(code, 3);
	assert_string_equal(sbuf_str(&o.out), "hello\nmore\n");
	assert_string_equal(sbuf_str(&o.err), "oops\n");
	outputs_release(&o);

	memset(&o, 0, sizeof(o));
	assert_int_equal(docker_exec_run(dc, C_SLEEP, whoami, env, "1234", to_out, to_err, &o, &code, &err), 0);
	assert_int_equal(code, 0);
	assert_string_equal(sbuf_str(&o.out), "bar baz\n1234\n");
	outputs_release(&o);

	/* 20 MB of output arrives in small pieces, never held whole. */
	memset(&o, 0, sizeof(o));
	o.count_only = 1;
	assert_int_equal(docker_exec_run(dc, C_SLEEP, big, NULL, NULL, to_out, NULL, &o, &code, &err), 0);
	assert_int_equal(code, 0);
	assert_int_equal(o.out_bytes, 20000000);
	assert_true(o.max_piece <= 64 * 1024);
	outputs_release(&o);

	/* A program that does not exist: the runtime says so, exit 126/127. */
	memset(&o, 0, sizeof(o));
	assert_int_equal(docker_exec_run(dc, C_SLEEP, missing, NULL, NULL, to_out, to_err, &o, &code, &err), 0);
	fprintf(stderr, "# missing program: exit %d, output '%s'\n", code, sbuf_str(&o.out));
	assert_true(code == 126 || code == 127);
	outputs_release(&o);
}

/* Deterministic pseudo-random stdin, hashed as it is produced. */
struct gen {
	uint64_t state;
	uint64_t left;
	EVP_MD_CTX *md;
	unsigned char first[16];
	size_t first_len;
};

static ssize_t gen_read(void *ud, void *buf, size_t cap, struct st_error *err)
{
	struct gen *g = ud;
	unsigned char *p = buf;
	size_t n = g->left < cap ? (size_t)g->left : cap;

	(void)err;
	for (size_t i = 0; i < n; i++) {
		g->state ^= g->state << 13;
		g->state ^= g->state >> 7;
		g->state ^= g->state << 17;
		p[i] = (unsigned char)(g->state >> 24);
	}
	EVP_DigestUpdate(g->md, p, n);
	while (g->first_len < sizeof(g->first) && g->first_len < n) {
		g->first[g->first_len] = p[g->first_len];
		g->first_len++;
	}
	g->left -= n;
	return (ssize_t)n;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

struct hashed_out {
	EVP_MD_CTX *md;
	uint64_t bytes;
	struct sbuf keep;   /* the first bytes only */
};

static int hash_out(void *ud, const char *data, size_t len)
{
	struct hashed_out *h = ud;

	EVP_DigestUpdate(h->md, data, len);
	h->bytes += len;
	if (h->keep.len < 256)
		return sbuf_append(&h->keep, data, len < 256 ? len : 256);
	return 0;
}

static void gen_init(struct gen *g, uint64_t size)
{
	memset(g, 0, sizeof(*g));
	g->state = 0x9e3779b97f4a7c15ULL;
	g->left = size;
	g->md = EVP_MD_CTX_new();
	assert_non_null(g->md);
	assert_int_equal(EVP_DigestInit_ex(g->md, EVP_sha256(), NULL), 1);
}

static void digest_hex(EVP_MD_CTX *md, char *out)
{
	unsigned char d[32];
	unsigned n = 0;

	assert_int_equal(EVP_DigestFinal_ex(md, d, &n), 1);
	hex(d, n, out);
	EVP_MD_CTX_free(md);
}

static void test_exec_stdin_cat_roundtrip(void **state)
{
	static const char *const cat[] = { "cat", NULL };
	struct docker_exec_opts o;
	struct docker_exec_result res;
	struct hashed_out h;
	struct gen g;
	struct st_error err;
	char in_hex[65], out_hex[65];
	double t0;

	(void)state;
	/* SIGPIPE keeps its default action: an unhandled EPIPE would kill us. */
	assert_true(signal(SIGPIPE, SIG_DFL) == SIG_DFL);
	gen_init(&g, MB50);
	memset(&h, 0, sizeof(h));
	h.md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestInit_ex(h.md, EVP_sha256(), NULL), 1);
	memset(&o, 0, sizeof(o));
	o.argv = cat;
	o.stdin_read = gen_read;
	o.stdin_ud = &g;
	o.on_stdout = hash_out;
	o.on_stderr = to_err;
	o.ud = &h;
	o.timeout = 120;
	t0 = time_monotonic();
	/* cat writes as much as we write: both directions full at once. */
	assert_int_equal(docker_exec(dc, C_SLEEP, &o, &res, &err), 0);
	fprintf(stderr, "# 50 MiB through cat and back: %.2fs\n", time_monotonic() - t0);
	assert_int_equal(res.exit_code, 0);
	assert_true(res.stdin_complete);
	assert_int_equal(res.stdin_bytes, MB50);
	assert_int_equal(res.stdout_bytes, MB50);
	assert_int_equal(h.bytes, MB50);
	digest_hex(g.md, in_hex);
	digest_hex(h.md, out_hex);
	assert_string_equal(in_hex, out_hex);
	sbuf_release(&h.keep);
}

static void test_exec_stdin_sha256sum(void **state)
{
	static const char *const sum[] = { "sha256sum", NULL };
	struct docker_exec_opts o;
	struct docker_exec_result res;
	struct outputs out;
	struct gen g;
	struct st_error err;
	char in_hex[65];

	(void)state;
	gen_init(&g, MB50);
	memset(&out, 0, sizeof(out));
	memset(&o, 0, sizeof(o));
	o.argv = sum;
	o.stdin_read = gen_read;
	o.stdin_ud = &g;
	o.on_stdout = to_out;
	o.on_stderr = to_err;
	o.ud = &out;
	o.timeout = 120;
	assert_int_equal(docker_exec(dc, C_SLEEP, &o, &res, &err), 0);
	assert_int_equal(res.exit_code, 0);
	assert_true(res.stdin_complete);
	digest_hex(g.md, in_hex);
	assert_int_equal(strncmp(sbuf_str(&out.out), in_hex, 64), 0);
	assert_string_equal(sbuf_str(&out.out) + 64, "  -\n");
	outputs_release(&out);
}

static void test_exec_stdin_early_exit(void **state)
{
	static const char *const head[] = { "head", "-c", "10", NULL };
	struct docker_exec_opts o;
	struct docker_exec_result res;
	struct hashed_out h;
	struct gen g;
	struct st_error err;
	char ignored[65];
	double t0;

	(void)state;
	gen_init(&g, MB50);
	memset(&h, 0, sizeof(h));
	h.md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestInit_ex(h.md, EVP_sha256(), NULL), 1);
	memset(&o, 0, sizeof(o));
	o.argv = head;
	o.stdin_read = gen_read;
	o.stdin_ud = &g;
	o.on_stdout = hash_out;
	o.ud = &h;
	o.timeout = 60;
	t0 = time_monotonic();
	assert_int_equal(docker_exec(dc, C_SLEEP, &o, &res, &err), 0);
	fprintf(stderr, "# head -c 10 on 50 MiB: %.2fs, %llu bytes of stdin sent\n", time_monotonic() - t0,
		(unsigned long long)res.stdin_bytes);
	assert_true(time_monotonic() - t0 < 30);
	assert_int_equal(res.exit_code, 0);
	assert_false(res.stdin_complete);
	assert_true(res.stdin_bytes < MB50);
	assert_int_equal(h.bytes, 10);
	assert_memory_equal(h.keep.buf, g.first, 10);
	digest_hex(g.md, ignored);
	digest_hex(h.md, ignored);
	sbuf_release(&h.keep);
}

static void test_exec_not_running(void **state)
{
	static const char *const t[] = { "true", NULL };
	struct st_error err;
	int code = -1;

	(void)state;
	create_container(C_IDLE, sleep_cmd, 0);
	assert_int_equal(docker_exec_run(dc, C_IDLE, t, NULL, NULL, NULL, NULL, NULL, &code, &err), ST_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_non_null(strstr(err.message, "cannot run 'true' in container '" C_IDLE "': "));
	assert_non_null(strstr(err.message, "is not running"));
	assert_int_equal(docker_container_remove(dc, C_IDLE, 0, 0, 0, &err), 0);
}

/* ---- logs ---- */

struct line {
	int stream;
	double time;
	char ts[64];
	char *text;
	size_t len;
};

struct lines {
	struct line l[32];
	int n;
	int stop_after;
};

static int on_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct lines *ls = ud;
	struct line *x;

	(void)err;
	assert_false(l->split);
	assert_true(ls->n < 32);
	x = &ls->l[ls->n++];
	x->stream = l->stream;
	x->time = l->time;
	snprintf(x->ts, sizeof(x->ts), "%s", l->timestamp);
	x->text = strndup(l->text, l->len);
	x->len = l->len;
	return ls->stop_after && ls->n >= ls->stop_after;
}

/* The lines of one stream, in order; exactly `want` of them. One array
 * per stream, valid until the next call for that stream. */
static struct line **by_stream(struct lines *ls, int stream, int want)
{
	static struct line *picked[3][32];
	int n = 0;

	for (int i = 0; i < ls->n; i++)
		if (ls->l[i].stream == stream)
			picked[stream][n++] = &ls->l[i];
	assert_int_equal(n, want);
	return picked[stream];
}

static void lines_reset(struct lines *ls)
{
	for (int i = 0; i < ls->n; i++)
		free(ls->l[i].text);
	memset(ls, 0, sizeof(*ls));
}

static void test_logs(void **state)
{
	static const char *const script[] = {
		"sh", "-c",
		"head -c 40000 /dev/zero | tr '\\000' x; echo; echo out1; echo err1 >&2; sleep 1; "
		"echo out2; echo err2 >&2",
		NULL,
	};
	struct docker_logs_opts o;
	struct lines ls;
	struct line **out, **errs;
	struct st_error err;
	double mid;
	int status = -1;

	(void)state;
	memset(&ls, 0, sizeof(ls));
	create_container(C_LOGS, script, 1);
	assert_int_equal(docker_container_wait(dc, C_LOGS, "not-running", 30, &status, &err), 0);
	assert_int_equal(status, 0);

	memset(&o, 0, sizeof(o));
	o.timestamps = 1;
	assert_int_equal(docker_container_logs(dc, C_LOGS, &o, on_line, &ls, &err), 0);
	assert_int_equal(ls.n, 5);
	/* Order holds within a stream; across streams the daemon's two copiers
	 * may race, so only the one-second pause orders err1 before out2. */
	out = by_stream(&ls, DOCKER_STREAM_STDOUT, 3);
	errs = by_stream(&ls, DOCKER_STREAM_STDERR, 2);
	/* The 40000-byte line came as several log entries: one line again. */
	assert_int_equal(out[0]->len, 40000);
	assert_true(strspn(out[0]->text, "x") == 40000);
	assert_string_equal(out[1]->text, "out1");
	assert_string_equal(out[2]->text, "out2");
	assert_string_equal(errs[0]->text, "err1");
	assert_string_equal(errs[1]->text, "err2");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(strlen(ls.l[i].ts), 30);
		assert_true(ls.l[i].time > time_wall() - 120);
	}
	assert_true(out[1]->time >= out[0]->time && out[2]->time >= out[1]->time);
	assert_true(out[2]->time - errs[0]->time > 0.9);
	assert_true(errs[1]->time - out[1]->time > 0.9);
	mid = errs[0]->time + 0.5;
	lines_reset(&ls);

	/* tail counts entries from the end. */
	o.tail = 2;
	assert_int_equal(docker_container_logs(dc, C_LOGS, &o, on_line, &ls, &err), 0);
	assert_int_equal(ls.n, 2);
	assert_string_equal(by_stream(&ls, DOCKER_STREAM_STDOUT, 1)[0]->text, "out2");
	assert_string_equal(by_stream(&ls, DOCKER_STREAM_STDERR, 1)[0]->text, "err2");
	lines_reset(&ls);

	/* since / until split at the one-second pause. */
	o.tail = DOCKER_LOGS_TAIL_ALL;
	o.since = mid;
	assert_int_equal(docker_container_logs(dc, C_LOGS, &o, on_line, &ls, &err), 0);
	assert_int_equal(ls.n, 2);
	assert_string_equal(by_stream(&ls, DOCKER_STREAM_STDOUT, 1)[0]->text, "out2");
	assert_string_equal(by_stream(&ls, DOCKER_STREAM_STDERR, 1)[0]->text, "err2");
	lines_reset(&ls);
	o.since = 0;
	o.until = mid;
	assert_int_equal(docker_container_logs(dc, C_LOGS, &o, on_line, &ls, &err), 0);
	assert_int_equal(ls.n, 3);
	assert_int_equal(by_stream(&ls, DOCKER_STREAM_STDOUT, 2)[1]->len, 4);
	assert_string_equal(by_stream(&ls, DOCKER_STREAM_STDERR, 1)[0]->text, "err1");
	lines_reset(&ls);

	/* One stream only, without timestamps. */
	memset(&o, 0, sizeof(o));
	o.no_stdout = 1;
	assert_int_equal(docker_container_logs(dc, C_LOGS, &o, on_line, &ls, &err), 0);
	assert_int_equal(ls.n, 2);
	assert_string_equal(ls.l[0].text, "err1");
	assert_string_equal(ls.l[0].ts, "");
	assert_string_equal(ls.l[1].text, "err2");
	lines_reset(&ls);

	/* The callback stops the stream. */
	ls.stop_after = 2;
	assert_int_equal(docker_container_logs(dc, C_LOGS, NULL, on_line, &ls, &err), ST_EABORTED);
	assert_int_equal(ls.n, 2);
	lines_reset(&ls);
	assert_int_equal(docker_container_remove(dc, C_LOGS, 0, 0, 0, &err), 0);
}

static void test_logs_follow(void **state)
{
	static const char *const script[] = {
		"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done", NULL,
	};
	struct docker_logs_opts o;
	struct lines ls;
	struct st_error err;
	double t0;

	(void)state;
	memset(&ls, 0, sizeof(ls));
	memset(&o, 0, sizeof(o));
	o.follow = 1;
	o.timeout = 30;
	create_container(C_FOLLOW, script, 1);
	t0 = time_monotonic();
	/* Streams while the container runs and ends when it exits. */
	assert_int_equal(docker_container_logs(dc, C_FOLLOW, &o, on_line, &ls, &err), 0);
	assert_true(time_monotonic() - t0 > 0.5);
	assert_int_equal(ls.n, 3);
	assert_string_equal(ls.l[0].text, "line1");
	assert_string_equal(ls.l[2].text, "line3");
	lines_reset(&ls);
	assert_int_equal(docker_container_remove(dc, C_FOLLOW, 1, 0, 0, &err), 0);
}

/* ---- stats and concurrency ---- */

struct worker {
	int stats;         /* 1: one stats call, 0: inspect loop */
	int rc;
	char message[ST_ERROR_MESSAGE_MAX];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct st_error err;
	json_t *j = NULL;

	for (int i = 0; i < (w->stats ? 1 : 10) && !w->rc; i++) {
		w->rc = w->stats ? docker_container_stats(dc, C_SLEEP, 10, &j, &err)
				 : docker_container_inspect(dc, C_SLEEP, 10, &j, &err);
		json_decref(j);
		j = NULL;
	}
	if (w->rc)
		snprintf(w->message, sizeof(w->message), "%s", err.message);
	return NULL;
}

static void test_stats(void **state)
{
	struct docker_stats_sample a, b, pre;
	struct worker w[12];
	pthread_t th[12];
	struct st_error err;
	json_t *j = NULL;
	double pct, t0, elapsed;

	(void)state;
	assert_int_equal(docker_container_stats(dc, C_SLEEP, 10, &j, &err), 0);
	assert_int_equal(docker_stats_parse(j, &a, &pre, &err), 0);
	json_decref(j);
	assert_true(a.has_memory);
	assert_true(a.mem_usage > 0);
	assert_true(a.mem_limit > 0);
	assert_true(docker_stats_mem_used(&a) <= a.mem_usage);
	assert_int_equal(docker_stats_mem_percent(&a, &pct), 0);
	assert_true(pct >= 0 && pct < 100);
	assert_true(a.has_cpu);
	/* A one-shot sample alone gives no CPU%. */
	assert_false(pre.has_cpu);
	assert_int_equal(docker_container_stats(dc, C_SLEEP, 10, &j, &err), 0);
	assert_int_equal(docker_stats_parse(j, &b, NULL, &err), 0);
	json_decref(j);
	assert_int_equal(docker_stats_cpu_percent(&a, &b, &pct), 0);
	assert_true(pct >= 0 && pct < 100);

	/* The cgroup fast path of health reads the same figures the daemon
	 * does: this daemon runs on this host, so the container's cgroup is
	 * visible, and its figures agree with the API sample taken before. */
	{
		struct cgroup_roots roots = { "/sys/fs/cgroup", "/proc/stat", health_host_ram(), 0 };
		struct docker_stats_sample cg;
		const char *id;

		assert_int_equal(docker_container_inspect(dc, C_SLEEP, 10, &j, &err), 0);
		id = json_string_value(json_object_get(j, "Id"));
		assert_non_null(id);
		time_sleep(0.05); /* /proc/stat moves in 10 ms ticks */
		if (cgroup_stats_read(id, &roots, &cg, &err) != 0)
			fail_msg("cgroup figures of %s: %s", C_SLEEP, err.message);
		json_decref(j);
		j = NULL;
		assert_true(cg.cpu_total >= b.cpu_total);
		assert_true(cg.cpu_system >= b.cpu_system);
		assert_true(cg.online_cpus == b.online_cpus);
		assert_true(cg.mem_limit >= b.mem_limit - b.mem_limit / 100 &&
			    cg.mem_limit <= b.mem_limit + b.mem_limit / 100);
		/* a sleeping busybox: its memory barely moves between the reads */
		assert_true(cg.mem_usage + 4194304 >= b.mem_usage && cg.mem_usage <= b.mem_usage + 4194304);
		assert_int_equal(docker_stats_cpu_percent(&b, &cg, &pct), 0);
		assert_true(pct >= 0 && pct < 100);
	}

	/* One client, many threads: 4 stats and 8 inspect loops at once. The
	 * stats calls share the daemon's tick instead of waiting one each. */
	memset(w, 0, sizeof(w));
	t0 = time_monotonic();
	for (int i = 0; i < 12; i++) {
		w[i].stats = i < 4;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 12; i++) {
		pthread_join(th[i], NULL);
		if (w[i].rc)
			fail_msg("thread %d: %s", i, w[i].message);
	}
	elapsed = time_monotonic() - t0;
	fprintf(stderr, "# 4 stats + 80 inspects on 12 threads: %.2fs\n", elapsed);
	/* One at a time the four stats calls would take about 4 s. */
	assert_true(elapsed < 3.0);
}

/* ---- rename, stop, wait, remove ---- */

static void test_rename_stop_wait_remove(void **state)
{
	struct st_error err;
	json_t *j = NULL;
	char *started = NULL;
	int status = -1;
	double t0;

	(void)state;
	assert_int_equal(docker_container_rename(dc, C_SLEEP, C_RENAMED, 0, &err), 0);
	assert_int_equal(docker_container_inspect(dc, C_SLEEP, 0, &j, &err), ST_ENOTFOUND);
	assert_int_equal(docker_container_inspect(dc, C_RENAMED, 0, &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Name")), "/" C_RENAMED);
	json_decref(j);
	t0 = time_monotonic();
	/* With an init as PID 1, SIGTERM ends sleep at once: no 5 s grace wait. */
	assert_int_equal(docker_container_stop(dc, C_RENAMED, 5, 0, &err), 0);
	assert_true(time_monotonic() - t0 < 4);
	/* Stopping a stopped container is not an error (304). */
	assert_int_equal(docker_container_stop(dc, C_RENAMED, 5, 0, &err), 0);
	assert_int_equal(docker_container_wait(dc, C_RENAMED, NULL, 10, &status, &err), 0);
	assert_int_equal(status, 143);
	assert_int_equal(docker_container_inspect(dc, C_RENAMED, 0, &j, &err), 0);
	started = strdup(json_string_value(json_object_get(json_object_get(j, "State"), "StartedAt")));
	json_decref(j);
	/* Restart brings it back (a stopped container just starts). */
	assert_int_equal(docker_container_restart(dc, C_RENAMED, 1, 0, &err), 0);
	assert_int_equal(docker_container_inspect(dc, C_RENAMED, 0, &j, &err), 0);
	assert_true(json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
	assert_string_not_equal(json_string_value(json_object_get(json_object_get(j, "State"), "StartedAt")),
				started);
	json_decref(j);
	free(started);
	/* Removing a running container needs force. */
	assert_int_equal(docker_container_remove(dc, C_RENAMED, 0, 1, 0, &err), ST_ECONFLICT);
	assert_int_equal(err.http_status, 409);
	assert_int_equal(docker_container_remove(dc, C_RENAMED, 1, 1, 0, &err), 0);
	assert_int_equal(docker_container_inspect(dc, C_RENAMED, 0, &j, &err), ST_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_null(j);
}

/* A second DELETE while the daemon still removes the container (the retry
 * of a request that timed out on our side) gets 409 "removal ... already in
 * progress" from the real daemon: docker_container_remove waits until the
 * container is gone and succeeds. The container's layer holds thousands of
 * files, so its removal lasts long enough to be caught "removing". */
struct remove_call {
	const char *name;
	int rc;
	struct st_error err;
};

static void *remove_in_thread(void *arg)
{
	struct remove_call *r = arg;

	r->rc = docker_container_remove(dc, r->name, 1, 0, 60, &r->err);
	return NULL;
}

static void test_remove_while_removal_in_progress(void **state)
{
	static const char *const cmd[] = {
		"/bin/sh", "-c", "mkdir /many && cd /many && i=0; while [ $i -lt 6000 ]; do : > f$i; i=$((i+1)); done",
		NULL,
	};
	struct remove_call first;
	struct st_error err = { 0 };
	char status[32] = "";
	const char *st;
	json_t *j = NULL;
	pthread_t th;
	int exit_status = -1, seen_removing = 0, rc = 0, attempt;
	double deadline;

	(void)state;
	/* A removal that ends before the first look cannot be raced: set it up
	 * again (at most three times). */
	for (attempt = 0; attempt < 3 && !seen_removing; attempt++) {
		memset(&first, 0, sizeof(first));
		first.name = C_MANY;
		create_container(C_MANY, cmd, 1);
		assert_int_equal(docker_container_wait(dc, C_MANY, NULL, 120, &exit_status, &err), 0);
		assert_int_equal(exit_status, 0);
		assert_int_equal(pthread_create(&th, NULL, remove_in_thread, &first), 0);
		deadline = time_monotonic() + 30;
		while (time_monotonic() < deadline) {
			rc = docker_container_inspect(dc, C_MANY, 0, &j, &err);
			if (rc != 0)
				break;
			st = json_string_value(json_object_get(json_object_get(j, "State"), "Status"));
			snprintf(status, sizeof(status), "%s", st ? st : "");
			seen_removing = !strcmp(status, "removing") || !strcmp(status, "dead");
			json_decref(j);
			j = NULL;
			if (seen_removing)
				break;
			time_sleep(0.002);
		}
		if (!seen_removing)
			pthread_join(th, NULL); /* before any assert: it writes into this frame */
	}
	if (!seen_removing)
		fail_msg("never saw %s being removed (last status '%s', %s): the race was not set up", C_MANY,
			 status, rc ? err.message : "no error");
	rc = docker_container_remove(dc, C_MANY, 1, 0, 60, &err);
	pthread_join(th, NULL);
	/* Not found: the first removal ended just before this one was sent
	 * (rare; the race above is usually won). Without the wait for a
	 * removal in progress this is a 409 conflict. */
	if (rc && rc != ST_ENOTFOUND)
		fail_msg("second remove: %s (HTTP %d)", err.message, err.http_status);
	if (first.rc)
		fail_msg("first remove: %s", first.err.message);
	assert_int_equal(docker_container_inspect(dc, C_MANY, 0, &j, &err), ST_ENOTFOUND);
}

/* ---- images and volumes ---- */

static void test_image_tag_remove(void **state)
{
	struct st_error err;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(docker_image_tag(dc, IMAGE_LATEST, IMAGE, "tagged", 0, &err), 0);
	assert_int_equal(docker_image_inspect(dc, IMAGE ":tagged", 0, &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Id")), image_id);
	json_decref(j);
	assert_int_equal(docker_image_list(dc, 0, IMAGE, 0, &j, &err), 0);
	assert_int_equal(json_array_size(j), 1);
	assert_int_equal(json_array_size(json_object_get(json_array_get(j, 0), "RepoTags")), 3);
	json_decref(j);
	assert_int_equal(docker_image_remove(dc, IMAGE ":tagged", 0, 0, &err), 0);
	assert_int_equal(docker_image_inspect(dc, IMAGE ":tagged", 0, &j, &err), ST_ENOTFOUND);
	assert_int_equal(docker_image_tag(dc, "spilttea-test-docker-no-such-image", IMAGE, "x", 0, &err),
			 ST_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_non_null(strstr(err.message, "No such image"));
	assert_int_equal(docker_image_tag(dc, IMAGE_LATEST, "Spilttea-Test-Upper", "x", 0, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "invalid reference format"));
}

static void test_volumes(void **state)
{
	struct st_error err;
	json_t *labels = json_pack("{s:s}", "spilttea.test", "docker"), *j = NULL, *v;
	size_t i;
	int found = 0;

	(void)state;
	assert_int_equal(docker_volume_create(dc, VOLUME, labels, 0, &err), 0);
	assert_int_equal(docker_volume_inspect(dc, VOLUME, 0, &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Name")), VOLUME);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Labels"), "spilttea.test")),
			    "docker");
	json_decref(j);
	assert_int_equal(docker_volume_list(dc, 0, &j, &err), 0);
	json_array_foreach(json_object_get(j, "Volumes"), i, v)
		found += !strcmp(json_string_value(json_object_get(v, "Name")), VOLUME);
	assert_int_equal(found, 1);
	json_decref(j);
	assert_int_equal(docker_volume_remove(dc, VOLUME, 0, 0, &err), 0);
	assert_int_equal(docker_volume_inspect(dc, VOLUME, 0, &j, &err), ST_ENOTFOUND);
	json_decref(labels);
}

static void test_not_found(void **state)
{
	static const char *const t[] = { "true", NULL };
	struct st_error err;
	json_t *j = NULL;
	int code;

	(void)state;
	assert_int_equal(docker_container_inspect(dc, "spilttea-test-docker-missing", 0, &j, &err), ST_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_string_equal(err.message, "cannot inspect container 'spilttea-test-docker-missing': "
			    "No such container: spilttea-test-docker-missing");
	assert_int_equal(docker_container_stats(dc, "spilttea-test-docker-missing", 0, &j, &err), ST_ENOTFOUND);
	assert_int_equal(docker_container_logs(dc, "spilttea-test-docker-missing", NULL, on_line, NULL, &err),
			 ST_ENOTFOUND);
	assert_int_equal(docker_exec_run(dc, "spilttea-test-docker-missing", t, NULL, NULL, NULL, NULL, NULL, &code,
					 &err), ST_ENOTFOUND);
	assert_int_equal(err.http_status, 404);
	assert_int_equal(docker_container_stop(dc, "spilttea-test-docker-missing", 1, 0, &err), ST_ENOTFOUND);
	assert_int_equal(docker_container_remove(dc, "spilttea-test-docker-missing", 1, 0, 0, &err), ST_ENOTFOUND);
	assert_null(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system),
		cmocka_unit_test(test_build_result),
		cmocka_unit_test(test_build_failures),
		cmocka_unit_test(test_container_lifecycle),
		cmocka_unit_test(test_exec_output),
		cmocka_unit_test(test_exec_stdin_cat_roundtrip),
		cmocka_unit_test(test_exec_stdin_sha256sum),
		cmocka_unit_test(test_exec_stdin_early_exit),
		cmocka_unit_test(test_exec_not_running),
		cmocka_unit_test(test_logs),
		cmocka_unit_test(test_logs_follow),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_rename_stop_wait_remove),
		cmocka_unit_test(test_remove_while_removal_in_progress),
		cmocka_unit_test(test_image_tag_remove),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_not_found),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
