/*
 * envfile.h - reading and rewriting dotenv files (.env, backend/.env).
 *
 * A dotenv file is lines of KEY=VALUE, as docker compose (env_file:),
 * Docker's --env-file and the Node dotenv package read them:
 *
 *     # comment                      blank lines and comments
 *     export JWT_SECRET=abc          optional "export " prefix
 *     SMTP_PASSWORD="a b c"          double or single quotes
 *     AWS_REGION=eu-west-1 # note    unquoted: '#' starts a comment
 *     FROM_ENV                       a name alone ("bare"): assigns nothing
 *
 * This is THE reader of such files (the checklist, compose's variables,
 * secret rotation all use it), with the comment rule of dotenv, which the
 * backend reads its .env with: in an unquoted value a '#' starts a comment
 * wherever it is, so "JWT_SECRET= # set me" and "HASH=#x" assign "" (compose
 * cuts only at " #", and Docker's --env-file not at all: a '#' belongs in
 * quotes). In double quotes \n, \r, \t, \" and \\ are read as dotenv and
 * compose read them; other backslashes, and everything in single quotes,
 * are literal.
 *
 * Lines end with LF or CRLF; the last one may have no newline. The parser
 * is lenient (a line it cannot read is kept and skipped, never an error),
 * because a rewrite must never lose a line it does not understand; it
 * notes the first such line for readers that refuse them.
 *
 * envfile_set() changes only the value of the lines assigning KEY: every
 * other byte (other lines, comments, order, the export prefix, the quote
 * style, a trailing comment, the line ending, a missing final newline) is
 * kept. Values are written without escape sequences, since the readers
 * above disagree about them: a value the line's quote style cannot carry
 * literally is refused (ST_EUSAGE) instead of being written ambiguously.
 */
#ifndef ST_ENVFILE_H
#define ST_ENVFILE_H

#include <stddef.h>

#include "error.h"
#include "sbuf.h"

struct envfile_entry {
	char *key;        /* owned */
	char *value;      /* owned; quotes removed, escapes read, comment dropped;
			     NULL for a bare name */
	int line;         /* 1-based */
	char quote;       /* '\0', '\'' or '"' */
	int exported;     /* had "export " */
	int bare;         /* a name alone on its line, without '=' */
};

struct envfile {
	struct envfile_entry *entries;   /* in file order; a key may repeat (the last wins) */
	size_t n;
	int bad_line;     /* first line that is no assignment, bare name, comment or
			     blank (1-based); 0 when there is none */
};

#define ENVFILE_INIT { NULL, 0, 0 }

/* 1 when name is a variable name this tool writes: [A-Za-z_][A-Za-z0-9_]*. */
int envfile_key_valid(const char *name);

/* Parses text (len bytes, need not be NUL-terminated). *out: release with
 * envfile_release(). 0 or ST_ENOMEM. */
int envfile_parse(const char *text, size_t len, struct envfile *out, struct st_error *err);

/* Value of the last assignment of key (bare names assign nothing);
 * borrowed; NULL when absent. */
const char *envfile_get(const struct envfile *ef, const char *key);

void envfile_release(struct envfile *ef);

/* Reads (text_read_file: a regular file, links followed, at most 16 MiB,
 * its bytes wiped after parsing) and parses the file at path. ST_ENOTFOUND
 * when missing, ST_EIO (unreadable, not a regular file, too large). */
int envfile_load(const char *path, struct envfile *out, struct st_error *err);

/*
 * Rewrites text into out (appended) with every assignment of key set to
 * value, as described above. *replaced (may be NULL) gets the number of
 * lines changed. When key is not assigned anywhere and append is set, a
 * line "key=value" is added at the end (after a line ending when the text
 * does not end with '\n'; CRLF when the text's last line ending is CRLF or
 * a lone CR ending the text, which gets its '\n'). An unquoted value
 * written right before a '#' comment gets a blank between them, as
 * compose reads a comment only after a blank.
 * Errors: ST_EUSAGE for an invalid key, or a value with a newline, CR or
 * NUL, or one the quote style of a line cannot hold literally (unquoted:
 * leading or trailing blanks, a leading quote, '#', '$'; double quotes:
 * '"', '\\', '$'; single quotes: '\''). ST_ENOMEM.
 */
int envfile_set(const char *text, size_t len, const char *key, const char *value, int append,
		struct sbuf *out, size_t *replaced, struct st_error *err);

/*
 * envfile_set() on the file at path, written back atomically (temporary
 * file, fsync, rename: lib/atomic_file.h) with the file's mode and owner
 * kept. The file must exist (ST_ENOTFOUND). When nothing would change
 * (key absent and not append) the file is not rewritten. The value is
 * never part of an error message.
 */
int envfile_update(const char *path, const char *key, const char *value, int append,
		   size_t *replaced, struct st_error *err);

#endif
