#!/usr/bin/env bash
# Print the Molecule scenarios in the order `make molecule` runs them: role
# scenarios first, the whole-stack `site` scenario last.
set -euo pipefail
cd "$(dirname "$0")/../molecule"
names=()
for f in */molecule.yml; do names+=("${f%/molecule.yml}"); done
for n in "${names[@]}"; do [ "$n" = site ] || printf '%s\n' "$n"; done
for n in "${names[@]}"; do [ "$n" != site ] || printf '%s\n' "$n"; done
