#!/usr/bin/env bash
# A worker and its buddy: a second session that watches the worker, nudges
# it when it stalls, and reports when the work is done.
#
#   examples/buddy.sh                  mock worker (made to stall), scripted buddy
#   examples/buddy.sh codex            a real worker, scripted buddy
#   examples/buddy.sh codex claude     a real worker, and a real agent as its buddy
#
# The scripted buddy is a shell loop run as a reins session: it nudges the
# worker after its screen stayed the same for PATIENCE looks while busy.
# An agent buddy is started with `reins buddy` and gets the job as its
# built-in brief. Either way the buddy reports to a file this script waits
# for. Needs reins and jq.
set -euo pipefail

worker_agent=${1:-mock}
buddy_agent=${2:-}
every=${EVERY:-60}
patience=${PATIENCE:-5}
if [ "$worker_agent" = mock ]; then
  every=${EVERY:-1} patience=${PATIENCE:-2}
fi
worker=buddy-work-$$
buddy=buddy-$$
dir=$(mktemp -d)
report=$dir/report.txt
cleanup() {
  reins stop --id "$buddy" >/dev/null 2>&1 || true
  reins stop --id "$worker" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

task='Write a short README.md for a tool that greets people, then commit it.'
if [ "$worker_agent" = mock ]; then
  task="[[stall]] $task" # the mock agent goes busy and then hangs
fi
git -C "$dir" init -q
reins run "$worker_agent" --id "$worker" --cwd "$dir" --detach --context "$task" >/dev/null
echo "worker $worker ($worker_agent) started"

if [ -z "$buddy_agent" ]; then
  cat >"$dir/buddy-loop.sh" <<'LOOP'
#!/usr/bin/env bash
# Usage: buddy-loop.sh WORKER SECONDS_BETWEEN_LOOKS LOOKS_BEFORE_A_NUDGE REPORT_FILE
set -euo pipefail
worker=$1 every=$2 patience=$3 report=$4
last='' same=0 nudges=0
while sleep "$every"; do
  state=$(reins status --id "$worker" --json | jq -r '.[0].state')
  case $state in exited | dead) echo "$worker ended" | tee -a "$report"; exit 1 ;; esac
  outcome=$(reins events --id "$worker" --snapshot --run last |
    jq -rs 'map(select(.type == "task_complete")) | last | .status // "none"')
  if [ "$state" = ready ] && [ "$outcome" = completed ]; then
    echo "$worker: done after $nudges nudge(s)" | tee -a "$report"
    exit 0
  fi
  screen=$(reins pane --id "$worker" --lines 30)
  if [ "$state" = busy ] && [ "$screen" = "$last" ]; then same=$((same + 1)); else same=0; fi
  last=$screen
  if [ "$same" -ge "$patience" ]; then
    echo "$worker looks stalled: nudging"
    reins interrupt --id "$worker" || echo "its turn had already ended"
    reins send --id "$worker" 'You appear to have stalled. Continue from where you stopped.' >/dev/null
    nudges=$((nudges + 1)) same=0
  fi
done
LOOP
  chmod +x "$dir/buddy-loop.sh"
  reins run bash --id "$buddy" --detach --description "buddy of $worker" \
    -- "$dir/buddy-loop.sh" "$worker" "$every" "$patience" "$report" >/dev/null
  echo "buddy $buddy (a script) started"
  reins wait --id "$buddy" --until exit --timeout "${BUDDY_TIMEOUT:-2h}" >/dev/null
else
  # `reins buddy` gives the agent its built-in brief (`--print-brief`
  # shows it): look every --every, nudge after --nudge-after without
  # progress, write the final report to --done-file, stop itself.
  reins buddy --for "$worker" --id "$buddy" --agent "$buddy_agent" --every "${every}s" \
    --nudge-after "$((every * patience))s" --done-file "$report" --detach >/dev/null
  echo "buddy $buddy ($buddy_agent) started"
  # An agent buddy reports through the file; wait for it (with a cap).
  deadline=$((SECONDS + ${BUDDY_TIMEOUT_S:-7200}))
  until [ -s "$report" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no report from the buddy in time" >&2; exit 1; }
    sleep 5
  done
fi

echo "== the buddy's report"
cat "$report"
echo "== the worker's turns"
reins events --id "$worker" --snapshot | jq -r 'select(.type == "task_complete") | "turn \(.turn): \(.status)"'
