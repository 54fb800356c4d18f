#!/bin/bash
# The README's test command: installs what is missing, builds twice (release, and
# AddressSanitizer + UndefinedBehaviorSanitizer), and runs every suite on both: unit
# tests, then integration tests with real clients against the real binary over TLS.
# Then time-boxed fuzzing of the parsers, and the container image's smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
scripts/dev-cert.sh certs
if [ ! -d tests/integration/node/node_modules/eventsource ] ||
	[ ! -d tests/integration/node/node_modules/playwright-core ]; then
	(cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error)
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0

passed=0 failed=0 skipped=""
run_suite() { # build dir, cmake args...
	local dir=$1
	shift
	scripts/build.sh "$dir" "$@"
	local log
	log=$(mktemp)
	set +e
	(cd "$dir" && ctest --output-on-failure --timeout 300) 2>&1 | tee "$log"
	set -e
	local line
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
	# ctest counts a skip (exit 77) as passed: name each one in the total line
	skipped="$skipped$(sed -nE "s/^[[:space:]]*[0-9]+ - ([^ ]+) \(Skipped\)$/ $dir:\1/p" "$log" | tr -d '\n')"
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "test: $dir: ctest printed no summary" >&2
		failed=$((failed + 1))
		return
	fi
	local f t
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
	t=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
	passed=$((passed + t - f))
	failed=$((failed + f))
}

run_fuzz() { # time-boxed libFuzzer runs over the parsers, seeded from tests/fuzz/corpus
	CC=clang scripts/build.sh build-fuzz -DRG_FUZZ=ON -DRG_SANITIZE=ON -DBUILD_TESTING=OFF
	local t seconds=${RG_FUZZ_SECONDS:-30}
	for t in request config jwt cursor steer reload log batch; do
		local work
		work=$(mktemp -d)
		if build-fuzz/fuzz_$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
			"$work" "tests/fuzz/corpus/$t" >"$work.log" 2>&1; then
			echo "fuzz_$t: PASS ($(grep -Eo 'Done [0-9]+ runs' "$work.log") in ${seconds}s)"
			passed=$((passed + 1))
		else
			echo "fuzz_$t: FAIL"
			tail -40 "$work.log"
			failed=$((failed + 1))
		fi
		rm -rf "$work" "$work.log"
	done
}

run_container() { # podman builds the Dockerfile and smoke-tests the image; 77 = cannot here
	local log rc line
	log=$(mktemp)
	set +e
	bash tests/container/run.sh 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" -eq 77 ]; then
		echo "test: CONTAINER SMOKE TEST SKIPPED: $(grep -m1 '^SKIP:' "$log" || echo 'no reason given')"
	else
		line=$(grep -E '^container: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)
		if [ -n "$line" ] && [ "$rc" -eq 0 ]; then
			passed=$((passed + $(sed -E 's/^container: ([0-9]+) passed.*/\1/' <<<"$line")))
		else
			echo "test: container smoke test failed (exit $rc)"
			failed=$((failed + 1))
		fi
	fi
	rm -f "$log"
}

echo "== release build =="
run_suite build
echo "== ASan + UBSan build =="
run_suite build-asan -DRG_SANITIZE=ON
echo "== fuzzing (libFuzzer + ASan/UBSan) =="
run_fuzz
echo "== container image (podman build + smoke test) =="
run_container
[ -z "$skipped" ] || echo "test: SKIPPED (counted as passed, each said why above):$skipped"
echo "total (release, sanitizer, fuzz and container runs): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
