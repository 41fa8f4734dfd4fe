/*
 * journal.h - the append-only record of every run: STATE_DIR/journal.jsonl.
 *
 * One JSON object per line, written with a single write() on an O_APPEND
 * descriptor, so concurrent runs interleave whole lines and never tear one.
 * A record cut short (disk full) is ended with a newline, or the next one
 * starts with one, so it never swallows the record after it.
 * The file is created 0600. Three record types share a run id:
 *
 *   {"type":"start","run":"20261127_223416-4242","time":"2026-11-27T22:34:16.123Z",
 *    "user":"root","sudo_user":"alice","host":"db1","pid":4242,
 *    "command":"spilttea-ops run restart-backend","runbook":"restart-backend",
 *    "incident":"INC-7","params":{...}}
 *   {"type":"step","run":"...","time":"...","step":"stop","action":"docker.stop",
 *    "phase":"act","result":"ok","duration":0.412,"args":{...},"error":"..."}
 *   {"type":"step",...,"phase":"act","result":"ok","finding":"problem",
 *    "message":"postgres is exited"}                      (a finding step)
 *   {"type":"end","run":"...","time":"...","result":"failed","code":"failed",
 *    "duration":3.2,"error":"step 'stop' failed: ..."}
 *
 * A run whose process died has no end record until a later run under the
 * same lock finds it (journal_find_unfinished) and writes one for it:
 * result "aborted" and an error saying so, without duration.
 *
 * Other modules add record types of their own (incident.h: "incident",
 * facts an incident command established); readers skip types they do not
 * know.
 *
 * phase: check | confirm | act | verify | undo.
 * result: ok | skipped | failed | undone | aborted | dry-run.
 * "sudo_user", "incident", "params", "args" and "error" appear when known.
 *
 * Secrets: every record passes through redact_json() before it is written
 * (members named like a password, secret, token or key become "***"); the
 * engine also redacts declared-secret arguments and secret values in error
 * text before handing them over.
 */
#ifndef ST_JOURNAL_H
#define ST_JOURNAL_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

#define JOURNAL_FILE "journal.jsonl"

struct journal;

/* Opens STATE_DIR/journal.jsonl for appending, creating state_dir (0700)
 * and the file (0600) when missing. *out owned by the caller
 * (journal_close). ST_EIO, ST_ENOMEM. */
int journal_open(const char *state_dir, struct journal **out, struct st_error *err);

/* NULL-safe. */
void journal_close(struct journal *j);

/* Path of the journal file; borrowed. */
const char *journal_path(const struct journal *j);

/* Appends record (redacted copy, compact, one line). ST_EIO, ST_ENOMEM. */
int journal_append(struct journal *j, const json_t *record, struct st_error *err);

/* What a run contributes to its start record. */
struct journal_run {
	char id[48];                /* filled by journal_start */
	double started;             /* epoch seconds, filled by journal_start */
	const char *runbook;
	const char *command_line;   /* may be NULL */
	const char *incident;       /* may be NULL */
	const json_t *params;       /* resolved parameters, may be NULL; redacted on write */
};

/* Gives run an id and writes its start record (time, user, host, pid...). */
int journal_start(struct journal *j, struct journal_run *run, struct st_error *err);

struct journal_step {
	const char *step;
	const char *action;         /* may be NULL (confirm) */
	const char *phase;
	const char *result;
	double duration;            /* seconds */
	const json_t *args;         /* resolved arguments, may be NULL; already redacted */
	const char *error;          /* may be NULL; already redacted */
	int attempts;               /* verify polls, 0 to omit */
	const char *finding;        /* a finding step's status (ok, warn, problem), or NULL */
	const char *message;        /* its message; already redacted; NULL to omit */
};

int journal_step(struct journal *j, const struct journal_run *run,
		 const struct journal_step *step, struct st_error *err);

/* result as in the records above; code is the ST_E* code of the run. */
int journal_end(struct journal *j, const struct journal_run *run, const char *result, int code,
		const char *error, struct st_error *err);

/* Reader: calls fn for each well-formed record of the journal at path, in
 * file order, with its 1-based line number. The record is borrowed for the
 * call. fn returns 0 to go on, non-zero to stop (journal_foreach returns that
 * value). Lines that are not JSON objects (a line torn by a full disk) are
 * skipped and counted in *malformed (may be NULL). A missing file is an
 * empty journal. Errors: ST_EIO, ST_ENOMEM. */
typedef int (*journal_record_fn)(void *ud, const json_t *record, size_t line);
int journal_foreach(const char *path, journal_record_fn fn, void *ud, size_t *malformed,
		    struct st_error *err);

/* A run that started and never ended: its process died (SIGKILL, a lost
 * terminal's SIGHUP, a crash) between two steps or in one. */
struct journal_unfinished {
	char run[48];
	char runbook[128];
	char time[40];              /* of its start record */
	char **steps;               /* steps whose action succeeded and that were not undone,
				       in run order; owned (journal_unfinished_release) */
	size_t nsteps;
};

/* Finds, in the journal at path, the last run whose start record has pid
 * and that has no end record: *found 1 and out filled (release it), else
 * *found 0. Errors as journal_foreach. */
int journal_find_unfinished(const char *path, long long pid, struct journal_unfinished *out, int *found,
			    struct st_error *err);
void journal_unfinished_release(struct journal_unfinished *u);

/* Writes the end record of a run another process started and left
 * unfinished ("aborted", ST_EABORTED, error), so that it is reported once. */
int journal_end_unfinished(struct journal *j, const struct journal_unfinished *u, const char *error,
			   struct st_error *err);

#endif
