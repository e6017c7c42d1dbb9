# mk/toy.mk: the toy area's extra rule. Stage-local helpers (stages/*/toy*.c,
# stages/eval/plot*.c) are linked into their stage
# binary by the main Makefile; the toy's stage tests need them too, so they
# are also archived into build/libtoystage.a and put in front of libvel.a for
# tests/stages/test_toy*.
TOY_STAGE_SRCS := $(filter-out %/main.c,$(wildcard stages/*/toy*.c stages/eval/plot*.c stages/common/*.c))
TOY_STAGE_OBJS := $(TOY_STAGE_SRCS:%.c=build/%.o)
TOY_STAGE_LIB  := build/libtoystage.a
TOY_STAGE_TESTS := $(filter build/tests/stages/test_toy%,$(TEST_BINS))

$(TOY_STAGE_LIB): $(TOY_STAGE_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv $@.tmp.$$$$ $@

$(TOY_STAGE_TESTS): $(TOY_STAGE_LIB)
$(TOY_STAGE_TESTS): LIB = $(TOY_STAGE_LIB) build/libvel.a

