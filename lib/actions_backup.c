/*
 * actions_backup.c - the engine actions and runbooks of a restore (see
 * backup_actions.h).
 */
#include "backup_actions.h"
#include "config.h"
#include "docker.h"
#include "http.h"
#include "pg.h"
#include "services.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_str(const json_t *args, const char *name)
{
	return json_string_value(json_object_get(args, name));
}

static int services_of(struct engine_call *call, struct backup_services **out, struct st_error *err)
{
	*out = call->services;
	if (!*out || !(*out)->base.cfg)
		return st_error_set(err, ST_EUSAGE, "backup actions run only from 'spilttea-ops restore'");
	return 0;
}

static int docker_of(struct backup_services *sv, struct docker_client **out, struct st_error *err)
{
	return services_docker(&sv->base, out, err);
}

static int oom(json_t *v, struct st_error *err)
{
	return v ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static json_t *counts_json(const struct backup_manifest *m)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < m->ncounts; i++)
		json_object_set_new(o, m->counts[i].table, json_integer(m->counts[i].rows));
	return o;
}

/* ---- backup.verify ------------------------------------------------------ */

static int act_verify(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct backup_services *sv;
	struct backup_check c;
	const char *kind = arg_str(args, "kind");
	int rc;

	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	if ((rc = backup_verify(sv->base.cfg->backup.dir, arg_str(args, "file"), 0, &c, err)) != 0)
		goto out;
	if (kind && *kind && strcmp(kind, backup_kind_name(c.manifest.kind)) != 0) {
		rc = st_error_set(err, ST_EFAILED, "'%s' is a %s backup; this needs a %s backup", c.name,
				  backup_kind_name(c.manifest.kind), kind);
		goto out;
	}
	*result = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:b}", "name", c.name, "path", c.path,
			    "kind", backup_kind_name(c.manifest.kind), "database", c.manifest.database,
			    "sha256", c.manifest.sha256, "bytes_raw", (json_int_t)c.manifest.bytes_raw,
			    "bytes_compressed", (json_int_t)c.manifest.bytes_compressed, "tables",
			    (json_int_t)c.manifest.ntables, "rows", counts_json(&c.manifest),
			    "counts_in_dump_snapshot", c.manifest.snapshot_shared);
	rc = oom(*result, err);
out:
	backup_check_release(&c);
	return rc;
}

/* ---- backup.create ------------------------------------------------------- */

static int act_create(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct backup_services *sv;
	struct backup_request rq;
	struct backup_outcome out;
	int rc;

	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	memset(&rq, 0, sizeof(rq));
	rq.cfg = sv->base.cfg;
	if (sv->base.cfg->backup.via == CONFIG_VIA_EXEC && (rc = docker_of(sv, &rq.docker, err)) != 0)
		return rc;
	rq.database = arg_str(args, "database");
	if ((rc = backup_kind_parse(arg_str(args, "kind"), &rq.kind, err)) != 0)
		return rc;
	rq.codec = (enum backup_codec)sv->base.cfg->backup.compress;
	rq.via = sv->base.cfg->backup.via;
	rq.lock = 0; /* the run holds the backup lock */
	rq.progress = sv->progress;
	rq.progress_ud = sv->progress_ud;
	rq.cancel = call->cancel;
	rc = backup_create(&rq, &out, err);
	if (rc == 0) {
		*result = json_pack("{s:s,s:s,s:I,s:s}", "name", out.manifest.name, "path", out.path, "bytes",
				    (json_int_t)out.manifest.bytes_compressed, "sha256", out.manifest.sha256);
		rc = oom(*result, err);
	}
	backup_manifest_release(&out.manifest);
	return rc;
}

/* ---- databases ----------------------------------------------------------- */

static int admin_connect(struct engine_call *call, struct pg_conn **conn, struct st_error *err)
{
	struct backup_services *sv;
	int rc;

	*conn = NULL;
	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	return services_pg_connect(sv->base.cfg, BACKUP_MAINTENANCE_DB, BACKUP_APP_NAME, conn, err);
}

