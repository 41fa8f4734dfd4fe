/*
 * incident_rotate.c - rotating a secret: a new random value, the env files
 * that assign it, the services that must pick it up, and recreating their
 * containers (Docker fixes a container's environment when it is created).
 */
#include "incident.h"
#include "atomic_file.h"
#include "compose.h"
#include "config.h"
#include "container.h"
#include "docker.h"
#include "envfile.h"
#include "redact.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define POLL_INTERVAL 0.25

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

int incident_secret_generate(char out[INCIDENT_SECRET_HEX], struct st_error *err)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[INCIDENT_SECRET_BYTES];
	size_t got = 0, i;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			explicit_bzero(raw, sizeof(raw));
			return st_error_set(err, ST_EIO, "cannot read random bytes: %s",
					    n < 0 ? strerror(errno) : "no entropy");
		}
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * sizeof(raw)] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

/* ---- env files -------------------------------------------------------------- */

static int list_add_unique(char ***list, size_t *n, const char *s)
{
	size_t i;
	char **nl;

	for (i = 0; i < *n; i++)
		if (!strcmp((*list)[i], s))
			return 0;
	nl = realloc(*list, (*n + 2) * sizeof(*nl));
	if (!nl)
		return -1;
	*list = nl;
	if (!(nl[*n] = strdup(s)))
		return -1;
	nl[++*n] = NULL;
	return 0;
}

static void list_free(char **list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

int incident_env_files(const struct st_config *cfg, char ***out, size_t *n, struct st_error *err)
{
	char **list = NULL;
	size_t count = 0, i;
	int rc;

	*out = NULL;
	*n = 0;
	for (i = 0; i < cfg->env_files.count; i++)
		if (list_add_unique(&list, &count, cfg->env_files.items[i]) != 0)
			goto nomem;
	/* The compose project's .env is the runbook's root ".env". */
	if (cfg->compose_env_file) {
		if (list_add_unique(&list, &count, cfg->compose_env_file) != 0)
			goto nomem;
	} else if (cfg->compose_file) {
		const char *slash = strrchr(cfg->compose_file, '/');
		size_t dl = slash ? (size_t)(slash - cfg->compose_file) : 1;
		char *p = malloc(dl + sizeof("/.env"));

		if (!p)
			goto nomem;
		if (slash)
			memcpy(p, cfg->compose_file, dl);
		else
			p[0] = '.';
		strcpy(p + dl, "/.env");
		rc = list_add_unique(&list, &count, p);
		free(p);
		if (rc != 0)
			goto nomem;
	}
	for (i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].env_file &&
		    list_add_unique(&list, &count, cfg->services[i].env_file) != 0)
			goto nomem;
	if (!list && !(list = calloc(1, sizeof(*list))))
		goto nomem;
	*out = list;
	*n = count;
	return 0;
nomem:
	list_free(list, count);
	return oom(err);
}

/* 1 when an "NAME=..." entry of a container's Config.Env names name. */
static int env_has(const json_t *env, const char *name)
{
	size_t i, n = strlen(name);
	json_t *e;

	json_array_foreach(env, i, e) {
		const char *s = json_string_value(e);
		if (s && !strncmp(s, name, n) && s[n] == '=')
			return 1;
	}
	return 0;
}

int incident_rotate_plan(const struct st_config *cfg, struct docker_client *docker,
			 const char *name, struct incident_rotate_plan *out, struct st_error *err)
{
	char **files = NULL;
	size_t nfiles = 0, i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!envfile_key_valid(name))
		return st_error_set(err, ST_EUSAGE, "'%s' is not a variable name (letters, digits, '_')",
				    name);
	if ((rc = incident_env_files(cfg, &files, &nfiles, err)) != 0)
		return rc;
	out->checked = files;
	out->nchecked = nfiles;
	if (!(out->files = calloc(1, sizeof(*out->files))) ||
	    !(out->services = calloc(1, sizeof(*out->services)))) {
		rc = oom(err);
		goto out;
	}
	for (i = 0; i < nfiles; i++) {
		struct envfile ef = ENVFILE_INIT;
		struct st_error ferr = { 0 };
		int has;

		rc = envfile_load(files[i], &ef, &ferr);
		if (rc == ST_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc) {
			*err = ferr;
			goto out;
		}
		has = envfile_get(&ef, name) != NULL;
		envfile_release(&ef);
		if (has && list_add_unique(&out->files, &out->nfiles, files[i]) != 0) {
			rc = oom(err);
			goto out;
		}
	}
	for (i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];
		int carries = 0;
		size_t f;

		for (f = 0; s->env_file && f < out->nfiles; f++)
			carries |= !strcmp(out->files[f], s->env_file);
		if (!carries && docker) {
			struct st_error derr = { 0 };
			json_t *j = NULL;

			rc = docker_container_inspect(docker, s->container, DOCKER_TIMEOUT_DEFAULT, &j, &derr);
			if (rc == ST_ENOTFOUND) {
				rc = 0;
			} else if (rc) {
				*err = derr;
				st_error_wrap(err, "cannot tell whether service '%s' uses %s", s->name, name);
				goto out;
			} else {
				carries = env_has(json_object_get(json_object_get(j, "Config"), "Env"), name);
			}
			json_decref(j);
		}
		if (carries && list_add_unique(&out->services, &out->nservices, s->name) != 0) {
			rc = oom(err);
			goto out;
		}
	}
