/*
 * diagnose.h - `spilttea-ops diagnose`: the runbook's "Common Issues and
 * Fixes" as a result model, and its rendering as a table or JSON.
 *
 * Each issue has a built-in runbook diagnose-<id> (runbooks/) made of
 * finding steps (runbook.h). The command runs them through the engine and
 * feeds what they conclude into a struct diag_report:
 *
 *   issue    id, title, status = the worst of its findings (ok < warn <
 *            problem); a runbook that could not run at all is a problem
 *   finding  one check: status, message, the comparison that failed, the
 *            error when it could not check, evidence (result fields), the
 *            fix in words, and the safe automatic fix (a runbook and its
 *            parameters) when there is one
 *   skipped  checks that did not run, with why: an unset configuration key;
 *            or, raising the status like a check that could not run, a
 *            service found unreachable by an earlier check of the run
 *            ("postgres unreachable: ...") or the run's deadline
 *   fixes    the distinct safe fixes that the findings that are not ok
 *            name, in the order found; --fix runs them and records how
 *            each went; the issues are then checked again ("after")
 *
 * Pure: no I/O. The renderers return text or JSON for cmd/ to print.
 */
#ifndef ST_DIAGNOSE_H
#define ST_DIAGNOSE_H

#include <stddef.h>
#include <jansson.h>

#include "engine.h"
#include "error.h"

/* The issues, in the runbook's order: id, runbook diagnose-<id>, and what
 * the runbook calls it. NULL-terminated (id NULL). */
struct diag_issue_def {
	const char *id;
	const char *title;
};
extern const struct diag_issue_def diag_issue_defs[];

/* The definition of id; NULL when unknown. Borrowed (static). */
const struct diag_issue_def *diag_issue_def(const char *id);

struct diag_finding {
	char *check;               /* step name */
	char *title;               /* step description, or the name */
	enum engine_finding_status status;
	char *message;
	char *why;                 /* or NULL */
	char *error;               /* could not check: why, or NULL */
	json_t *evidence;          /* object, never NULL */
	char *fix;                 /* or NULL */
	char *fix_runbook;         /* or NULL */
	json_t *fix_params;        /* object, never NULL */
};

struct diag_skipped {
	char *check;
	char *title;
	char *reason;
};

struct diag_issue {
	char *id;
	char *runbook;
	char *title;
	enum engine_finding_status status;
	char *error;               /* the runbook could not run, or NULL */
	char run_id[48];           /* its journal run, "" when none */
	struct diag_finding *findings;
	size_t nfindings;
	struct diag_skipped *skipped;
	size_t nskipped;
};

struct diag_set {
	struct diag_issue *items;
	size_t n;
};

enum diag_fix_result {
	DIAG_FIX_PENDING = 0,      /* not run (no --fix, or a dry run) */
	DIAG_FIX_DONE,
	DIAG_FIX_FAILED,
	DIAG_FIX_REFUSED,          /* confirmation refused or impossible, precondition not met */
	DIAG_FIX_LOCKED,           /* another run holds its lock */
};

/* "pending", "done", "failed", "refused", "locked". */
const char *diag_fix_result_name(enum diag_fix_result r);

struct diag_fix {
	char *runbook;
	json_t *params;            /* object */
	json_t *needed_by;         /* array of "issue/check" */
	enum diag_fix_result result;
	char *error;               /* or NULL */
	char run_id[48];
};

struct diag_report {
	struct diag_set before;    /* the diagnosis */
	struct diag_fix *fixes;
	size_t nfixes;
	int fix_requested;         /* --fix */
	struct diag_set after;     /* the issues checked again after the fixes */
};

/* Adds an issue (status ok, no findings yet) to set; *out points into the
 * set until the next add. 0 or ST_ENOMEM. */
int diag_set_add(struct diag_set *set, const char *id, const char *runbook, const char *title,
		 struct diag_issue **out);

/* Records a finding (copied) and raises the issue's status. 0 or ST_ENOMEM. */
int diag_issue_add_finding(struct diag_issue *is, const struct engine_finding *f);

/* Records a check that did not run. 0 or ST_ENOMEM. */
int diag_issue_add_skipped(struct diag_issue *is, const char *check, const char *title,
			   const char *reason);

/* Records a check that could not run (its service found unreachable
 * earlier, the deadline passed) as skipped, and raises the issue's status
 * to severity, as a check whose action failed would. 0 or ST_ENOMEM. */
int diag_issue_add_unchecked(struct diag_issue *is, const char *check, const char *title,
			     const char *reason, enum engine_finding_status severity);

/* The runbook could not run: status problem with this error. 0 or ST_ENOMEM. */
int diag_issue_set_error(struct diag_issue *is, const char *error);

/* The worst status of the set's issues (ok when empty). */
enum engine_finding_status diag_set_status(const struct diag_set *set);

/* Counts of issues by status. */
void diag_set_count(const struct diag_set *set, size_t counts[3]);

/* Fills rep->fixes from the findings of rep->before that are not ok and
 * name a fix_runbook: one entry per distinct (runbook, params), in the
 * order found, each listing the issue/check that needs it. 0 or ST_ENOMEM. */
int diag_collect_fixes(struct diag_report *rep);

void diag_set_release(struct diag_set *set);
void diag_report_release(struct diag_report *rep);

enum diag_render_part {
	DIAG_PART_ALL = 0,
	DIAG_PART_DIAGNOSIS,       /* the diagnosis only (before fixes run) */
	DIAG_PART_OUTCOME,         /* the fixes and the issues checked again */
};

struct diag_render_opts {
	int color;                 /* ANSI colour */
	int verbose;               /* evidence of ok findings too */
	const char *command;       /* how to re-run with --fix, e.g. "spilttea-ops diagnose backend-crash" */
	enum diag_render_part part;
};

/*
 * Text: a table ISSUE / CHECK / STATUS / FINDING of every check, then the
 * details (comparison, error, evidence, fix, safe fix) of those that are
 * not ok, a summary line, the fixes and how they went, and the table of
 * the issues checked again. Caller frees; NULL on ENOMEM.
 */
char *diag_render_text(const struct diag_report *rep, const struct diag_render_opts *o);

/*
 * JSON (one object):
 *   {"status": "ok|warn|problem", "counts": {"ok": n, "warn": n, "problem": n},
 *    "issues": [{"id", "title", "runbook", "status", "run_id", "error"?,
 *                "findings": [{"check", "title", "status", "message", "why"?,
 *                              "error"?, "evidence": {...}, "fix"?,
 *                              "fix_runbook"?, "fix_params"?}],
 *                "skipped": [{"check", "title", "reason"}]}],
 *    "fixes": [{"runbook", "params", "needed_by": [...], "result", "error"?, "run_id"?}],
 *    "after": {"status", "counts", "issues": [...]}   (only after --fix ran fixes)
 *   }
 * Caller frees (json_decref); NULL on ENOMEM.
 */
json_t *diag_render_json(const struct diag_report *rep);

#endif
