"""Thread counts for the benchmarks: NNSPEC_BENCH_THREADS (default 1) for torch here; NumPy's
OpenBLAS reads OPENBLAS_NUM_THREADS before NumPy is imported, which `nox -s bench` sets to the
same number. One thread each by default: on a machine shared by several processes a
multi-threaded BLAS call stalls whenever one of its threads is descheduled (measured on 2 busy
cores: the same (32, 4, 128, 64) batched matmul took 0.03 s or 1.4 s from run to run), and the
ratios compare like with like."""

from __future__ import annotations

import os

import pytest


def bench_threads() -> int:
    return int(os.environ.get("NNSPEC_BENCH_THREADS", "1"))


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:
        yield None
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(bench_threads())
    yield torch.get_num_threads()
    torch.set_num_threads(previous)
