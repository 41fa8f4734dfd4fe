/*
 * expr.h - the runbooks' tiny expression language.
 *
 * References (the whole language):
 *   ${config.a.b}            a configuration value (through a lookup callback)
 *   ${args.NAME}             a runbook parameter
 *   ${steps.NAME.F.G}        a field of an earlier step's JSON result; numeric
 *                            segments index arrays (${steps.q.rows.0.count})
 * ${env.X} is refused on purpose: secrets do not flow through runbooks. "$${"
 * stands for a literal "${".
 *
 * A string that is exactly one reference takes the referenced value with its
 * JSON type ("${steps.q.rows}" is an array); references inside a longer
 * string are interpolated as text.
 *
 * Comparisons (expect values and conditions):
 *   "== ok", "!= 0", "< 5", "<= 5", "> 0", ">= 1", "~ substring", "!~ substring"
 * A value that does not start with an operator is a literal compared for
 * equality. Numbers compare numerically whether they arrive as numbers or as
 * numeric strings; == and != fall back to text for non-numbers; ~ matches
 * the text form of any value. A literal null expects the path to be null or
 * absent.
 */
#ifndef ST_EXPR_H
#define ST_EXPR_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

enum expr_ns { EXPR_NS_CONFIG, EXPR_NS_ARGS, EXPR_NS_STEPS };

/* Which namespaces to leave unresolved, as their "${...}" text: plans shown
 * before anything ran (runbook show: all; --dry-run: steps). */
enum {
	EXPR_KEEP_CONFIG = 1 << 0,
	EXPR_KEEP_ARGS = 1 << 1,
	EXPR_KEEP_STEPS = 1 << 2,
};

struct expr_scope {
	/* Returns the configuration value at a dotted path, or NULL when unset.
	 * The string is borrowed for the duration of the call. */
	const char *(*lookup_config)(void *ud, const char *path);
	void *config_ud;
	const json_t *args;   /* object: parameter -> value (null = no value) */
	const json_t *steps;  /* object: step name -> result of its act phase */
	unsigned keep;        /* EXPR_KEEP_* */
};

/* Called for every reference found by expr_scan(): ns and the path after
 * "ns." (path points into the scanned text, pathlen bytes). Return 0 to go
 * on, or a negative code after filling err. */
typedef int (*expr_ref_fn)(void *ud, enum expr_ns ns, const char *path, size_t pathlen,
			   struct st_error *err);

/* Checks the syntax of every reference in text and reports each to fn (may
 * be NULL). ST_ECONFIG for an unterminated "${", an empty or malformed path,
 * ${env...} or an unknown namespace; the message names the reference. */
int expr_scan(const char *text, expr_ref_fn fn, void *ud, struct st_error *err);

/* 1 when text contains at least one reference. */
int expr_has_refs(const char *text);

/* Evaluates one string (see above). *out is a new reference (caller
 * json_decref). Errors: ST_ECONFIG (syntax), ST_ENOTFOUND (a value that is
 * not there: unset configuration key, parameter without a value, step that
 * did not run, missing field), ST_ENOMEM. */
int expr_eval_string(const char *text, const struct expr_scope *scope, json_t **out,
		     struct st_error *err);

/* Evaluates every string inside tmpl (objects and arrays recursively, other
 * values copied). *out is a new reference (caller json_decref). */
int expr_resolve(const json_t *tmpl, const struct expr_scope *scope, json_t **out,
		 struct st_error *err);

/* The value at a dotted path inside root ("." or "" is root itself); NULL
 * when absent. Borrowed from root. */
const json_t *expr_path_get(const json_t *root, const char *path);

enum expr_op {
	EXPR_OP_LITERAL,   /* no operator: equality with a literal value */
	EXPR_OP_EQ, EXPR_OP_NE, EXPR_OP_LT, EXPR_OP_LE, EXPR_OP_GT, EXPR_OP_GE,
	EXPR_OP_MATCH, EXPR_OP_NOMATCH,
};

/* Splits "OP operand". For text without a leading operator character
 * (< > = ! ~) gives EXPR_OP_LITERAL and operand = text. ST_ECONFIG for a
 * malformed operator ("=> 5", "=ok") or a missing operand; with
 * operand_must_be_number (no references inside), ordering operators also
 * need a numeric operand. *operand points into text. */
int expr_parse_op(const char *text, enum expr_op *op, const char **operand, struct st_error *err);

/* Does actual satisfy expected (a literal JSON value or an operator string)?
 * actual NULL means "absent". Returns 1 or 0, and on 0 a reason in why
 * ("expected > 0, got 0"); ST_ECONFIG for a malformed operator. */
int expr_compare(const json_t *actual, const json_t *expected, char *why, size_t whysize,
		 struct st_error *err);

/* Checks every "path: expected" member of expect against result. Returns 1
 * when all hold; 0 with why = "PATH: reason" for the first that does not. */
int expr_expect(const json_t *result, const json_t *expect, char *why, size_t whysize,
		struct st_error *err);

/* Truth of a value: true, a non-zero number, a non-empty string other than
 * "false", "no", "off" and "0", a non-empty array or object. */
int expr_truthy(const json_t *v);

/* A condition ("when"): either "REF OP operand" (one reference followed by a
 * comparison) or any string whose evaluated value is truthy.
 * *holds: 1 true, 0 false, -1 undecided (it needs a kept namespace).
 * why gets the evaluated condition ("${args.mode} is 'fast'"). */
int expr_condition(const char *text, const struct expr_scope *scope, int *holds, char *why,
		   size_t whysize, struct st_error *err);

/* Syntax check of a condition, reporting its references to fn. */
int expr_condition_scan(const char *text, expr_ref_fn fn, void *ud, struct st_error *err);

/* Text form of a value for interpolation and messages: strings as they are,
 * numbers without trailing noise, true/false, null, compact JSON otherwise.
 * Caller frees; NULL on ENOMEM. */
char *expr_to_text(const json_t *v);

/* Parses a number from a JSON number or a numeric string; 0 on success. */
int expr_number(const json_t *v, double *out);

struct sbuf;

/* Appends text to out with every "${" written "$${": a template whose
 * value is text itself, for values that must not be read as references
 * (command-line input placed in a runbook built in C). 0, or -1 on ENOMEM. */
int expr_quote(const char *text, struct sbuf *out);

/* A copy of v with every string in it quoted (expr_quote): templates that
 * resolve (expr_resolve) to v. Caller frees (json_decref); NULL on ENOMEM. */
json_t *expr_quote_json(const json_t *v);

#endif
