# mk/torch_cpu.mk: the C worker of the PyTorch CPU comparison
# (bench/torch_cpu/, run by `make bench` after the other benches; skipped
# with a message when the benchmark venv with PyTorch is absent).
TORCH_CPU_OURS := build/bench/torch_cpu/ours
all: $(TORCH_CPU_OURS)
$(TORCH_CPU_OURS): build/bench/torch_cpu/ours.o $(LIB) $(CUDA_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(CUDA_LIB) $(LDLIBS) $(CUDA_LDLIBS)
-include build/bench/torch_cpu/ours.d

# TORCH_CPU_ARGS: extra run.py flags, e.g. `make bench-torch-cpu TORCH_CPU_ARGS=--isolate`
.PHONY: bench-torch-cpu
bench-torch-cpu: $(TORCH_CPU_OURS)
	@$(PYTHON) bench/torch_cpu/run.py $(TORCH_CPU_ARGS)
