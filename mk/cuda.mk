# mk/cuda.mk: CUDA-side build settings (included by the top-level Makefile).
# When the Makefile found nvcc and nn/cuda/*.cu (CUDA_LIB set), every C file
# is compiled with -DVEL_HAVE_CUDA=1 so that C callers of nn/cuda/vcuda.h
# (nn/device.c, tests/cuda/*) compile their CUDA branch only when
# build/libvelcuda.a is linked; without nvcc they compile a "built without
# CUDA" branch and plain `make` still works.
# NCCL is not linked: dist/nccl.cu dlopens libnccl.so.2 at run time, so no
# binary depends on it at load time.
ifneq ($(CUDA_LIB),)
CFLAGS += -DVEL_HAVE_CUDA=1
# Warnings from the host compiler are errors too, as for the C code.
NVCCFLAGS += -Xcompiler -Wextra -Werror all-warnings
endif
# Header dependencies of the .cu files (the Makefile only tracks the C ones).
ifneq ($(CUDA_LIB),)
NVCCFLAGS += -MMD -MP
-include $(CUDA_OBJS:.o=.d)
endif
ifneq ($(CUDA_LIB),)
NVCCFLAGS += -DVEL_HAVE_CUDA=1
# libvelcuda.a calls back into libvel.a (vel_strerror, dist_set_error, ...),
# but the Makefile links $(LIB) before $(CUDA_LIB): list libvel.a once more
# after it so those references resolve whichever objects a binary pulled.
LDLIBS := $(LIB) $(LDLIBS)
endif

# tests/device/bench_cuda: our side of the device run's speed table (a plain
# program, not a Criterion test; tests/device/run.sh starts it).
DEVICE_BENCH := build/tests/device/bench_cuda
all: $(DEVICE_BENCH)
$(DEVICE_BENCH): build/tests/device/bench_cuda.o $(LIB) $(CUDA_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)
-include build/tests/device/bench_cuda.d
