#!/usr/bin/env bash
# The compose demo (compose.yaml) on this machine's podman, for the make targets.
#
# Usage: testbed/compose.sh up|down|test
#   up    build the images (cached layers are reused), start the services, wait
#         until every one is healthy and the one-shots have succeeded, print the URL
#   down  remove the demo's containers, network and volumes (its secrets and data)
#   test  down (a running demo goes, with its data), up, the smoke check of `make site`
#         (testbed/chatclient.py smoke) through the published port, then down again,
#         also when a step failed or timed out
# Every step has a time limit. Environment:
#   COMPOSE                 compose command (default podman-compose: Debian 12's 1.0.3
#                           has no `up --wait`, and this podman runs no health check by
#                           itself without systemd, so the wait below runs them)
#   CD_COMPOSE_PORT         published HTTPS port on 127.0.0.1 (default 9443)
#   CD_COMPOSE_BASE_IMAGE   base of the images (default the test bed's Debian 12 image)
#   CD_COMPOSE_PYTHON       Python with the websockets package (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: $0 up|down|test}
read -r -a compose <<<"${COMPOSE:-podman-compose}"
compose+=(-p cd-compose)
port=${CD_COMPOSE_PORT:-9443}
python=${CD_COMPOSE_PYTHON:-.venv/bin/python}
services=(postgres redis gunicorn daphne nginx)
oneshots=(secrets migrate)
work=$(mktemp -d /tmp/cd-compose.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Seconds since boot: a monotonic clock (the wall clock here has jumped back).
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

# Run a step with a time limit, its output in a log that is shown only on failure.
step() {
  local name=$1 limit=$2 start status=0
  shift 2
  start=$(now)
  timeout --kill-after=10 "$limit" "$@" >"$work/$name.log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$work/$name.log" >&2
    [ "$status" -eq 124 ] && echo "compose: $name timed out after $limit s" >&2
    echo "compose: $name failed (exit $status) after $(since "$start") s" >&2
    return "$status"
  fi
  echo "compose: $name took $(since "$start") s"
}

# True when every long-running service is healthy and every one-shot exited 0;
# a one-shot that failed, or a service that stopped, ends the wait at once.
ready() {
  local name state code
  for name in "${oneshots[@]}"; do
    state=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "cd-compose-$name" 2>/dev/null) || return 1
    read -r state code <<<"$state"
    if [ "$state" = exited ] && [ "$code" != 0 ]; then
      echo "compose: service $name exited $code" >&2
      podman logs --tail 30 "cd-compose-$name" >&2
      return 2
    fi
    [ "$state" = exited ] || return 1
  done
  for name in "${services[@]}"; do
    state=$(podman inspect --format '{{.State.Status}}' "cd-compose-$name" 2>/dev/null) || return 1
    if [ "$state" != running ]; then
      echo "compose: service $name is $state" >&2
      podman logs --tail 30 "cd-compose-$name" >&2
      return 2
    fi
    podman healthcheck run "cd-compose-$name" >/dev/null 2>&1 || return 1
  done
}

wait_ready() {
  local limit=$1 start status
  start=$(now)
  while true; do
    status=0
    ready || status=$?
    [ "$status" -eq 0 ] && break
    [ "$status" -eq 2 ] && return 1
    if [ "$(since "$start")" -ge "$limit" ]; then
      echo "compose: not healthy after $limit s" >&2
      for name in "${oneshots[@]}" "${services[@]}"; do
        echo "--- cd-compose-$name" >&2
        podman logs --tail 15 "cd-compose-$name" >&2 || true
      done
      return 1
    fi
    sleep 2
  done
  echo "compose: healthy after $(since "$start") s"
}

down() {
  step down 180 "${compose[@]}" down -v -t 10 || true
  # podman-compose 1.0.3 leaves the network behind.
  if podman network exists cd-compose_default; then podman network rm cd-compose_default >/dev/null; fi
  local left
  left=$(podman ps -a --format '{{.Names}}' --filter name=cd-compose; podman volume ls -q --filter name=cd-compose)
  if [ -n "$left" ]; then
    echo "compose: left behind: $left" >&2
    return 1
  fi
}

up() {
  step build 900 "${compose[@]}" build
  # podman-compose 1.0.3 exits 0 when a build fails; it prints the status of
  # each podman command it ran.
  if grep -Eq '^exit code: [1-9]' "$work/build.log"; then
    grep -B 20 -E '^exit code: [1-9]' "$work/build.log" | tail -n 40 >&2
    echo "compose: an image did not build" >&2
    return 1
  fi
  step start 180 "${compose[@]}" up -d
  wait_ready 300
}

smoke() {
  podman exec cd-compose-nginx cat /secrets/ca.pem >"$work/ca.pem"
  timeout 120 "$python" testbed/chatclient.py smoke "https://localhost:$port" \
    --connect-to 127.0.0.1 --cafile "$work/ca.pem"
}

case "$action" in
  up)
    up
    cat <<MSG
The compose demo runs at https://localhost:$port/ (a certificate from the demo's
own CA: \`podman exec cd-compose-nginx cat /secrets/ca.pem\`; a browser warns
unless it trusts it). Remove it, with its data: make compose-down.
MSG
    ;;
  down) down ;;
  test)
    start=$(now)
    trap 'status=$?; down || status=1; rm -rf "$work"; exit $status' EXIT
    trap 'exit 143' TERM INT
    # From nothing: a demo left running (make compose-up) goes first, with its data.
    down
    up
    smoke
    echo "compose: build, start and smoke check took $(since "$start") s"
    ;;
  *) echo "usage: $0 up|down|test" >&2; exit 2 ;;
esac
