/*
 * logfilter.h - the runbook's log categories ("Log Monitoring > Log
 * Analysis" and the greps of "Common Issues and Fixes"), for `spilttea-ops
 * logs`: which categories a log line falls in.
 *
 *   error  "error" (grep -i error), "fatal", "exception"; an access line
 *          answered 5xx
 *   warn   "warn" (grep -i warn: warn, warning)
 *   db     "prisma", "database" (grep -i "prisma\|database")
 *   auth   "unauthorized", "forbidden", "jwt"; an access line answered
 *          401 or 403 (grep -i "unauthorized\|forbidden\|jwt")
 *   cors   "cors"
 *   s3     "s3", "aws" (grep -i "s3\|aws")
 *   email  "email", "e-mail", "nodemailer", "smtp"
 *   view   "view" (views, viewCount: grep -i view)
 *
 * Matching ignores case. The short terms (jwt, cors, s3, aws, view) must
 * start a word (the character before is not a letter or digit), so "s3"
 * does not match inside "posts3" nor "view" inside "review"; the long ones
 * match anywhere, as grep -i does. Access lines are recognised by their
 * request ("GET /x HTTP/1.1" 503). Pure.
 */
#ifndef ST_LOGFILTER_H
#define ST_LOGFILTER_H

#include <stddef.h>

enum logcat {
	LOGCAT_ERROR,
	LOGCAT_WARN,
	LOGCAT_DB,
	LOGCAT_AUTH,
	LOGCAT_CORS,
	LOGCAT_S3,
	LOGCAT_EMAIL,
	LOGCAT_VIEW,
	LOGCAT_COUNT,
};

#define LOGCAT_BIT(c) (1u << (c))
#define LOGCAT_ALL ((1u << LOGCAT_COUNT) - 1)

/* "error", "warn", "db", "auth", "cors", "s3", "email", "view". */
const char *logcat_name(enum logcat c);

/* What the category matches, for help text: "prisma, database". */
const char *logcat_terms(enum logcat c);

/* A category by its name or an alias (errors, warning(s), database,
 * prisma, jwt, aws, nodemailer, views ...). 0, or -1 when unknown. */
int logcat_parse(const char *name, enum logcat *out);

/* The categories line (len bytes, need not be NUL-terminated) falls in, as
 * LOGCAT_BIT()s; 0 for none. */
unsigned logcat_classify(const char *line, size_t len);

/* The HTTP status of an access log line ("... \"GET /x HTTP/1.1\" 503 ..."),
 * or 0 when line is not one. */
int logcat_http_status(const char *line, size_t len);

#endif
