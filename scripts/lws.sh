#!/bin/sh
# Builds the libwebsockets roomgate links: Debian's own 4.1.6 source package
# (apt-get source libwebsockets, the version apt has for bookworm) with
# patches/lws/*.patch applied in file-name order (patch -p1; issue 10), as a static
# library with the libev glue built in (no libwebsockets17 or libwebsockets-evlib-ev at
# run time), otherwise configured as Debian's debian/rules configures it. Installs it
# into .deps/lws-HASH (gitignored; RG_DEPS_DIR=DIR elsewhere) and prints that prefix,
# the only thing it prints on stdout:
#
#   cmake -S . -B build -DRG_LWS_PREFIX="$(scripts/lws.sh)"     (scripts/build.sh does)
#
# HASH covers this script, the patches, the Debian version, the compiler and its flags:
# run again with none of them changed, it prints the prefix at once. A build needs the
# packages scripts/deps.sh installs and apt access to the Debian archive; root, where
# apt-get needs it. The deb-src entry it uses is derived at run time from this
# machine's own apt sources (deb822 .sources and one-line .list files, Debian suites
# only) and lives in a private apt state under a temporary directory: the machine's apt
# configuration is not changed. Env: RG_LWS_CC (compiler, default cc: CC is ignored,
# so a clang build of roomgate links the same lws), RG_LWS_DEBIAN_VERSION (default:
# apt-cache policy's candidate for libwebsockets17), RG_LWS_JOBS (default nproc).
set -eu
cd "$(dirname "$0")/.."
repo=$PWD
upstream=4.1.6

log() { echo "lws: $*" >&2; }
die() {
	echo "lws: ERROR: $*" >&2
	exit 1
}

# ---- what to build, and its hash ---------------------------------------------------------
cc=${RG_LWS_CC:-cc}
command -v "$cc" >/dev/null 2>&1 || die "no C compiler '$cc' (run scripts/deps.sh)"
# Debian's flags for this package: dpkg-buildflags on bookworm with debian/rules'
# DEB_BUILD_MAINT_OPTIONS=hardening=+all and DEB_CFLAGS_MAINT_APPEND (-ffile-prefix-map
# is added per build below). -fPIC comes from LWS_STATIC_PIC.
cflags="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -Wno-error=deprecated-declarations -fno-strict-aliasing"
cppflags="-Wdate-time -D_FORTIFY_SOURCE=2"

# The Debian version: what apt offers for this machine's bookworm (a security or point
# release moves it), else the one installed, else the deb-src index decides (below).
ver=${RG_LWS_DEBIAN_VERSION:-}
if [ -z "$ver" ]; then
	ver=$(apt-cache policy libwebsockets17 2>/dev/null | awk '$1 == "Candidate:" {print $2}')
	case $ver in $upstream-*) ;; *) ver=$(dpkg-query -W -f='${Version}' libwebsockets17 2>/dev/null || true) ;; esac
	case $ver in $upstream-*) ;; *) ver="" ;; esac
fi

patches=$(find patches/lws -maxdepth 1 -name '*.patch' -type f 2>/dev/null | LC_ALL=C sort)
[ -n "$patches" ] || die "no patches in $repo/patches/lws (0001-roomgate-marker.patch at least)"
key() {
	cat scripts/lws.sh
	for p in $patches; do
		printf '== %s\n' "$p"
		cat "$p"
	done
	printf '== %s\n' "debian $ver" "cc $cc: $("$cc" --version 2>&1 | head -1) $("$cc" -dumpmachine)" \
		"cflags $cflags $cppflags" "$(cmake --version 2>/dev/null | head -1)"
}
deps=${RG_DEPS_DIR:-$repo/.deps}
mkdir -p "$deps"
deps=$(cd "$deps" && pwd)
resolve_prefix() {
	hash=$(key | sha256sum | cut -c1-12)
	prefix=$deps/lws-$hash
}
cached() { [ -n "$ver" ] && [ -f "$prefix/roomgate-lws.txt" ]; }

resolve_prefix
if cached; then
	log "$upstream (Debian $ver) with patches/lws, cached: $prefix"
	echo "$prefix"
	exit 0
fi

# One build at a time per .deps (concurrent scripts/build.sh runs wait here).
exec 9>"$deps/.lws.lock"
flock 9
if cached; then # another run built it while we waited
	echo "$prefix"
	exit 0
fi

# ---- build ---------------------------------------------------------------------------------
t_start=$(date +%s)
missing=$(sh scripts/missing-pkgs.sh cmake make gcc libc6-dev dpkg-dev patch xz-utils libssl-dev libev-dev libcap-dev zlib1g-dev)
[ -z "$missing" ] || die "missing Debian packages:$missing (run scripts/deps.sh as root)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/roomgate-lws.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
chmod 755 "$tmp" # apt downloads as the _apt user
buildlog=$deps/lws-build.log # kept: the last build's full output
: >"$buildlog"
fail() { # what failed: the end of the log, then exit
	tail -40 "$buildlog" >&2
	die "$*"
}

