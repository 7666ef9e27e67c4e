#!/usr/bin/env bash
# Builds the Debian packages of the unit's agent for Raspberry Pi OS and
# Debian on ARM boards:
#
#   bin/deb/outpost_<version>_arm64.deb   64-bit OS (Pi 3/4/5, Zero 2 W, CM4)
#   bin/deb/outpost_<version>_armhf.deb   32-bit OS; built for ARMv6 (GOARM=6)
#                                         so that it also runs on a Pi Zero/1,
#                                         which Raspberry Pi OS's armhf covers
#
# Each holds /usr/bin/outpost, /etc/outpost/outpost.yaml (a conffile: the
# example config, data in /var/lib/outpost), the systemd unit
# /lib/systemd/system/outpost.service and the maintainer scripts of
# packaging/debian/ (the outpost user, its groups, /var/lib/outpost).
#
# The packages are reproducible: the binaries are built as `make build`
# builds them (-trimpath, the commit's date), every file has root:root as
# owner and the commit's time (SOURCE_DATE_EPOCH) as mtime, and dpkg-deb
# sorts the files. Two runs on one commit give identical files.
#
# The Debian version comes from `git describe` (or $VERSION):
#   v0.3.1              -> 0.3.1
#   v0.3.1-3-gabc1234   -> 0.3.1+git20261125.3.abc1234   (3 commits after the tag)
#   9d3486a (no tag)    -> 0.0~git20261125.142.9d3486a    (142 commits in all)
#   ...-dirty           -> ...+dirty
# with the commit's date (UTC). $DEB_VERSION overrides it.
#
# Usage: scripts/build-deb.sh [ARCH...]         ARCH: arm64, armhf (default both)
#        scripts/build-deb.sh --version DESCRIBE YYYYMMDD COUNT [HASH]
#                                               print the mapping only (HASH:
#                                               the commit, for a tag that is
#                                               not a version)
# Needs dpkg-deb (Debian's dpkg package) and go.
set -euo pipefail
cd "$(dirname "$0")/.."

