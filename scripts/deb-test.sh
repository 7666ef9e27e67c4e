#!/usr/bin/env bash
# Checks the Debian packages scripts/build-deb.sh made in bin/deb/, one per
# architecture (arm64, armhf), without installing them on this machine:
#
#   - the control fields (a valid version, the architecture, Depends),
#     the conffiles and the maintainer scripts (present, executable,
#     valid sh);
#   - the exact file list, with modes and owners (root:root everywhere:
#     the outpost user exists only once the postinst has run);
#   - extracted into a temporary root: the binary's ELF header (aarch64,
#     or 32-bit ARM), the Go build settings (GOARCH, GOARM=6 for armhf,
#     CGO_ENABLED=0, -trimpath), and that the packaged config passes
#     `outpost config check` with a build of outpost for this machine —
#     and with the packaged binary itself where qemu-user-static can run
#     it;
#   - the systemd unit with `systemd-analyze verify` (any warning fails),
#     when systemd-analyze is installed, and its exposure score;
#   - the maintainer scripts run against stand-ins for adduser,
#     systemctl, deb-systemd-helper, install, chown ...: a first install
#     creates the user, its groups and /var/lib/outpost and starts
#     nothing; an upgrade restarts a running agent; a removal stops it; a
#     purge keeps footage.
#
# Usage: scripts/deb-test.sh        (after scripts/build-deb.sh; make deb-test)
# Exits 1 on the first failed check, naming it.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

fail() {
	echo "deb-test: FAIL: $*" >&2
	exit 1
}
ok() { echo "  ok  $*"; }

command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb is missing: sudo apt-get install dpkg"

echo "building outpost for this machine, to check the packaged configs"
CGO_ENABLED=0 "$GO" build -o "$work/outpost-host" ./cmd/outpost

# Version mapping, from git describe to a Debian version.
while read -r describe want; do
	got=$(scripts/build-deb.sh --version "$describe" 20261125 142 9d3486a)
	[ "$got" = "$want" ] || fail "version of '$describe': got '$got', want '$want'"
	dpkg --validate-version "$got" 2>/dev/null || fail "version '$got' (of '$describe') is not a valid Debian version"
done <<'EOF'
9d3486a 0.0~git20261125.142.9d3486a
9d3486a-dirty 0.0~git20261125.142.9d3486a+dirty
v0.3.1 0.3.1
v0.3.1-3-gabc1234 0.3.1+git20261125.3.abc1234
v0.3.1-rc1 0.3.1~rc1
release-2 0.0~git20261125.142.9d3486a
EOF
dpkg --compare-versions 0.3.1~rc1 lt 0.3.1 && dpkg --compare-versions 0.3.1 lt 0.3.1+git20261125.3.abc1234 &&
	dpkg --compare-versions 0.0~git20261125.142.9d3486a lt 0.0~git20261126.143.1234567 ||
	fail "Debian versions do not sort in the order of the commits"
ok "git describe -> Debian version mapping"

# The data files, modes and owners every package must have, and nothing else.
expected_contents() {
	cat <<'EOF'
drwxr-xr-x root/root ./
drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./etc/outpost/
-rw-r--r-- root/root ./etc/outpost/outpost.yaml
drwxr-xr-x root/root ./lib/
drwxr-xr-x root/root ./lib/systemd/
drwxr-xr-x root/root ./lib/systemd/system/
-rw-r--r-- root/root ./lib/systemd/system/outpost.service
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/outpost
EOF
}

