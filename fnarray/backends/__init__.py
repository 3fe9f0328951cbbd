"""Backends: the only modules that import an array library's kernels."""
