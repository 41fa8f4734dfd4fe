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

/* Every built-in table, NULL-terminated. */
extern const struct engine_action *const actions_builtin_tables[];

#endif