for arch in arm64 armhf; do
	echo "== $arch"
	debs=(bin/deb/outpost_*_"$arch".deb)
	[ -e "${debs[0]}" ] || fail "no bin/deb/outpost_*_$arch.deb: run make deb first"
	[ ${#debs[@]} -eq 1 ] || fail "more than one $arch package in bin/deb: ${debs[*]}"
	deb=${debs[0]}

	# Control fields.
	field() { dpkg-deb --field "$deb" "$1"; }
	[ "$(field Package)" = outpost ] || fail "$deb: Package is '$(field Package)', want outpost"
	[ "$(field Architecture)" = "$arch" ] || fail "$deb: Architecture is '$(field Architecture)', want $arch"
	version=$(field Version)
	dpkg --validate-version "$version" || fail "$deb: Version '$version' is not a valid Debian version"
	[ "$(basename "$deb")" = "outpost_${version}_$arch.deb" ] || fail "$deb: the name does not match Version $version"
	[ "$(field Depends)" = adduser ] || fail "$deb: Depends is '$(field Depends)', want adduser"
	[[ $(field Maintainer) =~ ^.+\ \<.+@.+\>$ ]] || fail "$deb: Maintainer '$(field Maintainer)' is not 'Name <address>'"
	[ -n "$(field Description)" ] || fail "$deb: no Description"
	[[ $(field Installed-Size) =~ ^[0-9]+$ ]] || fail "$deb: Installed-Size '$(field Installed-Size)'"
	ok "control: outpost $version $arch, Depends: adduser"

	[ "$(dpkg-deb --info "$deb" conffiles)" = /etc/outpost/outpost.yaml ] ||
		fail "$deb: conffiles is '$(dpkg-deb --info "$deb" conffiles)', want /etc/outpost/outpost.yaml"
	ok "conffiles: /etc/outpost/outpost.yaml"

	ctrl=$work/$arch-control
	mkdir -p "$ctrl"
	dpkg-deb --control "$deb" "$ctrl"
	for s in postinst prerm postrm; do
		[ -x "$ctrl/$s" ] || fail "$deb: no executable $s"
		sh -n "$ctrl/$s" || fail "$deb: $s is not valid sh"
		cmp -s "$ctrl/$s" "packaging/debian/$s" || fail "$deb: $s differs from packaging/debian/$s"
	done
	ok "maintainer scripts: postinst, prerm, postrm"

	# Contents: every entry, mode and owner, and nothing else.
	dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }' >"$work/contents"
	if ! diff -u <(expected_contents) "$work/contents" >"$work/contents.diff"; then
		cat "$work/contents.diff" >&2
		fail "$deb: the contents differ from what is expected (- expected, + in the package)"
	fi
	mtimes=$(dpkg-deb --contents "$deb" | awk '{ print $4, $5 }' | sort -u | wc -l)
	[ "$mtimes" -eq 1 ] || fail "$deb: files have $mtimes different times; all must have the commit's"
	ok "contents: $(wc -l <"$work/contents") entries, modes and owners as expected, one timestamp"

	# The extracted files.
	root=$work/$arch-root
	dpkg-deb -x "$deb" "$root"
	bin=$root/usr/bin/outpost
	class=$(od -An -tu1 -j4 -N1 "$bin" | tr -d ' ')
	machine=$(od -An -tu2 -j18 -N2 --endian=little "$bin" | tr -d ' ')
	[ "$(head -c4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ] || fail "$bin is not an ELF file"
	case $arch in
		arm64) want_class=2 want_machine=183 want_name="64-bit aarch64" ;;
		armhf) want_class=1 want_machine=40 want_name="32-bit ARM" ;;
	esac
	[ "$class" = "$want_class" ] && [ "$machine" = "$want_machine" ] ||
		fail "$arch: the binary is ELF class $class machine $machine, want $want_class/$want_machine ($want_name)"
	if command -v file >/dev/null 2>&1; then
		desc=$(file -b "$bin")
		[[ $desc == *"statically linked"* ]] || fail "$arch: the binary is not statically linked: $desc"
	else
		desc="(file is not installed: sudo apt-get install file)"
	fi
	ok "binary: ELF $want_name; $desc"

	info=$("$GO" version -m "$bin")
	for want in "CGO_ENABLED=0" "-trimpath=true" "GOOS=linux"; do
		grep -q -- "$want" <<<"$info" || fail "$arch: the binary was not built with $want"
	done
	case $arch in
		arm64) grep -q "GOARCH=arm64" <<<"$info" || fail "$arch: the binary is not GOARCH=arm64" ;;
		armhf) grep -q "GOARCH=arm$" <<<"$info" && grep -q "GOARM=6" <<<"$info" ||
			fail "$arch: the binary is not GOARCH=arm GOARM=6 (it must run on ARMv6 Pi Zero/1 too)" ;;
	esac
	ok "go build: $(grep -o 'GOARCH=[a-z0-9]*' <<<"$info")$(grep -o 'GOARM=[0-9]*' <<<"$info" | sed 's/^/ /' || true) CGO_ENABLED=0 -trimpath"

	yaml=$root/etc/outpost/outpost.yaml
	grep -qx 'data_dir: /var/lib/outpost' "$yaml" || fail "$yaml: data_dir is not /var/lib/outpost"
	grep -qx '  signed_commands: required' "$yaml" || fail "$yaml: security.signed_commands is not required"
	"$work/outpost-host" config check "$yaml" >/dev/null || fail "the packaged config does not pass outpost config check"
	ok "config: data_dir /var/lib/outpost, signed commands required; outpost config check passes"

	case $arch in
		arm64) qemu=qemu-aarch64-static ;;
		armhf) qemu=qemu-arm-static ;;
	esac
	if command -v $qemu >/dev/null 2>&1; then
		v=$($qemu "$bin" version) || fail "$arch: the packaged binary does not run under $qemu"
		$qemu "$bin" config check "$yaml" >/dev/null || fail "$arch: the packaged binary refuses its own config"
		ok "packaged binary under $qemu: '$v'; config check passes"
	else
		echo "  skip running the packaged binary: $qemu is missing (sudo apt-get install qemu-user-static)"
	fi

	# The unit. verify insists the ExecStart binary exists, so point it at
	# the extracted one; it reports unknown keys only as warnings, so any
	# output fails the check.
	unit=$root/lib/systemd/system/outpost.service
	grep -qx 'ExecStart=/usr/bin/outpost launch --config /etc/outpost/outpost.yaml' "$unit" || fail "$unit: unexpected ExecStart"
	for want in Type=notify NotifyAccess=all WatchdogSec=30s Restart=always User=outpost ProtectSystem=strict DevicePolicy=closed; do
		grep -qx "$want" "$unit" || fail "$unit: no $want"
	done
	if command -v systemd-analyze >/dev/null 2>&1; then
		mkdir -p "$work/$arch-unit"
		sed "s|/usr/bin/outpost|$bin|" "$unit" >"$work/$arch-unit/outpost.service"
		if ! out=$(systemd-analyze verify --man=no "$work/$arch-unit/outpost.service" 2>&1) || [ -n "$out" ]; then
			echo "$out" >&2
			fail "systemd-analyze verify outpost.service"
		fi
		score=$(systemd-analyze security --offline=yes --no-pager "$work/$arch-unit/outpost.service" 2>/dev/null | grep -o 'Overall exposure level.*' || true)
		ok "systemd-analyze verify outpost.service: no warnings; ${score:-exposure not reported}"
	else
		echo "  skip systemd-analyze verify: systemd-analyze is missing (sudo apt-get install systemd)"
	fi
