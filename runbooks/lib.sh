# Shared by the runbooks (sourced, not run). Everything is read through `uoom` with --json and its
# exit codes: no jq, no curl, no Python of its own. Settings come from the environment as for
# `uoom` itself (UOOM_DATABASE_URL, UOOM_API_PORT, ...); thresholds from RUNBOOK_* variables.
#
# Output, on stdout: `FOUND: ...` for each problem, `NEXT: ...` for what to do about it, `ok: ...`
# for what was checked and is fine, and a last line `healthy: ...` or `problems found: N`.
# Exit codes: 0 nothing found, 1 a problem found, 2 the runbook itself could not run (no uoom).

set -uo pipefail

RUNBOOKS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# `uoom` on the PATH, else the checkout's own (runbooks/ sits beside .venv/).
UOOM=${UOOM:-$(command -v uoom || echo "$RUNBOOKS/../.venv/bin/uoom")}
if ! "$UOOM" --version >/dev/null 2>&1; then
    echo "cannot run uoom ($UOOM): put it on the PATH or set UOOM=/path/to/uoom" >&2
    exit 2
fi

FOUND=0

# read VAR=PATH... -- ARGS...: run `uoom --get PATH... ARGS --json` once and set each VAR to its
# value ("null" when absent, "" when the command printed nothing). Returns uoom's exit code; its
# stderr (the one-line reason when it fails) goes to the runbook's stderr.
read_json() {
    local names=() gets=() name out rc i=0 line
    while [ "$1" != "--" ]; do
        name=${1%%=*}
        names+=("$name")
        gets+=(--get "${1#*=}")
        printf -v "$name" '%s' ""
        shift
    done
    shift
    out=$("$UOOM" "${gets[@]}" "$@" --json)
    rc=$?
    while IFS= read -r line && [ "$i" -lt "${#names[@]}" ]; do
        printf -v "${names[$i]}" '%s' "$line"
        i=$((i + 1))
    done <<<"$out"
    return "$rc"
}

# doctor_row NAME: one row of `uoom doctor --skip-daemons` (postgres, kafka, dynamodb, ...):
# sets row_state (ok, warn, fail, down, skip), row_detail and row_fix.
doctor_row() {
    read_json row_state="checks.name=$1.state" row_detail="checks.name=$1.detail" row_fix="checks.name=$1.fix" \
        -- doctor --skip-daemons 2>/dev/null
    return 0  # doctor exits 1 when any row fails: the row says what
}

# over A B: A is a number greater than B (null and empty are never over).
over() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a != "null" && a + 0 > b + 0) }'; }
# under A B: A is a number less than B.
under() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a != "null" && a + 0 < b + 0) }'; }
# percent RATE: 0.25 -> 25%
percent() { awk -v r="$1" 'BEGIN { printf "%.0f%%", r * 100 }'; }

found() { echo "FOUND: $*"; FOUND=$((FOUND + 1)); }
next_step() { echo "NEXT: $*"; }
ok() { echo "ok: $*"; }

# finish WHAT: the last line, and the exit code.
finish() {
    if [ "$FOUND" -gt 0 ]; then
        echo "problems found: $FOUND"
        exit 1
    fi
    echo "healthy: $*"
    exit 0
}
