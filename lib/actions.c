#include "actions.h"

#include <stddef.h>

const struct engine_action *const actions_builtin_tables[] = {
	actions_generic,
	actions_docker,
	actions_pg,
	actions_redis,
	actions_http,
	actions_backup,
	actions_envfile,
	NULL,
};