static int act_db_create(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *name = arg_str(args, "name"), *like = arg_str(args, "like");
	int rc;

	int like_exists = 0;

	if ((rc = admin_connect(call, &conn, err)) == 0 && like && *like)
		rc = backup_db_exists(conn, like, &like_exists, err);
	if (rc == 0 && (rc = backup_db_create(conn, name, like_exists ? like : NULL, err)) == 0) {
		*result = json_pack("{s:s,s:b}", "database", name, "like_exists", like_exists);
		rc = oom(*result, err);
	}
	pg_close(conn);
	return rc;
}

static int act_db_drop(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *name = arg_str(args, "name");
	int rc;

	if ((rc = admin_connect(call, &conn, err)) == 0 && (rc = backup_db_drop(conn, name, err)) == 0) {
		*result = json_pack("{s:s,s:b}", "database", name, "dropped", 1);
		rc = oom(*result, err);
	}
	pg_close(conn);
	return rc;
}

static int swap(struct engine_call *call, const json_t *args, int back, json_t **result,
		struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *live = arg_str(args, "live"), *in = arg_str(args, "incoming"), *outg = arg_str(args, "outgoing");
	int rc;

	if ((rc = admin_connect(call, &conn, err)) != 0)
		goto out;
	/* Back: the restored database returns to its scratch name and the
	 * original takes its name again. */
	rc = back ? backup_db_swap(conn, live, outg, in, 0, err) : backup_db_swap(conn, live, in, outg, 1, err);
	if (rc == 0) {
		*result = json_pack("{s:s,s:s}", "live", live, "kept_as", back ? in : outg);
		rc = oom(*result, err);
	}
out:
	pg_close(conn);
	return rc;
}

static int act_db_swap(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	return swap(call, args, 0, result, err);
}

static int act_db_unswap(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	return swap(call, args, 1, result, err);
}

static int act_db_cleanup(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	static const char *const infixes[] = { "_pre_restore_", "_restore_", "_testrestore_" };
	const char *db = arg_str(args, "database");
	struct pg_conn *conn = NULL;
	json_t *dropped = json_array();
	size_t k, i;
	int rc = oom(dropped, err);

	if (rc == 0)
		rc = admin_connect(call, &conn, err);
	for (k = 0; rc == 0 && k < sizeof(infixes) / sizeof(infixes[0]); k++) {
		char prefix[128], **names = NULL;
		size_t n = 0;

		snprintf(prefix, sizeof(prefix), "%s%s", db, infixes[k]);
		if ((rc = backup_db_list_stamped(conn, prefix, &names, &n, err)) != 0)
			break;
		for (i = 0; i < n; i++) {
			if (rc == 0 && (rc = backup_db_drop(conn, names[i], err)) == 0)
				json_array_append_new(dropped, json_string(names[i]));
			free(names[i]);
		}
		free(names);
	}
	if (rc == 0) {
		*result = json_pack("{s:O,s:I}", "dropped", dropped, "count", (json_int_t)json_array_size(dropped));
		rc = oom(*result, err);
	}
	json_decref(dropped);
	pg_close(conn);
	return rc;
}

/* ---- load and compare ---------------------------------------------------- */

