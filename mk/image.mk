# mk/image.mk: the image area's extra rule. Stage-local helpers of the image
# tokenizer (stages/eval/metrics_image.c) are linked into bin/eval by the
# main Makefile; their tests (tests/models/test_vae_metrics*) need them too,
# so they are archived into build/libimagestage.a and put before libvel.a.
IMAGE_STAGE_SRCS := $(wildcard stages/eval/metrics_image.c)
IMAGE_STAGE_OBJS := $(IMAGE_STAGE_SRCS:%.c=build/%.o)
IMAGE_STAGE_LIB  := build/libimagestage.a
IMAGE_STAGE_TESTS := $(filter build/tests/models/test_vae_metrics%,$(TEST_BINS))

$(IMAGE_STAGE_LIB): $(IMAGE_STAGE_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv $@.tmp.$$$$ $@

$(IMAGE_STAGE_TESTS): $(IMAGE_STAGE_LIB)
$(IMAGE_STAGE_TESTS): LIB = $(IMAGE_STAGE_LIB) build/libvel.a

# The photo bank (scripts/photos.sh: apt-get download + dpkg-deb of Debian's
# skimage/sklearn/opencv-doc sample photos into build/photos/). Idempotent;
# when it cannot fetch, tests/data/test_photos skips its real-bank test.
.PHONY: photos
photos:
	@scripts/photos.sh || echo "photos: not fetched; the photo-bank tests will skip"
test test-quick: photos

# bin/train --model vae --dataset photos scores its held-out photo tiles with
# the same PSNR/SSIM code.
bin/train: $(IMAGE_STAGE_LIB)
bin/train: LIB = $(IMAGE_STAGE_LIB) build/libvel.a
