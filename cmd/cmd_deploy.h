/*
 * cmd_deploy.h - what `deploy` and `rollback` share: running a deploy with
 * the terminal UI (progress, confirmations, Ctrl-C), reporting it, and
 * listing release histories.
 */
#ifndef ST_CMD_DEPLOY_H
#define ST_CMD_DEPLOY_H

#include "cmd.h"
#include "../lib/deploy.h"

/* Runs opts (ui, cancel, command_line, dry_run and assume_yes are filled
 * here from ctx) and prints the outcome. Returns the exit status. */
int cmd_deploy_execute(struct ctx *ctx, struct deploy_options *opts);

/* Prints the release history of services (NULL-terminated names, or
 * none/"all": every configured service) as a table, or JSON with
 * --format json. Returns the exit status. */
int cmd_release_list(struct ctx *ctx, const char *const *services);

#endif
