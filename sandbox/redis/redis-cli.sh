#!/bin/sh
# /usr/local/bin/redis-cli of spilttea-sandbox/redis:7, ahead of the real one
# on PATH, so the runbook's `docker exec spilttea-redis redis-cli INFO stats`
# works as written: it talks to this container's port and authenticates with
# the bind-mounted secret (through REDISCLI_AUTH, never an argument) unless
# the caller set REDISCLI_AUTH. A -p or -h given by the caller still wins.
secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis.password}
if [ -z "${REDISCLI_AUTH:-}" ] && [ -r "$secret" ]; then
	REDISCLI_AUTH=$(cat "$secret")
	export REDISCLI_AUTH
fi
exec /usr/bin/redis-cli -p "${REDIS_PORT:-56379}" "$@"
