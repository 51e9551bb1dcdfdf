#!/usr/bin/env bash
# Run `molecule test` for each scenario named on the command line, time each,
# and print a table at the end. Every scenario runs even when one fails; the
# exit status is non-zero when any failed.
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 SCENARIO..." >&2; exit 2; }
# Plain output in logs (CI): no colours, no boxes.
if [ ! -t 1 ]; then export NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0; fi
results=() failed=0 total_start=$(date +%s)
for s in "$@"; do
  echo "=== molecule test -s $s"
  start=$(date +%s)
  if molecule test -s "$s"; then status=passed; else status=FAILED; failed=$((failed + 1)); fi
  results+=("$(printf '%-14s %-7s %5d s' "$s" "$status" $(($(date +%s) - start)))")
done
echo
echo "Molecule scenarios (wall time):"
printf '  %s\n' "${results[@]}"
printf '  %-14s %-7s %5d s\n' total "" $(($(date +%s) - total_start))
echo "molecule: $(($# - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
