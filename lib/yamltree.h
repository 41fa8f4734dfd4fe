/*
 * yamltree.h - a YAML document as a small tree that remembers where every
 * node came from, so configuration, runbook and compose loaders can report
 * errors as file:line:column.
 *
 * Only what those files need: mappings, sequences and scalars. Anchors,
 * aliases, tags and multi-document streams are rejected with a positioned
 * error rather than half-supported. Mapping keys must be scalars and unique.
 */
#ifndef ST_YAMLTREE_H
#define ST_YAMLTREE_H

#include <stddef.h>
#include <jansson.h>

#include "error.h"

enum yt_kind { YT_SCALAR, YT_MAP, YT_SEQ };

struct yt_node {
	enum yt_kind kind;
	int line;              /* 1-based */
	int column;            /* 1-based */
	const char *file;      /* borrowed from the root document */
	/* YT_SCALAR */
	char *scalar;          /* owned, NUL-terminated */
	int quoted;            /* 1 when written with quotes: never null/bool */
	/* YT_MAP: keys[i] -> values[i]; YT_SEQ: values[i] */
	size_t count;
	struct yt_node **keys;   /* YT_MAP only; scalar nodes */
	struct yt_node **values;
};

struct yt_doc {
	char *file;            /* owned; the name used in error messages */
	struct yt_node *root;  /* NULL for an empty document */
};

/* Parse a file. On success *out is owned by the caller (yt_doc_free).
 * Errors: ST_EIO (cannot read), ST_ECONFIG (syntax or unsupported
 * feature, message starts with "file:line:column: "). */
int yt_parse_file(const char *path, struct yt_doc **out, struct st_error *err);

/* Parse from memory; name is used in error messages (e.g. "runbooks/health.yaml"). */
int yt_parse_buffer(const char *name, const char *data, size_t len,
		    struct yt_doc **out, struct st_error *err);

void yt_doc_free(struct yt_doc *doc);

/* Mapping lookup; NULL when absent or when map is not a mapping. Borrowed. */
struct yt_node *yt_map_get(const struct yt_node *map, const char *key);

/* Scalar text or NULL when node is not a scalar. Borrowed. */
const char *yt_scalar(const struct yt_node *node);

/* True for an unquoted ~, null, Null, NULL or empty scalar. */
int yt_is_null(const struct yt_node *node);

/* Typed scalar readers: 0 on success, ST_ECONFIG with a positioned message
 * naming `what` (e.g. "thresholds.disk_percent.warn") on a type mismatch. */
int yt_get_bool(const struct yt_node *node, const char *what, int *out, struct st_error *err);
int yt_get_long(const struct yt_node *node, const char *what, long *out, struct st_error *err);
int yt_get_double(const struct yt_node *node, const char *what, double *out, struct st_error *err);
/* Duration: a number of seconds or a number with unit ms, s, m, h, d ("500ms", "5m"). */
int yt_get_seconds(const struct yt_node *node, const char *what, double *out, struct st_error *err);

/* Called by yt_to_json for every scalar that becomes a JSON string; a
 * negative ST_E* code (err filled) stops the conversion. */
typedef int (*yt_string_fn)(void *ud, const struct yt_node *node, struct st_error *err);

/*
 * The tree as JSON, plain scalars typed by the YAML 1.2 core schema: ~,
 * null, Null, NULL and empty -> null; true/True/TRUE, false/False/FALSE ->
 * booleans; decimal integers -> integers (reals when too large); decimal
 * numbers with '.' or an exponent -> reals; everything else, and every
 * quoted scalar, a string. A number with a leading zero keeps its text
 * ("0600" is a mode, not six hundred). fn (may be NULL) sees each string
 * scalar. *out is a new reference; ST_ENOMEM, or fn's code.
 */
int yt_to_json(const struct yt_node *node, yt_string_fn fn, void *ud, json_t **out,
	       struct st_error *err);

/* Sets err to "file:line:col: <message>" for node with the given code. */
int yt_error_at(struct st_error *err, int code, const struct yt_node *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Human name of a kind: "mapping", "sequence", "scalar". */
const char *yt_kind_name(enum yt_kind kind);

#endif
