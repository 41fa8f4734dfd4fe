#include "failfast.h"

#include <errno.h>
#include <string.h>

static const int unreachable_errnos[] = { ECONNREFUSED, ENOENT, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT };

#define N_UNREACHABLE (sizeof(unreachable_errnos) / sizeof(unreachable_errnos[0]))

void st_error_mark_unreachable(struct st_error *err)
{
	if (err)
		err->unreachable = 1;
}

int st_text_quotes_unreachable_errno(const char *text)
{
	size_t i;

	for (i = 0; text && i < N_UNREACHABLE; i++)
		if (strstr(text, strerror(unreachable_errnos[i])))
			return 1;
	return 0;
}

void st_down_reset(struct st_down *d, int on)
{
	memset(d, 0, sizeof(*d));
	d->on = on;
}

void st_down_note(struct st_down *d, const struct st_error *err)
{
	if (d->on && err && err->code && err->unreachable && !d->first.code)
		d->first = *err;
}

int st_down_check(const struct st_down *d, const char *what, struct st_error *err)
{
	if (!d->first.code)
		return 0;
	st_error_set(err, ST_EUNREACHABLE, "%s unreachable: %s", what, d->first.message);
	if (d->first.hint[0])
		st_error_hint(err, "%s", d->first.hint);
	return ST_EUNREACHABLE;
}
