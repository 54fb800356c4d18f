#!/usr/bin/env bash
# Runs every tests/integration/test_*.py with Debian's python (it has python3-websockets)
# against $ROOMGATE_BIN (default build/roomgate). Prints PASS/FAIL per file and ends
# with "N passed, N failed"; exits non-zero if any file failed.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
py=/usr/bin/python3
export ROOMGATE_BIN="${ROOMGATE_BIN:-$here/../../build/roomgate}"
passed=0
failed=0
for t in "$here"/test_*.py; do
    name="$(basename "$t" .py)"
    log="$(mktemp)"
    start=$SECONDS
    if timeout -k 10 300 "$py" "$t" >"$log" 2>&1; then
        echo "PASS $name ($((SECONDS - start))s)"
        passed=$((passed + 1))
    else
        echo "FAIL $name ($((SECONDS - start))s)"
        sed 's/^/    /' "$log"
        failed=$((failed + 1))
    fi
    rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
