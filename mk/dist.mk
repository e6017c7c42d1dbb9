# mk/dist.mk: the data-parallel test fixture. tests/dist/dp_worker.c is a
# plain program (not a Criterion test) that tests/dist/test_dp.c starts
# directly and under mpirun. MPI is dlopened by dist/mpi.c, so nothing
# here links -lmpi.
DIST_WORKER := build/tests/dist/dp_worker
all: $(DIST_WORKER)
build/tests/dist/test_dp: $(DIST_WORKER)
$(DIST_WORKER): build/tests/dist/dp_worker.o $(TEST_UTIL) $(LIB) $(CUDA_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)
-include build/tests/dist/dp_worker.d
