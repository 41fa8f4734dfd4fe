/*
 * dockerignore.h - .dockerignore patterns, with the semantics of Docker's
 * own client (moby/patternmatcher), so a build context sent by
 * spilttea-ops holds exactly what `docker build` would send.
 *
 * File: one pattern per line; a line whose first character is '#' is a
 * comment; surrounding white space is trimmed; blank lines are skipped; a
 * leading '!' makes an exception (re-includes what earlier lines
 * excluded). Patterns are cleaned like paths ("./a/" -> "a", "/a" -> "a").
 * Syntax is Go's filepath.Match plus "**": '*' any run of characters but
 * '/', '?' one character but '/', "[a-z]" / "[^a-z]" classes, '\' escapes,
 * "**" any number of directories (zero included). The last pattern that
 * matches a path, or one of its parent directories, decides: a match of an
 * exception includes, else excludes.
 */
#ifndef ST_DOCKERIGNORE_H
#define ST_DOCKERIGNORE_H

#include <stddef.h>

#include "error.h"

struct dockerignore;

/* Parses the text of a .dockerignore (name for messages). An empty text
 * excludes nothing. *out: caller frees (dockerignore_free). ST_ECONFIG for
 * a pattern that does not compile (name:line), ST_ENOMEM. */
int dockerignore_parse(const char *name, const char *text, size_t len, struct dockerignore **out,
		       struct st_error *err);

void dockerignore_free(struct dockerignore *di);

/* 1 when path (relative to the context, '/'-separated, no leading "./")
 * is excluded, 0 when it is sent. */
int dockerignore_excluded(const struct dockerignore *di, const char *path);

/* 1 when the directory dir is excluded but an exception could re-include
 * something below it, so a walker must still descend into it. */
int dockerignore_must_descend(const struct dockerignore *di, const char *dir);

/* Number of patterns (exceptions included). */
size_t dockerignore_count(const struct dockerignore *di);

#endif
