/*
 * incident_snapshot.c - the evidence folder: collect everything that can be
 * read without changing anything, then a SHA256SUMS manifest over it, and
 * optionally a tar.gz of the folder.
 *
 * Each artefact is written atomically (temporary file, fsync, rename) with
 * mode 0600 in directories made 0700. A failing artefact is recorded and
 * the collection goes on: during an incident half the services may be
 * down, and whatever can still be read is worth keeping.
 */
#include "incident.h"
#include "redact.h"
#include "actions_util.h"
#include "atomic_file.h"
#include "backup.h"
#include "config.h"
#include "docker.h"
#include "journal.h"
#include "redis.h"
#include "services.h"
#include "tar.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define EVIDENCE_PREFIX "evidence-"
#define LOGS_TIMEOUT 600.0
#define IO_CHUNK (64 * 1024)

struct collect {
	const struct incident_snapshot_request *rq;
	char dir[PATH_MAX];
	json_t *artefacts;
	size_t failed;
	struct redact_set secrets;    /* the configuration's passwords */
};

static int cancelled(const struct collect *c)
{
	return c->rq->cancel && *c->rq->cancel;
}

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory collecting evidence");
}

/* A file name made of what Docker names contain; anything else becomes '_'. */
static void safe_name(const char *in, char *out, size_t size)
{
	size_t i = 0;

	for (; *in && i + 1 < size; in++, i++) {
		int ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *in) &&
			 !(i == 0 && *in == '.');

		out[i] = ok ? *in : '_';
	}
	out[i] = '\0';
	if (!i)
		snprintf(out, size, "_");
}

static int rel_path(const struct collect *c, const char *rel, char *path, size_t size,
		    struct st_error *err)
{
	int n = snprintf(path, size, "%s/%s", c->dir, rel);

	if (n < 0 || (size_t)n >= size)
		return st_error_set(err, ST_EIO, "evidence path '%s/%s' is too long", c->dir, rel);
	return 0;
}

static int ensure_subdir(const struct collect *c, const char *sub, struct st_error *err)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = rel_path(c, sub, path, sizeof(path), err)) != 0)
		return rc;
	return atomic_file_mkdirs(path, 0700, err);
}

static int record(struct collect *c, const char *what, const char *rel, unsigned long long bytes,
		  const struct st_error *e, struct st_error *err)
{
	json_t *a;

	if (e) {
		a = json_pack("{s:s,s:s}", "what", what, "error", e->message[0] ? e->message : st_code_name(e->code));
		if (a && rel)
			json_object_set_new(a, "path", json_string(rel));
		c->failed++;
	} else {
		a = json_pack("{s:s,s:s,s:I}", "what", what, "path", rel, "bytes", (json_int_t)bytes);
	}
	if (!a || json_array_append_new(c->artefacts, a) != 0)
		return oom(err);
	return 0;
}

/* The password of a URL's user:password@, into out; 0 when there is none. */
static int url_password(const char *value, char *out, size_t size)
{
	const char *auth = strstr(value, "://"), *end, *at = NULL, *colon, *p;

	if (!auth)
		return 0;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon || (size_t)(at - colon - 1) >= size || at == colon + 1)
		return 0;
	memcpy(out, colon + 1, (size_t)(at - colon - 1));
	out[at - colon - 1] = '\0';
	return 1;
}

/* Adds a found secret to the set when it is long enough to be searched
 * for inside other text (shorter ones are hidden where they were found). */
static int add_found(struct redact_set *set, const char *value)
{
	return strlen(value) >= REDACT_MIN_TEXT ? redact_set_add(set, value) : 0;
}

/* "Env" arrays: NAME=*** for secret names, URL passwords masked; the
 * values go into found. */
static int redact_env_array(json_t *env, struct redact_set *found)
{
	json_t *e;
	size_t i;

	json_array_foreach(env, i, e) {
		const char *entry = json_string_value(e);
		const char *eq = entry ? strchr(entry, '=') : NULL;
		char name[256], pw[512], *val = NULL, *joined;
		size_t n;

		if (!eq || (size_t)(eq - entry) >= sizeof(name))
			continue;
		memcpy(name, entry, (size_t)(eq - entry));
		name[eq - entry] = '\0';
		if (redact_name_is_secret(name)) {
			if (add_found(found, eq + 1))
				return -1;
		} else {
			if (url_password(eq + 1, pw, sizeof(pw)) && add_found(found, pw))
				return -1;
			if (!(val = actions_redact_url_password(eq + 1)))
				return -1;
		}
		n = strlen(name) + strlen(val ? val : REDACTED) + 2;
		joined = malloc(n);
		if (!joined) {
			free(val);
			return -1;
		}
		snprintf(joined, n, "%s=%s", name, val ? val : REDACTED);
		free(val);
		if (json_array_set_new(env, i, json_string(joined))) {
			free(joined);
			return -1;
		}
		free(joined);
	}
	return 0;
}

