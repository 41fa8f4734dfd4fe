/*
 * actions.h - the built-in action tables the registry concatenates.
 *
 * Each module exports one table (terminated by an entry whose name is NULL)
 * from lib/actions_<module>.c; adding a module is one extern here and one
 * line in lib/actions.c.
 */
#ifndef ST_ACTIONS_H
#define ST_ACTIONS_H

#include "engine.h"

/* sleep, fail, assert, file.exists, file.write (lib/actions_generic.c). */
extern const struct engine_action actions_generic[];

/* docker.inspect, .start, .stop, .restart, .wait_ready, .exec, .logs_grep,
 * .env (lib/actions_docker.c). */
extern const struct engine_action actions_docker[];

/* pg.query, .exec, .ping, .connections, .terminate_idle, .analyze, .vacuum, .vacuum_full
 * (lib/actions_pg.c). */
extern const struct engine_action actions_pg[];

/* redis.info, .ping, .count_matching, .delete_matching (lib/actions_redis.c). */
extern const struct engine_action actions_redis[];

/* http.probe (lib/actions_http.c). */
extern const struct engine_action actions_http[];

struct expr_scope;

/* With fail fast on s (diagnose): probes ahead, all at once
 * (http_probe_ahead), the URLs of the unconditional http.probe steps of
 * rbs whose url and timeout config_scope resolves (the configuration
 * alone), so that the steps of a host:port found dead fail at once and
 * dead peers cost one timeout together. No probe waits longer than max_s
 * (the caller's share of its own deadline); max_s <= 0 or s NULL or off:
 * nothing. */
void actions_http_probe_ahead(struct services *s, struct runbook *const *rbs, size_t n,
			      const struct expr_scope *config_scope, double max_s);

/* backup.verify, backup.create, backup.load, backup.db_* (lib/actions_backup.c):
 * what the restore and restore-cleanup runbooks are made of. */
extern const struct engine_action actions_backup[];
/* envfile.read (lib/actions_envfile.c). */
extern const struct engine_action actions_envfile[];

/* Every built-in table, NULL-terminated. */
extern const struct engine_action *const actions_builtin_tables[];

#endif
