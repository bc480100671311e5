"""Benchmarks of the reference kernels against torch (float64, CPU) and onnx.reference:
`nox -s bench`. Speed is measured here, never asserted in a timed test."""
