/*
 * logfilter.c - log line categories (logfilter.h).
 */
#include "logfilter.h"

#include <string.h>
#include <strings.h>

struct term {
	const char *text;
	int word_start;           /* must start a word */
};

struct category {
	const char *name;
	const char *terms_text;
	struct term terms[6];     /* ends with { NULL } */
	const char *aliases[6];   /* ends with NULL */
};

static const struct category categories[LOGCAT_COUNT] = {
	[LOGCAT_ERROR] = { "error", "error, fatal, exception; HTTP 5xx",
			   { { "error", 0 }, { "fatal", 0 }, { "exception", 0 }, { NULL, 0 } },
			   { "errors", "err", NULL } },
	[LOGCAT_WARN] = { "warn", "warn (warning)", { { "warn", 0 }, { NULL, 0 } },
			  { "warning", "warnings", NULL } },
	[LOGCAT_DB] = { "db", "prisma, database", { { "prisma", 0 }, { "database", 0 }, { NULL, 0 } },
			{ "database", "prisma", NULL } },
	[LOGCAT_AUTH] = { "auth", "unauthorized, forbidden, jwt; HTTP 401/403",
			  { { "unauthorized", 0 }, { "forbidden", 0 }, { "jwt", 1 }, { NULL, 0 } },
			  { "jwt", "unauthorized", "forbidden", NULL } },
	[LOGCAT_CORS] = { "cors", "cors", { { "cors", 1 }, { NULL, 0 } }, { NULL } },
	[LOGCAT_S3] = { "s3", "s3, aws", { { "s3", 1 }, { "aws", 1 }, { NULL, 0 } }, { "aws", NULL } },
	[LOGCAT_EMAIL] = { "email", "email, e-mail, nodemailer, smtp",
			   { { "email", 0 }, { "e-mail", 0 }, { "nodemailer", 0 }, { "smtp", 0 },
			     { NULL, 0 } },
			   { "mail", "nodemailer", "smtp", NULL } },
	[LOGCAT_VIEW] = { "view", "view (views, viewCount)", { { "view", 1 }, { NULL, 0 } },
			  { "views", NULL } },
};

const char *logcat_name(enum logcat c)
{
	return (unsigned)c < LOGCAT_COUNT ? categories[c].name : "?";
}

const char *logcat_terms(enum logcat c)
{
	return (unsigned)c < LOGCAT_COUNT ? categories[c].terms_text : "";
}

int logcat_parse(const char *name, enum logcat *out)
{
	size_t c, a;

	for (c = 0; name && c < LOGCAT_COUNT; c++) {
		if (!strcasecmp(name, categories[c].name)) {
			*out = (enum logcat)c;
			return 0;
		}
		for (a = 0; categories[c].aliases[a]; a++)
			if (!strcasecmp(name, categories[c].aliases[a])) {
				*out = (enum logcat)c;
				return 0;
			}
	}
	return -1;
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Whether term (lowercase) occurs in line ignoring case. */
static int contains(const char *line, size_t len, const struct term *t)
{
	size_t n = strlen(t->text), i, j;

	if (n > len)
		return 0;
	for (i = 0; i + n <= len; i++) {
		if (t->word_start && i > 0 && is_alnum(line[i - 1]))
			continue;
		for (j = 0; j < n && lower(line[i + j]) == t->text[j]; j++)
			;
		if (j == n)
			return 1;
	}
	return 0;
}

int logcat_http_status(const char *line, size_t len)
{
	size_t i;

	/* The request's closing quote follows "HTTP/x.y", then the status. */
	for (i = 0; i + 5 < len; i++) {
		size_t p;

		if (memcmp(line + i, "HTTP/", 5) != 0)
			continue;
		p = i + 5;
		while (p < len && line[p] != '"' && line[p] != ' ')
			p++;
		if (p + 1 >= len || line[p] != '"' || line[p + 1] != ' ')
			continue;
		p += 2;
		if (p + 3 > len || line[p] < '1' || line[p] > '5' || line[p + 1] < '0' ||
		    line[p + 1] > '9' || line[p + 2] < '0' || line[p + 2] > '9' ||
		    (p + 3 < len && line[p + 3] != ' '))
			continue;
		return (line[p] - '0') * 100 + (line[p + 1] - '0') * 10 + (line[p + 2] - '0');
	}
	return 0;
}

unsigned logcat_classify(const char *line, size_t len)
{
	unsigned bits = 0;
	size_t c, t;
	int status;

	for (c = 0; c < LOGCAT_COUNT; c++)
		for (t = 0; categories[c].terms[t].text; t++)
			if (contains(line, len, &categories[c].terms[t])) {
				bits |= LOGCAT_BIT(c);
				break;
			}
	status = logcat_http_status(line, len);
	if (status >= 500)
		bits |= LOGCAT_BIT(LOGCAT_ERROR);
	if (status == 401 || status == 403)
		bits |= LOGCAT_BIT(LOGCAT_AUTH);
	return bits;
}
