#!/bin/sh
# Entry point of the compose demo's nginx image (compose.yaml, service nginx):
# waits for the certificate the `secrets` service makes, then runs nginx in the
# foreground (its master as root, which reads the key; workers as www-data).
set -eu
tries=0
until [ -e /secrets/ready ]; do
  tries=$((tries + 1))
  [ "$tries" -le 240 ] || { echo "cd-compose-nginx: no certificate after 120 s (service secrets)" >&2; exit 1; }
  sleep 0.5
done
nginx -t -q
exec nginx -g 'daemon off;'
