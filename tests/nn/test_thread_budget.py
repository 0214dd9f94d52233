"""The compiled kernels keep to the thread budget a process is given (OMP_NUM_THREADS)."""

import pytest

from deltaprop.nn.dense_chain import threads_in_use


@pytest.mark.parametrize(("budget", "expected"), [("1", 1), (" 1 ", 1), ("0", None), ("x", None)])
def test_omp_num_threads_caps_the_compiled_threads(monkeypatch, budget, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    numba_threads = threads_in_use()
    monkeypatch.setenv("OMP_NUM_THREADS", budget)
    assert threads_in_use() == (numba_threads if expected is None else min(numba_threads, expected))
