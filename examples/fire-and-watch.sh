#!/usr/bin/env bash
# Fire a task at a worker and watch it finish: start the agent with its
# task, follow its events as they happen, then show what it answered.
#
#   examples/fire-and-watch.sh            the built-in mock agent (no API key)
#   examples/fire-and-watch.sh claude     a real agent: claude, codex, gemini...
#
# Needs reins and jq on PATH. The worker runs in a scratch directory and
# stops by itself when its task is done (--auto-stop).
set -euo pipefail

agent=${1:-mock}
id=fire-$$
task='Write a haiku about terminals into haiku.txt, then reply with it.'
if [ "$agent" = mock ]; then
  task="[[wait:2]] $task" # the mock agent "works" for two seconds
fi

if ! reins doctor "$agent" >/dev/null; then
  echo "reins cannot run $agent here; see: reins doctor $agent" >&2
  exit 1
fi
scratch=$(mktemp -d)
cleanup() {
  reins stop --id "$id" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT

reins run "$agent" --id "$id" --cwd "$scratch" --detach --auto-stop \
  --description 'fire-and-watch example' --context "$task" >/dev/null
echo "started $id ($agent) in $scratch; its events:"

# `events --follow` ends when the session does: here, when the task is done.
reins events --id "$id" --follow |
  jq -r '[.ts[11:19], .type, (.to // .status // .preview // "")] | join("  ")'

echo
echo "what it printed (last lines):"
reins logs --id "$id" --lines 12

status=$(reins events --id "$id" --snapshot --run last |
  jq -rs 'map(select(.type == "task_complete")) | last | .status // "none"')
echo
echo "its task ended: $status"
[ "$status" = completed ]
