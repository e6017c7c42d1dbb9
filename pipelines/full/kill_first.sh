#!/usr/bin/env bash
# pipelines/full/kill_first.sh victim|wait MARKER PROGRAM ARGS...: the
# sample workers of `full.sh --kill-sampler` (tests: a worker dies holding a
# job and the run still completes).
#   victim: runs PROGRAM ARGS --die-after 1 (the worker exits abruptly after
#           taking its first job), then creates MARKER; exits with its status.
#   wait:   waits until MARKER exists, then runs PROGRAM ARGS.
# So the victim is alone when jobs are handed out and surely takes one, and
# the source must re-issue it to the others: no dependence on which worker
# connects first.
set -u
role=${1:-} mark=${2:-}
[ $# -ge 3 ] || { echo "usage: kill_first.sh victim|wait MARKER PROGRAM ARGS..." >&2; exit 2; }
shift 2
case "$role" in
  victim) "$@" --die-after 1; rc=$?; touch "$mark"; exit $rc ;;
  wait) while [ ! -e "$mark" ]; do sleep 0.1; done; exec "$@" ;;
  *) echo "kill_first.sh: role must be victim or wait" >&2; exit 2 ;;
esac
