#!/bin/sh
# Regenerates the test frames of package mask. The frames are committed;
# run this only to change the corpus. Needs ffmpeg (libavcodec's mjpeg
# encoder, which writes its own optimised Huffman tables) and cjpeg from
# libjpeg-turbo-progs (which writes the standard tables of ITU-T T.81
# Annex K and can write restart markers and any sampling).
#
#   ff420.jpg      ffmpeg, 4:2:0, 334x190 (not a multiple of the 16x16 MCU)
#   ff422.jpg      ffmpeg, 4:2:2, 320x180
#   ff444.jpg      ffmpeg, 4:4:4, 320x180
#   cj420rst.jpg   cjpeg, 4:2:0, restart every MCU row, 317x179
#   cj422rst.jpg   cjpeg, 4:2:2, restart every 5 MCUs, 317x179
#   cj444.jpg      cjpeg, 4:4:4, no restart, 317x179
#   cjgray.jpg     cjpeg, grayscale, restart every 7 MCUs, 317x179
#   nodht422rst.jpg  cj422rst.jpg with its DHT segment removed, as UVC
#                    cameras send MJPEG (standard tables implied)
#   nodht420.jpg   cjpeg 4:2:0 without restart markers, DHT removed
#   cj420scans.jpg cjpeg, 4:2:0, one scan per component (non-interleaved),
#                  no restart markers (image/jpeg cannot read them there)
#   cj420scansrst.jpg  as cj420scans.jpg with restart every 3 blocks;
#                  image/jpeg cannot read it, tests decode it with ffmpeg
#   progressive.jpg  cjpeg -progressive, 64x48: must be refused
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ff() { # size pix_fmt out
	ffmpeg -v error -y -f lavfi -i "testsrc2=size=$1" -frames:v 1 \
		-pix_fmt "$2" -q:v 4 "$3"
}
ff 334x190 yuvj420p ff420.jpg
ff 320x180 yuvj422p ff422.jpg
ff 320x180 yuvj444p ff444.jpg

ffmpeg -v error -y -f lavfi -i testsrc2=size=317x179 -frames:v 1 \
	-pix_fmt rgb24 "$tmp/src.ppm"
cjpeg -quality 85 -sample 2x2 -restart 1 "$tmp/src.ppm" >cj420rst.jpg
cjpeg -quality 85 -sample 2x1 -restart 5B "$tmp/src.ppm" >cj422rst.jpg
cjpeg -quality 85 -sample 1x1 "$tmp/src.ppm" >cj444.jpg
cjpeg -quality 85 -grayscale -restart 7B "$tmp/src.ppm" >cjgray.jpg
cjpeg -quality 85 -sample 2x2 "$tmp/src.ppm" >"$tmp/std420.jpg"
printf '0;\n1;\n2;\n' >"$tmp/scans.txt"
cjpeg -quality 85 -sample 2x2 -scans "$tmp/scans.txt" "$tmp/src.ppm" >cj420scans.jpg
cjpeg -quality 85 -sample 2x2 -restart 3B -scans "$tmp/scans.txt" "$tmp/src.ppm" >cj420scansrst.jpg
ffmpeg -v error -y -f lavfi -i testsrc2=size=64x48 -frames:v 1 \
	-pix_fmt rgb24 "$tmp/small.ppm"
cjpeg -progressive "$tmp/small.ppm" >progressive.jpg

# stripdht removes every DHT segment (marker 0xFFC4) before the first
# scan. Only valid for images coded with the standard tables, which
# cjpeg writes unless -optimize is given.
stripdht() {
	perl -e '
		local $/; my $d = <STDIN>; my $o = substr($d, 0, 2); my $i = 2;
		while ($i < length($d)) {
			my $m = ord(substr($d, $i + 1, 1));
			if ($m == 0xDA) { $o .= substr($d, $i); last }
			my $n = unpack("n", substr($d, $i + 2, 2));
			$o .= substr($d, $i, 2 + $n) unless $m == 0xC4;
			$i += 2 + $n;
		}
		binmode STDOUT; print $o;' <"$1" >"$2"
}
stripdht cj422rst.jpg nodht422rst.jpg
stripdht "$tmp/std420.jpg" nodht420.jpg
ls -l *.jpg
