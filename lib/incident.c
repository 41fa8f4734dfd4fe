/*
 * incident.c - incidents on disk (STATE_DIR/incidents/ID/incident.json and
 * the "current" pointer) and incident records in the journal.
 */
#include "incident.h"
#include "atomic_file.h"
#include "journal.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int incident_id_valid(const char *id)
{
	const char *p;

	if (!id || !*id || strlen(id) >= INCIDENT_ID_MAX)
		return 0;
	if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') || (*id >= '0' && *id <= '9')))
		return 0;
	for (p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return strcmp(id, INCIDENT_CURRENT) != 0;
}

char *incident_id_format(double t, char *buf, size_t size)
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, size, "INC-%04d%02d%02d-%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

char *incident_collector(char *buf, size_t size)
{
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024], host[256], user[64];
	const char *sudo = getenv("SUDO_USER");

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
		snprintf(user, sizeof(user), "%s", pwp->pw_name);
	else
		snprintf(user, sizeof(user), "uid%ld", (long)geteuid());
	if (sudo && *sudo && strcmp(sudo, user) != 0)
		snprintf(buf, size, "%s(%s)@%s", sudo, user, host);
	else
		snprintf(buf, size, "%s@%s", user, host);
	return buf;
}

int incident_path(const char *state_dir, const char *id, const char *sub, char *buf, size_t size,
		  struct st_error *err)
{
	int n;

	if (id && !incident_id_valid(id))
		return st_error_set(err, ST_EUSAGE, "'%s' is not an incident id", id);
	if (!id)
		n = snprintf(buf, size, "%s/" INCIDENT_DIR, state_dir);
	else if (sub)
		n = snprintf(buf, size, "%s/" INCIDENT_DIR "/%s/%s", state_dir, id, sub);
	else
		n = snprintf(buf, size, "%s/" INCIDENT_DIR "/%s", state_dir, id);
	if (n < 0 || (size_t)n >= size)
		return st_error_set(err, ST_EUSAGE, "path under state_dir '%s' is too long", state_dir);
	return 0;
}

/* Reads a small file into buf (NUL-terminated, trailing newline removed).
 * ST_ENOTFOUND / ST_EIO. */
static int read_small(const char *path, char *buf, size_t size, struct st_error *err)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		if (errno == ENOENT)
			return st_error_set(err, ST_ENOTFOUND, "'%s' does not exist", path);
		return st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
	}
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int incident_current(const char *state_dir, char *id, size_t size, struct st_error *err)
{
	char path[PATH_MAX], buf[128];
	int rc;

	if ((rc = incident_path(state_dir, NULL, NULL, path, sizeof(path), err)) != 0)
		return rc;
	if (strlen(path) + sizeof("/" INCIDENT_CURRENT) > sizeof(path))
		return st_error_set(err, ST_EUSAGE, "state_dir path is too long");
	strcat(path, "/" INCIDENT_CURRENT);
	rc = read_small(path, buf, sizeof(buf), err);
	if (rc == ST_ENOTFOUND || (rc == 0 && !*buf)) {
		st_error_set(err, ST_ENOTFOUND, "no incident is open");
		return st_error_hint(err, "open one with 'spilttea-ops incident start --title TEXT'");
	}
	if (rc)
		return rc;
	if (!incident_id_valid(buf))
		return st_error_set(err, ST_EPROTO, "'%s' names no valid incident id", path);
	if (strlen(buf) >= size)
		return st_error_set(err, ST_EUSAGE, "incident id too long");
	strcpy(id, buf);
	return 0;
}

static int info_from_json(const json_t *j, struct incident_info *out)
{
	const char *id = json_string_value(json_object_get(j, "id"));

	memset(out, 0, sizeof(*out));
	if (!id || !incident_id_valid(id))
		return -1;
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->title, sizeof(out->title), "%s",
		 json_string_value(json_object_get(j, "title")) ? json_string_value(json_object_get(j, "title")) : "");
	snprintf(out->opened_by, sizeof(out->opened_by), "%s",
		 json_string_value(json_object_get(j, "opened_by")) ? json_string_value(json_object_get(j, "opened_by")) : "");
	snprintf(out->closed_by, sizeof(out->closed_by), "%s",
		 json_string_value(json_object_get(j, "closed_by")) ? json_string_value(json_object_get(j, "closed_by")) : "");
	out->opened = json_number_value(json_object_get(j, "opened_epoch"));
	out->closed = json_number_value(json_object_get(j, "closed_epoch"));
	return 0;
}

