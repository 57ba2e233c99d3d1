#!/usr/bin/env bash
# faultline as a CI pipeline gate: build, run suites, keep JSON + JUnit +
# traces as artifacts, fail the job on any check failure, and prove the run
# left nothing behind.
#
#   bash ci/gate.sh SUITE...        (as root; artifacts in ${ARTIFACTS:-target/faultline})
#
# Exit codes are faultline's own: 0 pass, 1 a check failed, 2 invalid suite,
# 3 the host lacks something, 130 interrupted.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${ARTIFACTS:-target/faultline}
rm -rf "$out" && mkdir -p "$out"

cargo build --workspace --release --quiet || exit 3
bin=target/release/faultline

"$bin" doctor || exit 3
"$bin" run "$@" --out "$out/runs" --json "$out/results.json" --junit "$out/junit.xml"
code=$?

# Nothing of ours may be left: a leak fails the gate even if the checks passed.
# Runs still live beside this one (other pipelines on the host) are not ours.
left=$("$bin" cleanup --dry-run | grep -v -e '^would leave alone: ' -e '^nothing of faultline is left')
if [ -n "$left" ]; then
  echo "faultline left things behind:"; echo "$left"
  [ "$code" -eq 0 ] && code=1
fi
echo "faultline gate: exit $code (results in $out)"
exit "$code"