/* 1 when word is an option whose value (the next word, or after '=') is a
 * secret: -a (redis-cli), --requirepass, --masterauth, --pass, or any
 * option named like a secret (--db-password, --api-key). */
static int secret_option(const char *word, size_t len)
{
	static const char *const fixed[] = { "-a", "--requirepass", "--masterauth", "--pass" };
	char name[128];
	size_t i, skip;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strlen(fixed[i]) == len && !memcmp(word, fixed[i], len))
			return 1;
	if (len < 3 || word[0] != '-')
		return 0;
	skip = word[1] == '-' ? 2 : 1;
	if (len - skip >= sizeof(name))
		return 0;
	memcpy(name, word + skip, len - skip);
	name[len - skip] = '\0';
	return redact_name_is_secret(name);
}

/* One command-line word: 1 when it carries a secret after '=' (NAME=VALUE
 * or --option=VALUE named like a secret); *value_at is where it starts. */
static int secret_assignment(const char *word, size_t len, size_t *value_at)
{
	const char *eq = memchr(word, '=', len);
	char name[128];
	size_t nl;

	if (!eq || eq == word)
		return 0;
	nl = (size_t)(eq - word);
	*value_at = nl + 1;
	if (word[0] == '-')
		return secret_option(word, nl);
	if (nl >= sizeof(name))
		return 0;
	memcpy(name, word, nl);
	name[nl] = '\0';
	return redact_name_is_secret(name);
}

/* The words of a command line in one string, with secrets as "***"; the
 * values go into found. *out: caller frees; NULL on ENOMEM. */
static char *redact_command(const char *text, struct redact_set *found)
{
	struct sbuf out = SBUF_INIT;
	const char *p = text;
	int hide_next = 0, bad = 0;

	while (*p && !bad) {
		size_t blanks = strspn(p, " \t"), len, at;
		const char *w = p + blanks;

		bad = sbuf_append(&out, p, blanks);
		len = strcspn(w, " \t");
		if (len == 0)
			break;
		if (hide_next) {
			char *v = strndup(w, len);

			bad = bad || !v || add_found(found, v) || sbuf_puts(&out, REDACTED);
			free(v);
			hide_next = 0;
		} else if (secret_assignment(w, len, &at)) {
			char *v = strndup(w + at, len - at);

			bad = bad || !v || add_found(found, v) || sbuf_append(&out, w, at) || sbuf_puts(&out, REDACTED);
			free(v);
		} else {
			hide_next = !memchr(w, '=', len) && secret_option(w, len);
			bad = bad || sbuf_append(&out, w, len);
		}
		p = w + len;
	}
	if (bad) {
		sbuf_release(&out);
		return NULL;
	}
	return sbuf_detach(&out);
}

/* A command line as an array of words (Cmd, Entrypoint, Args, Test): a
 * word after a secret option becomes "***", and each word is also read as
 * a command line of its own ("sh -c '... --requirepass X'"). */
static int redact_argv(json_t *arr, struct redact_set *found)
{
	json_t *e;
	size_t i;
	int hide_next = 0;

	json_array_foreach(arr, i, e) {
		const char *w = json_string_value(e);
		char *r;

		if (!w)
			continue;
		if (hide_next) {
			hide_next = 0;
			if (add_found(found, w) || json_array_set_new(arr, i, json_string(REDACTED)))
				return -1;
			continue;
		}
		hide_next = !strpbrk(w, " \t=") && secret_option(w, strlen(w));
		if (!(r = redact_command(w, found)))
			return -1;
		if (strcmp(r, w) && json_array_set_new(arr, i, json_string(r))) {
			free(r);
			return -1;
		}
		free(r);
	}
	return 0;
}

/* Walks v: Env, command lines and labels as described in incident.h. */
static int redact_walk(json_t *v, struct redact_set *found)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (redact_walk(m, found))
				return -1;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	json_object_foreach(v, k, m) {
		int rc = 0;

		if (!strcmp(k, "Env") && json_is_array(m)) {
			rc = redact_env_array(m, found);
		} else if ((!strcmp(k, "Cmd") || !strcmp(k, "Entrypoint") || !strcmp(k, "Args") ||
			    !strcmp(k, "Test") || !strcmp(k, "Shell")) && json_is_array(m)) {
			rc = redact_argv(m, found);
		} else if (!strcmp(k, "Command") && json_is_string(m)) {
			char *r = redact_command(json_string_value(m), found);

			rc = !r || json_string_set(m, r);
			free(r);
		} else if (!strcmp(k, "Labels") && json_is_object(m)) {
			const char *lk;
			json_t *lv;

			json_object_foreach(m, lk, lv)
				if (json_is_string(lv) && redact_name_is_secret(lk) &&
				    (add_found(found, json_string_value(lv)) || json_string_set(lv, REDACTED)))
					return -1;
		} else {
			rc = redact_walk(m, found);
		}
		if (rc)
			return -1;
	}
	return 0;
}