# deb_version DESCRIBE YYYYMMDD COUNT prints the Debian version for the
# output of `git describe --tags --always --dirty`.
deb_version() {
	local d=$1 date=$2 count=$3 head=${4:-unknown} dirty= tag= n= hash= v
	if [[ $d == *-dirty ]]; then
		dirty=+dirty
		d=${d%-dirty}
	fi
	if [[ $d =~ ^(.+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		tag=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} hash=${BASH_REMATCH[3]}
	elif [[ $d =~ ^[0-9a-f]{7,40}$ ]]; then
		hash=$d
	else
		tag=$d
	fi
	tag=${tag#v}
	if [[ -n $tag && ! $tag =~ ^[0-9] ]]; then
		# A tag that is no version (a release name): use the commit.
		tag=
		[ -n "$hash" ] || hash=$head
	fi
	if [ -n "$tag" ]; then
		# 0.3.1-rc1 -> 0.3.1~rc1 (before 0.3.1); other hyphens -> dots.
		tag=$(sed -E 's/-([A-Za-z])/~\1/g; s/-/./g; s/[^A-Za-z0-9.+~]/./g' <<<"$tag")
		v=$tag
		[ -z "$hash" ] || v+="+git$date.$n.$hash"
	else
		v="0.0~git$date.$count.$hash"
	fi
	v+=$dirty
	if ! [[ $v =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
		echo "build-deb: cannot make a Debian version of '$1' (got '$v'); set DEB_VERSION" >&2
		return 1
	fi
	echo "$v"
}

if [ "${1:-}" = --version ]; then
	[ $# -eq 4 ] || [ $# -eq 5 ] || { echo "usage: $0 --version DESCRIBE YYYYMMDD COUNT [HASH]" >&2; exit 2; }
	deb_version "${@:2}"
	exit
fi

for tool in dpkg-deb git; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "build-deb: $tool is missing: sudo apt-get install ${tool/dpkg-deb/dpkg}" >&2
		exit 1
	fi
done

GO=${GO:-go}
PKG=github.com/outpost-cctv/outpost/internal/version
VERSION=${VERSION:-$(git describe --tags --always --dirty)}
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD)}
DATE=${DATE:-$(git log -1 --format=%cI)}
LDFLAGS=${LDFLAGS:-"-s -w -X $PKG.Version=$VERSION -X $PKG.Commit=$COMMIT -X $PKG.Date=$DATE"}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
if [ -z "${DEB_VERSION:-}" ]; then
	DEB_VERSION=$(deb_version "$VERSION" "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)" "$(git rev-list --count HEAD)" "$(git rev-parse --short HEAD)")
fi
MAINTAINER=${DEB_MAINTAINER:-"Outpost developers <outpost@outpost-cctv.invalid>"}

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)

out=bin/deb
mkdir -p "$out"
rm -f "$out"/outpost_*.deb
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

for arch in "${arches[@]}"; do
	case $arch in
		arm64) goenv=(GOARCH=arm64) ;;
		armhf) goenv=(GOARCH=arm GOARM=6) ;;
		*) echo "build-deb: unknown architecture '$arch' (arm64 or armhf)" >&2; exit 2 ;;
	esac
	root=$work/$arch
	# Directories 0755, files 0644 or 0755, whatever the umask.
	install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/etc/outpost" "$root/lib/systemd/system"
	env GOOS=linux "${goenv[@]}" CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$root/usr/bin/outpost" ./cmd/outpost
	chmod 0755 "$root/usr/bin/outpost"

	# The example config, documented in full, with the data in the
	# package's state directory.
	{
		echo "# /etc/outpost/outpost.yaml, installed by the outpost package. Set unit.id,"
		echo "# uplink.broker and the hardware below, check it with"
		echo "#   outpost config check /etc/outpost/outpost.yaml"
		echo "# then start the agent: sudo systemctl enable --now outpost"
		echo "# It accepts only signed commands: list the operators' keys under"
		echo "# security.operator_keys ('outpostctl operator keygen NAME' prints them)."
		echo "#"
		sed -e 's|^data_dir:.*$|data_dir: /var/lib/outpost|' \
			-e 's|^  signed_commands: optional$|  signed_commands: required|' configs/outpost.example.yaml
	} >"$root/etc/outpost/outpost.yaml"
	if [ "$(grep -c '^data_dir: /var/lib/outpost$' "$root/etc/outpost/outpost.yaml")" != 1 ]; then
		echo "build-deb: configs/outpost.example.yaml has no top-level data_dir line to set" >&2
		exit 1
	fi
	if [ "$(grep -c '^  signed_commands: required$' "$root/etc/outpost/outpost.yaml")" != 1 ]; then
		echo "build-deb: configs/outpost.example.yaml has no security.signed_commands line to set" >&2
		exit 1
	fi
	chmod 0644 "$root/etc/outpost/outpost.yaml"
	install -m 0644 packaging/outpost.service "$root/lib/systemd/system/outpost.service"

	for s in postinst prerm postrm; do
		install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
	done
	echo /etc/outpost/outpost.yaml >"$root/DEBIAN/conffiles"
	chmod 0644 "$root/DEBIAN/conffiles"
	# Installed-Size: KiB, each file rounded up, as dpkg-gencontrol counts.
	size=$(cd "$root" && find usr etc lib -type f -printf '%s\n' | awk '{ k += int(($1 + 1023) / 1024) } END { print k }')
	cat >"$root/DEBIAN/control" <<CONTROL
Package: outpost
Version: $DEB_VERSION
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: adduser
Section: video
Priority: optional
Homepage: https://github.com/outpost-cctv/outpost
Description: agent of an Outpost rapid-deployment CCTV unit
 Outpost runs on the small ARM board inside a solar-powered, 4G-connected
 CCTV unit: it captures footage from a USB or IP camera into a crash-safe
 local store with retention, reports power, signal and health over MQTT,
 and answers the control room's commands (clips, snapshots, settings).
 .
 The service (outpost.service) is not started on installation: set the
 unit's id and broker in /etc/outpost/outpost.yaml, then run
 'systemctl enable --now outpost'.
CONTROL
	chmod 0644 "$root/DEBIAN/control"
	(cd "$root" && find usr etc lib -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums"

	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	deb=$out/outpost_${DEB_VERSION}_$arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
	printf '%-48s %9s bytes  sha256 %s\n' "$deb" "$(stat -c %s "$deb")" "$(sha256sum <"$deb" | cut -c1-16)..."
done
