#!/usr/bin/env bash
# Makes sure the programs the tests use are present: mosquitto (a real MQTT
# broker, and its clients) and ffprobe (from ffmpeg, to check exported
# clips). As root it installs what is missing from Debian's packages;
# otherwise it names the packages to install and fails.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mosquitto     || need+=(mosquitto)
have mosquitto_sub || need+=(mosquitto-clients)
have ffprobe       || need+=(ffmpeg)

[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing test prerequisites: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	# Debian starts a system mosquitto on port 1883; the tests start their
	# own on free ports, and the demo needs 1883 free.
	if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto 2>/dev/null || true; fi
	exit 0
fi

echo "The tests need these Debian packages, which are not installed: ${need[*]}" >&2
echo "Install them with: sudo apt-get install ${need[*]}" >&2
exit 1