int incident_redact_inspect(json_t *doc, const struct redact_set *known, struct st_error *err)
{
	struct redact_set found = REDACT_SET_INIT;
	size_t i;
	int rc = 0;

	for (i = 0; known && i < known->n && rc == 0; i++)
		rc = redact_set_add(&found, known->values[i]);
	if (rc == 0 && redact_walk(doc, &found) != 0)
		rc = ST_ENOMEM;
	if (rc == 0)
		rc = redact_set_scrub_json(&found, doc);
	redact_set_release(&found);
	return rc ? oom(err) : 0;
}

/* Writes a JSON value (environments redacted in place) to rel and records
 * it. A write failure of the folder itself is fatal (returned); the value
 * stays the caller's. */
static int put_json(struct collect *c, const char *what, const char *rel, json_t *v,
		    struct st_error *err)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t n;
	int rc;

	if ((rc = rel_path(c, rel, path, sizeof(path), err)) != 0)
		return rc;
	if ((rc = incident_redact_inspect(v, &c->secrets, err)) != 0)
		return rc;
	text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return oom(err);
	n = strlen(text);
	rc = atomic_file_write_all(path, text, n, 0600, err);
	free(text);
	if (rc)
		return rc;
	return record(c, what, rel, n, NULL, err);
}

/* A Docker answer as an artefact: failure of the call is recorded. */
typedef int (*docker_get_fn)(struct docker_client *d, double timeout, json_t **out,
			     struct st_error *err);

static int put_docker(struct collect *c, struct docker_client *d, const char *what, const char *rel,
		      docker_get_fn get, struct st_error *err)
{
	struct st_error derr = { 0 };
	json_t *v = NULL;
	int rc;

	if (get(d, DOCKER_TIMEOUT_DEFAULT, &v, &derr) != 0)
		return record(c, what, rel, 0, &derr, err);
	rc = put_json(c, what, rel, v, err);
	json_decref(v);
	return rc;
}

/* ---- docker ---------------------------------------------------------------- */

/* How a Docker object is named in the evidence: the file name under its
 * folder and the "what" of its artefact. */
enum docker_label {
	LABEL_NAMES,    /* Names[0] without its '/', else the id */
	LABEL_DIGEST,   /* the id without "sha256:", 12 digits in "what" */
	LABEL_ID,       /* the id as it is */
};

typedef int (*docker_list_fn)(struct docker_client *d, double timeout, json_t **out,
			      struct st_error *err);
typedef int (*docker_inspect_fn)(struct docker_client *d, const char *id, double timeout,
				 json_t **out, struct st_error *err);

/* One kind of Docker object: list it into DIR/list.json, then inspect
 * each listed one into DIR/<name>.json. */
struct docker_kind {
	const char *dir;              /* folder in the evidence, and the list's path */
	const char *noun;             /* "container": "container list", "inspect of container X" */
	docker_list_fn list;
	const char *items;            /* the list answer's array member; NULL: the answer itself */
	const char *id_field;         /* what the inspect call is given */
	docker_inspect_fn inspect;
	enum docker_label label;
};

static int list_containers(struct docker_client *d, double timeout, json_t **out,
			       struct st_error *err)
{
	struct docker_container_filter f = { 1, NULL, NULL, NULL };

	return docker_container_list(d, &f, timeout, out, err);
}

static int list_images(struct docker_client *d, double timeout, json_t **out, struct st_error *err)
{
	return docker_image_list(d, 0, NULL, timeout, out, err);
}

static const struct docker_kind docker_kinds[] = {
	{ "containers", "container", list_containers, NULL, "Id", docker_container_inspect, LABEL_NAMES },
	{ "images", "image", list_images, NULL, "Id", docker_image_inspect, LABEL_DIGEST },
	{ "volumes", "volume", docker_volume_list, "Volumes", "Name", docker_volume_inspect, LABEL_ID },
};

/* The file (without ".json") and the artefact's "what" of one listed item. */
static void docker_item_names(const struct docker_kind *k, const json_t *item, const char *id,
			      char *file, size_t file_size, char *what, size_t what_size)
{
	const char *shown = id;

	if (k->label == LABEL_NAMES) {
		const char *name = json_string_value(json_array_get(json_object_get(item, "Names"), 0));

		if (name && *name == '/')
			name++;
		safe_name(name && *name ? name : id, file, file_size);
		snprintf(what, what_size, "inspect of %s %s", k->noun, name ? name : id);
		return;
	}
	if (k->label == LABEL_DIGEST) {
		shown = strncmp(id, "sha256:", 7) ? id : id + 7;
		safe_name(shown, file, file_size);
		snprintf(what, what_size, "inspect of %s %.12s", k->noun, shown);
		return;
	}
	safe_name(shown, file, file_size);
	snprintf(what, what_size, "inspect of %s %s", k->noun, shown);
}

static int collect_docker_kind(struct collect *c, struct docker_client *d, const struct docker_kind *k,
			       struct st_error *err)
{
	struct st_error derr = { 0 };
	json_t *list = NULL, *item;
	char list_rel[64], list_what[64];
	size_t i;
	int rc;

