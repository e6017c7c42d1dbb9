# mk/cuda.mk: CUDA-side build settings (included by the top-level Makefile).
# When the Makefile found nvcc and nn/cuda/*.cu (CUDA_LIB set), every C file
# is compiled with -DVEL_HAVE_CUDA=1 so that C callers of nn/cuda/vcuda.h
# (nn/device.c, tests/cuda/*) compile their CUDA branch only when
# build/libvelcuda_lazy.a is linked; without nvcc they compile a "built without
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
NVCCFLAGS += -DVEL_HAVE_CUDA=1 -Xcompiler -fPIC
# The stubs of libvelcuda_lazy.a reference libvel.a (the callbacks below),
# but the Makefile links $(LIB) before $(CUDA_LIB): list libvel.a once more
# after it so those references resolve whichever objects a binary pulled.
LDLIBS := $(LIB) $(LDLIBS)

# The CUDA half as a shared object, opened on first use (nn/cuda/lazy.h), so
# CPU-only runs never map cuBLAS / cuDNN / the CUDA runtime. Its references
# into libvel.a bind at dlopen to the executable's copies, which the link
# exports (build/gen/cuda_exports.list).
CUDA_HEADERS := nn/cuda/ops.h nn/cuda/vcuda.h dist/backend.h
CUDA_GEN := build/gen/cuda_stubs.c build/gen/cuda_exports.c build/gen/cuda_exports.list
$(CUDA_SO): $(CUDA_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@.tmp $(CUDA_OBJS) $(CUDA_SO_LIBS) && mv $@.tmp $@
# One stub per function of CUDA_HEADERS that the object defines
# (mk/cuda_stubs.py), so new ops need no edit here.
$(CUDA_GEN) &: $(CUDA_SO) $(LIB) mk/cuda_stubs.py $(CUDA_HEADERS)
	$(PYTHON) mk/cuda_stubs.py $(CUDA_SO) $(LIB) build/gen $(CUDA_HEADERS)
build/gen/%.o: build/gen/%.c
	$(CC) $(CFLAGS) -c $< -o $@
build/nn/cuda/lazy.o: CFLAGS += -DVEL_CUDA_SO='"$(abspath $(CUDA_SO))"'
$(CUDA_LIB): build/gen/cuda_stubs.o build/gen/cuda_exports.o build/nn/cuda/lazy.o
	@rm -f $@.tmp.$$$$; ar rcs $@.tmp.$$$$ $^ && mv $@.tmp.$$$$ $@
-include build/nn/cuda/lazy.d build/gen/cuda_stubs.d
endif

# tests/device/bench_cuda: our side of the device run's speed table (a plain
# program, not a Criterion test; tests/device/run.sh starts it).
DEVICE_BENCH := build/tests/device/bench_cuda
all: $(DEVICE_BENCH)
$(DEVICE_BENCH): build/tests/device/bench_cuda.o $(LIB) $(CUDA_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)
-include build/tests/device/bench_cuda.d
