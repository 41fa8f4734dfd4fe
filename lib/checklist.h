/*
 * checklist.h - the runbook's Pre-Deployment Checklist as CI runs it
 * (`spilttea-ops deploy --checklist`).
 *
 * What a machine can check, it checks:
 *   env.NAME             each checklist.env_files entry exists and sets every
 *                        required variable to a non-empty value (names of
 *                        missing ones are reported, values never)
 *   docker               the Docker daemon answers
 *   database             PostgreSQL accepts a connection and a query
 *   migrations.failed    no failed migration in _prisma_migrations
 *   migrations.pending   lists pending migrations (passes: it informs)
 *   backup               when migrations are pending: a verified full backup
 *                        younger than checklist.backup_max_age exists, or
 *                        one is taken now (--backup); skipped otherwise
 *   disk                 free space on the backup directory's, the state
 *                        directory's and Docker's file systems is at least
 *                        checklist.disk_min_free_percent
 * The human items (checklist.attestations: tests passing, code review,
 * security review) are attestations: attest.NAME passes when NAME was
 * attested (--attest NAME,... or SPILTTEA_ATTEST), and fails otherwise.
 *
 * The report renders as text, JSON or JUnit XML (one testcase per item,
 * failures with their messages, skipped items as skipped). The checklist
 * passes when no item failed.
 *
 * Backups are found and taken through callbacks (cmd/ wires them to
 * lib/backup.h), so this module needs no backup code of its own.
 */
#ifndef ST_CHECKLIST_H
#define ST_CHECKLIST_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "sbuf.h"

enum checklist_status { CHECKLIST_PASS, CHECKLIST_FAIL, CHECKLIST_SKIP };

/* "pass", "fail", "skip"; static. */
const char *checklist_status_name(enum checklist_status s);

struct checklist_item {
	char id[96];               /* "env.backend", "docker", "attest.tests" */
	char kind[16];             /* "machine" or "human" */
	char title[160];           /* "required variables in /srv/app/backend/.env" */
	enum checklist_status status;
	char message[1024];        /* what was found; never a secret value */
	char hint[512];            /* what to do when it failed, "" */
	double seconds;
};

struct checklist_report {
	struct checklist_item *items;  /* in run order; owned */
	size_t count;
	size_t passed, failed, skipped;
	double started;            /* epoch seconds */
	double duration;
};

void checklist_report_release(struct checklist_report *r);

/* Adds an item (copied) and counts it. 0 or ST_ENOMEM. */
int checklist_add(struct checklist_report *r, const struct checklist_item *item, struct st_error *err);

/* 1 when no item failed. */
int checklist_passed(const struct checklist_report *r);

/* ---- pieces (pure, unit-tested) --------------------------------------------- */

/* Names among required[] that text (a dotenv file, read by envfile.h as
 * dotenv reads it: "JWT_SECRET= # set me" is empty) does not set to a
 * non-empty value, joined with ", " into missing (empty when none).
 * Returns the count missing. */
size_t checklist_env_missing(const char *text, const char *const *required, size_t nrequired,
			     char *missing, size_t size);

/* Splits a comma/space separated list of attestation names (--attest
 * "tests,code-review", SPILTTEA_ATTEST) and adds each to set (a
 * NULL-terminated array of malloc'ed strings, grown as needed; duplicates
 * dropped). 0 or ST_ENOMEM; ST_EUSAGE for a name with characters other
 * than letters, digits, '_' and '-'. */
int checklist_attest_parse(const char *text, char ***set, struct st_error *err);
void checklist_attest_free(char **set);

/* Renderers; append to out. 0 or ST_ENOMEM. The JUnit document is
 * self-contained XML 1.0 (UTF-8, escaped, control characters dropped). */
int checklist_render_text(const struct checklist_report *r, int color, struct sbuf *out, struct st_error *err);
int checklist_render_json(const struct checklist_report *r, struct sbuf *out, struct st_error *err);
int checklist_render_junit(const struct checklist_report *r, struct sbuf *out, struct st_error *err);

/* ---- running it --------------------------------------------------------------- */

/* The newest verified full backup: its epoch time and its name. 0, or
 * ST_ENOTFOUND when there is none, or another ST_E* code. */
typedef int (*checklist_find_backup_fn)(void *ud, double *time, char *name, size_t size,
					struct st_error *err);
/* Takes a verified backup now; path as in migrate_backup_fn. */
typedef int (*checklist_take_backup_fn)(void *ud, char *path, size_t size, struct st_error *err);

struct checklist_request {
	const struct st_config *cfg;
	char *const *attested;          /* NULL-terminated; may be NULL */
	const char *attest_source;      /* "--attest", "SPILTTEA_ATTEST", for messages */
	int take_backup;                /* --backup */
	checklist_find_backup_fn find_backup;   /* required */
	checklist_take_backup_fn take;          /* required when take_backup */
	void *backup_ud;
	double now;                     /* epoch seconds; 0: the clock */
};

/* Runs every item (an unreachable service fails its items within its
 * timeouts; later items still run) into out, which must be released.
 * Returns 0 when the checklist could be run, whatever the items say
 * (checklist_passed() tells); ST_EUSAGE for an attested name that is not
 * in checklist.attestations; ST_ENOMEM. */
int checklist_run(const struct checklist_request *rq, struct checklist_report *out, struct st_error *err);

#endif
