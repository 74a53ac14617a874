#!/usr/bin/env bash
# A chain of three agents: a planner writes a plan, an implementer carries
# it out, a reviewer checks the work; if the reviewer asks for changes,
# the implementer (which remembers what it did) gets one round to fix.
#
#   examples/chain.sh                 every role is the built-in mock agent
#   examples/chain.sh codex           every role is codex
#   PLANNER=claude REVIEWER=claude examples/chain.sh codex
#
# The agents work in a scratch git repository, and hand off through files
# in it (plan.md, review.md); with the mock agent, which writes no files,
# its logs stand in for them. Needs reins, jq and git on PATH.
set -euo pipefail

agent=${1:-mock}
planner=${PLANNER:-$agent}
implementer=${IMPLEMENTER:-$agent}
reviewer=${REVIEWER:-$agent}
turn_timeout=${TURN_TIMEOUT:-30m}
run=chain-$$

repo=$(mktemp -d)
cleanup() {
  for step in plan impl review; do
    reins stop --id "$run-$step" >/dev/null 2>&1 || true
  done
  rm -rf "$repo"
}
trap cleanup EXIT
git -C "$repo" init -q
printf '# greet\n\nA tiny shell tool that greets people.\n' >"$repo/README.md"
git -C "$repo" add README.md
git -C "$repo" -c user.name=chain -c user.email=chain@example.invalid commit -q -m 'start'

# Waits for the turn of session $1 to end; fails, showing its screen, when
# it did not complete (failed, interrupted, timed out, or waiting for you).
wait_turn() {
  local outcome rc=0
  outcome=$(reins wait --id "$1" --until task_complete --timeout "$turn_timeout") || rc=$?
  if [ "$rc" -ne 0 ] || [ "$(jq -r '.event.status' <<<"$outcome")" != completed ]; then
    echo "$1 did not complete its turn (wait exit $rc); its screen:" >&2
    reins pane --id "$1" --lines 20 >&2 || true
    return 1
  fi
}

# Prints file $2 of the repository if the agent wrote it, else the last
# lines session $1 printed.
result() {
  if [ -s "$repo/$2" ]; then cat "$repo/$2"; else reins logs --id "$1" --lines 15; fi
}

marker=''
if [ "$agent" = mock ]; then marker='[[wait:1]] '; fi

echo "== plan ($planner)"
reins run "$planner" --id "$run-plan" --cwd "$repo" --detach --context \
  "${marker}Plan a script greet.sh that prints 'hello, NAME'. Write the plan to plan.md. Do not write code." >/dev/null
wait_turn "$run-plan"
plan=$(result "$run-plan" plan.md)
reins stop --id "$run-plan" >/dev/null
printf 'plan: %s lines\n' "$(wc -l <<<"$plan")"

echo "== implement ($implementer)"
reins run "$implementer" --id "$run-impl" --cwd "$repo" --detach --context \
  "${marker}Implement this plan, then commit: $plan" >/dev/null
wait_turn "$run-impl"
git -C "$repo" log --oneline | head -n 3

echo "== review ($reviewer)"
reins run "$reviewer" --id "$run-review" --cwd "$repo" --detach --context \
  "${marker}Review the last commit against plan.md. Write review.md; its first line must be VERDICT: LGTM or VERDICT: CHANGES." >/dev/null
wait_turn "$run-review"
reins stop --id "$run-review" >/dev/null
verdict=$(head -n 1 "$repo/review.md" 2>/dev/null || echo 'VERDICT: CHANGES (no review.md written)')
echo "$verdict"

case $verdict in
  *LGTM*) ;;
  *)
    echo "== fix ($implementer)"
    reins send --id "$run-impl" --wait-for-idle --timeout "$turn_timeout" \
      "${marker}Address the findings in review.md (if there is none, re-check your work), then commit." >/dev/null
    ;;
esac
reins stop --id "$run-impl" >/dev/null

echo "== the implementer's turns"
reins events --id "$run-impl" --snapshot | jq -r 'select(.type == "task_complete") | "turn \(.turn): \(.status)"'
