#!/usr/bin/env bash
# Nightly batch render, for cron. mvgen locks each output and each shot itself, so overlapping
# runs are safe without flock: a second run exits 75 (busy) for a job the first is still rendering,
# and shots finished by either are cached for both.
#
#   # m h dom mon dow  command
#   0 1 * * *  /path/to/mvgen/scripts/cron-example.sh /srv/videos/queue >> /var/log/mvgen-cron.log 2>&1
#
# Exit codes (DESIGN.md): 0 all done, 2 bad input, 3 some jobs or shots failed (--keep-going),
# 4 environment (weights missing offline, no GPU), 75 busy, 130 interrupted (re-run resumes).
set -uo pipefail

QUEUE="${1:?usage: cron-example.sh QUEUE_DIR}"
export MVGEN_CACHE_DIR="${MVGEN_CACHE_DIR:-$HOME/.cache/mvgen}"   # shared with daytime runs
export HF_HUB_OFFLINE=1                                            # never download at night

mvgen batch "$QUEUE" \
    --keep-going \
    --log-format text \
    --log-file "$QUEUE/mvgen.log" \
    --json > "$QUEUE/last-run.json"
status=$?

case $status in
    0)  echo "$(date -Is) mvgen: all jobs done" ;;
    3)  echo "$(date -Is) mvgen: some jobs failed; see $QUEUE/last-run.json (re-run retries only those)" ;;
    75) echo "$(date -Is) mvgen: another render still holds a job; it will be picked up next time" ;;
    *)  echo "$(date -Is) mvgen: exit $status; see $QUEUE/mvgen.log" ;;
esac
exit $status
