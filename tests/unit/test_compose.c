/* Compose service definitions: the subset (every key), interpolation, env
 * files, rejected keys with file:line:column, depends_on order; and the
 * inspect-derived definition: inherited vs explicit fields from canned
 * container and image inspects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "testutil.h"

static const char *src_dir(void)
{
	const char *s = getenv("ST_SOURCE_DIR");

	return s && *s ? s : ".";
}

static char *fixture(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/tests/fixtures/compose/%s", src_dir(), name) > 0);
	return p;
}

/* Loads text as a compose file living in the fixture directory. */
static int load_text(const char *text, const json_t *vars, struct compose_project **p,
		     struct st_error *err)
{
	char *dir = fixture("");
	int rc;

	dir[strlen(dir) - 1] = '\0';
	rc = compose_load_buffer("test-compose.yml", dir, text, strlen(text), vars, p, err);
	free(dir);
	return rc;
}

static int has_env(const json_t *config, const char *kv)
{
	const json_t *env = json_object_get(config, "Env");
	size_t i;

	for (i = 0; i < json_array_size(env); i++)
		if (!strcmp(json_string_value(json_array_get(env, i)), kv))
			return 1;
	return 0;
}

static const char *sget(const json_t *o, const char *path)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
		o = json_is_array(o) ? json_array_get(o, (size_t)atoi(tok)) : json_object_get(o, tok);
	return json_string_value(o);
}

static json_int_t iget(const json_t *o, const char *a, const char *b)
{
	return json_integer_value(json_object_get(json_object_get(o, a), b));
}

