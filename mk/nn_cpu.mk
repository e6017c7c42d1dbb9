# mk/nn_cpu.mk: per-file flags of nn/cpu kernels.
# adam.c: sqrtf without errno so gcc can vectorise the Adam loop (the square
# root is the same IEEE operation; only the errno side effect goes).
build/nn/cpu/adam.o: CFLAGS += -fno-math-errno