	snprintf(list_rel, sizeof(list_rel), "%s/list.json", k->dir);
	snprintf(list_what, sizeof(list_what), "%s list", k->noun);
	if ((rc = ensure_subdir(c, k->dir, err)) != 0)
		return rc;
	if (k->list(d, DOCKER_TIMEOUT_DEFAULT, &list, &derr) != 0)
		return record(c, list_what, list_rel, 0, &derr, err);
	if ((rc = put_json(c, list_what, list_rel, list, err)) != 0)
		goto out;
	json_array_foreach(k->items ? json_object_get(list, k->items) : list, i, item) {
		const char *id = json_string_value(json_object_get(item, k->id_field));
		char file[300], rel[400], what[400];
		json_t *v = NULL;

		if (cancelled(c)) {
			rc = st_error_set(err, ST_EABORTED, "interrupted while collecting evidence");
			goto out;
		}
		if (!id)
			continue;
		docker_item_names(k, item, id, file, sizeof(file), what, sizeof(what));
		snprintf(rel, sizeof(rel), "%s/%s.json", k->dir, file);
		st_error_clear(&derr);
		if (k->inspect(d, id, DOCKER_TIMEOUT_DEFAULT, &v, &derr) != 0)
			rc = record(c, what, rel, 0, &derr, err);
		else
			rc = put_json(c, what, rel, v, err);
		json_decref(v);
		if (rc)
			goto out;
	}
out:
	json_decref(list);
	return rc;
}

static int collect_docker_objects(struct collect *c, struct docker_client *d, struct st_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(docker_kinds) / sizeof(docker_kinds[0]) && rc == 0; i++)
		rc = collect_docker_kind(c, d, &docker_kinds[i], err);
	return rc;
}

/* ---- logs ------------------------------------------------------------------ */

struct log_sink {
	struct atomic_file *af;
	struct sbuf buf;
	int continuing;               /* the previous piece was split: no prefix */
	unsigned long long bytes;
	volatile sig_atomic_t *cancel;
};

static int sink_flush(struct log_sink *s, struct st_error *err)
{
	int rc = 0;

	if (s->buf.len) {
		rc = atomic_file_write(s->af, s->buf.buf, s->buf.len, err);
		s->bytes += s->buf.len;
		sbuf_reset(&s->buf);
	}
	return rc;
}

static int on_log_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct log_sink *s = ud;

	if (s->cancel && *s->cancel)
		return st_error_set(err, ST_EABORTED, "interrupted while collecting evidence");
	if (!s->continuing &&
	    sbuf_printf(&s->buf, "%s %s ", l->timestamp[0] ? l->timestamp : "-",
			l->stream == DOCKER_STREAM_STDERR ? "stderr" : "stdout") != 0)
		return oom(err);
	if (sbuf_append(&s->buf, l->text, l->len) != 0 || (!l->split && sbuf_puts(&s->buf, "\n") != 0))
		return oom(err);
	s->continuing = l->split;
	if (s->buf.len >= IO_CHUNK)
		return sink_flush(s, err);
	return 0;
}

static int collect_logs(struct collect *c, struct docker_client *d, struct st_error *err)
{
	const struct st_config *cfg = c->rq->cfg;
	size_t i;
	int rc;

	if ((rc = ensure_subdir(c, "logs", err)) != 0)
		return rc;
	for (i = 0; i < cfg->n_services; i++) {
		const char *name = cfg->services[i].container;
		struct docker_logs_opts o;
		struct log_sink s;
		struct st_error lerr = { 0 };
		char file[300], rel[400], what[400], path[PATH_MAX];

		safe_name(name, file, sizeof(file));
		snprintf(rel, sizeof(rel), "logs/%s.log", file);
		snprintf(what, sizeof(what), "logs of container %s (service %s)", name,
			 cfg->services[i].name);
		if ((rc = rel_path(c, rel, path, sizeof(path), err)) != 0)
			return rc;
		memset(&s, 0, sizeof(s));
		s.cancel = c->rq->cancel;
		if ((rc = atomic_file_open(path, 0600, &s.af, err)) != 0)
			return rc;
		memset(&o, 0, sizeof(o));
		o.timestamps = 1;
		o.tail = DOCKER_LOGS_TAIL_ALL;
		o.timeout = LOGS_TIMEOUT;
		rc = docker_container_logs(d, name, &o, on_log_line, &s, &lerr);
		if (rc == 0)
			rc = sink_flush(&s, &lerr);
		sbuf_release(&s.buf);
		if (rc == ST_EABORTED) {
			atomic_file_abort(s.af);
			*err = lerr;
			return rc;
		}
		if (rc) {
			/* Keep no half log: the error says what is missing. */
			atomic_file_abort(s.af);
			if ((rc = record(c, what, rel, 0, &lerr, err)) != 0)
				return rc;
			continue;
		}
		if ((rc = atomic_file_commit(s.af, err)) != 0)
			return rc;
		if ((rc = record(c, what, rel, s.bytes, NULL, err)) != 0)
			return rc;
	}
	return 0;
}

