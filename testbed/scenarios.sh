#!/usr/bin/env bash
# Print the scenarios that `make test` runs, in order: the role scenarios, then
# the whole-stack scenarios last, `cluster` (five hosts) and `site` (one host;
# it also runs alone as `make test-site`).
set -euo pipefail
cd "$(dirname "$0")/../molecule"
for f in */molecule.yml; do
  name=${f%/molecule.yml}
  [ "$name" = site ] || [ "$name" = cluster ] || printf '%s\n' "$name"
done
[ -f cluster/molecule.yml ] && printf '%s\n' cluster
[ -f site/molecule.yml ] && printf '%s\n' site
