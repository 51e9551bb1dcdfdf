#!/usr/bin/env bash
# After `make site`: check the local deployment end to end from this machine,
# through the published HTTPS port only, and print its URL.
#
# The certificate comes from pebble, whose issuing root changes at every pebble
# start: fetch it first (over pebble's API, whose own CA testbed.yml saved).
set -euo pipefail
cd "$(dirname "$0")/.."
inv=inventory/local
var() { ansible-inventory -i "$inv" --host channels-deploy-local | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
port=$(var testbed_https_port)
pebble=$(var testbed_pebble_name)
pebble_ip=$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$pebble")
curl --silent --show-error --fail --cacert "$inv/.secrets/acme-api-ca.pem" \
  --resolve "$pebble:15000:$pebble_ip" "https://$pebble:15000/roots/0" >"$inv/.secrets/acme-root.pem"

python3 testbed/chatclient.py smoke "https://channels-deploy-local:$port" \
  --connect-to 127.0.0.1 --cafile "$inv/.secrets/acme-root.pem"
cat <<MSG

The chat is served at https://localhost:$port/ (the certificate is issued by the
local ACME test server for channels-deploy-local, so a browser warns about it; its
root is $inv/.secrets/acme-root.pem).
MSG
