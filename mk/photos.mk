# mk/photos.mk: fetching the photo bank used by the image tests.
# The photo bank (scripts/photos.sh: apt-get download + dpkg-deb of Debian's
# skimage/sklearn/opencv-doc sample photos into build/photos/). Idempotent;
# when it cannot fetch, tests/data/test_photos skips its real-bank test.
.PHONY: photos
photos:
	@scripts/photos.sh || echo "photos: not fetched; the photo-bank tests will skip"
test test-quick: photos
