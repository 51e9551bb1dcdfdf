#!/bin/sh
# Entry point of the compose demo's Redis image (compose.yaml, service redis).
#
# Writes its configuration under /run/redis from the password the `secrets`
# service made: the default user off, the app user `chat` with the same ACL
# rules as the redis role's default (redis_app_acl_rules) and only the SHA-256
# of its password; no persistence (the channel layer and the limits' counters
# need none). Then redis-server runs in the foreground as redis.
set -eu

tries=0
until [ -e /secrets/ready ]; do
  tries=$((tries + 1))
  [ "$tries" -le 240 ] || { echo "cd-compose-redis: no secrets after 120 s (service secrets)" >&2; exit 1; }
  sleep 0.5
done

umask 077
install -d -o redis -g redis -m 0700 /run/redis
hash=$(tr -d '\n' </secrets/redis_password | sha256sum | cut -d' ' -f1)
cat >/run/redis/users.acl <<ACL
user default off resetpass resetkeys resetchannels -@all
user chat on #$hash resetchannels &asgi* resetkeys ~asgi* ~chat:* ~cache:* -@all +ping +publish +subscribe +unsubscribe +zadd +zcount +zrange +zrem +zremrangebyscore +zpopmin +bzpopmin +expire +del +eval +multi +exec +time +zcard +pexpire +hmget +hset +get +set +incrby +exists
ACL
cat >/run/redis/redis.conf <<CONF
# Written by compose/redis.sh at each start.
# Every address of the container: the demo's network (no port is published).
bind 0.0.0.0
port 6379
daemonize no
logfile ""
save ""
appendonly no
aclfile /run/redis/users.acl
CONF
chown redis:redis /run/redis/users.acl /run/redis/redis.conf
exec setpriv --reuid=redis --regid=redis --init-groups -- redis-server /run/redis/redis.conf