/* ---- redis, journal ---------------------------------------------------------- */

static int collect_redis(struct collect *c, struct st_error *err)
{
	struct redis_conn *r = NULL;
	struct st_error rerr = { 0 };
	redisReply *reply = NULL;
	char path[PATH_MAX];
	int rc;

	if ((rc = ensure_subdir(c, "redis", err)) != 0 ||
	    (rc = rel_path(c, "redis/info.txt", path, sizeof(path), err)) != 0)
		return rc;
	/* The raw answer, as redis-cli INFO shows it (redis_info() parses it
	 * in place). */
	if (services_redis(c->rq->svc, &r, &rerr) != 0 ||
	    redis_command(r, &reply, &rerr, "INFO", "all", NULL) != 0)
		return record(c, "redis INFO all", "redis/info.txt", 0, &rerr, err);
	if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS) {
		st_error_set(&rerr, ST_EPROTO, "INFO answered a reply of type %d", reply->type);
		freeReplyObject(reply);
		return record(c, "redis INFO all", "redis/info.txt", 0, &rerr, err);
	}
	rc = atomic_file_write_all(path, reply->str, reply->len, 0600, err);
	if (rc == 0)
		rc = record(c, "redis INFO all", "redis/info.txt", reply->len, NULL, err);
	freeReplyObject(reply);
	return rc;
}

/* The database dump, through the backup code (kind full): pg_dump as
 * configured (backup.via), verified end to end, with its manifest beside it. */
static int collect_database(struct collect *c, struct st_error *err)
{
	const struct st_config *cfg = c->rq->cfg;
	struct backup_request rq;
	struct backup_outcome out;
	struct st_error berr = { 0 };
	struct docker_client *d = NULL;
	char dir[PATH_MAX], rel[PATH_MAX + 16];
	const char *base;
	int rc;

	memset(&out, 0, sizeof(out));
	if ((rc = ensure_subdir(c, "database", err)) != 0 ||
	    (rc = rel_path(c, "database", dir, sizeof(dir), err)) != 0)
		return rc;
	memset(&rq, 0, sizeof(rq));
	rq.cfg = cfg;
	rq.dir = dir;
	rq.kind = BACKUP_KIND_FULL;
	rq.via = cfg->backup.via;
	rq.lock = 1;
	rq.command_line = c->rq->command_line;
	rq.cancel = c->rq->cancel;
	rq.codec = cfg->backup.compress;
	if (rq.via == CONFIG_VIA_EXEC && services_docker(c->rq->svc, &d, &berr) != 0)
		return record(c, "database dump (pg_dump, full)", "database", 0, &berr, err);
	rq.docker = d;
	rc = backup_create(&rq, &out, &berr);
	if (rc == ST_EABORTED && c->rq->cancel && *c->rq->cancel) {
		backup_manifest_release(&out.manifest);
		*err = berr;
		return rc;
	}
	base = strrchr(out.path, '/');
	snprintf(rel, sizeof(rel), "database/%s", base ? base + 1 : out.path);
	if (rc)
		rc = record(c, "database dump (pg_dump, full)", NULL, 0, &berr, err);
	else
		rc = record(c, "database dump (pg_dump, full)", rel, out.manifest.bytes_compressed, NULL, err);
	backup_manifest_release(&out.manifest);
	return rc;
}

/* Streams src into a new file dst (0600). ST_ENOTFOUND when src is missing. */
static int copy_file(const char *src, const char *dst, unsigned long long *bytes,
		     struct st_error *err)
{
	struct atomic_file *af = NULL;
	char *buf = NULL;
	int fd, rc = 0;

	*bytes = 0;
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return st_error_set(err, ST_ENOTFOUND, "'%s' does not exist", src);
		return st_error_set(err, ST_EIO, "cannot read '%s': %s", src, strerror(errno));
	}
	if (!(buf = malloc(IO_CHUNK))) {
		rc = oom(err);
		goto out;
	}
	if ((rc = atomic_file_open(dst, 0600, &af, err)) != 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, IO_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = atomic_file_write(af, buf, (size_t)n, err)) != 0)
			goto out;
		*bytes += (unsigned long long)n;
	}
	rc = atomic_file_commit(af, err);
	af = NULL;
out:
	atomic_file_abort(af);
	free(buf);
	close(fd);
	return rc;
}

static int collect_journal(struct collect *c, struct st_error *err)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct st_error jerr = { 0 };
	unsigned long long bytes = 0;
	int rc;

	if (snprintf(src, sizeof(src), "%s/" JOURNAL_FILE, c->rq->state_dir) >= (int)sizeof(src) ||
	    (rc = rel_path(c, JOURNAL_FILE, dst, sizeof(dst), err)) != 0)
		return st_error_set(err, ST_EIO, "journal path too long");
	rc = copy_file(src, dst, &bytes, &jerr);
	if (rc == ST_ENOTFOUND) {
		/* No journal yet is an empty journal. */
		rc = atomic_file_write_all(dst, "", 0, 0600, err);
		return rc ? rc : record(c, "journal", JOURNAL_FILE, 0, NULL, err);
	}
	if (rc)
		return record(c, "journal", JOURNAL_FILE, 0, &jerr, err);
	return record(c, "journal", JOURNAL_FILE, bytes, NULL, err);
}

