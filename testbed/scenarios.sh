#!/usr/bin/env bash
# Print the scenarios that `make test` runs, in order: the role scenarios, then
# the whole-stack scenarios last, `cluster` (six hosts), `ops` (the day-2
# drills) and `site` (one host; it also runs alone as `make test-site`).
set -euo pipefail
cd "$(dirname "$0")/../molecule"
stacks=(cluster ops site)
for f in */molecule.yml; do
  name=${f%/molecule.yml}
  [[ " ${stacks[*]} " == *" $name "* ]] || printf '%s\n' "$name"
done
for name in "${stacks[@]}"; do
  if [ -f "$name/molecule.yml" ]; then printf '%s\n' "$name"; fi
done
