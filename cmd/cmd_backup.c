/*
 * cmd_backup.c - `spilttea-ops backup` and its subcommands: list, verify,
 * prune, test-restore, schedule (runbook "Backup Procedures" and
 * "Automated Backup"). The work is in lib/backup.h and lib/backup_catalog.h.
 */
#include "cmd.h"
#include "cmd_backup.h"
#include "version.h"
#include "../lib/backup.h"
#include "../lib/config.h"
#include "../lib/docker.h"
#include "../lib/http.h"
#include "../lib/journal.h"
#include "../lib/lock.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char backup_usage[] =
	"usage: spilttea-ops backup [--kind K] [--dir DIR] [--compress C] [--level N]\n"
	"                           [--database NAME] [--metrics-file FILE] [--quiet]\n"
	"       spilttea-ops backup list [--dir DIR] [--format text|json|names]\n"
	"       spilttea-ops backup verify FILE|--all [--dir DIR]\n"
	"       spilttea-ops backup prune [--dry-run] [--dir DIR]\n"
	"       spilttea-ops backup test-restore FILE [--dir DIR]\n"
	"       spilttea-ops backup schedule --print [--at HH:MM] [--metrics-file FILE]\n"
	"\n"
	"Takes a backup with pg_dump (inside the postgres container by default,\n"
	"backup.via: exec) and publishes it as DIR/backup_YYYYmmdd_HHMMSS.sql.gz with a\n"
	"manifest (NAME.json) only when pg_dump exited 0 without errors, the dump ends\n"
	"with pg_dump's completion trailer, and the file read back decompresses to\n"
	"exactly the dumped bytes with the recorded SHA-256. Otherwise nothing that\n"
	"looks like a backup is left, and the exit status is 1 with one line saying why.\n"
	"\n"
	"  --kind K          full (default), schema (--schema-only) or data (--data-only)\n"
	"  --dir DIR         backup directory (default: backup.dir; created 0700)\n"
	"  --compress C      gzip, zstd or none (default: backup.compress)\n"
	"  --level N         compression level (default 1, the fastest: gzip and zstd\n"
	"                    then keep up with pg_dump)\n"
	"  --database NAME   database to dump (default: postgres.database)\n"
	"  --metrics-file F  Prometheus textfile metrics: last success, size, duration,\n"
	"                    result (written atomically)\n"
	"  -q, --quiet       nothing on success, one line on failure (for cron);\n"
	"                    failures also go to notify.webhook_url when configured\n"
	"\n"
	"subcommands:\n"
	"  list              backups with age, size, kind and whether they are verified\n"
	"  verify FILE|--all re-read: size, SHA-256, full decompression, trailer; the\n"
	"                    manifest records the outcome (a failed backup no longer\n"
	"                    counts for keep_min); exits 4 while a backup runs\n"
	"  prune             delete backups older than backup.keep_days, but never one\n"
	"                    of the newest backup.keep_min verified backups of a\n"
	"                    database and kind, nor a file without this tool's name\n"
	"                    and manifest\n"
	"  test-restore FILE load into a scratch database, compare its tables and the\n"
	"                    row counts of \"User\" and \"Post\" with the manifest, drop it\n"
	"  schedule --print  a crontab line and a systemd service + timer\n"
	"\n"
	"exit status: 0 done, 1 failed, 2 usage or configuration error,\n"
	"3 interrupted, 4 another backup (or restore) holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops backup\n"
	"  spilttea-ops backup --kind schema --compress zstd\n"
	"  spilttea-ops backup --quiet --metrics-file /var/lib/node_exporter/backup.prom\n"
	"  spilttea-ops backup list --format json\n"
	"  spilttea-ops backup verify --all\n"
	"  spilttea-ops backup prune --dry-run\n"
	"  spilttea-ops backup test-restore backup_20260122_020000.sql.gz\n";