static int info_write(const char *state_dir, const struct incident_info *info, struct st_error *err)
{
	char path[PATH_MAX], t1[40], t2[40];
	json_t *j = NULL;
	char *text = NULL;
	int rc;

	if ((rc = incident_path(state_dir, info->id, INCIDENT_INFO, path, sizeof(path), err)) != 0)
		return rc;
	j = json_pack("{s:s,s:s,s:s,s:f,s:s}", "id", info->id, "title", info->title, "opened",
		      time_format_rfc3339(info->opened, t1, sizeof(t1)), "opened_epoch", info->opened,
		      "opened_by", info->opened_by);
	if (j && info->closed > 0) {
		json_object_set_new(j, "closed", json_string(time_format_rfc3339(info->closed, t2, sizeof(t2))));
		json_object_set_new(j, "closed_epoch", json_real(info->closed));
		json_object_set_new(j, "closed_by", json_string(info->closed_by));
	}
	if (!j || !(text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
		goto out;
	}
	{
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);
		if (!t) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory writing '%s'", path);
			goto out;
		}
		text = t;
		strcpy(text + n, "\n");
	}
	rc = atomic_file_write_all(path, text, strlen(text), 0600, err);
out:
	free(text);
	json_decref(j);
	return rc;
}

int incident_load(const char *state_dir, const char *id, struct incident_info *out,
		  struct st_error *err)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *j;
	int rc;

	if ((rc = incident_path(state_dir, id, INCIDENT_INFO, path, sizeof(path), err)) != 0)
		return rc;
	j = json_load_file(path, 0, &jerr);
	if (!j) {
		if (access(path, F_OK) != 0) {
			st_error_set(err, ST_ENOTFOUND, "incident '%s' does not exist", id);
			return st_error_hint(err, "list them with 'ls %s/" INCIDENT_DIR "'", state_dir);
		}
		return st_error_set(err, ST_EPROTO, "cannot read '%s': %s (line %d)", path, jerr.text,
				    jerr.line);
	}
	rc = info_from_json(j, out);
	json_decref(j);
	if (rc)
		return st_error_set(err, ST_EPROTO, "'%s' does not describe an incident", path);
	return 0;
}

static int write_current(const char *state_dir, const char *id, struct st_error *err)
{
	char path[PATH_MAX];
	char line[INCIDENT_ID_MAX + 2];
	int rc;

	if ((rc = incident_path(state_dir, NULL, NULL, path, sizeof(path), err)) != 0)
		return rc;
	strncat(path, "/" INCIDENT_CURRENT, sizeof(path) - strlen(path) - 1);
	if (!id) {
		if (unlink(path) != 0 && errno != ENOENT)
			return st_error_set(err, ST_EIO, "cannot remove '%s': %s", path, strerror(errno));
		return 0;
	}
	snprintf(line, sizeof(line), "%s\n", id);
	return atomic_file_write_all(path, line, strlen(line), 0600, err);
}

int incident_open(const char *state_dir, const char *id, const char *title,
		  struct incident_info *out, struct st_error *err)
{
	struct incident_info info;
	struct st_error ierr = { 0 };
	char open_id[INCIDENT_ID_MAX], base[INCIDENT_ID_MAX], dir[PATH_MAX], top[PATH_MAX];
	json_t *detail = NULL;
	int rc, n;

	rc = incident_current(state_dir, open_id, sizeof(open_id), &ierr);
	if (rc == 0) {
		st_error_set(err, ST_ECONFLICT, "incident '%s' is still open", open_id);
		return st_error_hint(err, "close it first with 'spilttea-ops incident close', or work in it");
	}
	if (rc != ST_ENOTFOUND) {
		*err = ierr;
		return rc;
	}
	if (id && !incident_id_valid(id))
		return st_error_set(err, ST_EUSAGE,
				    "'%s' is not an incident id (letters, digits, '.', '_', '-')", id);
	memset(&info, 0, sizeof(info));
	info.opened = time_wall();
	incident_collector(info.opened_by, sizeof(info.opened_by));
	snprintf(info.title, sizeof(info.title), "%s", title ? title : "");
	if ((rc = incident_path(state_dir, NULL, NULL, top, sizeof(top), err)) != 0 ||
	    (rc = atomic_file_mkdirs(top, 0700, err)) != 0)
		return rc;
	incident_id_format(info.opened, base, sizeof(base));
	for (n = 1;; n++) {
		if (id)
			snprintf(info.id, sizeof(info.id), "%s", id);
		else if (n == 1)
			snprintf(info.id, sizeof(info.id), "%s", base);
		else if (snprintf(info.id, sizeof(info.id), "%.24s-%d", base, n) >= (int)sizeof(info.id))
			return st_error_set(err, ST_EIO, "cannot find a free incident id");
		if ((rc = incident_path(state_dir, info.id, NULL, dir, sizeof(dir), err)) != 0)
			return rc;
		if (mkdir(dir, 0700) == 0)
			break;
		if (errno != EEXIST)
			return st_error_set(err, ST_EIO, "cannot create '%s': %s", dir, strerror(errno));
		if (id)
			return st_error_set(err, ST_ECONFLICT, "incident '%s' exists already", id);
	}
	if ((rc = info_write(state_dir, &info, err)) != 0 ||
	    (rc = write_current(state_dir, info.id, err)) != 0)
		return rc;
	detail = json_pack("{s:s}", "title", info.title);
	rc = incident_event(state_dir, info.id, "opened", detail, err);
	json_decref(detail);
	if (rc == 0 && out)
		*out = info;
	return rc;
}

