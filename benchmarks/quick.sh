#!/usr/bin/env bash
# Every benchmark in its quick mode (tiny sizes, peers skipped unless installed and named):
# a benchmark that no longer runs fails here instead of rotting unnoticed.
#
#   benchmarks/quick.sh [VENV_BIN_DIR]      # default: `python` on PATH
#
# One line per benchmark (PASS/FAIL and seconds), the output's tail for a failure, then
# "benchmarks-quick: P/N pass"; exit status 1 if any failed. Full outputs: $QUICK_LOGS
# (default: a temp directory, kept when something failed).
set -u
cd "$(dirname "$0")/.." || exit 2

if [ $# -ge 1 ] && [ -n "$1" ]; then
    PY="$1/python"
else
    PY="$(command -v python || true)"
fi
if [ -z "$PY" ] || ! "$PY" -c 'import nni' 2>/dev/null; then
    echo "benchmarks/quick.sh: no python that imports nni (give the venv's bin directory)" >&2
    exit 2
fi
# Trials on Ray and remote run `python3` from PATH: this interpreter's.
export PATH="$(dirname "$PY"):$PATH"

LOGS="${QUICK_LOGS:-$(mktemp -d -t nni-bench-quick-XXXXXX)}"
mkdir -p "$LOGS"
# The benchmarks' experiments must not land in the user's experiment list.
export NNI_NG_HOME="$LOGS/nni-ng-home"

# name, seconds allowed (about 3x a 2-core run, for a loaded machine), command
BENCHMARKS=(
    "bbo|90|$PY -m benchmarks.bbo --quick"
    "big_spaces|90|$PY benchmarks/big_spaces.py --quick"
    "constraints|60|$PY -m benchmarks.constraints --quick"
    "multi_objective|90|$PY -m benchmarks.multi_objective --smoke"
    "scale|180|$PY benchmarks/scale.py --smoke"
    "throughput|60|$PY benchmarks/throughput.py --quick"
    "training_services|90|$PY benchmarks/training_services.py --quick"
    "tuner_costs|90|$PY benchmarks/tuner_costs.py --quick --repeats 2"
    "tuner_quality|60|$PY -m benchmarks.tuner_quality --smoke"
    "warm_start|60|$PY benchmarks/warm_start.py --quick --out $LOGS/warm_start_quick.json"
    "webui|90|$PY benchmarks/webui.py --quick"
)

pass=0
total=0
started_all=$SECONDS
for entry in "${BENCHMARKS[@]}"; do
    IFS='|' read -r name limit command <<<"$entry"
    total=$((total + 1))
    log="$LOGS/$name.log"
    began=$SECONDS
    # timeout signals its whole process group (managers, browsers, Ray nodes started below it)
    timeout -k 10 "$limit" $command >"$log" 2>&1 </dev/null
    rc=$?
    took=$((SECONDS - began))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1))
        printf '%-18s PASS %4ds\n' "$name" "$took"
    else
        why="exit $rc"
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="timed out after ${limit}s"
        printf '%-18s FAIL %4ds (%s; %s)\n' "$name" "$took" "$why" "$log"
        tail -n 25 "$log" | sed 's/^/    | /'
    fi
    # what each said about peers it skipped
    grep -h -E '^(NNI 3\.0|Optuna|\(c\) Ray Tune)[^|]*skipped' "$log" | sort -u | sed 's/^/    /'
done
if [ $pass -ne $total ] || [ -n "${QUICK_LOGS:-}" ]; then
    echo "total $((SECONDS - started_all))s; logs: $LOGS"
else
    echo "total $((SECONDS - started_all))s"
    rm -rf "$LOGS"
fi
echo "benchmarks-quick: $pass/$total pass"
[ $pass -eq $total ]
