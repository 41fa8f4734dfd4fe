/*
 * buildctx.h - the tar of a Docker build context, streamed to the build
 * API (docker_image_build_from) and filtered by .dockerignore exactly as
 * Docker's client does: from the working tree, or from a commit's tree
 * through `git archive` (fork/exec of git; the working tree, the index and
 * HEAD are never touched).
 *
 * The Dockerfile and .dockerignore always go in (the daemon needs them;
 * they are still ignored by COPY when .dockerignore lists them). Git
 * metadata (commit, dirty state) is found when the context lies inside a
 * git work tree, so releases can record it.
 */
#ifndef ST_BUILDCTX_H
#define ST_BUILDCTX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "docker.h"
#include "error.h"

struct dockerignore;

struct buildctx {
	char *dir;                 /* context directory, absolute */
	char *dockerfile;          /* path inside the context ("Dockerfile") */
	char *ref;                 /* git ref to build, NULL: the working tree */
	char *git_toplevel;        /* repository root, NULL when dir is no git tree */
	char *git_prefix;          /* dir relative to the root, "" at the top */
	char *git_commit;          /* full sha of ref, or of HEAD for the working tree */
	int git_dirty;             /* working tree: files under dir differ from HEAD */
	struct dockerignore *ignore; /* NULL: no .dockerignore */
	volatile sig_atomic_t *cancel; /* buildctx_open()'s; may be NULL */
	/* Counted while producing: */
	uint64_t entries;          /* entries sent */
	uint64_t skipped;          /* entries left out by .dockerignore */
};

/*
 * Prepares a context: dir must be a directory; dockerfile (NULL:
 * "Dockerfile") must exist in it (in ref's tree when ref is given). With
 * ref, dir must lie in a git work tree and ref must name a commit there.
 * Reads .dockerignore (from ref's tree with ref). cancel (may be NULL):
 * when it becomes non-zero, every git this context runs (here and in
 * buildctx_produce) is killed within 250 ms and the call fails with
 * ST_EABORTED. *out: caller frees (buildctx_free). Errors: ST_ENOTFOUND
 * (directory, Dockerfile, ref), ST_EUSAGE (ref without a git tree),
 * ST_ECONFIG (.dockerignore), ST_EABORTED, ST_EIO, ST_ENOMEM.
 */
int buildctx_open(const char *dir, const char *dockerfile, const char *ref, volatile sig_atomic_t *cancel,
		  struct buildctx **out, struct st_error *err);

void buildctx_free(struct buildctx *bc);

/* A docker_produce_fn: ud is the struct buildctx. Writes the whole tar.
 * From a commit, git archive is read in 250 ms slices: it is killed, and
 * ST_EABORTED returned, on bc->cancel or when write(wud, NULL, 0) fails
 * (the request no longer reads), so a hung git never hangs the build. */
int buildctx_produce(void *ud, docker_write_fn write, void *wud, struct st_error *err);

/* 1 when the entry path (relative, no leading "./" or trailing '/') is
 * always sent whatever .dockerignore says (the Dockerfile, .dockerignore). */
int buildctx_always_sent(const struct buildctx *bc, const char *path);

/*
 * Runs git with argv (argv[0] "git") in dir, capturing stdout (up to
 * max_out bytes, trailing newline kept) into *out (caller frees; may be
 * NULL to discard). Exit status != 0 gives ST_EFAILED with git's first
 * stderr line in the message; ST_ENOTFOUND when git is not installed;
 * ST_EABORTED (git killed) once *cancel (may be NULL) is set.
 */
int buildctx_git(const char *dir, const char *const *argv, size_t max_out, char **out,
		 volatile sig_atomic_t *cancel, struct st_error *err);

#endif