# A private apt state with deb-src entries made from this machine's deb entries for
# its Debian release (suites CODENAME, CODENAME-updates, CODENAME-security), keeping
# every option (Signed-By, ...) as written.
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot tell the Debian release (VERSION_CODENAME in /etc/os-release)"
sl=/etc/apt/sources.list sp=/etc/apt/sources.list.d
eval "$(apt-config shell sl Dir::Etc::sourcelist/f sp Dir::Etc::sourceparts/d)"
mkdir -p "$tmp/apt/sources.list.d" "$tmp/apt/lists/partial" "$tmp/src"
if getent passwd _apt >/dev/null 2>&1; then chown _apt "$tmp/apt/lists/partial" "$tmp/src" 2>/dev/null || true; fi
# one-line format: deb [options] URI SUITE COMPONENT...
for f in "$sl" "$sp"/*.list; do
	[ -r "$f" ] || continue
	awk -v c="$codename" '
		{ sub(/#.*/, "") }
		$1 == "deb" {
			rest = substr($0, index($0, "deb") + 3); opts = ""
			if (match(rest, /^[ \t]*\[[^]]*\]/)) { opts = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH) }
			n = split(rest, w, /[ \t]+/); k = 0
			for (i = 1; i <= n; i++) if (w[i] != "") v[++k] = w[i]
			if (k >= 3 && (v[2] == c || v[2] == c "-updates" || v[2] == c "-security")) {
				line = "deb-src" opts
				for (i = 1; i <= k; i++) line = line " " v[i]
				print line
			}
		}' "$f"