/* ---- manifest ------------------------------------------------------------------ */

static void hex_of(const unsigned char *md, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

static int sha256_file(const char *path, char hex[65], unsigned long long *bytes,
		       struct st_error *err)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *buf = NULL;
	int fd, rc = 0;

	*bytes = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
	ctx = EVP_MD_CTX_new();
	buf = malloc(IO_CHUNK);
	if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = oom(err);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, IO_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		*bytes += (unsigned long long)n;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	hex_of(md, mdlen, hex);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

struct sums {
	struct sbuf text;
	size_t files;
	unsigned long long bytes;
};

static int sums_walk(const char *top, const char *rel, struct sums *s, struct st_error *err)
{
	struct dirent **list = NULL;
	char dir[PATH_MAX];
	int n, i, rc = 0;

	snprintf(dir, sizeof(dir), "%s%s%s", top, *rel ? "/" : "", rel);
	n = scandir(dir, &list, not_dots, by_name);
	if (n < 0)
		return st_error_set(err, ST_EIO, "cannot list '%s': %s", dir, strerror(errno));
	for (i = 0; i < n; i++) {
		char sub[PATH_MAX], path[PATH_MAX + 8], hex[65];
		unsigned long long bytes;
		struct stat st;

		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", list[i]->d_name) >=
		    (int)sizeof(sub)) {
			rc = st_error_set(err, ST_EIO, "path in '%s' is too long", dir);
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", top, sub);
		if (lstat(path, &st) != 0) {
			rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if ((rc = sums_walk(top, sub, s, err)) != 0)
				break;
			continue;
		}
		if (!S_ISREG(st.st_mode) || (!*rel && !strcmp(list[i]->d_name, INCIDENT_SUMS)) ||
		    atomic_file_is_partial(list[i]->d_name))
			continue;
		if ((rc = sha256_file(path, hex, &bytes, err)) != 0)
			break;
		if (sbuf_printf(&s->text, "%s  %s\n", hex, sub) != 0) {
			rc = oom(err);
			break;
		}
		s->files++;
		s->bytes += bytes;
	}
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

int incident_sums_write(const char *dir, size_t *files, unsigned long long *bytes,
			struct st_error *err)
{
	struct sums s = { SBUF_INIT, 0, 0 };
	char path[PATH_MAX];
	int rc;

	if (snprintf(path, sizeof(path), "%s/" INCIDENT_SUMS, dir) >= (int)sizeof(path))
		return st_error_set(err, ST_EIO, "path '%s' is too long", dir);
	rc = sums_walk(dir, "", &s, err);
	if (rc == 0)
		rc = atomic_file_write_all(path, sbuf_str(&s.text), s.text.len, 0600, err);
	if (rc == 0) {
		if (files)
			*files = s.files;
		if (bytes)
			*bytes = s.bytes;
	}
	sbuf_release(&s.text);
	return rc;
}

/* ---- archive ------------------------------------------------------------------- */

struct gz_sink {
	z_stream z;
	struct atomic_file *af;
	EVP_MD_CTX *md;
	unsigned char out[IO_CHUNK];
};

static int gz_drain(struct gz_sink *g, int flush, struct st_error *err)
{
	int zr;

	do {
		size_t have;

		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		zr = deflate(&g->z, flush);
		if (zr == Z_STREAM_ERROR)
			return st_error_set(err, ST_EIO, "gzip failed");
		have = sizeof(g->out) - g->z.avail_out;
		if (have) {
			int rc = atomic_file_write(g->af, g->out, have, err);
			if (rc)
				return rc;
			EVP_DigestUpdate(g->md, g->out, have);
		}
	} while (g->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static int gz_write(void *ud, const void *data, size_t len, struct st_error *err)
{
	struct gz_sink *g = ud;

	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		int rc;

		g->z.next_in = (Bytef *)(uintptr_t)data;
		g->z.avail_in = n;
		if ((rc = gz_drain(g, Z_NO_FLUSH, err)) != 0)
			return rc;
		data = (const char *)data + n;
		len -= n;
	}
	return 0;
}

int incident_archive(const char *dir, const char *path, char sha256[65], struct st_error *err)
{
	struct gz_sink *g = NULL;
	struct tar_writer tw;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char sumpath[PATH_MAX + 8], line[PATH_MAX + 80];
	const char *base = strrchr(dir, '/'), *pbase = strrchr(path, '/');
	int z_ok = 0, rc;

	base = base ? base + 1 : dir;
	pbase = pbase ? pbase + 1 : path;
	g = calloc(1, sizeof(*g));
	if (!g)
		return oom(err);
	if (!(g->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(g->md, EVP_sha256(), NULL) != 1) {
		rc = oom(err);
		goto out;
	}
	if (deflateInit2(&g->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		rc = oom(err);
		goto out;
	}
	z_ok = 1;
	if ((rc = atomic_file_open(path, 0600, &g->af, err)) != 0)
		goto out;
	tar_writer_init(&tw, gz_write, g);
	tw.mtime = (long long)time(NULL);
	if ((rc = tar_add_dir(&tw, base, 0700, err)) != 0 ||
	    (rc = tar_add_tree(&tw, base, dir, NULL, NULL, err)) != 0 ||
	    (rc = tar_finish(&tw, err)) != 0)
		goto out;
	g->z.next_in = NULL;
	g->z.avail_in = 0;
	if ((rc = gz_drain(g, Z_FINISH, err)) != 0)
		goto out;
	rc = atomic_file_commit(g->af, err);
	g->af = NULL;
	if (rc)
		goto out;
	EVP_DigestFinal_ex(g->md, md, &mdlen);
	hex_of(md, mdlen, sha256);
	snprintf(sumpath, sizeof(sumpath), "%s.sha256", path);
	snprintf(line, sizeof(line), "%s  %s\n", sha256, pbase);
	rc = atomic_file_write_all(sumpath, line, strlen(line), 0600, err);
out:
	if (rc)
		st_error_wrap(err, "cannot archive '%s'", dir);
	if (g) {
		atomic_file_abort(g->af);
		if (z_ok)
			deflateEnd(&g->z);
		EVP_MD_CTX_free(g->md);
		free(g);
	}
	return rc;
}

/* ---- the snapshot ---------------------------------------------------------------- */

static int evidence_name(double t, char *buf, size_t size)
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	return snprintf(buf, size, EVIDENCE_PREFIX "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Creates a new evidence folder (a suffix when one of that second exists). */
static int make_folder(struct collect *c, double t, struct st_error *err)
{
	char top[PATH_MAX], name[64];
	int i, rc;

	if ((rc = incident_path(c->rq->state_dir, c->rq->id, NULL, top, sizeof(top), err)) != 0 ||
	    (rc = atomic_file_mkdirs(top, 0700, err)) != 0)
		return rc;
	evidence_name(t, name, sizeof(name));
	for (i = 1; i < 100; i++) {
		int n = i == 1 ? snprintf(c->dir, sizeof(c->dir), "%s/%s", top, name)
			       : snprintf(c->dir, sizeof(c->dir), "%s/%s-%d", top, name, i);

		if (n < 0 || (size_t)n >= sizeof(c->dir))
			return st_error_set(err, ST_EIO, "evidence path under '%s' is too long", top);
		if (mkdir(c->dir, 0700) == 0)
			return chmod(c->dir, 0700) == 0 ? 0
			       : st_error_set(err, ST_EIO, "cannot chmod '%s': %s", c->dir, strerror(errno));
		if (errno != EEXIST)
			return st_error_set(err, ST_EIO, "cannot create '%s': %s", c->dir, strerror(errno));
	}
	return st_error_set(err, ST_EIO, "too many evidence folders of the same second in '%s'", top);
}

static int write_collection(struct collect *c, double started, struct st_error *err)
{
	char who[160], t1[40], t2[40], path[PATH_MAX], host[256];
	json_t *j;
	char *text = NULL;
	int rc;

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	if ((rc = rel_path(c, INCIDENT_COLLECTION, path, sizeof(path), err)) != 0)
		return rc;
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:I}", "incident", c->rq->id, "collector",
		      incident_collector(who, sizeof(who)), "host", host, "collected",
		      time_format_rfc3339(started, t1, sizeof(t1)), "finished",
		      time_format_rfc3339(time_wall(), t2, sizeof(t2)), "tool",
		      c->rq->tool_version ? c->rq->tool_version : "spilttea-ops", "docker_host",
		      c->rq->cfg->docker.host ? c->rq->cfg->docker.host : "", "artefacts", c->artefacts,
		      "failed", (json_int_t)c->failed);
	if (j && json_object_set_new(j, "redacted",
				     json_string("inspect: values of environment variables named like "
						 "secrets, passwords in URLs, secret options and labels in "
						 "command lines, and every occurrence of those values and of "
						 "the configured passwords are shown as ***"))) {
		json_decref(j);
		return oom(err);
	}
	if (!j || !(text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		json_decref(j);
		return oom(err);
	}
	rc = atomic_file_write_all(path, text, strlen(text), 0600, err);
	free(text);
	json_decref(j);
	return rc;
}

/* The configuration's passwords (postgres, redis), to be scrubbed from the
 * evidence wherever Docker shows them. One that cannot be read is simply
 * not known (the collection must go on). */
static int known_secrets(const struct st_config *cfg, struct redact_set *set, struct st_error *err)
{
	const struct config_secret *refs[] = { &cfg->postgres.password, &cfg->redis.password };
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof(refs) / sizeof(refs[0]) && rc == 0; i++) {
		struct st_error serr = { 0 };
		char *v = NULL;

		if (refs[i]->kind == CONFIG_SECRET_NONE || config_read_secret(refs[i], &v, &serr) != 0)
			continue;
		if (redact_set_add(set, v) != 0)
			rc = oom(err);
		config_secret_free(v);
	}
	return rc;
}

int incident_snapshot_take(const struct incident_snapshot_request *rq,
			   struct incident_snapshot_result *out, struct st_error *err)
{
	struct collect c;
	struct docker_client *d = NULL;
	struct st_error derr = { 0 };
	double started = time_wall();
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.rq = rq;
	if (!(c.artefacts = json_array()))
		return oom(err);
	if ((rc = known_secrets(rq->cfg, &c.secrets, err)) != 0 || (rc = make_folder(&c, started, err)) != 0)
		goto out;

	if (services_docker(rq->svc, &d, &derr) != 0) {
		const char *rels[] = { "docker", "containers", "images", "volumes", "logs" };
		size_t i;

		for (i = 0; i < sizeof(rels) / sizeof(rels[0]) && rc == 0; i++)
			rc = record(&c, rels[i], NULL, 0, &derr, err);
		if (rc)
			goto out;
	} else {
		/* Logs first: they are what changes fastest. */
		if ((rc = collect_logs(&c, d, err)) != 0 || (rc = ensure_subdir(&c, "docker", err)) != 0 ||
		    (rc = collect_docker_objects(&c, d, err)) != 0 ||
		    (rc = put_docker(&c, d, "docker version", "docker/version.json", docker_version, err)) != 0 ||
		    (rc = put_docker(&c, d, "docker info", "docker/info.json", docker_info, err)) != 0 ||
		    (rc = put_docker(&c, d, "docker system df", "docker/system-df.json", docker_system_df,
				     err)) != 0)
			goto out;
	}
	if (cancelled(&c)) {
		rc = st_error_set(err, ST_EABORTED, "interrupted while collecting evidence");
		goto out;
	}
	if ((rc = collect_database(&c, err)) != 0 || (rc = collect_redis(&c, err)) != 0 ||
	    (rc = collect_journal(&c, err)) != 0 ||
	    (rc = write_collection(&c, started, err)) != 0 ||
	    (rc = incident_sums_write(c.dir, &out->files, &out->bytes, err)) != 0)
		goto out;
	if (rq->archive) {
		if (snprintf(out->archive, sizeof(out->archive), "%s.tar.gz", c.dir) >=
		    (int)sizeof(out->archive)) {
			rc = st_error_set(err, ST_EIO, "archive path too long");
			goto out;
		}
		if ((rc = incident_archive(c.dir, out->archive, out->archive_sha256, err)) != 0)
			goto out;
	}
out:
	redact_set_release(&c.secrets);
	snprintf(out->dir, sizeof(out->dir), "%s", c.dir);
	out->failed = c.failed;
	out->artefacts = c.artefacts;
	if (rc)
		st_error_wrap(err, "evidence in '%s' is incomplete", c.dir[0] ? c.dir : rq->state_dir);
	return rc;
}

void incident_snapshot_release(struct incident_snapshot_result *r)
{
	if (!r)
		return;
	json_decref(r->artefacts);
	r->artefacts = NULL;
}

int incident_snapshot_latest(const char *state_dir, const char *id, char *dir, size_t size,
			     struct st_error *err)
{
	struct dirent **list = NULL;
	char top[PATH_MAX];
	int n, i, rc;
	const char *best = NULL;

	if ((rc = incident_path(state_dir, id, NULL, top, sizeof(top), err)) != 0)
		return rc;
	n = scandir(top, &list, not_dots, by_name);
	if (n < 0) {
		if (errno == ENOENT)
			return st_error_set(err, ST_ENOTFOUND, "incident '%s' has no evidence", id);
		return st_error_set(err, ST_EIO, "cannot list '%s': %s", top, strerror(errno));
	}
	for (i = 0; i < n; i++) {
		char sums[PATH_MAX + 80];
		struct stat st;

		if (strncmp(list[i]->d_name, EVIDENCE_PREFIX, strlen(EVIDENCE_PREFIX)) != 0)
			continue;
		if (snprintf(sums, sizeof(sums), "%s/%s/" INCIDENT_SUMS, top, list[i]->d_name) >=
		    (int)sizeof(sums))
			continue;
		/* Only a folder whose manifest was written is evidence. */
		if (stat(sums, &st) == 0 && S_ISREG(st.st_mode))
			best = list[i]->d_name;
	}
	rc = 0;
	if (!best)
		rc = st_error_set(err, ST_ENOTFOUND, "incident '%s' has no evidence yet", id);
	else if (snprintf(dir, size, "%s/%s", top, best) >= (int)size)
		rc = st_error_set(err, ST_EIO, "evidence path too long");
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}
