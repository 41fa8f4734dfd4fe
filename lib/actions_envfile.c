/*
 * actions_envfile.c - envfile.read: what a dotenv file (backend/.env,
 * frontend/.env) defines, without its secrets.
 *
 * The same summary as docker.env (names, values of non-secret variables,
 * missing required ones, origin checks), so a diagnose runbook can compare
 * the file with what the container was created with. A file that does not
 * exist is a result (exists: false, every required name missing), not an
 * error: for a diagnosis it is the finding.
 */
#include "actions.h"
#include "actions_util.h"
#include "envfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int act_read(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	const char *path = actions_arg_str(args, "path");
	struct envfile ef = ENVFILE_INIT;
	struct st_error lerr = { 0 };
	json_t *env = NULL, *summary = NULL;
	struct stat sb;
	char mode[8] = "";
	size_t i;
	int rc, exists = 1;

	if (!*path)
		return st_error_set(err, ST_EUSAGE, "path must not be empty");
	rc = envfile_load(path, &ef, &lerr);
	if (rc == ST_ENOTFOUND) {
		exists = 0;
	} else if (rc) {
		*err = lerr;
		return rc;
	} else if (stat(path, &sb) == 0) {
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(sb.st_mode & 07777));
	}
	env = json_array();
	if (!env)
		goto nomem;
	/* As NAME=value words, in file order: the last assignment wins, as
	 * with Docker's --env-file. */
	for (i = 0; i < ef.n; i++) {
		char *word = NULL;
		json_t *w;

		if (asprintf(&word, "%s=%s", ef.entries[i].key, ef.entries[i].value) < 0)
			goto nomem;
		w = json_string(word);
		if (!w) /* not UTF-8: keep the name, the value cannot be shown anyway */
			w = json_pack("s+", ef.entries[i].key, "=\xEF\xBF\xBD");
		explicit_bzero(word, strlen(word));
		free(word);
		if (!w || json_array_append_new(env, w))
			goto nomem;
	}
	summary = actions_env_summary(env, json_object_get(args, "require"));
	if (!summary)
		goto nomem;
	if ((rc = actions_env_extras(call, summary, json_object_get(args, "origins"),
				     actions_arg_str(args, "names_like"), err)) != 0)
		goto out;
	if (json_object_set_new(summary, "path", json_string(path)) ||
	    json_object_set_new(summary, "exists", json_boolean(exists)) ||
	    json_object_set_new(summary, "mode", json_string(mode)))
		goto nomem;
	*result = summary;
	summary = NULL;
	goto out;
nomem:
	rc = actions_oom(err);
out:
	/* The values (secrets among them) leave memory with the entries. */
	for (i = 0; i < ef.n; i++)
		if (ef.entries[i].value)
			explicit_bzero(ef.entries[i].value, strlen(ef.entries[i].value));
	envfile_release(&ef);
	json_decref(env);
	json_decref(summary);
	return rc;
}

static const struct engine_arg_spec read_args[] = {
	{ "path", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the dotenv file" },
	{ "require", ENGINE_ARG_ARRAY, 0, NULL, "names that must be set (result: missing)" },
	{ "names_like", ENGINE_ARG_STRING, 0, NULL, "prefix: names starting with it (result: matched)" },
	{ "origins", ENGINE_ARG_OBJECT, 0, NULL,
	  "NAME: service or URL whose origin NAME's URL must have (result: origins)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_envfile[] = {
	{ "envfile.read", "a dotenv file: names, values of non-secret ones, missing, origins",
	  read_args, ENGINE_ACTION_READ_ONLY, act_read },
	{ NULL, NULL, NULL, 0, NULL },
};
