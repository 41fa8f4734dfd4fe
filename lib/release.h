/*
 * release.h - the release history of each service, and the image
 * retention policy.
 *
 * STATE_DIR/releases/SERVICE.json holds one service's releases, oldest
 * first, rewritten whole through atomic_file.h (0600) on every change:
 *
 *   {"service":"backend","releases":[
 *     {"id":"20261127_223416","image":"spilttea-backend",
 *      "image_id":"sha256:...","previous_image_id":"sha256:...",
 *      "time":"2026-11-27T22:34:16.123Z","user":"alice",
 *      "source":"build","git_commit":"3f2a...","git_dirty":false,
 *      "strategy":"recreate","status":"ok"}, ...]}
 *
 * source: "initial" (the image running before the first deploy, recorded
 * by it), "build", "no-build", "rollback" (with "rollback_to": the release
 * redeployed). status: "pending" (being deployed, or the run died),
 * "ok" (went live), "failed" (rolled back automatically; "error" says why),
 * "rolled-back" (replaced by a later `rollback`). Optional members are
 * absent when unknown. The image of release R is tagged IMAGE:R.
 */
#ifndef ST_RELEASE_H
#define ST_RELEASE_H

#include <stddef.h>

#include "error.h"

#define RELEASE_ID_MAX 64

struct release_record {
	char id[RELEASE_ID_MAX];
	char *image;               /* repository, "spilttea-backend" */
	char *image_id;            /* "sha256:..." */
	char *previous_image_id;   /* NULL when nothing ran before */
	char *time;                /* RFC 3339 UTC */
	char *user;
	char *source;              /* "initial" | "build" | "no-build" | "rollback" */
	char *rollback_to;         /* source rollback: the release redeployed; else NULL */
	char *git_commit;          /* NULL when the context was no git tree */
	int git_dirty;
	char *git_ref;             /* --ref as given, NULL */
	char *strategy;            /* NULL for initial */
	char *status;              /* "pending" | "ok" | "failed" | "rolled-back" */
	char *error;               /* failed: why; else NULL */
	int pruned;                /* its image tag was removed by retention */
};

struct release_history {
	char *service;
	char *path;                /* STATE_DIR/releases/SERVICE.json */
	struct release_record *records; /* oldest first */
	size_t count;
};

/* Loads SERVICE's history from state_dir (a missing file is an empty
 * history). *out: caller frees (release_history_free). ST_EIO, ST_EPROTO
 * (not our format, naming the file), ST_ENOMEM. */
int release_history_load(const char *state_dir, const char *service,
			 struct release_history **out, struct st_error *err);

/* Parses a history from memory (path for messages). */
int release_history_parse(const char *path, const char *service, const char *text,
			  struct release_history **out, struct st_error *err);

/* Writes it back atomically (creating STATE_DIR/releases 0700). ST_EIO. */
int release_history_save(const struct release_history *h, struct st_error *err);

void release_history_free(struct release_history *h);

/* Appends a copy of rec (strings duplicated). Returns the new record
 * (borrowed from h) or NULL on ENOMEM. */
struct release_record *release_history_append(struct release_history *h,
					      const struct release_record *rec);

/* By id; NULL when absent. Borrowed. */
struct release_record *release_history_find(const struct release_history *h, const char *id);

/* Replaces a string member (NULL clears it). 0 or ST_ENOMEM. */
int release_set(char **field, const char *value, struct st_error *err);

/* A new release id from epoch seconds t ("20261127_223416"), unique within
 * h: "_2", "_3"... are appended when taken. */
void release_new_id(const struct release_history *h, double t, char *id, size_t size);

/* The release running now: the last with status "ok", NULL when none. */
const struct release_record *release_current(const struct release_history *h);

/* What `rollback` goes back to: walking back from the current release,
 * the first with status "ok" (went live and was not itself rolled back)
 * whose image differs from the current one and was not pruned. NULL when
 * there is none. Borrowed. */
const struct release_record *release_previous(const struct release_history *h);

/*
 * Retention: which releases' image tags to remove so that the images of
 * the newest `keep` releases that went live (status ok or rolled-back,
 * counted by distinct image) remain, never touching the images
 * running_image_id and previous_image_id (either may be NULL) nor a
 * pending release. A release whose image is kept keeps its tag. Fills
 * drop[] (capacity h->count) with record indexes, oldest first, and
 * returns how many; already pruned releases are not listed.
 */
size_t release_retention(const struct release_history *h, size_t keep, const char *running_image_id,
			 const char *previous_image_id, size_t *drop);

#endif
