# One Makefile for the whole project. Sources are discovered by folder:
#   library code    core/ nn/ nn/cpu/ bus/ store/ data/ models/ metrics/ dist/
#                                                            -> build/libvel.a
#   CUDA code       nn/cuda/*.cu dist/*.cu (only with nvcc)  -> build/libvelcuda.so
#                   (loaded on first use by the stubs in build/libvelcuda_lazy.a)
#   stages          stages/NAME/*.c + stages/common/*.c      -> bin/NAME
#   tools           tools/NAME.c                             -> bin/NAME
#   tests           tests/**/test_*.c (Criterion)            -> build/tests/**/test_*
#   benches         bench/bench_*.c                          -> build/bench/bench_*
#   fuzzers         fuzz/fuzz_*.c (clang libFuzzer)          -> build/fuzz/fuzz_*
#   test references tests/ref/gen_*.py (Debian numpy)        -> build/ref/NAME/...
# Helpers shared by tests live in tests/util.c, by benches in bench/util.c.

CC      ?= gcc
PYTHON  ?= /usr/bin/python3
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -I. -MMD -MP
# BLAS: Debian's OpenMP build of OpenBLAS (libopenblas0-openmp, installed by
# scripts/deps.sh), so BLAS calls and our own OpenMP loops share libgomp's one
# thread pool and OMP_NUM_THREADS sets both (HACKING.md, "Threads"). Linked
# by directory with an RPATH (also seen by liblapacke's liblapack.so.3), so
# the system's default BLAS alternative does not matter; without the package
# the default (pthread) OpenBLAS is used.
comma := ,
BLAS_DIR := $(firstword $(wildcard /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp))
BLAS_LIBS := $(if $(BLAS_DIR),-L$(BLAS_DIR) -Wl$(comma)--disable-new-dtags$(comma)-rpath$(comma)$(BLAS_DIR)) -lopenblas
LDLIBS  := -llapacke $(BLAS_LIBS) -lzmq -lmsgpackc -llmdb -lpng -ljpeg -lz -lcjson -lm -lpthread
LDFLAGS += -fopenmp

LIB_DIRS  := core nn nn/cpu bus store data models metrics dist
LIB_SRCS  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=build/%.o)
LIB       := build/libvel.a

STAGES     := $(filter-out common,$(patsubst stages/%/,%,$(wildcard stages/*/)))
STAGE_BINS := $(STAGES:%=bin/%)
TOOL_BINS  := $(patsubst tools/%.c,bin/%,$(wildcard tools/*.c))

TEST_SRCS  := $(shell find tests -name 'test_*.c' 2>/dev/null | sort)
TEST_BINS  := $(TEST_SRCS:%.c=build/%)
TEST_UTIL  := build/tests/util.o
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=build/%)
BENCH_UTIL := $(if $(wildcard bench/util.c),build/bench/util.o)
REF_GENS   := $(wildcard tests/ref/gen_*.py)
REF_STAMPS := $(REF_GENS:tests/ref/gen_%.py=build/ref/%.stamp)

# CUDA: built whenever nvcc is on PATH; the CPU build never needs it.
NVCC := $(shell command -v nvcc 2>/dev/null)
CUDA_SRCS := $(wildcard nn/cuda/*.cu dist/*.cu)
ifneq ($(NVCC),)
ifneq ($(CUDA_SRCS),)
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# Binaries link CUDA_LIB, stubs that load CUDA_SO on first use (mk/cuda.mk).
CUDA_LIB   := build/libvelcuda_lazy.a
CUDA_SO    := build/libvelcuda.so
CUDA_OBJS  := $(CUDA_SRCS:%.cu=build/%.o)
NVCCFLAGS  ?= -O2 -g -std=c++17 -arch=sm_90 -Xcompiler -Wall -I.
CUDA_SO_LIBS := -L$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudnn -lcudart -lstdc++
CUDA_LDLIBS := -ldl -Wl,--dynamic-list=build/gen/cuda_exports.list
endif
endif

.PHONY: all test test-asan bench fuzz deps clean refs
all: $(LIB) $(CUDA_LIB) $(STAGE_BINS) $(TOOL_BINS) $(TEST_BINS) $(BENCH_BINS)

deps:
	@scripts/deps.sh

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# Archives are written under a temporary name and renamed, so two builds
# running at once never leave a half-written archive behind.
$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv $@.tmp.$$$$ $@

# One explicit rule per stage (bin/NAME from every stages/NAME/*.c). A single
# pattern rule cannot list them: inside `bin/%: $$(patsubst %.c,...)` make
# replaces the patsubst's own `%` by the stem before the second expansion.
STAGE_OBJS = $(patsubst %.c,build/%.o,$(wildcard stages/$(1)/*.c stages/common/*.c))
define STAGE_RULE
bin/$(1): $(call STAGE_OBJS,$(1)) $$(LIB) $$(CUDA_LIB)
	@mkdir -p bin
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(LIB) $$(CUDA_LIB) $$(LDLIBS) $$(CUDA_LDLIBS)
endef
$(foreach s,$(STAGES),$(eval $(call STAGE_RULE,$(s))))
ALL_STAGE_OBJS := $(foreach s,$(STAGES),$(call STAGE_OBJS,$(s)))

$(TOOL_BINS): bin/%: build/tools/%.o $(LIB) $(CUDA_LIB)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)

$(TEST_BINS): build/tests/%: build/tests/%.o $(TEST_UTIL) $(LIB) $(CUDA_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_UTIL) $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS) -lcriterion

# Benches parse their flags as the stages do (stages/common/flags.h).
BENCH_FLAGS := build/stages/common/flags.o
$(BENCH_BINS): build/bench/%: build/bench/%.o $(BENCH_UTIL) $(BENCH_FLAGS) $(LIB) $(CUDA_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(BENCH_UTIL) $(BENCH_FLAGS) $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)

build/ref/%.stamp: tests/ref/gen_%.py
	@mkdir -p build/ref/$*
	$(PYTHON) $< build/ref/$*
	@touch $@

refs: $(REF_STAMPS)

# make test: installs what is missing, builds, generates the numpy references,
# runs every test binary and, under ASan+UBSan, the bus and store tests.
test: deps
	@scripts/check-layering.sh
	@$(MAKE) --no-print-directory all refs
	@$(MAKE) --no-print-directory -f Makefile.asan all
	@scripts/run-tests.sh

# Only the CPU-side tests, no sanitizers (quick loop while developing).
test-quick: all refs
	@scripts/check-layering.sh
	@scripts/run-tests.sh --no-asan

bench: all
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done
	@$(MAKE) --no-print-directory bench-torch-cpu

FUZZ_SECONDS ?= 60
fuzz:
	@$(MAKE) --no-print-directory -f Makefile.fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

clean:
	rm -rf build bin

-include $(LIB_OBJS:.o=.d) $(ALL_STAGE_OBJS:.o=.d) $(TOOL_BINS:bin/%=build/tools/%.d) \
  $(TEST_BINS:=.d) $(BENCH_BINS:=.d)

# Area-specific rules (extra binaries, MPI tests, ...) live in mk/*.mk.
-include $(wildcard mk/*.mk)
