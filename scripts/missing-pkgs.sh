#!/bin/sh
# Prints, each after a space, the Debian packages among the arguments that are not installed
# (nothing when all are). Used by scripts/deps.sh, tests/container/run.sh and bench/run.
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		printf ' %s' "$p"
done
