# mk/nn_dense.mk: the dense-op tests read numpy references; make each test
# binary depend on its generator's stamp so `make build/tests/nn/test_X`
# alone is enough (the link recipe uses $<, so extra prerequisites are safe).
build/tests/nn/test_linear: build/ref/dense_linear.stamp
build/tests/nn/test_conv: build/ref/dense_conv.stamp
build/tests/nn/test_norm: build/ref/dense_norm.stamp
build/tests/nn/test_activation: build/ref/dense_act.stamp
build/tests/nn/test_shape_ops: build/ref/dense_shape.stamp
build/tests/nn/test_loss: build/ref/loss.stamp