static int act_load(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct backup_services *sv;
	struct backup_check c;
	struct backup_load_request lr;
	double t0 = time_monotonic();
	int rc;

	memset(&c, 0, sizeof(c));
	if ((rc = services_of(call, &sv, err)) != 0 ||
	    (rc = backup_resolve(sv->base.cfg->backup.dir, arg_str(args, "file"), &c, err)) != 0 ||
	    (rc = backup_manifest_load(c.dir, c.name, &c.manifest, err)) != 0)
		goto out;
	memset(&lr, 0, sizeof(lr));
	lr.cfg = sv->base.cfg;
	if (sv->base.cfg->backup.via == CONFIG_VIA_EXEC && (rc = docker_of(sv, &lr.docker, err)) != 0)
		goto out;
	lr.path = c.path;
	lr.manifest = &c.manifest;
	lr.database = arg_str(args, "database");
	lr.via = sv->base.cfg->backup.via;
	lr.progress = sv->progress;
	lr.progress_ud = sv->progress_ud;
	lr.cancel = call->cancel;
	if ((rc = backup_load(&lr, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:I,s:f}", "database", lr.database, "bytes_raw",
			    (json_int_t)c.manifest.bytes_raw, "seconds", time_monotonic() - t0);
	rc = oom(*result, err);
out:
	backup_check_release(&c);
	return rc;
}

static int act_db_compare(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct backup_services *sv;
	struct backup_check c;
	struct backup_manifest found;
	const char *db = arg_str(args, "database");
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&found, 0, sizeof(found));
	if ((rc = services_of(call, &sv, err)) != 0 ||
	    (rc = backup_resolve(sv->base.cfg->backup.dir, arg_str(args, "file"), &c, err)) != 0 ||
	    (rc = backup_manifest_load(c.dir, c.name, &c.manifest, err)) != 0 ||
	    (rc = backup_db_inventory(sv->base.cfg, db, &found, err)) != 0 ||
	    (rc = backup_compare(&c.manifest, &found, db, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:b,s:I,s:o}", "database", db, "match", 1, "tables",
			    (json_int_t)found.ntables, "rows", counts_json(&found));
	rc = oom(*result, err);
out:
	backup_manifest_release(&found);
	backup_check_release(&c);
	return rc;
}

/* ---- containers ---------------------------------------------------------- */

static int act_container_stop(struct engine_call *call, const json_t *args, json_t **result,
			      struct st_error *err)
{
	struct backup_services *sv;
	struct docker_client *docker = NULL;
	const char *name = arg_str(args, "container");
	int rc;

	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	if ((rc = docker_of(sv, &docker, err)) != 0 ||
	    (rc = docker_container_stop(docker, name, 10, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:b}", "container", name, "stopped", 1);
	return oom(*result, err);
}

static int act_container_start(struct engine_call *call, const json_t *args, json_t **result,
			       struct st_error *err)
{
	struct backup_services *sv;
	struct docker_client *docker = NULL;
	const char *name = arg_str(args, "container");
	int rc;

	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	if ((rc = docker_of(sv, &docker, err)) != 0 ||
	    (rc = docker_container_start(docker, name, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:b}", "container", name, "started", 1);
	return oom(*result, err);
}

/* Healthy: running, Docker's health check not "unhealthy", and the health
 * URL (when given) answering 200. Docker's own status is not waited for:
 * it changes only at its next interval. */
static int act_service_health(struct engine_call *call, const json_t *args, json_t **result,
			      struct st_error *err)
{
	struct backup_services *sv;
	struct docker_client *docker = NULL;
	const char *name = arg_str(args, "container"), *url = arg_str(args, "url");
	struct http_result hr;
	struct st_error herr = { 0 };
	json_t *info = NULL, *state;
	const char *health = "none";
	int running, rc, healthy;
	long status = 0;

	memset(&hr, 0, sizeof(hr));
	if ((rc = services_of(call, &sv, err)) != 0)
		return rc;
	if ((rc = docker_of(sv, &docker, err)) != 0 ||
	    (rc = docker_container_inspect(docker, name, DOCKER_TIMEOUT_DEFAULT, &info, err)) != 0)
		return rc;
	state = json_object_get(info, "State");
	running = json_is_true(json_object_get(state, "Running"));
	if (json_is_string(json_object_get(json_object_get(state, "Health"), "Status")))
		health = json_string_value(json_object_get(json_object_get(state, "Health"), "Status"));
	healthy = running && strcmp(health, "unhealthy") != 0;
	if (url && *url) {
		if (http_probe(url, sv->base.cfg->health.timeout, NULL, &hr, &herr) == 0)
			status = hr.status;
		healthy = healthy && status == 200;
	} else {
		healthy = healthy && (!strcmp(health, "none") || !strcmp(health, "healthy"));
	}
	*result = json_pack("{s:s,s:b,s:s,s:I,s:b,s:s}", "container", name, "running", running, "health",
			    health, "http_status", (json_int_t)status, "healthy", healthy, "detail",
			    herr.message[0] ? herr.message : "");
	http_result_release(&hr);
	json_decref(info);
	return oom(*result, err);
}

/* ---- the table ----------------------------------------------------------- */

static const struct engine_arg_spec verify_args[] = {
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup name in backup.dir, or a path" },
	{ "kind", ENGINE_ARG_STRING, 0, NULL, "require this kind: full, schema or data" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec create_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to back up" },
	{ "kind", ENGINE_ARG_STRING, 0, "full", "full, schema or data" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec db_create_args[] = {
	{ "name", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "new database (must not exist)" },
	{ "like", ENGINE_ARG_STRING, 0, NULL, "take encoding and locale from this database" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec db_drop_args[] = {
	{ "name", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to drop" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec load_args[] = {
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup name in backup.dir, or a path" },
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "new, empty database to load into" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec compare_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to inspect" },
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup whose manifest it must match" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec container_args[] = {
	{ "container", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "container name" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec health_args[] = {
	{ "container", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "container name" },
	{ "url", ENGINE_ARG_STRING, 0, "", "health URL that must answer 200 (empty: Docker's state only)" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec swap_args[] = {
	{ "live", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the live database's name" },
	{ "incoming", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database that becomes live" },
	{ "outgoing", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "name the old live database keeps" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec cleanup_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL,
	  "live database whose NAME_pre_restore_*, NAME_restore_* and NAME_testrestore_* copies go" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_backup[] = {
	{ "backup.verify", "check a backup against its manifest (size, SHA-256, decompression, trailer)",
	  verify_args, ENGINE_ACTION_READ_ONLY, act_verify },
	{ "backup.create", "take a verified backup (under the run's backup lock)", create_args, 0, act_create },
	{ "backup.db_create", "create an empty database from template0", db_create_args, 0, act_db_create },
	{ "backup.db_drop", "drop a database, ending its sessions", db_drop_args, ENGINE_ACTION_DESTRUCTIVE,
	  act_db_drop },
	{ "backup.load", "stream a verified backup into psql -v ON_ERROR_STOP=1", load_args, 0, act_load },
	{ "backup.db_compare", "compare a database's tables and row counts with a manifest", compare_args,
	  ENGINE_ACTION_READ_ONLY, act_db_compare },
	{ "backup.container_stop", "stop a container", container_args, ENGINE_ACTION_DESTRUCTIVE,
	  act_container_stop },
	{ "backup.container_start", "start a container", container_args, 0, act_container_start },
	{ "backup.db_swap", "rename live -> outgoing and incoming -> live in one transaction", swap_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_db_swap },
	{ "backup.db_unswap", "undo backup.db_swap", swap_args, 0, act_db_unswap },
	{ "backup.service_health", "whether a container runs and its health URL answers 200", health_args,
	  ENGINE_ACTION_READ_ONLY, act_service_health },
	{ "backup.db_cleanup", "drop the copies restores and test-restores left of a database", cleanup_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_db_cleanup },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- runbooks -------------------------------------------------------------- */

const char backup_restore_runbook[] =
	"name: restore\n"
	"description: Restore a verified full backup into a new database and swap it in\n"
	"lock: backup\n"
	"params:\n"
	"  file: { description: backup file (name in backup.dir or a path), required: true }\n"
	"  database: { description: live database to replace, required: true }\n"
	"  stamp: { description: YYYYmmdd_HHMMSS suffix of the new and the old database, required: true }\n"
	"  backend: { description: backend container stopped during the swap, required: true }\n"
	"  health_url: { description: backend health URL, default: '' }\n"
	"steps:\n"
	"  - name: create-database\n"
	"    description: Create the database the backup is restored into\n"
	"    check:\n"
	"      action: backup.verify\n"
	"      args: { file: '${args.file}', kind: full }\n"
	"    confirm:\n"
	"      prompt: \"Restore '${args.file}' over database '${args.database}'? It is restored into a new\n"
	"        database first; the backend stops only for the swap, and the current database is kept\n"
	"        as ${args.database}_pre_restore_${args.stamp}.\"\n"
	"      type: '${args.database}'\n"
	"    action: backup.db_create\n"
	"    args: { name: '${args.database}_restore_${args.stamp}', like: '${args.database}' }\n"
	"    undo: { action: backup.db_drop, args: { name: '${args.database}_restore_${args.stamp}' } }\n"
	"  - name: safety-backup\n"
	"    description: Back up the live database before anything changes\n"
	"    when: '${steps.create-database.like_exists} == true'\n"
	"    action: backup.create\n"
	"    args: { database: '${args.database}', kind: full }\n"
	"  - name: load\n"
	"    description: Stream the dump into psql with ON_ERROR_STOP, verifying it again on the way\n"
	"    action: backup.load\n"
	"    args: { file: '${args.file}', database: '${args.database}_restore_${args.stamp}' }\n"
	"  - name: check-restored\n"
	"    description: Its tables and the row counts of User and Post equal the manifest's\n"
	"    action: backup.db_compare\n"
	"    args: { database: '${args.database}_restore_${args.stamp}', file: '${args.file}' }\n"
	"  - name: stop-backend\n"
	"    description: Stop the backend so nothing writes during the swap\n"
	"    confirm: { prompt: \"Stop '${args.backend}'?\", type: '${args.database}' }\n"
	"    action: backup.container_stop\n"
	"    args: { container: '${args.backend}' }\n"
	"    undo: { action: backup.container_start, args: { container: '${args.backend}' } }\n"
	"  - name: swap\n"
	"    description: End remaining sessions, then rename live to the old name and the restored copy to live\n"
	"    confirm: { prompt: \"Swap the restored copy in as '${args.database}'?\", type: '${args.database}' }\n"
	"    action: backup.db_swap\n"
	"    args:\n"
	"      live: '${args.database}'\n"
	"      incoming: '${args.database}_restore_${args.stamp}'\n"
	"      outgoing: '${args.database}_pre_restore_${args.stamp}'\n"
	"    undo:\n"
	"      action: backup.db_unswap\n"
	"      args:\n"
	"        live: '${args.database}'\n"
	"        incoming: '${args.database}_restore_${args.stamp}'\n"
	"        outgoing: '${args.database}_pre_restore_${args.stamp}'\n"
	"  - name: start-backend\n"
	"    description: Start the backend on the restored database and wait until it is healthy\n"
	"    action: backup.container_start\n"
	"    args: { container: '${args.backend}' }\n"
	"    verify:\n"
	"      action: backup.service_health\n"
	"      args: { container: '${args.backend}', url: '${args.health_url}' }\n"
	"      expect: { healthy: true }\n"
	"      timeout: 60s\n"
	"      interval: 500ms\n"
	"    undo: { action: backup.container_stop, args: { container: '${args.backend}' } }\n";

const char backup_cleanup_runbook[] =
	"name: restore-cleanup\n"
	"description: Drop the copies restores and test-restores left of a database\n"
	"lock: backup\n"
	"params:\n"
	"  database: { description: live database, required: true }\n"
	"steps:\n"
	"  - name: drop-copies\n"
	"    description: Drop ${args.database}_pre_restore_*, ${args.database}_restore_* and ${args.database}_testrestore_*\n"
	"    confirm:\n"
	"      prompt: \"Drop every old copy of '${args.database}' that restores kept (the live database stays)?\"\n"
	"      type: '${args.database}'\n"
	"    action: backup.db_cleanup\n"
	"    args: { database: '${args.database}' }\n";