char *cmd_backup_size(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

/* ---- progress on a terminal --------------------------------------------- */

struct progress_state {
	int shown;
};

void cmd_backup_progress(void *ud, const struct backup_progress *p)
{
	struct progress_state *s = ud;
	char done[32], total[32], rate[32];
	double r = p->elapsed > 0 ? (double)p->bytes_raw / p->elapsed : 0;

	cmd_backup_size(p->bytes_raw, done, sizeof(done));
	cmd_backup_size((uint64_t)r, rate, sizeof(rate));
	if (p->bytes_total)
		fprintf(stderr, "\r\033[K%s: %s of %s (%.0f%%), %s/s", p->phase, done,
			cmd_backup_size(p->bytes_total, total, sizeof(total)),
			100.0 * (double)p->bytes_raw / (double)p->bytes_total, rate);
	else if (p->estimate)
		fprintf(stderr, "\r\033[K%s: %s, %s/s (database is %s on disk)", p->phase, done, rate,
			cmd_backup_size(p->estimate, total, sizeof(total)));
	else
		fprintf(stderr, "\r\033[K%s: %s, %s/s", p->phase, done, rate);
	if (p->done)
		fputs("\r\033[K", stderr);
	fflush(stderr);
	s->shown = !p->done;
}

/* ---- backup ----------------------------------------------------------- */

struct take_opts {
	enum backup_kind kind;
	enum backup_codec codec;
	int level;
	const char *dir;
	const char *database;
	const char *metrics_file;
};

static void notify_failure(struct ctx *ctx, const struct backup_report *rep, struct st_error *err)
{
	const char *url = ctx->config->notify.webhook_url;
	struct st_error werr = { 0 };
	char *body;

	if (!url)
		return;
	body = backup_webhook_body(rep);
	if (!body) {
		st_error_set(&werr, ST_ENOMEM, "out of memory");
	} else if (http_post_json(url, body, 10, NULL, &werr) == 0) {
		free(body);
		return;
	}
	free(body);
	/* Still one line: the reason, then that nobody was told. */
	{
		size_t n = strlen(err->message);
		snprintf(err->message + n, sizeof(err->message) - n, " (and the failure webhook failed: %s)",
			 werr.message);
	}
}

/* The journal records cron backups like every other run: a start, the
 * dump as one step, an end. A journal that cannot be written does not fail
 * the backup; it is reported (unless --quiet). */
struct take_journal {
	struct journal *j;
	struct journal_run run;
	json_t *params;
};

static void journal_begin(struct ctx *ctx, const struct take_opts *t, struct take_journal *tj)
{
	struct st_error err = { 0 };

	memset(tj, 0, sizeof(*tj));
	tj->params = json_pack("{s:s,s:s,s:s,s:s}", "kind", backup_kind_name(t->kind), "compress",
			       backup_codec_name(t->codec), "database",
			       t->database ? t->database : ctx->config->postgres.database, "dir", t->dir);
	tj->run.runbook = "backup";
	tj->run.command_line = ctx->command_line;
	tj->run.params = tj->params;
	if (journal_open(ctx->config->state_dir, &tj->j, &err) != 0 ||
	    journal_start(tj->j, &tj->run, &err) != 0) {
		if (!ctx->quiet)
			fprintf(stderr, "note: %s\n", err.message);
		journal_close(tj->j);
		tj->j = NULL;
	}
}

static void journal_finish(struct ctx *ctx, struct take_journal *tj, int rc, double seconds,
			   const struct backup_outcome *out, const struct st_error *failure)
{
	struct journal_step step;
	struct st_error err = { 0 };
	json_t *args = NULL;

	if (tj->j) {
		memset(&step, 0, sizeof(step));
		if (rc == 0)
			args = json_pack("{s:s,s:I,s:s}", "name", out->manifest.name, "bytes",
					 (json_int_t)out->manifest.bytes_compressed, "sha256", out->manifest.sha256);
		step.step = "dump";
		step.action = "backup.create";
		step.phase = "act";
		step.result = rc == 0 ? "ok" : rc == ST_EABORTED || rc == ST_ELOCKED ? "aborted" : "failed";
		step.duration = seconds;
		step.args = args;
		step.error = rc ? failure->message : NULL;
		if (journal_step(tj->j, &tj->run, &step, &err) != 0 ||
		    journal_end(tj->j, &tj->run, step.result, rc, step.error, &err) != 0) {
			if (!ctx->quiet)
				fprintf(stderr, "note: %s\n", err.message);
		}
	}
	json_decref(args);
	json_decref(tj->params);
	journal_close(tj->j);
	tj->j = NULL;
}

static int do_take(struct ctx *ctx, const struct take_opts *t)
{
	struct backup_request rq;
	struct backup_outcome out;
	struct backup_report rep;
	struct docker_client *docker = NULL;
	struct progress_state ps = { 0 };
	struct st_error err = { 0 };
	struct cmd_signals sig;
	struct take_journal tj;
	double t0 = time_wall();
	int rc;

	journal_begin(ctx, t, &tj);
	memset(&rq, 0, sizeof(rq));
	rq.cfg = ctx->config;
	rq.dir = t->dir;
	rq.database = t->database;
	rq.kind = t->kind;
	rq.codec = t->codec;
	rq.level = t->level;
	rq.via = ctx->config->backup.via;
	rq.lock = 1;
	rq.command_line = ctx->command_line;
	if (!ctx->quiet && isatty(STDERR_FILENO)) {
		rq.progress = cmd_backup_progress;
		rq.progress_ud = &ps;
	}
	rq.cancel = cmd_signals_catch(&sig);
	rc = rq.via == CONFIG_VIA_EXEC ? services_docker_open(ctx->config, &docker, &err) : 0;
	if (rc == 0) {
		rq.docker = docker;
		rc = backup_create(&rq, &out, &err);
	} else {
		memset(&out, 0, sizeof(out));
	}
	cmd_signals_restore(&sig);
	if (ps.shown)
		fputs("\r\033[K", stderr);
	if (!ctx->quiet && out.takeover.stale)
		fprintf(stderr, "note: %s\n", out.takeover.message);

	memset(&rep, 0, sizeof(rep));
	rep.ok = rc == 0;
	rep.kind = t->kind;
	rep.database = t->database ? t->database : ctx->config->postgres.database;
	rep.finished = time_wall();
	rep.duration = rep.finished - t0;
	rep.size = out.manifest.bytes_compressed;
	rep.error = rc ? err.message : NULL;
	journal_finish(ctx, &tj, rc, rep.duration, &out, &err);
	if (t->metrics_file && rc != ST_ELOCKED) {
		struct st_error merr = { 0 };

		if (backup_metrics_write(t->metrics_file, &rep, &merr) != 0) {
			if (rc == 0) {
				err = merr;
				rc = merr.code;
			} else if (!ctx->quiet) {
				cmd_print_error(ctx, &merr);
			}
		}
	}
	if (rc) {
		/* A second run refused by the lock is not a failed backup. */
		if (rc != ST_ELOCKED)
			notify_failure(ctx, &rep, &err);
		cmd_print_error(ctx, &err);
		goto out;
	}
	if (!ctx->quiet) {
		char sz[32], raw[32], dur[32];

		printf("backup %s: %s (%s of SQL), sha256 %.16s..., verified, in %s\n", out.path,
		       cmd_backup_size(out.manifest.bytes_compressed, sz, sizeof(sz)),
		       cmd_backup_size(out.manifest.bytes_raw, raw, sizeof(raw)), out.manifest.sha256,
		       time_format_duration(out.manifest.duration, dur, sizeof(dur)));
		if (out.manifest.ncounts > 0) {
			size_t i;

			printf("rows:");
			for (i = 0; i < out.manifest.ncounts; i++)
				printf(" \"%s\" %lld", out.manifest.counts[i].table, out.manifest.counts[i].rows);
			printf(" (%s)\n", out.manifest.snapshot_shared ? "in the dump's snapshot"
								       : "counted just before the dump");
		}
		if (out.swept)
			printf("removed %zu leftover file(s) of interrupted backups\n", out.swept);
		if (ctx->verbose)
			printf("compress+write %.2fs, read-back verify %.2fs\n", out.compress_seconds,
			       out.verify_seconds);
	}
out:
	backup_manifest_release(&out.manifest);
	docker_client_free(docker);
	return cmd_exit_status(rc);
}

/* ---- list -------------------------------------------------------------- */

static const char *age_text(double seconds, char *buf, size_t size)
{
	if (seconds < 0)
		seconds = 0;
	return time_format_duration(seconds, buf, size);
}

/* json: 0 text, 1 JSON, 2 names only (one a line, for shell completion) */
static int do_list(struct ctx *ctx, const char *dir, int json)
{
	struct backup_listing l;
	struct st_error err = { 0 };
	double now = time_wall();
	size_t i;
	int rc;

	if ((rc = backup_list(dir, &l, &err)) != 0) {
		cmd_print_error(ctx, &err);
		return cmd_exit_status(rc);
	}
	if (json == 2) {
		for (i = 0; i < l.count; i++)
			puts(l.entries[i].name);
		backup_listing_release(&l);
		return ST_EXIT_OK;
	}
	if (json) {
		json_t *arr = json_array();
		char *text;

		for (i = 0; arr && i < l.count; i++) {
			const struct backup_entry *e = &l.entries[i];
			json_t *o = json_pack("{s:s,s:f,s:I,s:s,s:s,s:b,s:b}", "name", e->name, "age_seconds",
					      now - (double)e->parsed.time, "size", (json_int_t)e->size, "kind",
					      backup_kind_name(e->parsed.kind), "compression",
					      backup_codec_name(e->parsed.codec), "verified", e->verified,
					      "manifest", e->has_manifest);

			if (o && e->has_manifest) {
				json_t *m = backup_manifest_to_json(&e->manifest);
				json_object_set_new(o, "database", json_string(e->manifest.database));
				json_object_set_new(o, "sha256", json_string(e->manifest.sha256));
				json_object_set(o, "started", json_object_get(m, "started"));
				json_object_set(o, "row_counts", json_object_get(m, "row_counts"));
				json_decref(m);
			} else if (o) {
				json_object_set_new(o, "manifest_error", json_string(e->manifest_error));
			}
			json_array_append_new(arr, o);
		}
		text = arr ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
		if (text)
			puts(text);
		free(text);
		json_decref(arr);
		backup_listing_release(&l);
		return text ? ST_EXIT_OK : ST_EXIT_FAILED;
	}
	if (l.count == 0) {
		if (!ctx->quiet)
			printf("no backups in %s\n", dir);
	} else {
		printf("%-40s %8s %10s %-6s %s\n", "NAME", "AGE", "SIZE", "KIND", "VERIFIED");
		for (i = 0; i < l.count; i++) {
			const struct backup_entry *e = &l.entries[i];
			char age[32], sz[32];
			const char *ver = e->verified ? "yes"
					: !e->has_manifest && strstr(e->manifest_error, "is missing") ? "no (no manifest)"
					: !e->has_manifest ? "no (bad manifest)"
					: e->manifest.verify_error[0] ? "NO (failed verify)"
					: e->manifest.bytes_compressed != e->size ? "NO (size changed)" : "no";
			int c = ctx->color_stdout && !e->verified;

			printf("%-40s %8s %10s %-6s %s%s%s\n", e->name,
			       age_text(now - (double)e->parsed.time, age, sizeof(age)),
			       cmd_backup_size(e->size, sz, sizeof(sz)), backup_kind_name(e->parsed.kind),
			       cmd_color_on(c, COLOR_RED), ver, cmd_color_off(c));
		}
	}
	if (!ctx->quiet && (l.partials || l.foreign))
		printf("(%zu leftover partial file(s), %zu other file(s) in %s: never touched by prune)\n",
		       l.partials, l.foreign, dir);
	backup_listing_release(&l);
	return ST_EXIT_OK;
}

/* ---- verify ------------------------------------------------------------ */

static int verify_one(struct ctx *ctx, const char *dir, const char *file)
{
	struct backup_check c;
	struct st_error err = { 0 };
	int rc = backup_verify(dir, file, 1, &c, &err);

	if (rc == 0) {
		if (!ctx->quiet) {
			char sz[32], dur[32];

			printf("ok %s: sha256 %.16s..., %s of SQL, complete dump (%s)\n", c.name,
			       c.result.read.sha256, cmd_backup_size(c.result.read.bytes_raw, sz, sizeof(sz)),
			       time_format_duration(c.result.seconds, dur, sizeof(dur)));
		}
	} else {
		cmd_print_error(ctx, &err);
	}
	backup_check_release(&c);
	return rc;
}

/* Verify rewrites manifests (the verdict), so it holds the backup lock: a
 * backup's sweep would otherwise delete its temporary manifest, and a
 * prune running alongside could see a manifest it deleted come back. */
static int do_verify(struct ctx *ctx, const char *dir, const char *file, int all)
{
	struct backup_listing l;
	struct st_lock *lock = NULL;
	struct st_error err = { 0 };
	size_t i, failed = 0;
	int rc, status;

	memset(&l, 0, sizeof(l));
	if ((rc = lock_acquire(ctx->config->state_dir, BACKUP_LOCK_NAME, ctx->command_line, &lock, NULL,
			       &err)) != 0) {
		cmd_print_error(ctx, &err);
		return cmd_exit_status(rc);
	}
	if (!all) {
		status = cmd_exit_status(verify_one(ctx, dir, file));
		goto out;
	}
	if ((rc = backup_list(dir, &l, &err)) != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
		goto out;
	}
	for (i = 0; i < l.count; i++)
		if (verify_one(ctx, dir, l.entries[i].name) != 0)
			failed++;
	if (!ctx->quiet)
		printf("%zu backup(s) verified, %zu failed\n", l.count - failed, failed);
	status = failed ? ST_EXIT_FAILED : ST_EXIT_OK;
out:
	backup_listing_release(&l);
	lock_release(lock);
	return status;
}

/* ---- prune ------------------------------------------------------------- */

static int do_prune(struct ctx *ctx, const char *dir)
{
	const struct st_config *cfg = ctx->config;
	struct backup_retention policy = { cfg->backup.keep_days, cfg->backup.keep_min };
	struct backup_listing l;
	enum backup_verdict *v = NULL;
	struct st_lock *lock = NULL;
	struct st_error err = { 0 };
	double now = time_wall();
	size_t i, deleted = 0;
	int rc = 0;

	memset(&l, 0, sizeof(l));
	if (!ctx->dry_run && (rc = lock_acquire(cfg->state_dir, BACKUP_LOCK_NAME, ctx->command_line, &lock,
						NULL, &err)) != 0)
		goto out;
	if ((rc = backup_list(dir, &l, &err)) != 0)
		goto out;
	v = calloc(l.count + 1, sizeof(*v));
	if (!v) {
		rc = st_error_set(&err, ST_ENOMEM, "out of memory");
		goto out;
	}
	backup_retention_plan(l.entries, l.count, now, &policy, v);
	for (i = 0; i < l.count; i++) {
		const struct backup_entry *e = &l.entries[i];
		char age[32];

		age_text(now - (double)e->parsed.time, age, sizeof(age));
		if (!backup_verdict_deletes(v[i])) {
			if (ctx->verbose || ctx->dry_run)
				printf("keep   %s (%s old) - %s\n", e->name, age, backup_verdict_text(v[i]));
			continue;
		}
		if (ctx->dry_run) {
			printf("delete %s (%s old, %s) - would be deleted\n", e->name, age,
			       e->verified ? "verified" : "not verified");
			deleted++;
			continue;
		}
		if ((rc = backup_delete(dir, e->name, &err)) != 0)
			goto out;
		deleted++;
		if (!ctx->quiet)
			printf("deleted %s (%s old)\n", e->name, age);
	}
	if (!ctx->quiet)
		printf("%s%zu backup(s) %s, %zu kept (keep_days %ld, keep_min %ld per database and kind)\n",
		       ctx->dry_run ? "dry run: " : "", deleted, ctx->dry_run ? "would be deleted" : "deleted",
		       l.count - deleted, policy.keep_days, policy.keep_min);
out:
	if (rc)
		cmd_print_error(ctx, &err);
	free(v);
	backup_listing_release(&l);
	lock_release(lock);
	return cmd_exit_status(rc);
}

/* ---- test-restore ------------------------------------------------------ */

/* A test-restore creates and drops a database: journaled like a backup,
 * one step, so an interrupted or failed one is on record. */
static void test_restore_journal(struct ctx *ctx, const char *file, int rc, const struct backup_test_result *res,
				 const struct st_error *failure, struct take_journal *tj)
{
	struct journal_step step;
	struct st_error err = { 0 };
	json_t *args = NULL;

	if (!tj->j)
		return;
	memset(&step, 0, sizeof(step));
	args = json_pack("{s:s,s:s}", "file", file, "database", res->database);
	step.step = "test-restore";
	step.action = "backup.test_restore";
	step.phase = "act";
	step.result = rc == 0 ? "ok" : rc == ST_EABORTED ? "aborted" : "failed";
	step.duration = res->seconds;
	step.args = args;
	step.error = rc ? failure->message : NULL;
	if ((journal_step(tj->j, &tj->run, &step, &err) != 0 ||
	     journal_end(tj->j, &tj->run, step.result, rc, step.error, &err) != 0) && !ctx->quiet)
		fprintf(stderr, "note: %s\n", err.message);
	json_decref(args);
}

static int do_test_restore(struct ctx *ctx, const char *dir, const char *file)
{
	struct backup_test_result res;
	struct docker_client *docker = NULL;
	struct progress_state ps = { 0 };
	struct st_error err = { 0 };
	struct cmd_signals sig;
	struct take_journal tj;
	volatile sig_atomic_t *cancel;
	int rc = 0;

	memset(&res, 0, sizeof(res));
	memset(&tj, 0, sizeof(tj));
	tj.params = json_pack("{s:s,s:s}", "file", file, "dir", dir ? dir : ctx->config->backup.dir);
	tj.run.runbook = "backup-test-restore";
	tj.run.command_line = ctx->command_line;
	tj.run.params = tj.params;
	if (journal_open(ctx->config->state_dir, &tj.j, &err) != 0 || journal_start(tj.j, &tj.run, &err) != 0) {
		if (!ctx->quiet)
			fprintf(stderr, "note: %s\n", err.message);
		journal_close(tj.j);
		tj.j = NULL;
		st_error_clear(&err);
	}
	if (ctx->config->backup.via == CONFIG_VIA_EXEC)
		rc = services_docker_open(ctx->config, &docker, &err);
	cancel = cmd_signals_catch(&sig);
	if (rc == 0)
		rc = backup_test_restore(ctx->config, docker, dir, file,
					 !ctx->quiet && isatty(STDERR_FILENO) ? cmd_backup_progress : NULL, &ps,
					 cancel, &res, &err);
	cmd_signals_restore(&sig);
	test_restore_journal(ctx, file, rc, &res, &err, &tj);
	journal_close(tj.j);
	json_decref(tj.params);
	if (ps.shown)
		fputs("\r\033[K", stderr);
	if (rc) {
		cmd_print_error(ctx, &err);
	} else if (!ctx->quiet) {
		char dur[32];
		size_t i;

		printf("test-restore of %s ok: %zu tables", file, res.found.ntables);
		for (i = 0; i < res.found.ncounts; i++)
			printf(", \"%s\" %lld rows", res.found.counts[i].table, res.found.counts[i].rows);
		printf(" as in the manifest (scratch database %s, dropped; %s)\n", res.database,
		       time_format_duration(res.seconds, dur, sizeof(dur)));
	}
	backup_manifest_release(&res.found);
	docker_client_free(docker);
	return cmd_exit_status(rc);
}

/* ---- schedule ----------------------------------------------------------- */

static int do_schedule(struct ctx *ctx, const char *at, const char *metrics)
{
	char exe[PATH_MAX], cfgpath[PATH_MAX], extra[PATH_MAX + 32] = "";
	int hh, mm, n = 0;
	ssize_t len;

	if (sscanf(at, "%2d:%2d%n", &hh, &mm, &n) != 2 || at[n] || hh < 0 || hh > 23 || mm < 0 || mm > 59)
		return cmd_usage_error(ctx, "--at needs HH:MM, not '%s'", at);
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		snprintf(exe, sizeof(exe), "/usr/local/bin/spilttea-ops");
	else
		exe[len] = '\0';
	if (!realpath(ctx->config->path, cfgpath))
		snprintf(cfgpath, sizeof(cfgpath), "%s", ctx->config->path);
	if (metrics)
		snprintf(extra, sizeof(extra), " --metrics-file %s", metrics);
	printf("# crontab (crontab -e): back up at %02d:%02d, then prune; cron mails only failures\n", hh, mm);
	printf("%d %d * * * %s --config %s backup --quiet%s && %s --config %s backup prune --quiet\n", mm, hh,
	       exe, cfgpath, extra, exe, cfgpath);
	printf("\n# /etc/systemd/system/spilttea-ops-backup.service\n"
	       "[Unit]\n"
	       "Description=spilttea-ops nightly database backup\n"
	       "After=docker.service\n"
	       "\n"
	       "[Service]\n"
	       "Type=oneshot\n"
	       "ExecStart=%s --config %s backup --quiet%s\n"
	       "ExecStart=%s --config %s backup prune --quiet\n"
	       "Nice=10\n"
	       "IOSchedulingClass=best-effort\n"
	       "IOSchedulingPriority=7\n",
	       exe, cfgpath, extra, exe, cfgpath);
	printf("\n# /etc/systemd/system/spilttea-ops-backup.timer\n"
	       "[Unit]\n"
	       "Description=spilttea-ops nightly database backup\n"
	       "\n"
	       "[Timer]\n"
	       "OnCalendar=*-*-* %02d:%02d:00\n"
	       "Persistent=true\n"
	       "\n"
	       "[Install]\n"
	       "WantedBy=timers.target\n"
	       "\n"
	       "# then: systemctl daemon-reload && systemctl enable --now spilttea-ops-backup.timer\n",
	       hh, mm);
	return ST_EXIT_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Value of an option given as "--opt VALUE" or "--opt=VALUE"; NULL when a is
 * not that option. *i advances past a separate value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

int cmd_backup(int argc, char **argv, struct ctx *ctx)
{
	struct take_opts t;
	struct st_error err = { 0 };
	const char *sub = NULL, *file = NULL, *at = "02:00", *compress = NULL, *kind = NULL, *level = NULL;
	int all = 0, print = 0, json = 0, i, missing = 0;

	memset(&t, 0, sizeof(t));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v;

		if (!strcmp(a, "--help")) {
			fputs(backup_usage, stdout);
			return ST_EXIT_OK;
		}
		if ((v = opt_value(argc, argv, &i, "--kind", &missing)))
			kind = v;
		else if ((v = opt_value(argc, argv, &i, "--dir", &missing)))
			t.dir = v;
		else if ((v = opt_value(argc, argv, &i, "--compress", &missing)))
			compress = v;
		else if ((v = opt_value(argc, argv, &i, "--level", &missing)))
			level = v;
		else if ((v = opt_value(argc, argv, &i, "--database", &missing)))
			t.database = v;
		else if ((v = opt_value(argc, argv, &i, "--metrics-file", &missing)))
			t.metrics_file = v;
		else if ((v = opt_value(argc, argv, &i, "--at", &missing)))
			at = v;
		else if (missing)
			return cmd_usage_error(ctx, "option '%s' needs a value", a);
		else if (!strcmp(a, "--all"))
			all = 1;
		else if (!strcmp(a, "--print"))
			print = 1;
		else if (a[0] == '-' && strcmp(a, "--"))
			return cmd_usage_error(ctx, "unknown option '%s'", a);
		else if (!strcmp(a, "--"))
			continue;
		else if (!sub)
			sub = a;
		else if (!file)
			file = a;
		else
			return cmd_usage_error(ctx, "unexpected argument '%s'", a);
		if (missing)
			return cmd_usage_error(ctx, "option '%s' needs a value", a);
	}
	if (ctx->format && strcmp(ctx->format, "text")) {
		if (!(sub && !strcmp(sub, "list") &&
		      (!strcmp(ctx->format, "json") || !strcmp(ctx->format, "names"))))
			return cmd_usage_error(ctx, "format '%s' is only for 'backup list' (text, json or names)",
					       ctx->format);
		json = !strcmp(ctx->format, "json") ? 1 : 2;
	}
	if (!t.dir)
		t.dir = ctx->config->backup.dir;

	if (!sub) {
		t.codec = ctx->config->backup.compress;
		if (kind && backup_kind_parse(kind, &t.kind, &err) != 0)
			return cmd_usage_error(ctx, "%s", err.message);
		if (compress && backup_codec_parse(compress, &t.codec, &err) != 0)
			return cmd_usage_error(ctx, "%s", err.message);
		if (level) {
			char *end;
			long lv = strtol(level, &end, 10);

			if (*end || lv < 1 || lv > 19)
				return cmd_usage_error(ctx, "--level needs a number from 1 to 19, not '%s'", level);
			t.level = (int)lv;
		}
		if (ctx->dry_run) {
			if (!ctx->quiet)
				printf("dry run: would back up database '%s' (%s, %s) into %s\n",
				       t.database ? t.database : ctx->config->postgres.database, backup_kind_name(t.kind),
				       backup_codec_name(t.codec), t.dir);
			return ST_EXIT_OK;
		}
		return do_take(ctx, &t);
	}
	if (kind || compress || level || t.database || (t.metrics_file && strcmp(sub, "schedule")))
		return cmd_usage_error(ctx, "--kind, --compress, --level, --database and --metrics-file "
				       "are for taking a backup, not '%s'", sub);
	if (!strcmp(sub, "list")) {
		if (file)
			return cmd_usage_error(ctx, "backup list takes no argument");
		return do_list(ctx, t.dir, json);
	}
	if (!strcmp(sub, "verify")) {
		if (!!file == !!all)
			return cmd_usage_error(ctx, "backup verify needs a FILE or --all");
		return do_verify(ctx, t.dir, file, all);
	}
	if (!strcmp(sub, "prune")) {
		if (file)
			return cmd_usage_error(ctx, "backup prune takes no argument");
		return do_prune(ctx, t.dir);
	}
	if (!strcmp(sub, "test-restore")) {
		if (!file)
			return cmd_usage_error(ctx, "backup test-restore needs a FILE");
		return do_test_restore(ctx, t.dir, file);
	}
	if (!strcmp(sub, "schedule")) {
		if (!print)
			return cmd_usage_error(ctx, "backup schedule needs --print (it installs nothing)");
		return do_schedule(ctx, at, t.metrics_file);
	}
	return cmd_usage_error(ctx, "unknown backup subcommand '%s'", sub);
}
