#!/bin/sh
# Signed over-the-air release bundles of the agent for every architecture.
#
#   scripts/release.sh KEY VERSION [PREVIOUS]
#
# KEY is the release signing key (outpostctl release keygen). VERSION is the
# tag being released (v1.2.3); the binaries are built with it by
# 'make cross VERSION=...'. PREVIOUS, when given, is the directory of the
# release the units run (a bin/release/vX.Y.Z of an earlier run): a delta
# from its binary is made beside each full bundle.
#
# Writes bin/release/VERSION/: the binaries, outpost-VERSION-ARCH.otab
# (full) and outpost-VERSION-ARCH-from-OLD.otab (delta), each verified
# against the public key beside KEY (release.pub).
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
key=$1 version=$2 previous=${3:-}
pub=$(dirname "$key")/release.pub
[ -f "$pub" ] || { echo "release.sh: no $pub beside the key: the bundles could not be verified" >&2; exit 1; }

make -s build cross VERSION="$version"
out=bin/release/$version
mkdir -p "$out"
for arch in arm64 armv7 armv6; do
	bin=$out/outpost-linux-$arch
	cp "bin/cross/outpost-linux-$arch" "$bin"
	bundle=$out/outpost-$version-$arch.otab
	bin/outpostctl release build --key "$key" --arch "$arch" --version "$version" "$bin" -o "$bundle"
	bin/outpostctl release verify --pub "$pub" --arch "$arch" "$bundle" >/dev/null
	if [ -n "$previous" ] && [ -f "$previous/outpost-linux-$arch" ]; then
		old=$(basename "$previous")
		delta=$out/outpost-$version-$arch-from-$old.otab
		bin/outpostctl release build --key "$key" --arch "$arch" --version "$version" \
			--delta-from "$previous/outpost-linux-$arch" "$bin" -o "$delta"
		bin/outpostctl release verify --pub "$pub" --arch "$arch" --running-version "$old" \
			--running-binary "$previous/outpost-linux-$arch" "$delta" >/dev/null
	fi
done
echo "release $version: $out"
