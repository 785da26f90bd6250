#!/usr/bin/env bash
# A minimal Debian bookworm root filesystem without a registry: debootstrap into ROOTFS,
# apply the apt hygiene of Debian's official images, and pack it into TARBALL, which the
# harness imports as the base image (harness/backends/images.py).
# Usage: bootstrap.sh ROOTFS MIRROR TARBALL   (needs root and debootstrap)
set -euo pipefail
rootfs=$1 mirror=$2 tarball=$3
"${DEBOOTSTRAP:-debootstrap}" --variant=minbase bookworm "$rootfs" "$mirror"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CLEAN
echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::Install-Recommends "false";' > "$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
mkdir -p "$rootfs/var/lib/apt/lists/partial"
: > "$rootfs/etc/hostname"
tar --numeric-owner -C "$rootfs" -cf "$tarball" .
