#include "error.h"
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A truncated message must not end in half a character: the journal (JSON)
 * would refuse the whole record. */
static void cut_utf8(char *s)
{
	size_t n = strlen(s);

	s[text_utf8_cut(s, n)] = '\0';
}

int st_error_set(struct st_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->http_status = 0;
	err->unreachable = 0;
	err->hint[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	cut_utf8(err->message);
	return code;
}

int st_error_hint(struct st_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	cut_utf8(err->hint);
	return err->code;
}

int st_error_wrap(struct st_error *err, const char *fmt, ...)
{
	char prefix[ST_ERROR_MESSAGE_MAX / 2];
	const size_t cap = sizeof(err->message) - 1;
	size_t plen, mlen, keep;
	va_list ap;

	if (!err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	cut_utf8(prefix);
	plen = strlen(prefix);
	mlen = strlen(err->message);
	if (mlen == 0) {
		memcpy(err->message, prefix, plen + 1);
		return err->code;
	}
	/* "prefix: message", the old message truncated to fit. */
	keep = plen + 2 + mlen > cap ? text_utf8_cut(err->message, cap - plen - 2) : mlen;
	memmove(err->message + plen + 2, err->message, keep);
	memcpy(err->message, prefix, plen);
	err->message[plen] = ':';
	err->message[plen + 1] = ' ';
	err->message[plen + 2 + keep] = '\0';
	return err->code;
}

void st_error_clear(struct st_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->http_status = 0;
	err->unreachable = 0;
	err->message[0] = '\0';
	err->hint[0] = '\0';
}

const char *st_code_name(int code)
{
	switch (code) {
	case ST_OK: return "ok";
	case ST_EUSAGE: return "usage";
	case ST_ECONFIG: return "configuration";
	case ST_EABORTED: return "aborted";
	case ST_ELOCKED: return "locked";
	case ST_EIO: return "i/o";
	case ST_ENOTFOUND: return "not found";
	case ST_ETIMEOUT: return "timeout";
	case ST_EPROTO: return "protocol";
	case ST_ESERVICE: return "service";
	case ST_ENOMEM: return "out of memory";
	case ST_EFAILED: return "failed";
	case ST_ECONFLICT: return "conflict";
	case ST_EUNREACHABLE: return "unreachable";
	default: return "unknown";
	}
}
