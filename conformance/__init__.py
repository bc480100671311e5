"""Conformance suite: properties and comparisons of adapters against the reference kernels."""
