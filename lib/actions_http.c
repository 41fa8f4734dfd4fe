/*
 * actions_http.c - http.probe: one GET, its status, latency and body.
 *
 * No response (refused, timed out) is a result, not an error: status 0,
 * ok false and the reason in error, so a check such as "the backend is
 * down" (expect status != 200) can hold.
 */
#include "actions.h"
#include "actions_util.h"
#include "expr.h"
#include "http.h"
#include "runbook.h"
#include "services.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

#define EXCERPT_MAX 1024

static int act_probe(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	const char *url = actions_arg_str(args, "url");
	const char *expect_body = actions_arg_str(args, "expect_body");
	long long expect_status = actions_arg_int(args, "expect_status", 0);
	struct http_result res;
	struct st_error perr = { 0 };
	json_t *body = NULL, *excerpt = NULL;
	char *shown = NULL;
	int rc, ok;

	memset(&res, 0, sizeof(res));
	rc = http_probe_failfast(call->services ? &call->services->http_down : NULL, url,
				 actions_arg_num(args, "timeout", 5), expect_body, &res, &perr);
	if (rc == ST_EUSAGE || rc == ST_ENOMEM) {
		*err = perr;
		goto out;
	}
	rc = 0;
	ok = res.status > 0 && (expect_status ? res.status == expect_status
					      : res.status >= 200 && res.status < 300);
	if (expect_body && res.match != HTTP_MATCH_FOUND)
		ok = 0;
	excerpt = actions_text(res.body ? res.body : "", res.body_len > EXCERPT_MAX ? EXCERPT_MAX
									       : res.body_len);
	/* A JSON body is also given parsed, so expect can test body.status. */
	if (res.body_len && !res.body_truncated)
		body = json_loadb(res.body, res.body_len, JSON_DECODE_ANY, NULL);
	if (!body)
		body = json_incref(excerpt);
	shown = actions_redact_url_password(url);
	*result = excerpt && shown ? json_pack("{s:s,s:I,s:f,s:b,s:O,s:O,s:s,s:b,s:s}", "url", shown,
					       "status", (json_int_t)res.status, "latency_s",
					       res.latency_s, "ok", ok, "body", body, "body_excerpt",
					       excerpt, "content_type", res.content_type,
					       "body_truncated", res.body_truncated, "error",
					       res.status ? "" : (res.error[0] ? res.error : perr.message))
				   : NULL;
	/* For messages: milliseconds to a tenth. */
	if (*result && json_object_set_new(*result, "latency_ms",
					   json_real(round(res.latency_s * 10000) / 10))) {
		json_decref(*result);
		*result = NULL;
	}
	if (*result && expect_body &&
	    json_object_set_new(*result, "body_match", json_boolean(res.match == HTTP_MATCH_FOUND))) {
		json_decref(*result);
		*result = NULL;
	}
	if (!*result)
		rc = actions_oom(err);
out:
	free(shown);
	json_decref(body);
	json_decref(excerpt);
	http_result_release(&res);
	return rc;
}

/* The url and timeout of an unconditional http.probe step, resolved from
 * the configuration alone; NULL when it is not one or needs more. The
 * prepared arguments go into *args (caller json_decref). */
static const char *step_probe(const struct runbook_step *step, const struct expr_scope *scope,
			      json_t **args, double *timeout_s)
{
	struct st_error err = { 0 };
	json_t *resolved = NULL;
	const char *url = NULL;

	*args = NULL;
	if (!step->act.action || strcmp(step->act.action->name, "http.probe") || step->when)
		return NULL;
	if (expr_resolve(step->act.args, scope, &resolved, &err) == 0 &&
	    engine_args_prepare(step->act.action, resolved, args, &err) == 0) {
		url = actions_arg_str(*args, "url");
		*timeout_s = actions_arg_num(*args, "timeout", 5);
	}
	json_decref(resolved);
	return url;
}

void actions_http_probe_ahead(struct services *s, struct runbook *const *rbs, size_t n,
			      const struct expr_scope *config_scope, double max_s)
{
	const char *urls[HTTP_DOWN_MAX];
	double timeouts[HTTP_DOWN_MAX];
	json_t *held[HTTP_DOWN_MAX];
	size_t i, j, k = 0;

	if (max_s <= 0)
		return;
	for (i = 0; s && i < n; i++)
		for (j = 0; j < rbs[i]->nsteps && k < HTTP_DOWN_MAX; j++)
			if ((urls[k] = step_probe(&rbs[i]->steps[j], config_scope, &held[k], &timeouts[k])) != NULL) {
				if (timeouts[k] > max_s)
					timeouts[k] = max_s;
				k++;
			} else {
				json_decref(held[k]);
			}
	if (k)
		http_probe_ahead(&s->http_down, urls, timeouts, k);
	for (i = 0; i < k; i++)
		json_decref(held[i]);
}

static const struct engine_arg_spec probe_args[] = {
	{ "url", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "http(s) URL to GET" },
	{ "expect_status", ENGINE_ARG_INT, 0, NULL, "status that counts as ok (default: any 2xx)" },
	{ "expect_body", ENGINE_ARG_STRING, 0, NULL, "substring the body must hold for ok" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "5s", "whole request" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_http[] = {
	{ "http.probe", "GET a URL: status, latency, body; no response is status 0", probe_args,
	  ENGINE_ACTION_READ_ONLY, act_probe },
	{ NULL, NULL, NULL, 0, NULL },
};