int incident_close(const char *state_dir, const char *id, struct incident_info *out,
		   struct st_error *err)
{
	struct incident_info info;
	char open_id[INCIDENT_ID_MAX];
	int rc;

	if ((rc = incident_current(state_dir, open_id, sizeof(open_id), err)) != 0)
		return rc;
	if (strcmp(open_id, id) != 0)
		return st_error_set(err, ST_ECONFLICT, "incident '%s' is not the open one ('%s' is)", id,
				    open_id);
	if ((rc = incident_load(state_dir, id, &info, err)) != 0)
		return rc;
	info.closed = time_wall();
	incident_collector(info.closed_by, sizeof(info.closed_by));
	if ((rc = info_write(state_dir, &info, err)) != 0 ||
	    (rc = write_current(state_dir, NULL, err)) != 0)
		return rc;
	rc = incident_event(state_dir, id, "closed", NULL, err);
	if (rc == 0 && out)
		*out = info;
	return rc;
}

int incident_latest(const char *state_dir, char *id, size_t size, struct st_error *err)
{
	char top[PATH_MAX], best[INCIDENT_ID_MAX] = "";
	double best_t = -1;
	struct st_error cerr = { 0 };
	DIR *d;
	struct dirent *de;
	int rc;

	rc = incident_current(state_dir, id, size, &cerr);
	if (rc != ST_ENOTFOUND) {
		if (rc)
			*err = cerr;
		return rc;
	}
	if ((rc = incident_path(state_dir, NULL, NULL, top, sizeof(top), err)) != 0)
		return rc;
	d = opendir(top);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			struct incident_info info;
			struct st_error lerr = { 0 };

			if (!incident_id_valid(de->d_name))
				continue;
			if (incident_load(state_dir, de->d_name, &info, &lerr) != 0)
				continue;
			if (info.opened > best_t) {
				best_t = info.opened;
				snprintf(best, sizeof(best), "%s", info.id);
			}
		}
		closedir(d);
	}
	if (!*best) {
		st_error_set(err, ST_ENOTFOUND, "there is no incident under '%s'", top);
		return st_error_hint(err, "open one with 'spilttea-ops incident start --title TEXT'");
	}
	if (strlen(best) >= size)
		return st_error_set(err, ST_EUSAGE, "incident id too long");
	strcpy(id, best);
	return 0;
}

int incident_event(const char *state_dir, const char *id, const char *event, const json_t *detail,
		   struct st_error *err)
{
	struct journal *j = NULL;
	struct passwd pw, *pwp = NULL;
	char pwbuf[1024], host[256], now[40];
	json_t *r;
	int rc;

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "unknown");
	host[sizeof(host) - 1] = '\0';
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) != 0)
		pwp = NULL;
	r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "type", "incident", "time",
		      time_format_rfc3339(time_wall(), now, sizeof(now)), "incident", id, "event", event,
		      "user", pwp ? pwp->pw_name : "unknown", "host", host, "pid", (json_int_t)getpid());
	if (!r || (detail && json_object_set(r, "detail", (json_t *)detail) != 0)) {
		json_decref(r);
		return st_error_set(err, ST_ENOMEM, "out of memory writing the journal");
	}
	rc = journal_open(state_dir, &j, err);
	if (rc == 0)
		rc = journal_append(j, r, err);
	journal_close(j);
	json_decref(r);
	return rc;
}
