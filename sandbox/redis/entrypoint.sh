#!/bin/sh
# Entrypoint of spilttea-sandbox/redis:7 (built by scripts/sandbox).
#
# The password comes from the bind-mounted secret and reaches redis-server as
# configuration on stdin ("redis-server -"), so it is neither in the
# container's Cmd/Env (docker inspect) nor in the process arguments. The
# remaining arguments (port, bind, maxmemory ...) are the container's CMD.
# No persistence: the sandbox Redis is a cache.
set -eu

secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis.password}
if [ ! -s "$secret" ]; then
	echo "error: $secret is missing or empty: refusing to start Redis without a password" >&2
	exit 1
fi
password=$(cat "$secret")
cd /tmp
exec su -s /bin/sh -c 'exec redis-server - "$@"' -- redis redis-server "$@" <<CONF
requirepass $password
CONF
