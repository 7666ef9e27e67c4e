#!/usr/bin/env bash
# Generates the labelled clips the motion detector's quality test runs on:
# MJPEG streams (concatenated JPEG frames, as a camera sends them) made by
# ffmpeg, each with a .labels file listing, one per line, the start and end
# (seconds) of the motion a person would call an event. A clip without
# labels must give no event at all.
#
#   scripts/motion-clips.sh DIR
#
# Clips (640x360, 10 fps, 12 s, over a textured street-like background):
#   cross-small, cross-medium, cross-large  an object crossing (40, 80, 160 px)
#   cross-two       two objects, one after the other
#   cross-dark      a dark object crossing a bright area
#   ramp            a slow global brightness ramp (a cloud)
#   step            a sudden brightness step (the IR illuminator switching)
#   noise           heavy sensor noise at night
#   shake           the whole picture swaying by up to 2 px (wind on a lamp column)
#   speckle         rain-like speckle
set -euo pipefail
dir=${1:?usage: motion-clips.sh DIR}
if ! command -v ffmpeg >/dev/null; then
	echo "motion-clips.sh: ffmpeg is not installed: apt-get install ffmpeg (make test installs it as root)" >&2
	exit 1
fi
mkdir -p "$dir"
W=640 H=360 R=10 D=12
# A static texture: buildings, kerbs and a road, as grey levels, drawn once
# and looped (per-pixel expressions on every frame would be slow).
ffmpeg -v error -y -f lavfi -i "color=c=gray:s=$((W + 8))x$((H + 8)):d=1,format=gray,geq=lum='90+45*sin(X/23)*cos(Y/31)+25*gt(mod(X\,97)\,60)+30*gt(Y\,250)'" -frames:v 1 "$dir/background.png"
bg="movie=$dir/background.png:loop=0,setpts=N/($R*TB),fps=$R,trim=duration=$D,format=gray"
crop="crop=$W:$H:4:4"
noise="noise=alls=6:allf=t"
clip() { # name filter labels...
	local name=$1 filter=$2
	shift 2
	ffmpeg -v error -y -f lavfi -i "$filter" -c:v mjpeg -q:v 5 -pix_fmt yuvj420p -f mjpeg "$dir/$name.mjpeg"
	: >"$dir/$name.labels"
	for l in "$@"; do echo "$l" >>"$dir/$name.labels"; done
}
obj() { # size y from to colour: an object crossing from t=from to t=to, over [a]
	local s=$1 y=$2 from=$3 to=$4 c=$5
	echo "color=c=$c:s=${s}x${s}:r=$R:d=$D,format=gray[o$from];[a][o$from]overlay=x='if(between(t\,$from\,$to)\,(t-$from)/($to-$from)*($W+$s)-$s\,-1000)':y=$y:eval=frame"
}
clip cross-small "$bg,$crop[a];$(obj 40 260 3 7 white),$noise" "3 7"
clip cross-medium "$bg,$crop[a];$(obj 80 200 3 7 white),$noise" "3 7"
clip cross-large "$bg,$crop[a];$(obj 160 150 3 8 white),$noise" "3 8"
clip cross-two "$bg,$crop[a];$(obj 80 200 2 5 white)[a2];color=c=white:s=80x80:r=$R:d=$D,format=gray[o8];[a2][o8]overlay=x='if(between(t\,8\,11)\,(t-8)/3*($W+80)-80\,-1000)':y=120:eval=frame,$noise" "2 5" "8 11"
clip cross-dark "$bg,$crop[a];$(obj 80 260 4 8 black),$noise" "4 8"
clip ramp "$bg,$crop,eq=brightness='-0.25+0.04*t':eval=frame,$noise"
clip step "$bg,$crop,eq=brightness='if(gt(t\,6)\,0.12\,0)':eval=frame,$noise"
clip noise "$bg,$crop,eq=brightness=-0.3,noise=alls=40:allf=t+u"
clip shake "$bg,crop=$W:$H:'4+2*sin(t*9)':'4+2*cos(t*7)',$noise"
# Speckle: a sparse random mask (drawn once, then moved about every frame).
ffmpeg -v error -y -f lavfi -i "color=c=black:s=$((W * 2))x$((H * 2)):d=1,format=gray,geq=lum='255*lt(random(1)\,0.003)'" -frames:v 1 "$dir/speckle.png"
clip speckle "$bg,$crop,$noise[a];movie=$dir/speckle.png:loop=0,setpts=N/($R*TB),fps=$R,trim=duration=$D,format=gray,crop=$W:$H:'mod(n*97\,$W)':'mod(n*61\,$H)'[m];[a][m]blend=all_mode=lighten"
echo "motion-clips.sh: $(ls "$dir"/*.mjpeg | wc -l) clips in $dir"
