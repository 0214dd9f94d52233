"""The compiler of the CPU kernels: compiled on first use."""

import numpy as np


def test_a_compiled_kernel_is_compiled_on_first_use_and_callable_from_compiled_code():
    from deltaprop.backend.arrays import Compiled, compiled

    def twice(x):  # pragma: no cover - compiled
        return 2.0 * x

    inner = compiled(twice)
    assert isinstance(inner, Compiled) and inner._dispatcher is None  # nothing compiled yet
    assert inner.__name__ == "twice" and inner.py_func is twice

    def outer(a):  # pragma: no cover - compiled
        total = 0.0
        for v in a:
            total += inner(v)
        return total

    caller = Compiled(outer, {"nogil": True})
    assert caller(np.arange(4.0)) == 12.0  # a Compiled global, typed as Numba's dispatcher
    assert inner(1.5) == 3.0 and len(inner.overloads) >= 1  # Numba's attributes, forwarded
    assert "twice" in repr(inner)
