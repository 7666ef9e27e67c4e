#!/usr/bin/env bash
# Generates the test footage of the camera tests and benchmarks: raw MJPEG
# streams (JPEG images back to back, as `ffmpeg -f mjpeg` writes them) of
# ffmpeg's testsrc2 pattern with sensor-like noise, at 25 fps, -q:v 5.
# Nothing generated here is committed.
#
# Usage: scripts/gen-test-footage.sh DIR [SECONDS] [SIZE...]
#   DIR      where to write testsrc-WIDTHxHEIGHT.mjpeg (created if missing)
#   SECONDS  length of each stream (default 4)
#   SIZE     WIDTHxHEIGHT; default 1280x720 and 1920x1080
#
# Existing files of the right length are kept, so repeated runs are cheap.
set -euo pipefail

if [ $# -lt 1 ]; then
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
dir=$1
seconds=${2:-4}
shift $(( $# >= 2 ? 2 : 1 ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1280x720 1920x1080)

if ! command -v ffmpeg >/dev/null 2>&1; then
	echo "gen-test-footage: ffmpeg is not installed; 'make test' installs it (scripts/test-deps.sh), or: sudo apt-get install ffmpeg" >&2
	exit 1
fi
case $seconds in
	''|*[!0-9.]*) echo "gen-test-footage: SECONDS must be a number, not '$seconds'" >&2; exit 2 ;;
esac

mkdir -p "$dir"
fps=25
frames=$(awk -v s="$seconds" -v f="$fps" 'BEGIN { n = int(s * f + 0.5); print (n < 1 ? 1 : n) }')
for size in "${sizes[@]}"; do
	case $size in
		[0-9]*x[0-9]*) ;;
		*) echo "gen-test-footage: size '$size' is not WIDTHxHEIGHT" >&2; exit 2 ;;
	esac
	out="$dir/testsrc-$size.mjpeg"
	stamp="$out.frames"
	if [ -s "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$frames" ]; then
		continue
	fi
	# Write to a temporary name so that an interrupted run leaves no
	# half-written file behind.
	ffmpeg -hide_banner -loglevel error -nostdin -y \
		-f lavfi -i "testsrc2=size=$size:rate=$fps,noise=alls=8:allf=t" \
		-frames:v "$frames" -c:v mjpeg -q:v 5 -f mjpeg "$out.tmp"
	mv "$out.tmp" "$out"
	echo "$frames" > "$stamp"
	echo "$out: $frames frames, $(stat -c %s "$out") bytes"
done
