#!/bin/sh
# HEALTHCHECK of spilttea-sandbox/redis:7: PING with the password from the
# secret (REDISCLI_AUTH keeps it off the command line). Prints what Redis
# answered when it is not PONG, so `docker inspect` shows why.
secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis.password}
REDISCLI_AUTH=$(cat "$secret") || exit 1
export REDISCLI_AUTH
out=$(redis-cli --no-auth-warning -h 127.0.0.1 -p "${REDIS_PORT:-56379}" ping 2>&1)
[ "$out" = PONG ] && exit 0
echo "redis-cli ping: $out"
exit 1