done

# The maintainer scripts, run against stand-ins that record their calls:
# nothing on this machine changes.
echo "== maintainer scripts"
stubs=$work/stubs
mkdir -p "$stubs"
calls=$work/calls
for c in addgroup adduser install chown chmod deb-systemd-helper deb-systemd-invoke systemctl rm rmdir; do
	printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 0\n' "$c" "$calls" >"$stubs/$c"
done
# getent finds nothing while $GETENT_MISSING is set: a board without the
# user or the groups.
printf '#!/bin/sh\necho "getent $*" >>"%s"\n[ -z "$GETENT_MISSING" ]\n' "$calls" >"$stubs/getent"
chmod 0755 "$stubs"/*
# Where it can (as root, with unshare), each script runs in a mount
# namespace of its own with a fresh /run holding /run/systemd/system, so
# that it takes its "booted with systemd" branches; the host's /run is
# untouched.
if [ "$(id -u)" -eq 0 ] && unshare --mount sh -c 'mount -t tmpfs tmpfs /run' 2>/dev/null; then
	booted=1
else
	booted=
	echo "  (not root or no unshare: the scripts' systemd branches are not exercised)"
fi
maint() { # maint SCRIPT ARGS...: runs a packaged maintainer script
	: >"$calls"
	local s=$work/arm64-control/$1
	shift
	if [ -n "$booted" ]; then
		PATH="$stubs:$PATH" unshare --mount sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec sh -e "$0" "$@"' "$s" "$@" ||
			fail "$(basename "$s") $* exited $?"
	else
		PATH="$stubs:$PATH" sh -e "$s" "$@" || fail "$(basename "$s") $* exited $?"
	fi
}
called() { grep -qxF -- "$1" "$calls" || { cat "$calls" >&2; fail "$2: no call '$1'"; }; }
not_called() { ! grep -qE -- "$1" "$calls" || { cat "$calls" >&2; fail "$2: unexpected call matching '$1'"; }; }

GETENT_MISSING=1 maint postinst configure
for g in video dialout i2c gpio; do
	called "addgroup --system --quiet $g" "first install"
	called "adduser --quiet outpost $g" "first install"
done
called "adduser --system --group --quiet --home /var/lib/outpost --no-create-home --shell /usr/sbin/nologin --gecos Outpost CCTV agent outpost" "first install"
called "install -d -o outpost -g outpost -m 0750 /var/lib/outpost" "first install"
called "chown root:outpost /etc/outpost" "first install"
called "chmod 0770 /etc/outpost" "first install (the agent replaces its config when the control room changes it)"
called "chown root:outpost /etc/outpost/outpost.yaml" "first install"
called "chmod 0640 /etc/outpost/outpost.yaml" "first install"
called "deb-systemd-helper unmask outpost.service" "first install"
[ -z "$booted" ] || called "systemctl --system daemon-reload" "first install"
not_called '(enable|start|restart)' "first install (the service must wait for its config)"
ok "postinst configure, first install: user outpost in video, dialout, i2c, gpio; /var/lib/outpost outpost:outpost 0750; /etc/outpost root:outpost 0770, its config 0640; nothing enabled or started"

maint postinst configure 0.0~git20261124.1.1234567
not_called '^(addgroup|adduser --system)|outpost.yaml' "upgrade"
called "chmod 0770 /etc/outpost" "upgrade"
called "install -d -o outpost -g outpost -m 0750 /var/lib/outpost" "upgrade"
[ -z "$booted" ] || called "deb-systemd-invoke try-restart outpost.service" "upgrade (a running agent must restart on the new binary)"
not_called '(enable| start)' "upgrade"
ok "postinst configure, upgrade: user and config file permissions kept${booted:+, a running agent restarted}"

maint prerm upgrade 0.0~git20261126.2.1234567
not_called 'stop' "prerm upgrade (the agent keeps running until the postinst restarts it)"
maint prerm remove
[ -z "$booted" ] || called "deb-systemd-invoke stop outpost.service" "prerm remove"
maint postrm remove
called "deb-systemd-helper mask outpost.service" "postrm remove"
maint postrm purge
called "deb-systemd-helper purge outpost.service" "postrm purge"
called "rm -f /etc/systemd/system/multi-user.target.wants/outpost.service" "postrm purge"
called "rmdir /var/lib/outpost" "postrm purge"
not_called '^rm .*-r.*/var/lib/outpost' "postrm purge (footage is evidence)"
ok "prerm/postrm: stopped on removal only, masked on remove; purge removes systemd's links, keeps footage"

echo "deb-test: both packages pass"
