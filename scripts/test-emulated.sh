#!/usr/bin/env bash
# Runs the tests of the packages that handle bytes, time and concurrency
# (the footage store and recorder, motion detection, the uplink and its
# outbox, clip transfers, the VE.Direct, AT-command, INA219 and MJPEG
# parsers) as ARM binaries under user-mode emulation: the same code as on
# a unit, built for linux/arm64 (Raspberry Pi 3/4/5 on a 64-bit OS),
# linux/arm v7 (a 32-bit OS) and linux/arm v6 (the armhf package's build,
# for a Pi Zero/1 too), where int is 32 bits wide and 64-bit atomics need
# alignment. The emulated CPUs are a Cortex-A72 (a Pi 4, without the
# ARMv8.1 atomics a Pi 5 has), a Cortex-A7 (a Pi 2) and an ARM1176 (a Pi
# Zero/1).
#
# Usage: scripts/test-emulated.sh [TARGET...]
#   TARGET  arm64, armv7 or armv6 (default: all three)
#
# As root it installs qemu-user-static from Debian's packages when it is
# missing; otherwise it says what to install and fails. The tests that
# start mosquitto or ffmpeg run those as host programs (an emulated
# process executes host binaries natively).
#
# Run with -short, which skips:
#   footage TestCrash       re-executes its own test binary as a child to
#                           kill it mid-write; an ARM child cannot be
#                           started without binfmt_misc registrations,
#                           which need the host's kernel configured
#   ota TestFailpointKillsTheProcess, likewise a child of its own binary
#   footage TestOpen28Days  a wall-clock limit (2 s for 40,320 segments)
#                           measured on the development machine, which an
#                           emulated CPU, several times slower, cannot meet
# and with -skip:
#   clip TestTransfer/clean_link
#                           asserts that not one chunk is resent with a
#                           20-50 ms retransmission timeout: under
#                           emulation a scheduling pause sometimes exceeds
#                           it. The lossy, corrupting and combined links of
#                           the same test still run.
#   uplink TestOutboxFullIsTold
#                           gives the drain of a full 64 KiB outbox, paced
#                           at the default 16 KiB/s (4 s), 5 s of wall
#                           clock: the emulated ARMv6 misses it.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
# Two runs, since go test takes one -skip pattern: the packages, and clip.
PKGS=(
	./footage/...
	./uplink/...
	./hal/power/vedirect/...
	./hal/power/ina219/...
	./hal/modem/at/...
	./hal/camera/mjpeg/...
	./ota/...
)
SKIP='^TestOutboxFullIsTold$'
CLIP_SKIP='^TestTransfer$/^clean_link$'

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 armv7 armv6)

need=()
for t in "${targets[@]}"; do
	case $t in
		arm64) q=qemu-aarch64-static ;;
		armv7 | armv6) q=qemu-arm-static ;;
		*) echo "test-emulated: unknown target '$t' (arm64, armv7 or armv6)" >&2; exit 2 ;;
	esac
	command -v "$q" >/dev/null 2>&1 || need=(qemu-user-static)
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing emulation prerequisites: ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "The emulated tests need these Debian packages, which are not installed: ${need[*]}" >&2
		echo "Install them with: sudo apt-get install ${need[*]}" >&2
		exit 1
	fi
fi

# ./ota has no tests yet; go test says so without failing.
total_start=$(date +%s)
status=0
for t in "${targets[@]}"; do
	case $t in
		arm64) env=(GOARCH=arm64) q=qemu-aarch64-static cpu=cortex-a72 ;;
		armv7) env=(GOARCH=arm GOARM=7) q=qemu-arm-static cpu=cortex-a7 ;;
		armv6) env=(GOARCH=arm GOARM=6) q=qemu-arm-static cpu=arm1176 ;;
	esac
	echo "== linux/$t under $q (cpu $cpu)"
	start=$(date +%s)
	for run in "$SKIP ${PKGS[*]}" "$CLIP_SKIP ./clip/..."; do
		read -r skip pkgs <<<"$run"
		# shellcheck disable=SC2086 # pkgs is a list
		if ! env "${env[@]}" GOOS=linux CGO_ENABLED=0 QEMU_CPU=$cpu \
			"$GO" test -exec "$q" -short -skip "$skip" -count=1 -timeout 8m $pkgs; then
			status=1
		fi
	done
	echo "== linux/$t: $(( $(date +%s) - start )) s"
done
echo "== emulated tests: $(( $(date +%s) - total_start )) s in all"
exit $status
