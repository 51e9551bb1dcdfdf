#!/usr/bin/env bash
# Run `molecule test` for each scenario named on the command line, time each
# scenario and each of its steps, and print a table at the end. Every scenario
# runs even when one fails; the exit status is non-zero when any failed.
#
# MOLECULE_JOBS (default 2) scenarios run at once: their containers and
# networks are named after the scenario, so they never collide, and most of a
# scenario's time is waiting (systemd, sockets, timeouts), not CPU. With more
# than one job the longest scenarios (`cluster`, `ops`, then `site`) start first (`cluster`
# alone: MOLECULE_ALONE), and each
# scenario's log is printed whole when it ends; logs stay in MOLECULE_LOG_DIR
# (default .ansible/molecule-logs).
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 SCENARIO..." >&2; exit 2; }
# Plain output in logs (CI): no colours, no boxes.
if [ ! -t 1 ]; then export NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0; fi
jobs=${MOLECULE_JOBS:-2}
# Scenarios that run with no other beside them (first, when named): the
# six-host cluster, whose 15-minute budget two converges at once on two
# cores would break.
alone=${MOLECULE_ALONE-cluster}
logs=${MOLECULE_LOG_DIR:-.ansible/molecule-logs}
mkdir -p "$logs"
steps=(create prepare converge idempotence verify cleanup destroy)

scenarios=("$@")
if [ "$jobs" -gt 1 ]; then
  first=() rest=()
  for long in cluster ops site; do
    for s in "$@"; do [ "$s" = "$long" ] && first+=("$s"); done
  done
  for s in "$@"; do [ "$s" = cluster ] || [ "$s" = ops ] || [ "$s" = site ] || rest+=("$s"); done
  scenarios=("${first[@]}" "${rest[@]}")
fi

# Copy molecule's output through, and note each step's seconds in $1
# ("step seconds" lines; a step that runs twice, destroy, has two).
stamp_steps() {
  local line step='' start=0 re='\[[^]]* > ([a-z_]+)\] Execut(ing|ed)'
  : >"$1"
  while IFS= read -r line; do
    printf '%s\n' "$line"
    if [[ $line =~ $re ]]; then
      if [ "${BASH_REMATCH[2]}" = ing ]; then
        step=${BASH_REMATCH[1]} start=$EPOCHSECONDS
      elif [ -n "$step" ]; then
        echo "$step $((EPOCHSECONDS - start))" >>"$1"
        step=''
      fi
    fi
  done
}

run_one() {
  local s=$1 start=$EPOCHSECONDS status=passed
  if [ "$jobs" -gt 1 ]; then
    molecule test -s "$s" </dev/null 2>&1 | stamp_steps "$logs/$s.steps" >"$logs/$s.log"
  else
    molecule test -s "$s" 2>&1 | stamp_steps "$logs/$s.steps" | tee "$logs/$s.log"
  fi
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=FAILED
  echo "$status $((EPOCHSECONDS - start))" >"$logs/$s.result"
}

# Wait until fewer than $1 scenarios run, printing the log of each that ends.
reap_below() {
  while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do
    wait -n -p done_pid
    echo "=== molecule test -s ${names[$done_pid]} (log of a parallel run)"
    cat "$logs/${names[$done_pid]}.log"
  done
}

total_start=$EPOCHSECONDS
declare -A names=()
for s in "${scenarios[@]}"; do
  if [ "$jobs" -le 1 ]; then
    echo "=== molecule test -s $s"
    run_one "$s"
    continue
  fi
  if [[ " $alone " == *" $s "* ]]; then
    # Nothing else runs beside it, before or after its start.
    reap_below 1
    echo "=== molecule test -s $s: started (alone)"
    run_one "$s" &
    names[$!]=$s
    reap_below 1
    continue
  fi
  reap_below "$jobs"
  echo "=== molecule test -s $s: started"
  run_one "$s" &
  names[$!]=$s
done
reap_below 1
echo
echo "Molecule scenarios (wall time in s; $jobs at once):"
printf '  %-14s %-7s %6s' scenario status total
printf ' %11s' "${steps[@]}"
echo
failed=0
for s in "$@"; do
  read -r status seconds <"$logs/$s.result"
  [ "$status" = passed ] || failed=$((failed + 1))
  printf '  %-14s %-7s %6d' "$s" "$status" "$seconds"
  for step in "${steps[@]}"; do
    printf ' %11s' "$(awk -v s="$step" '$1 == s { t += $2; n++ } END { print n ? t : "-" }' "$logs/$s.steps")"
  done
  echo
done
printf '  %-14s %-7s %6d\n' total "" $((EPOCHSECONDS - total_start))
echo "molecule: $(($# - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