static void test_full_file(void **state)
{
	char *path = fixture("docker-compose.yml");
	struct compose_project *p = NULL;
	const struct compose_service *pg, *redis, *be, *fe;
	struct st_error err = { 0 };
	json_t *body = NULL;

	(void)state;
	setenv("REDIS_PASSWORD", "s3cret", 1);
	setenv("FROM_SHELL", "shell-value", 1);
	unsetenv("PG_DB");
	if (compose_load(path, NULL, &p, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(p->name, "spilttea");
	assert_int_equal(p->nservices, 4);

	pg = compose_find(p, "postgres");
	assert_non_null(pg);
	assert_string_equal(pg->image, "postgres:15");
	assert_string_equal(pg->container_name, "spilttea-postgres");
	assert_null(pg->build_context);
	assert_true(has_env(pg->config, "POSTGRES_DB=spilttea"));
	assert_string_equal(sget(pg->config, "HostConfig.Binds.0"), "spilttea_pgdata:/var/lib/postgresql/data");
	assert_non_null(strstr(sget(pg->config, "HostConfig.Binds.1"), "/tests/fixtures/compose/init:/docker-entrypoint-initdb.d:ro"));
	assert_string_equal(sget(pg->config, "Healthcheck.Test.0"), "CMD-SHELL");
	assert_int_equal(iget(pg->config, "Healthcheck", "Interval"), 10000000000LL);
	assert_int_equal(iget(pg->config, "Healthcheck", "StartPeriod"), 90000000000LL);
	assert_int_equal(iget(pg->config, "Healthcheck", "Retries"), 5);
	assert_string_equal(sget(pg->config, "HostConfig.RestartPolicy.Name"), "unless-stopped");
	assert_string_equal(sget(pg->config, "HostConfig.NetworkMode"), "host");

	redis = compose_find(p, "redis");
	assert_string_equal(sget(redis->config, "Cmd.0"), "redis-server");
	assert_string_equal(sget(redis->config, "Cmd.2"), "s3cret");
	assert_string_equal(sget(redis->config, "Cmd.4"), "64mb");
	assert_string_equal(sget(redis->config, "Cmd.6"), "");   /* --save "" */
	assert_string_equal(sget(redis->config, "Healthcheck.Test.1"), "redis-cli ping");
	assert_string_equal(sget(redis->config, "HostConfig.RestartPolicy.Name"), "always");

	be = compose_find(p, "backend");
	assert_non_null(strstr(be->build_context, "/tests/fixtures/compose/backend"));
	assert_string_equal(be->dockerfile, "Dockerfile.prod");
	assert_string_equal(be->build_args[0], "NODE_VERSION=20");
	assert_null(be->build_args[1]);
	/* env_file then environment: PORT from environment wins. */
	assert_true(has_env(be->config, "PORT=3001"));
	assert_true(has_env(be->config, "NODE_ENV=production"));
	assert_true(has_env(be->config, "DATABASE_URL=postgresql://spilttea:secret@localhost:5432/spilttea"));
	assert_true(has_env(be->config, "JWT_SECRET=quoted # not a comment"));
	assert_true(has_env(be->config, "SMTP_USER=noreply@example.test"));
	assert_true(has_env(be->config, "FROM_SHELL=shell-value"));
	assert_false(has_env(be->config, "PORT=9999"));
	assert_int_equal(be->ndeps, 2);
	assert_string_equal(be->deps[0].service, "postgres");
	assert_int_equal(be->deps[0].condition, COMPOSE_HEALTHY);
	assert_string_equal(sget(be->config, "HostConfig.PortBindings.3001/tcp.0.HostPort"), "3001");
	assert_string_equal(sget(be->config, "HostConfig.PortBindings.9229/tcp.0.HostIp"), "127.0.0.1");
	assert_non_null(json_object_get(json_object_get(be->config, "ExposedPorts"), "3001/tcp"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(be->config, "Labels"),
							      "com.spilttea.role")), "api");
	assert_string_equal(sget(be->config, "HostConfig.RestartPolicy.Name"), "on-failure");
	assert_int_equal(iget(json_object_get(be->config, "HostConfig"), "RestartPolicy", "MaximumRetryCount"), 3);
	assert_true(json_is_true(json_object_get(json_object_get(be->config, "HostConfig"), "Init")));
	assert_int_equal(json_integer_value(json_object_get(be->config, "StopTimeout")), 20);
	assert_string_equal(sget(be->config, "HostConfig.LogConfig.Type"), "json-file");
	assert_string_equal(sget(be->config, "HostConfig.LogConfig.Config.max-size"), "10m");
	assert_int_equal(be->line, 36);

	fe = compose_find(p, "frontend");
	assert_non_null(strstr(fe->build_context, "/tests/fixtures/compose/frontend"));
	assert_null(fe->dockerfile);
	assert_true(has_env(fe->config, "COST=$5"));
	assert_int_equal(fe->deps[0].condition, COMPOSE_STARTED);
	assert_string_equal(json_string_value(json_object_get(json_object_get(fe->config, "Labels"),
							      "com.spilttea.role")), "web");
	assert_string_equal(sget(fe->config, "Entrypoint.0"), "/docker-entrypoint.sh");

	assert_int_equal(compose_body(fe, "spilttea-frontend:r1", &body, &err), 0);
	assert_string_equal(sget(body, "Image"), "spilttea-frontend:r1");
	assert_null(json_object_get(fe->config, "Image"));
	json_decref(body);
	compose_free(p);
	free(path);
}

static void test_rejected_keys(void **state)
{
	struct compose_project *p = NULL;
	struct st_error err = { 0 };
	const char *text =
		"services:\n"
		"  backend:\n"
		"    image: x\n"
		"    privileged: true\n";

	(void)state;
	assert_int_equal(load_text(text, NULL, &p, &err), ST_ECONFIG);
	assert_null(p);
	assert_non_null(strstr(err.message, "test-compose.yml:4:5:"));
	assert_non_null(strstr(err.message, "service 'backend': key 'privileged' is not supported"));
	assert_non_null(strstr(err.hint, "container_name"));

	assert_int_equal(load_text("services:\n  a:\n    image: x\nnetworks:\n  front: {}\n", NULL, &p, &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, "test-compose.yml:4:1:"));
	assert_non_null(strstr(err.message, "'networks'"));

	assert_int_equal(load_text("services:\n  a:\n    image: x\n    healthcheck:\n      start_interval: 1s\n",
				   NULL, &p, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, ":5:7:"));
	assert_int_equal(load_text("services:\n  a:\n    build:\n      target: prod\n", NULL, &p, &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, "build: key 'target'"));
	assert_int_equal(load_text("services:\n  a:\n    restart: sometimes\n    image: x\n", NULL, &p, &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, ":3:14:"));
	assert_int_equal(load_text("services:\n  a:\n    container_name: a\n", NULL, &p, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "needs 'image' or 'build'"));
	assert_int_equal(load_text("services:\n  a:\n    image: x\n    depends_on: [b]\n", NULL, &p, &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, "depends on 'b'"));
	assert_int_equal(load_text("services:\n  a:\n    image: x\n    ports: ['3000-3005:3000-3005']\n",
				   NULL, &p, &err), ST_ECONFIG);
	assert_int_equal(load_text("services:\n  a:\n    image: x\n    env_file: missing.env\n", NULL, &p, &err),
			 ST_ENOTFOUND);
	assert_non_null(strstr(err.message, ":4:15:"));
	assert_non_null(strstr(err.message, "missing.env"));
	/* x- keys anywhere are fine; an optional missing env file too */
	assert_int_equal(load_text("x-top: 1\nservices:\n  a:\n    image: x\n    x-note: hi\n"
				   "    env_file: [{path: missing.env, required: false}]\n", NULL, &p, &err), 0);
	compose_free(p);
}

static void test_interpolation(void **state)
{
	struct compose_project *p = NULL;
	struct st_error err = { 0 };
	json_t *vars = json_pack("{s:s, s:s}", "FROM_FILE", "file", "EMPTY", "");
	const char *text =
		"services:\n"
		"  a:\n"
		"    image: img:${TAG-latest}\n"
		"    environment:\n"
		"      A: ${FROM_FILE}\n"
		"      B: $FROM_FILE-x\n"
		"      C: ${EMPTY:-dflt}\n"
		"      D: ${EMPTY-kept}\n"
		"      E: ${FROM_FILE:+set}\n"
		"      F: ${UNSET_XYZ:-${FROM_FILE}}\n"
		"      G: $$HOME\n"
		"      H: ${ST_TEST_SHELL_WINS}\n";

	(void)state;
	unsetenv("TAG");
	unsetenv("UNSET_XYZ");
	setenv("ST_TEST_SHELL_WINS", "shell", 1);
	assert_int_equal(json_object_set_new(vars, "ST_TEST_SHELL_WINS", json_string("file")), 0);
	if (load_text(text, vars, &p, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(p->services[0].image, "img:latest");
	assert_true(has_env(p->services[0].config, "A=file"));
	assert_true(has_env(p->services[0].config, "B=file-x"));
	assert_true(has_env(p->services[0].config, "C=dflt"));
	assert_true(has_env(p->services[0].config, "D="));
	assert_true(has_env(p->services[0].config, "E=set"));
	assert_true(has_env(p->services[0].config, "F=file"));
	assert_true(has_env(p->services[0].config, "G=$HOME"));
	assert_true(has_env(p->services[0].config, "H=shell"));
	compose_free(p);

	assert_int_equal(load_text("services:\n  a:\n    image: ${NOPE_XYZ:?give an image}\n", vars, &p, &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, ":3:12:"));
	assert_non_null(strstr(err.message, "NOPE_XYZ is missing a value: give an image"));
	assert_int_equal(load_text("services:\n  a:\n    image: x${\n", vars, &p, &err), ST_ECONFIG);
	assert_int_equal(load_text("services:\n  a:\n    image: a$-b\n", vars, &p, &err), ST_ECONFIG);
	json_decref(vars);
}

static void test_volumes_and_project(void **state)
{
	struct compose_project *p = NULL;
	struct st_error err = { 0 };
	const json_t *host;
	const char *text =
		"services:\n"
		"  a:\n"
		"    image: x\n"
		"    network_mode: host\n"
		"    volumes:\n"
		"      - data:/data\n"
		"      - ext:/ext:ro\n"
		"      - named:/named\n"
		"      - /abs:/abs\n"
		"      - /anon\n"
		"      - ../up/./x/../dir/:/up\n"
		"      - type: bind\n"
		"        source: rel\n"
		"        target: /rel\n"
		"        read_only: true\n"
		"      - {type: tmpfs, target: /scratch}\n"
		"volumes:\n"
		"  data:\n"
		"  ext: {external: true}\n"
		"  named: {name: exact-name}\n";

	(void)state;
	if (load_text(text, NULL, &p, &err) != 0)
		fail_msg("%s", err.message);
	assert_string_equal(p->name, "compose");  /* the directory's name */
	host = json_object_get(p->services[0].config, "HostConfig");
	assert_string_equal(sget(host, "Binds.0"), "compose_data:/data");
	assert_string_equal(sget(host, "Binds.1"), "ext:/ext:ro");
	assert_string_equal(sget(host, "Binds.2"), "exact-name:/named");
	assert_string_equal(sget(host, "Binds.3"), "/abs:/abs");
	/* relative sources are cleaned ("..", "." and trailing slashes go) */
	assert_non_null(strstr(sget(host, "Binds.4"), "/tests/fixtures/up/dir:/up"));
	assert_null(strstr(sget(host, "Binds.4"), ".."));
	assert_non_null(strstr(sget(host, "Binds.5"), "/tests/fixtures/compose/rel:/rel:ro"));
	assert_non_null(json_object_get(json_object_get(p->services[0].config, "Volumes"), "/anon"));
	assert_non_null(json_object_get(json_object_get(host, "Tmpfs"), "/scratch"));
	compose_free(p);

	assert_int_equal(load_text("services:\n  a:\n    image: x\nvolumes:\n  d: {driver: nfs}\n",
				   NULL, &p, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, ":5:7:"));
}

static void test_env_file_reader(void **state)
{
	char *dir = tu_mkdtemp(), path[512];
	json_t *o = json_object();
	struct st_error err = { 0 };
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/x.env", dir);
	f = fopen(path, "w");
	fputs("# comment\n\nA=1\nB = two words \nC='single $x # kept'\nD=\"dq\\nnl\"\n"
	      "export E=e\nF=a=b\nST_TEST_FROM_ENV\nG= # set me\nH=a#b\n", f);
	fclose(f);
	setenv("ST_TEST_FROM_ENV", "yes", 1);
	assert_int_equal(compose_read_env_file(path, o, &err), 0);
	assert_string_equal(json_string_value(json_object_get(o, "A")), "1");
	assert_string_equal(json_string_value(json_object_get(o, "B")), "two words");
	assert_string_equal(json_string_value(json_object_get(o, "C")), "single $x # kept");
	assert_string_equal(json_string_value(json_object_get(o, "D")), "dq\nnl");
	assert_string_equal(json_string_value(json_object_get(o, "E")), "e");
	assert_string_equal(json_string_value(json_object_get(o, "F")), "a=b");
	assert_string_equal(json_string_value(json_object_get(o, "ST_TEST_FROM_ENV")), "yes");
	/* The same comment rule as every other reader of env files (dotenv's). */
	assert_string_equal(json_string_value(json_object_get(o, "G")), "");
	assert_string_equal(json_string_value(json_object_get(o, "H")), "a");

	f = fopen(path, "w");
	fputs("GOOD=1\nBAD KEY=2\n", f);
	fclose(f);
	assert_int_equal(compose_read_env_file(path, o, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "x.env:2:"));
	json_decref(o);
	tu_rmtree(dir);
	free(dir);
}

/* ---- order ---- */



static void deps_of(void *ud, const char *name, const struct compose_dep **deps, size_t *n)
{
	const struct compose_service *s = compose_find(ud, name);

	*deps = s ? s->deps : NULL;
	*n = s ? s->ndeps : 0;
}

static void test_order(void **state)
{
	struct compose_project *p = NULL;
	struct st_error err = { 0 };
	const char *names[] = { "frontend", "backend", "redis", "postgres" };
	size_t order[4];
	const char *text =
		"services:\n"
		"  frontend: {image: f, depends_on: [backend]}\n"
		"  backend: {image: b, depends_on: {postgres: {condition: service_healthy}, redis: {condition: service_healthy}}}\n"
		"  redis: {image: r}\n"
		"  postgres: {image: p}\n";

	(void)state;
	assert_int_equal(load_text(text, NULL, &p, &err), 0);

	assert_int_equal(compose_order(names, 4, deps_of, p, order, &err), 0);
	assert_string_equal(names[order[0]], "redis");
	assert_string_equal(names[order[1]], "postgres");
	assert_string_equal(names[order[2]], "backend");
	assert_string_equal(names[order[3]], "frontend");
	/* Dependencies outside the list do not hold anything up. */
	assert_int_equal(compose_order(names, 2, deps_of, p, order, &err), 0);
	assert_string_equal(names[order[0]], "backend");
	compose_free(p);

	assert_int_equal(load_text("services:\n  a: {image: a, depends_on: [b]}\n  b: {image: b, depends_on: [a]}\n",
				   NULL, &p, &err), 0);
	{
		const char *ab[] = { "a", "b" };

		assert_int_equal(compose_order(ab, 2, deps_of, p, order, &err), ST_ECONFIG);
		assert_non_null(strstr(err.message, "cycle between a, b"));
	}
	compose_free(p);
}

static void test_durations(void **state)
{
	double d;

	(void)state;
	assert_int_equal(compose_parse_duration("1m30s", &d), 0);
	assert_true(d == 90);
	assert_int_equal(compose_parse_duration("500ms", &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(compose_parse_duration("1h", &d), 0);
	assert_true(d == 3600);
	assert_int_equal(compose_parse_duration("2.5s", &d), 0);
	assert_true(d == 2.5);
	assert_int_equal(compose_parse_duration("10", &d), 0);
	assert_int_equal(compose_parse_duration("1m30", &d), -1);
	/* Beyond Docker's int64 nanoseconds: refused, not overflowed. */
	assert_int_equal(compose_parse_duration("1e300s", &d), -1);
	assert_int_equal(compose_parse_duration("3000000h", &d), -1);
	assert_int_equal(compose_parse_duration("1000000h", &d), 0);
	assert_int_equal(compose_parse_duration("x", &d), -1);
	assert_int_equal(compose_parse_duration("", &d), -1);
}

/* ---- the running container as its own definition ---- */

static json_t *load_json(const char *name)
{
	char *path = fixture(name);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);

	if (!j)
		fail_msg("%s: %s", path, jerr.text);
	free(path);
	return j;
}

static void test_inspect_sandbox_backend(void **state)
{
	json_t *c = load_json("inspect-backend.json"), *img = load_json("image-standin.json"), *b = NULL;
	struct st_error err = { 0 };
	const json_t *labels, *host;

	(void)state;
	assert_int_equal(compose_body_from_inspect(c, img, "spilttea-test-backend:r2", &b, &err), 0);
	assert_string_equal(sget(b, "Image"), "spilttea-test-backend:r2");
	/* Inherited from the image: left to the new one. */
	assert_null(json_object_get(b, "Cmd"));
	assert_null(json_object_get(b, "Entrypoint"));
	assert_null(json_object_get(b, "Healthcheck"));
	assert_null(json_object_get(b, "User"));
	assert_false(has_env(b, "PATH=/usr/local/bin:/usr/bin"));
	labels = json_object_get(b, "Labels");
	assert_null(json_object_get(labels, "com.spilttea.sandbox"));
	assert_null(json_object_get(labels, "com.spilttea.sandbox.inputs"));
	/* Explicit: kept. */
	assert_non_null(json_object_get(labels, "com.spilttea.sandbox.config"));
	assert_string_equal(json_string_value(json_object_get(labels, "com.spilttea.sandbox.dir")),
			    "/srv/spilttea-ops/.sandbox");
	assert_true(has_env(b, "STANDIN_ROLE=backend"));
	assert_true(has_env(b, "PORT=55001"));
	assert_true(has_env(b, "DATABASE_URL=fake-database_url"));
	assert_int_equal(json_array_size(json_object_get(b, "Env")), 22);
	/* Host networking: no hostname of the host copied. */
	assert_null(json_object_get(b, "Hostname"));
	host = json_object_get(b, "HostConfig");
	assert_string_equal(sget(host, "NetworkMode"), "host");
	assert_true(json_is_true(json_object_get(host, "Init")));
	assert_string_equal(sget(host, "RestartPolicy.Name"), "unless-stopped");
	assert_string_equal(sget(host, "LogConfig.Type"), "json-file");
	assert_null(json_object_get(host, "ContainerIDFile"));
	assert_null(json_object_get(b, "NetworkingConfig"));
	json_decref(b);
	json_decref(c);
	json_decref(img);
}

static void test_inspect_custom(void **state)
{
	json_t *c = load_json("inspect-custom.json"), *img = load_json("image-node.json"), *b = NULL;
	struct st_error err = { 0 };
	const json_t *host, *labels, *ep;

	(void)state;
	assert_int_equal(compose_body_from_inspect(c, img, "sha256:2222", &b, &err), 0);
	/* Cmd differs from the image's, entrypoint does not: only Cmd. */
	assert_string_equal(sget(b, "Cmd.2"), "--trace-warnings");
	assert_null(json_object_get(b, "Entrypoint"));
	/* Env: NODE_VERSION overridden explicitly stays; image defaults go. */
	assert_true(has_env(b, "NODE_VERSION=18.19.0"));
	assert_true(has_env(b, "NODE_ENV=production"));
	assert_false(has_env(b, "YARN_VERSION=1.22.19"));
	assert_int_equal(json_array_size(json_object_get(b, "Env")), 3);
	/* Own healthcheck kept; WorkingDir, User, StopSignal equal to the image's dropped. */
	assert_string_equal(sget(b, "Healthcheck.Test.0"), "CMD-SHELL");
	assert_null(json_object_get(b, "WorkingDir"));
	assert_null(json_object_get(b, "User"));
	assert_null(json_object_get(b, "StopSignal"));
	assert_int_equal(json_integer_value(json_object_get(b, "StopTimeout")), 20);
	/* Labels: image's gone, explicit ones kept. */
	labels = json_object_get(b, "Labels");
	assert_int_equal(json_object_size(labels), 2);
	assert_non_null(json_object_get(labels, "com.spilttea.role"));
	/* ExposedPorts: only the extra one. */
	assert_int_equal(json_object_size(json_object_get(b, "ExposedPorts")), 1);
	assert_non_null(json_object_get(json_object_get(b, "ExposedPorts"), "9229/tcp"));
	/* Default hostname (short id) not kept. */
	assert_null(json_object_get(b, "Hostname"));
	/* The anonymous volume from the image's VOLUME keeps its data by name;
	 * the explicit /cache tmpfs (HostConfig.Mounts) stays as it is. */
	host = json_object_get(b, "HostConfig");
	assert_int_equal(json_array_size(json_object_get(host, "Binds")), 3);
	assert_string_equal(sget(host, "Binds.2"),
			    "0c3a9f1e5d7b2c4a6e8f0a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d:/app/uploads");
	assert_string_equal(sget(host, "Binds.1"), "spilttea_logs:/app/logs");
	assert_null(json_object_get(json_object_get(b, "Volumes"), "/app/uploads"));
	assert_null(json_object_get(host, "ContainerIDFile"));
	assert_string_equal(sget(host, "PortBindings.3001/tcp.0.HostPort"), "3001");
	/* The network endpoint with its alias, not the short-id alias. */
	ep = json_object_get(json_object_get(json_object_get(b, "NetworkingConfig"), "EndpointsConfig"),
			     "spilttea_default");
	assert_non_null(ep);
	assert_int_equal(json_array_size(json_object_get(ep, "Aliases")), 1);
	assert_string_equal(sget(ep, "Aliases.0"), "backend");
	json_decref(b);

	/* An explicit entrypoint: Cmd goes with it, even when empty. */
	json_object_set_new(json_object_get(c, "Config"), "Entrypoint", json_pack("[s]", "/bin/sh"));
	json_object_set_new(json_object_get(c, "Config"), "Cmd", json_null());
	assert_int_equal(compose_body_from_inspect(c, img, "x", &b, &err), 0);
	assert_string_equal(sget(b, "Entrypoint.0"), "/bin/sh");
	assert_true(json_is_array(json_object_get(b, "Cmd")));
	assert_int_equal(json_array_size(json_object_get(b, "Cmd")), 0);
	json_decref(b);

	/* Two networks cannot be reproduced by one create. */
	json_object_set_new(json_object_get(json_object_get(c, "NetworkSettings"), "Networks"), "other",
			    json_object());
	assert_int_equal(compose_body_from_inspect(c, img, "x", &b, &err), ST_EUSAGE);
	assert_non_null(strstr(err.message, "2 networks"));
	/* Not an inspect at all. */
	assert_int_equal(compose_body_from_inspect(img, img, "x", &b, &err), ST_EPROTO);
	json_decref(c);
	json_decref(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_rejected_keys),
		cmocka_unit_test(test_interpolation),
		cmocka_unit_test(test_volumes_and_project),
		cmocka_unit_test(test_env_file_reader),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_inspect_sandbox_backend),
		cmocka_unit_test(test_inspect_custom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
