# mk/fake_device.mk: tests/models/test_to_device_failure runs the models'
# moves to the GPU without one. The linker's --wrap sends every call of
# device_alloc / device_copy / device_zero / device_free made from outside
# nn/device.c to the test's own fake device, which fails on demand.
FAKE_DEVICE_TESTS := $(filter build/tests/models/test_to_device_failure,$(TEST_BINS))
$(FAKE_DEVICE_TESTS): private LDFLAGS += -Wl,--wrap=device_alloc,--wrap=device_copy,--wrap=device_zero,--wrap=device_free
