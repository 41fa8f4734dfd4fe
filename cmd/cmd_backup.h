/*
 * cmd_backup.h - what `backup` and `restore` share in cmd/.
 */
#ifndef ST_CMD_BACKUP_H
#define ST_CMD_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/error.h"

struct st_config;
struct docker_client;
struct backup_progress;

/* "123.4 MB" (decimal units) into buf; returns buf. */
char *cmd_backup_size(uint64_t bytes, char *buf, size_t size);

/* Progress line on stderr (a terminal): ud is a struct whose first member
 * is an int set while a line is open. */
void cmd_backup_progress(void *ud, const struct backup_progress *p);

#endif
