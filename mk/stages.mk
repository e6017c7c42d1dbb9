# mk/stages.mk: stages/common/*.c (flag parsing, the --model dispatcher) is
# linked into every stage binary by the main Makefile; the tests that call it
# in-process (tests/stages/test_flags, test_progress, test_moments_item) link its objects in front of libvel.a.
STAGE_COMMON_OBJS := $(patsubst %.c,build/%.o,$(wildcard stages/common/*.c))
build/tests/stages/test_flags: $(STAGE_COMMON_OBJS)
build/tests/stages/test_flags: LIB = $(STAGE_COMMON_OBJS) build/libvel.a
build/tests/stages/test_progress: $(STAGE_COMMON_OBJS)
build/tests/stages/test_progress: LIB = $(STAGE_COMMON_OBJS) build/libvel.a
build/tests/stages/test_moments_item: $(STAGE_COMMON_OBJS)
build/tests/stages/test_moments_item: LIB = $(STAGE_COMMON_OBJS) build/libvel.a