out:
	if (rc)
		incident_rotate_plan_release(out);
	return rc;
}

void incident_rotate_plan_release(struct incident_rotate_plan *p)
{
	if (!p)
		return;
	list_free(p->files, p->nfiles);
	list_free(p->checked, p->nchecked);
	list_free(p->services, p->nservices);
	memset(p, 0, sizeof(*p));
}

/* ---- recreating a container --------------------------------------------------- */

/* The environment of the new container: old entries with set_env applied. */
static json_t *new_env(const json_t *old, const char *const *set_env)
{
	json_t *env = json_array(), *e;
	size_t i, k;

	if (!env)
		return NULL;
	json_array_foreach(old, i, e) {
		const char *s = json_string_value(e);
		const char *eq = s ? strchr(s, '=') : NULL;
		int replaced = 0;

		if (!s)
			continue;
		for (k = 0; set_env && set_env[k] && eq; k++) {
			const char *seq = strchr(set_env[k], '=');
			size_t klen = seq ? (size_t)(seq - set_env[k]) : strlen(set_env[k]);

			if (klen == (size_t)(eq - s) && !strncmp(s, set_env[k], klen))
				replaced = 1;
		}
		if (!replaced && json_array_append_new(env, json_string(s)))
			goto fail;
	}
	/* "NAME=value" sets; a bare "NAME" only removes. */
	for (k = 0; set_env && set_env[k]; k++)
		if (strchr(set_env[k], '=') && json_array_append_new(env, json_string(set_env[k])))
			goto fail;
	return env;
fail:
	json_decref(env);
	return NULL;
}

/* The create body for a copy of the container described by old, with
 * set_env applied: the same body deploy recreates a container with when no
 * compose file describes it (compose_body_from_inspect: host configuration,
 * network endpoint, anonymous volumes bound by name, what is inherited from
 * the image left to the image), except that the whole environment is
 * written out, so that set_env can also remove a variable the image sets. */
static int build_create(struct docker_client *docker, const json_t *old, const char *const *set_env,
			json_t **out, struct st_error *err)
{
	const json_t *conf = json_object_get(old, "Config");
	const char *image_ref = json_string_value(json_object_get(conf, "Image"));
	const char *image_id = json_string_value(json_object_get(old, "Image"));
	const char *image = image_id ? image_id : "";
	json_t *body = NULL, *env = NULL, *img = NULL;
	struct st_error ierr = { 0 };
	int rc;

	*out = NULL;
	/* The same image: by its name when the name still points at it (so
	 * the container still says which release it runs), else by id. */
	if (image_ref && docker_image_inspect(docker, image_ref, DOCKER_TIMEOUT_DEFAULT, &img, &ierr) == 0 &&
	    image_id && json_string_value(json_object_get(img, "Id")) &&
	    !strcmp(json_string_value(json_object_get(img, "Id")), image_id)) {
		image = image_ref;
	} else {
		json_decref(img);
		img = NULL;
		/* The image gone (only its id left): then nothing counts as
		 * inherited, and everything is written out. */
		if (image_id && (rc = docker_image_inspect(docker, image_id, DOCKER_TIMEOUT_DEFAULT, &img, err)) != 0) {
			if (rc != ST_ENOTFOUND)
				goto out;
			st_error_clear(err);
		}
	}
	if ((rc = compose_body_from_inspect(old, img, image, &body, err)) != 0)
		goto out;
	if (!(env = new_env(json_object_get(conf, "Env"), set_env)) || json_object_set_new(body, "Env", env)) {
		rc = oom(err);
		goto out;
	}
	*out = body;
	body = NULL;
out:
	json_decref(img);
	json_decref(body);
	return rc;
}

struct log_file {
	struct atomic_file *af;
	struct sbuf buf;
	int continuing;
};

static int log_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct log_file *f = ud;

	if (!f->continuing && sbuf_printf(&f->buf, "%s %s ", l->timestamp[0] ? l->timestamp : "-",
					  l->stream == DOCKER_STREAM_STDERR ? "stderr" : "stdout"))
		return oom(err);
	if (sbuf_append(&f->buf, l->text, l->len) || (!l->split && sbuf_puts(&f->buf, "\n")))
		return oom(err);
	f->continuing = l->split;
	if (f->buf.len >= 65536) {
		int rc = atomic_file_write(f->af, f->buf.buf, f->buf.len, err);
		sbuf_reset(&f->buf);
		return rc;
	}
	return 0;
}

/* The whole log of container (both streams, timestamps) into path. */
static int save_logs(struct docker_client *docker, const char *container, const char *path,
		     struct st_error *err)
{
	struct docker_logs_opts lo;
	struct log_file f;
	int rc;