done >"$tmp/apt/sources.list"
# deb822 format: stanzas of Types including deb, Suites filtered, Types made deb-src
for f in "$sp"/*.sources; do
	[ -r "$f" ] || continue
	awk -v c="$codename" '
		function flush(  i) {
			if (n && deb && on && suites != "") { for (i = 1; i <= n; i++) print l[i]; print "" }
			n = 0; deb = 0; on = 1; suites = ""
		}
		BEGIN { on = 1 }
		FNR == 1 { flush() }
		/^#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { if (n) l[++n] = $0; next }
		{
			name = tolower(substr($0, 1, index($0, ":") - 1)); val = substr($0, index($0, ":") + 1)
			m = split(val, w, /[ \t]+/)
			if (name == "types") {
				for (i = 1; i <= m; i++) if (w[i] == "deb") deb = 1
				l[++n] = "Types: deb-src"
			} else if (name == "suites") {
				for (i = 1; i <= m; i++)
					if (w[i] == c || w[i] == c "-updates" || w[i] == c "-security") suites = suites " " w[i]
				l[++n] = "Suites:" suites
			} else {
				if (name == "enabled" && val ~ /[Nn][Oo]/) on = 0
				l[++n] = $0
			}
		}
		END { flush() }' "$f" >"$tmp/apt/sources.list.d/$(basename "$f")"
done
if ! grep -qs '^deb-src\|^Types: deb-src' "$tmp/apt/sources.list" "$tmp/apt/sources.list.d"/*.sources; then
	die "no 'deb' entry for Debian $codename in $sl or $sp/ to make a deb-src entry from"
fi
aptsrc() { # apt-get or apt-cache, ARGS: with the private state (the machine's untouched)
	cmd=$1
	shift
	"$cmd" -q -o Dir::Etc::SourceList="$tmp/apt/sources.list" \
		-o Dir::Etc::SourceParts="$tmp/apt/sources.list.d" -o Dir::State::Lists="$tmp/apt/lists" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=0 "$@"
}
log "building $upstream from Debian's source package with $(echo "$patches" | wc -l) patch(es) (log: $buildlog)"
aptsrc apt-get update >>"$buildlog" 2>&1 || fail "apt-get update (deb-src index from this machine's apt sources) failed"
if [ -z "$ver" ]; then # nothing known locally: the newest $upstream-* in the deb-src index
	for v in $(aptsrc apt-cache showsrc libwebsockets 2>/dev/null | awk '$1 == "Version:" {print $2}'); do
		case $v in $upstream-*) ;; *) continue ;; esac
		if [ -z "$ver" ] || dpkg --compare-versions "$v" gt "$ver"; then ver=$v; fi
	done
	[ -n "$ver" ] || die "Debian has no libwebsockets $upstream-* source here (this script is for bookworm)"
	resolve_prefix
	if cached; then
		echo "$prefix"
		exit 0
	fi
fi
(cd "$tmp/src" && aptsrc apt-get source --download-only "libwebsockets=$ver") >>"$buildlog" 2>&1 ||
	fail "apt-get source libwebsockets=$ver failed"
src=$tmp/src/libwebsockets-$upstream
dpkg-source -x "$tmp/src"/libwebsockets_*.dsc "$src" >>"$buildlog" 2>&1 || fail "dpkg-source -x failed"
t_fetch=$(date +%s)

applied=""
for p in $patches; do
	if ! patch -d "$src" -p1 --batch --forward --fuzz=0 --no-backup-if-mismatch -i "$repo/$p" >>"$buildlog" 2>&1; then
		fail "$p does not apply to Debian's libwebsockets $ver (patch -p1 --fuzz=0; refresh it)"
	fi
	applied="$applied $(basename "$p")"
done

# Debian's configuration (debian/rules: LIBEV, LIBUV, GLIB, UNIX_SOCK, IPV6, ZLIB,
# extensions, daemonize; defaults otherwise), except: static only, with the libev glue
# built in instead of evlib plugins (and no libuv/glib glue, which roomgate does not
# use), PLUGINS_API on as the evlib plugins turned it on for Debian, and no test apps,
# and fewer log levels built in.
#
# lws_config.h defines _DEBUG unless NDEBUG is (Debian's build too), which builds in
# every log level, each call filtered at run time: lws_parse() called _lws_log() for
# each byte of a request (3.6% of the CPU publishing over HTTP/1.1). The levels above
# notice, which log.lws_level never asks for, are left out of the build; the asserts,
# which NDEBUG would also drop, stay. INFO DEBUG PARSER HEADER EXT CLIENT LATENCY THREAD:
log_clear=$(((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 11)))
prefix_tmp=$prefix.part
rm -rf "$prefix_tmp"
env -u CC -u CFLAGS -u CPPFLAGS -u LDFLAGS cmake -S "$src" -B "$tmp/build" -G "Unix Makefiles" \
	-DCMAKE_BUILD_TYPE=None -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="$cflags $cppflags -ffile-prefix-map=$src=libwebsockets-$upstream" \
	-DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
	-DLWS_WITH_STATIC=ON -DLWS_WITH_SHARED=OFF -DLWS_STATIC_PIC=ON \
	-DLWS_WITH_LIBEV=ON -DLWS_WITH_EVLIB_PLUGINS=OFF -DLWS_WITH_PLUGINS_API=ON \
	-DLWS_WITHOUT_DAEMONIZE=OFF -DLWS_UNIX_SOCK=ON -DLWS_IPV6=ON \
	-DLWS_WITH_ZLIB=ON -DLWS_WITHOUT_EXTENSIONS=OFF \
	-DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF \
	-DLWS_LOGGING_BITFIELD_CLEAR="$log_clear" \
	>>"$buildlog" 2>&1 || fail "cmake configure of libwebsockets failed"
make -C "$tmp/build" -j"${RG_LWS_JOBS:-$(nproc)}" >>"$buildlog" 2>&1 || fail "make of libwebsockets failed"
DESTDIR=$tmp/stage cmake --install "$tmp/build" >>"$buildlog" 2>&1 || fail "cmake --install failed"

cfg=$tmp/stage$prefix/include/lws_config.h
grep -q '^#define LWS_ROOMGATE_PATCHED 1' "$cfg" || die "built lws_config.h lacks the LWS_ROOMGATE_PATCHED marker"
grep -q '^#define LWS_WITH_LIBEV' "$cfg" || die "built lws_config.h lacks LWS_WITH_LIBEV"
! grep -q '^#define LWS_WITH_EVLIB_PLUGINS' "$cfg" || die "built lws has evlib plugins"
[ -f "$tmp/stage$prefix/lib/libwebsockets.a" ] || die "no lib/libwebsockets.a installed"
t_end=$(date +%s)
{
	echo "libwebsockets $upstream, Debian source $ver, patches:$applied"
	echo "built $(date -u +%FT%TZ) by scripts/lws.sh in $((t_end - t_start)) s (fetch $((t_fetch - t_start)) s)"
	echo "cc: $("$cc" --version | head -1); flags: $cflags $cppflags"
	for p in $patches; do echo "$(sha256sum "$p" | cut -c1-16)  $p"; done
} >"$tmp/stage$prefix/roomgate-lws.txt"
mv "$tmp/stage$prefix" "$prefix_tmp"
rm -rf "$prefix"
mv "$prefix_tmp" "$prefix"
log "built in $((t_end - t_start)) s (fetch and unpack $((t_fetch - t_start)) s): $prefix"

# Keep the three newest prefixes (an older checkout's build may still point at one).
# shellcheck disable=SC2012
ls -dt "$deps"/lws-????????????/ 2>/dev/null | tail -n +4 | while read -r old; do rm -rf "$old"; done
echo "$prefix"
