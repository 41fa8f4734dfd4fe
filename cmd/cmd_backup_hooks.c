/*
 * cmd_backup_hooks.c - backups for migrate up and deploy --checklist
 * through the backup module (see cmd_backup_hooks.h).
 */
#include "cmd_backup_hooks.h"

#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "../lib/backup.h"
#include "../lib/config.h"
#include "../lib/services.h"

int cmd_take_backup(void *ud, char *path, size_t size, struct st_error *err)
{
	struct ctx *ctx = ud;
	struct backup_request rq;
	struct backup_outcome out;
	struct docker_client *docker = NULL;
	int rc = 0;

	memset(&rq, 0, sizeof(rq));
	memset(&out, 0, sizeof(out));
	rq.cfg = ctx->config;
	rq.kind = BACKUP_KIND_FULL;
	rq.codec = ctx->config->backup.compress;
	rq.via = ctx->config->backup.via;
	rq.lock = 1;
	rq.command_line = ctx->command_line;
	/* Set only while the calling command catches signals (cmd.h). */
	rq.cancel = &cmd_interrupted;
	if (rq.via == CONFIG_VIA_EXEC && (rc = services_docker_open(ctx->config, &docker, err)) != 0)
		goto out;
	rq.docker = docker;
	if (!ctx->quiet) {
		fprintf(stderr, "taking a verified backup of '%s' into %s ...\n", ctx->config->postgres.database,
			ctx->config->backup.dir);
		fflush(stderr);
	}
	if ((rc = backup_create(&rq, &out, err)) != 0)
		goto out;
	snprintf(path, size, "%s", out.path);
out:
	backup_manifest_release(&out.manifest);
	docker_client_free(docker);
	return rc;
}

int cmd_find_backup(void *ud, double *time, char *name, size_t size, struct st_error *err)
{
	struct ctx *ctx = ud;
	struct backup_listing l;
	size_t i;
	int rc;

	memset(&l, 0, sizeof(l));
	if ((rc = backup_list(ctx->config->backup.dir, &l, err)) != 0)
		return rc;
	rc = st_error_set(err, ST_ENOTFOUND, "no verified full backup of '%s' in '%s'",
			  ctx->config->postgres.database, ctx->config->backup.dir);
	/* Newest first: the first verified full one of this database is the
	 * answer (a backup of another database protects nothing here). */
	for (i = 0; i < l.count; i++) {
		const struct backup_entry *e = &l.entries[i];
		if (!e->ours || !e->has_manifest || !e->verified || e->parsed.kind != BACKUP_KIND_FULL ||
		    strcmp(e->manifest.database, ctx->config->postgres.database) != 0)
			continue;
		*time = e->manifest.started > 0 ? e->manifest.started : (double)e->parsed.time;
		snprintf(name, size, "%s", e->name);
		st_error_clear(err);
		rc = 0;
		break;
	}
	backup_listing_release(&l);
	return rc;
}
