#!/usr/bin/env bash
# photos.sh [OUTDIR]: builds the photo bank, a folder of real colour photos
# taken from the sample images that Debian's scikit-image, scikit-learn and
# OpenCV packages ship. The .deb files are fetched with `apt-get download`
# into OUTDIR/debs and only the listed image files are extracted with
# dpkg-deb (nothing is installed, no Python dependency is pulled in).
# Output: OUTDIR/images/<source>_<name>.<ext> (default OUTDIR build/photos).
# Idempotent: does nothing when every listed image is already there.
# Not here: cutting photos into crops (data/photos.c does that).
set -eu
case "${1:-}" in
  -h|--help) sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'; echo "usage: scripts/photos.sh [OUTDIR]   (default build/photos)"; exit 0 ;;
esac
cd "$(dirname "$0")/.."
out=${1:-build/photos}
img="$out/images"; debs="$out/debs"

# package|path inside the package|name in the bank. Colour photographs only
# (the grey textures, charts and synthetic test patterns are left out).
LIST='
python3-skimage|usr/lib/python3/dist-packages/skimage/data/astronaut.png|skimage_astronaut.png
python3-skimage|usr/lib/python3/dist-packages/skimage/data/chelsea.png|skimage_chelsea.png
python3-skimage|usr/lib/python3/dist-packages/skimage/data/coffee.png|skimage_coffee.png
python3-skimage|usr/lib/python3/dist-packages/skimage/data/rocket.jpg|skimage_rocket.jpg
python3-skimage|usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png|skimage_motorcycle.png
python3-skimage|usr/lib/python3/dist-packages/skimage/data/hubble_deep_field.jpg|skimage_hubble.jpg
python3-skimage|usr/lib/python3/dist-packages/skimage/data/ihc.png|skimage_ihc.png
python3-sklearn|usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg|sklearn_china.jpg
python3-sklearn|usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg|sklearn_flower.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/baboon.jpg|opencv_baboon.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/fruits.jpg|opencv_fruits.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/apple.jpg|opencv_apple.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/orange.jpg|opencv_orange.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/building.jpg|opencv_building.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/messi5.jpg|opencv_messi.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/aloeL.jpg|opencv_aloe.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/home.jpg|opencv_home.jpg
opencv-doc|usr/share/doc/opencv-doc/examples/data/smarties.png|opencv_smarties.png
'

missing=0
while IFS='|' read -r pkg path name; do
  [ -z "$pkg" ] && continue
  [ -s "$img/$name" ] || missing=1
done <<<"$LIST"
if [ $missing -eq 0 ]; then exit 0; fi

mkdir -p "$img" "$debs"
for pkg in $(printf '%s\n' "$LIST" | cut -d'|' -f1 | sort -u); do
  if ! ls "$debs/${pkg}"_*.deb >/dev/null 2>&1; then
    echo "photos: fetching $pkg"
    # apt-get download writes into the current directory.
    if ! (cd "$debs" && apt-get download -q "$pkg" >/dev/null); then
      echo "photos: apt-get download $pkg failed (run 'apt-get update' first?)" >&2
      exit 1
    fi
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in $(printf '%s\n' "$LIST" | cut -d'|' -f1 | sort -u); do
  deb=$(ls "$debs/${pkg}"_*.deb | head -n 1)
  paths=$(printf '%s\n' "$LIST" | awk -F'|' -v p="$pkg" '$1 == p { print "./" $2 }')
  # Extract only the listed members (the OpenCV doc package is ~100 MB).
  # shellcheck disable=SC2086
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" $paths
done
n=0
while IFS='|' read -r pkg path name; do
  [ -z "$pkg" ] && continue
  if [ ! -s "$tmp/$path" ]; then echo "photos: $path missing from $pkg" >&2; exit 1; fi
  cp "$tmp/$path" "$img/$name.tmp" && mv "$img/$name.tmp" "$img/$name"
  n=$((n + 1))
done <<<"$LIST"
echo "photos: $n images in $img"
