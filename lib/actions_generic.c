/*
 * actions_generic.c - actions that need no service: waiting, asserting,
 * failing on purpose (tests, placeholders), and local files.
 */
#include "actions.h"
#include "atomic_file.h"
#include "expr.h"
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int act_sleep(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	double s = json_real_value(json_object_get(args, "seconds"));
	int rc = engine_call_sleep(call, s, err);

	if (rc)
		return rc;
	*result = json_pack("{s:f}", "slept", s);
	return *result ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static int act_fail(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	(void)call;
	(void)result;
	return st_error_set(err, ST_EFAILED, "%s", json_string_value(json_object_get(args, "message")));
}

static int act_assert(struct engine_call *call, const json_t *args, json_t **result,
		      struct st_error *err)
{
	const json_t *value = json_object_get(args, "value");
	const json_t *msg = json_object_get(args, "message");
	char why[512];
	int rc;

	(void)call;
	rc = expr_compare(value, json_object_get(args, "expect"), why, sizeof(why), err);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (msg)
			return st_error_set(err, ST_EFAILED, "%s (%s)", json_string_value(msg), why);
		return st_error_set(err, ST_EFAILED, "assertion failed: %s", why);
	}
	*result = json_pack("{s:O}", "value", value);
	return *result ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static int act_file_exists(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	char mode[8], when[40];
	struct stat st;

	(void)call;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return st_error_set(err, ST_EIO, "cannot stat '%s': %s", path, strerror(errno));
		*result = json_pack("{s:s,s:b}", "path", path, "exists", 0);
	} else {
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(st.st_mode & 07777));
		*result = json_pack("{s:s,s:b,s:s,s:I,s:s,s:s}", "path", path, "exists", 1, "type",
				    S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other",
				    "size", (json_int_t)st.st_size, "mode", mode, "mtime",
				    time_format_rfc3339((double)st.st_mtime, when, sizeof(when)));
	}
	return *result ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static int parse_mode(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || strlen(s) > 4)
		return -1;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > 07777)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int act_file_write(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	const json_t *content = json_object_get(args, "content");
	const char *ms = json_string_value(json_object_get(args, "mode"));
	unsigned mode;
	char shown[8];
	int rc;

	(void)call;
	if (parse_mode(ms, &mode) != 0)
		return st_error_set(err, ST_EUSAGE, "mode must be octal like 0600, not '%s'", ms);
	if (json_is_true(json_object_get(args, "keep_mode")))
		mode |= ATOMIC_FILE_PRESERVE_MODE;
	rc = atomic_file_write_all(path, json_string_value(content), json_string_length(content),
				   mode, err);
	if (rc)
		return rc;
	snprintf(shown, sizeof(shown), "%04o", mode & 07777);
	*result = json_pack("{s:s,s:I,s:s}", "path", path, "bytes",
			    (json_int_t)json_string_length(content), "mode", shown);
	return *result ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static const struct engine_arg_spec sleep_args[] = {
	{ "seconds", ENGINE_ARG_DURATION, ENGINE_ARG_REQUIRED, NULL, "how long: 5, 500ms, 2m" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec fail_args[] = {
	{ "message", ENGINE_ARG_STRING, 0, "failed as the runbook asked", "the error message" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec assert_args[] = {
	{ "value", ENGINE_ARG_ANY, ENGINE_ARG_REQUIRED, NULL, "the value to test, e.g. ${steps.x.count}" },
	{ "expect", ENGINE_ARG_ANY, ENGINE_ARG_REQUIRED, NULL, "a literal, or a comparison like '> 0'" },
	{ "message", ENGINE_ARG_STRING, 0, NULL, "error message when it does not hold" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec file_exists_args[] = {
	{ "path", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "file or directory" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec file_write_args[] = {
	{ "path", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "file to create or replace" },
	/* A whole .env or key file: shown as *** (plan, journal); the result
	 * gives its size. */
	{ "content", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED | ENGINE_ARG_SECRET, NULL,
	  "the whole new content (never shown)" },
	{ "mode", ENGINE_ARG_STRING, 0, "0600", "octal permissions of a new file" },
	{ "keep_mode", ENGINE_ARG_BOOL, 0, "false", "keep the mode of an existing file" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_generic[] = {
	{ "sleep", "wait for a while", sleep_args, ENGINE_ACTION_READ_ONLY, act_sleep },
	{ "fail", "fail with a message (tests, unfinished procedures)", fail_args,
	  ENGINE_ACTION_READ_ONLY, act_fail },
	{ "assert", "fail unless a value satisfies a comparison", assert_args,
	  ENGINE_ACTION_READ_ONLY, act_assert },
	{ "file.exists", "whether a path exists, with its type, size, mode and mtime",
	  file_exists_args, ENGINE_ACTION_READ_ONLY, act_file_exists },
	{ "file.write", "replace a file atomically (temp file, fsync, rename)", file_write_args, 0,
	  act_file_write },
	{ NULL, NULL, NULL, 0, NULL },
};