	memset(&f, 0, sizeof(f));
	if ((rc = atomic_file_open(path, 0600, &f.af, err)) != 0)
		return rc;
	memset(&lo, 0, sizeof(lo));
	lo.timestamps = 1;
	lo.tail = DOCKER_LOGS_TAIL_ALL;
	lo.timeout = 300;
	rc = docker_container_logs(docker, container, &lo, log_line, &f, err);
	if (rc == 0 && f.buf.len)
		rc = atomic_file_write(f.af, f.buf.buf, f.buf.len, err);
	sbuf_release(&f.buf);
	if (rc) {
		atomic_file_abort(f.af);
		return rc;
	}
	return atomic_file_commit(f.af, err);
}

/* Scrubs the new values out of a message a daemon may have echoed. */
static void scrub(const struct incident_recreate_opts *o, struct st_error *err)
{
	const char *vals[32];
	size_t n = 0, k;

	for (k = 0; o->set_env && o->set_env[k] && n < 32; k++) {
		const char *eq = strchr(o->set_env[k], '=');
		if (eq && eq[1])
			vals[n++] = eq + 1;
	}
	redact_text(err->message, sizeof(err->message), vals, n);
	redact_text(err->hint, sizeof(err->hint), vals, n);
}

int incident_recreate_container(struct docker_client *docker, const struct incident_recreate_opts *o,
				json_t **info, struct st_error *err)
{
	json_t *old = NULL, *body = NULL;
	char *new_id = NULL, aside[300], stamp[32], old_id[80];
	double after = 0;
	int rc, stopped = 0, renamed = 0, created = 0, kept = 0;

	if (info)
		*info = NULL;
	if ((rc = docker_container_inspect(docker, o->container, DOCKER_TIMEOUT_DEFAULT, &old, err)) != 0)
		goto out;
	snprintf(old_id, sizeof(old_id), "%s", json_string_value(json_object_get(old, "Id")) ? json_string_value(json_object_get(old, "Id")) : "");
	if ((rc = build_create(docker, old, o->set_env, &body, err)) != 0)
		goto out;
	time_format_compact(time_wall(), stamp, sizeof(stamp));
	snprintf(aside, sizeof(aside), "%s-old-%s", o->container, stamp);

	if ((rc = docker_container_stop(docker, o->container, o->stop_grace, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto out;
	stopped = 1;
	if ((rc = docker_container_rename(docker, o->container, aside, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto rollback;
	renamed = 1;
	if ((rc = docker_container_create(docker, o->container, body, DOCKER_TIMEOUT_DEFAULT, &new_id, err)) != 0)
		goto rollback;
	created = 1;
	if ((rc = docker_container_start(docker, o->container, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto rollback;
	{
		struct container_wait_report rep;

		rc = container_wait_ready_cancel(docker, o->container, o->health_url, o->timeout,
						 POLL_INTERVAL, o->cancel, &rep, err);
		after = rep.waited_s;
		if (rc)
			goto rollback;
	}
	{
		struct st_error rerr = { 0 };

		/* The new one runs: the old one is only in the way now, but its
		 * logs go with it, and during an incident they are evidence. */
		if (o->old_logs && save_logs(docker, aside, o->old_logs, &rerr) != 0)
			kept = 1;
		else if (docker_container_remove(docker, aside, 0, 0, DOCKER_TIMEOUT_DEFAULT, &rerr) != 0)
			kept = 1;
	}
	if (info) {
		*info = json_pack("{s:s,s:s,s:s,s:f}", "container", o->container, "old_id", old_id,
				  "new_id", new_id ? new_id : "", "healthy_after", after);
		if (!*info)
			rc = oom(err);
		else if (kept)
			json_object_set_new(*info, "old_kept", json_string(aside));
	}
	goto out;

rollback: {
		struct st_error rerr = { 0 };
		int back = 1;

		if (created && docker_container_remove(docker, o->container, 1, 0, DOCKER_TIMEOUT_DEFAULT, &rerr) != 0)
			back = 0;
		if (back && renamed &&
		    docker_container_rename(docker, aside, o->container, DOCKER_TIMEOUT_DEFAULT, &rerr) != 0)
			back = 0;
		if (back && stopped && docker_container_start(docker, o->container, DOCKER_TIMEOUT_DEFAULT, &rerr) != 0)
			back = 0;
		if (back) {
			st_error_wrap(err, "cannot recreate '%s' (the old container runs again, with the old "
				      "environment)", o->container);
		} else {
			st_error_wrap(err, "cannot recreate '%s', and putting the old container back failed "
				      "(%s)", o->container, rerr.message);
			st_error_hint(err, "the old container is '%s': 'docker rename %s %s' and 'docker start %s'",
				      renamed ? aside : o->container, aside, o->container, o->container);
		}
	}
out:
	if (rc)
		scrub(o, err);
	free(new_id);
	json_decref(body);
	json_decref(old);
	return rc;
}
