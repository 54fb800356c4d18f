#!/bin/bash
# Makes the Debian bookworm base images the Dockerfile starts FROM, for machines that
# reach Debian's archive but no image registry (see shared DESIGN.md, section 7):
# debootstrap a minbase bookworm from this machine's apt mirror, slim it the way the
# official debian:*-slim images are (no docs, man pages or locales; dpkg told to keep
# them out; no apt lists), and import it as both
#   docker.io/library/debian:bookworm-slim   (runtime stage)
#   docker.io/library/debian:bookworm        (build stage)
# Does nothing for a tag that exists already (pass --force to remake both). Needs root,
# podman and debootstrap. CONTAINERS_CONF is used as set by the caller.
set -euo pipefail

slim=docker.io/library/debian:bookworm-slim
full=docker.io/library/debian:bookworm
force=0
[ "${1:-}" = --force ] && force=1

have() { podman image exists "$1"; }
if [ $force = 0 ] && have $slim && have $full; then
	echo "base-image: $slim and $full exist, keeping them"
	exit 0
fi
if [ $force = 0 ] && have $slim; then
	podman tag $slim $full
	echo "base-image: tagged $slim as $full"
	exit 0
fi

mirror=""
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
	mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
	mirror=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
	echo "base-image: no Debian mirror in this machine's apt sources" >&2
	exit 1
fi

rootfs=$(mktemp -d /var/tmp/roomgate-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base-image: debootstrap --variant=minbase bookworm from $mirror"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
	tail -20 "$rootfs.log" >&2
	rm -f "$rootfs.log"
	echo "base-image: debootstrap failed" >&2
	exit 1
fi
rm -f "$rootfs.log"

# apt sources: this machine's (the mirror it reaches), else the mirror debootstrap used.
rm -f "$rootfs/etc/apt/sources.list"
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
	cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
else
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOS
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
fi

# What the official images do (debuerreotype's slimify and minimizing config).
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOS'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOS
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOS'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOS
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
	"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
	"$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname "$rootfs"/tmp/* "$rootfs"/root/.bash_history
: >"$rootfs/etc/machine-id"

echo "base-image: importing as $slim and $full"
tar --numeric-owner -C "$rootfs" -c . |
	podman import --quiet --change 'CMD ["bash"]' - $slim >/dev/null
podman tag $slim $full
podman image inspect --format 'base-image: {{.Id}} {{.Size}} bytes' $slim
