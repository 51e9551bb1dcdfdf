#!/usr/bin/env bash
# Print the role scenarios that `make test` runs, in order. The whole-stack
# `site` scenario runs with `make test-site` (it joins `make test` once it has
# passed in full on this test bed: see the closing note of issue 6).
set -euo pipefail
cd "$(dirname "$0")/../molecule"
for f in */molecule.yml; do
  name=${f%/molecule.yml}
  [ "$name" = site ] || printf '%s\n' "$name"
done
