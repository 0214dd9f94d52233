"""How many threads the compiled epoch runs on: one per core that other processes leave free.

On a machine whose cores are shared (a second training beside this one, ``GridSearchCV``'s
other workers, a CI runner's neighbours) a thread that waits for a core holds up the others at
every product — two threads on two cores with one of them taken ran an epoch 2–3× slower than
one thread (``benchmarks/contention.py``). :class:`Threads` runs the epoch as segments of a few
batches (about :data:`SEGMENT_SECONDS` each) and, every :data:`WINDOW_SECONDS`, reads how busy
this process's cores were (Linux's ``/proc/stat``, the CPUs of ``os.sched_getaffinity``) less
what this process used itself (``time.process_time``): what the others used. The next segments
run on the cores they left: a core counts as free when at least :data:`FREE` of it was idle to
us; never fewer than one thread, never more than ``most``; fewer at once, more only after two
readings in a row. Where ``/proc/stat`` cannot be read it keeps ``most``.

The choice cannot change a number: the compiled kernels split their work into tiles that do not
move with the thread count (:func:`deltaprop.backend.tiles.tile_width`), so the same seed gives
the same weights to the bit whatever the counts were. ``fit(n_threads=k)`` fixes the count at k
(no segments, no reading), and holds BLAS at k threads for the reference path.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable

from ..backend.blas import blas_threads

SEGMENT_SECONDS = 0.03
"""The time a segment of batches aims at: long against the ~50 µs a segment costs to start,
short enough to follow a change of load within a fraction of a second."""

WINDOW_SECONDS = 0.2
"""How long the load is read over before each choice (the kernel counts CPU time in ticks of
10 ms: over 0.2 s on two cores, 40 ticks)."""

FREE = 0.7
"""The share of a core the other processes must leave idle for it to get a thread."""

FIRST_BATCHES = 2
"""The batches of a ``fit``'s first segment (it pages in the new workspaces, and the first in a
process loads the compiled code): its time sizes the next segments."""

Sample = tuple[float, float, float]
"""(wall seconds, the CPU seconds this process's cores have been busy, this process's CPU
seconds), each counted from some fixed point."""


def cpu_sample() -> Sample | None:
    """The busy time of the CPUs this process may run on (``/proc/stat``: user, nice, system,
    irq, softirq and steal ticks), with the wall clock and this process's own CPU time; None
    where it cannot be read (not Linux)."""
    try:
        cpus = {f"cpu{i}" for i in _affinity()}
        with open("/proc/stat", encoding="ascii") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu")]
    except (OSError, AttributeError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    for fields in lines:
        if fields[0] in cpus and len(fields) > 8:
            user, nice, system, _, _, irq, softirq, steal = map(int, fields[1:9])
            busy += user + nice + system + irq + softirq + steal
    return time.perf_counter(), busy / ticks, time.process_time()


def _affinity() -> set[int]:
    """The CPUs this process may run on (all of them where the system cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


_last: dict[int, int] = {}
"""The count last chosen in this process, for each ``most``: the next ``fit`` starts there (the
load that chose it is likely still there: a ``GridSearchCV`` worker, a loop of short fits)."""

_seen: dict[Callable[[], Sample | None], Sample] = {}
"""The latest sample read from each source in this process: a ``fit`` that starts at least
:data:`WINDOW_SECONDS` and at most :data:`RECENT_SECONDS` after it chooses its first count from
the load in between, rather than running its first window (0.2 s: most of a short epoch) on
the count the last ``fit`` left."""

RECENT_SECONDS = 10.0
"""How old the latest sample may be for the load since it to choose a new ``fit``'s first count."""


class Threads:
    """The thread count of each segment of the compiled epoch.

    Args:
        most: the most threads it may use (:func:`~deltaprop.nn.dense_chain.threads_in_use`,
            or the user's ``n_threads``).
        adaptive: choose by the load (``fit``'s default); False runs every batch on ``most``.
        sample: where the load is read (:func:`cpu_sample`; tests pass their own).
        cores: the cores ``sample`` reads (default: those this process may run on).
    """

    def __init__(
        self,
        most: int,
        adaptive: bool,
        sample: Callable[[], Sample | None] = cpu_sample,
        cores: int | None = None,
    ) -> None:
        self.most = most
        self.fixed = not adaptive  # the caller's count (``n_threads``), for BLAS too
        self.sample = sample
        self.cores = cores if cores is not None else len(_affinity())
        self.window = sample() if adaptive and most > 1 else None
        self.adaptive = self.window is not None
        self.current = _last.get(most, most) if self.adaptive else most
        self.per_batch: float | None = None  # the latest segment's seconds per batch
        self.others: float | None = None  # the cores the other processes used, last window
        self._rise = 0  # a higher count the last reading allowed (0: none)
        if self.window is not None:
            before = _seen.get(sample)
            if (
                before is not None
                and WINDOW_SECONDS <= self.window[0] - before[0] <= RECENT_SECONDS
            ):
                self._choose(before, self.window)
            _seen[sample] = self.window

    def count(self) -> int:
        """The thread count of the next segment."""
        return self.current

    def fixed_blas(self) -> contextlib.AbstractContextManager[None]:
        """BLAS held at the caller's fixed count meanwhile (``n_threads``: the reference
        path's products are BLAS's own); nothing where the count follows the load."""
        return blas_threads(self.most if self.fixed else None)

    def segment(self, left: int) -> int:
        """How many of the ``left`` batches the next segment runs (all of them when fixed)."""
        if not self.adaptive:
            return left
        if self.per_batch is None or self.per_batch <= 0:
            return min(left, FIRST_BATCHES)
        return min(left, max(1, round(SEGMENT_SECONDS / self.per_batch)))

    def took(self, batches: int, seconds: float) -> None:
        """The last segment, of ``batches`` batches, took ``seconds``; once a window has
        passed, the load decides the next count."""
        if not self.adaptive or batches <= 0:
            return
        self.per_batch = seconds / batches
        assert self.window is not None
        now = self.sample()
        if now is None or now[0] - self.window[0] < WINDOW_SECONDS:
            return
        self._choose(self.window, now)
        self.window = _seen[self.sample] = now

    def _choose(self, before: Sample, now: Sample) -> None:
        """The count for the cores the other processes left free from ``before`` to ``now``:
        fewer threads at once, more only when two readings in a row leave the cores free (a
        second training beside this one that saw a moment's pause would otherwise take both
        cores back, and each would wait for the other's threads until its next reading)."""
        wall, busy, own = (b - a for a, b in zip(before, now, strict=True))
        self.others = max(0.0, (busy - own) / wall)
        free = self.cores - self.others
        target = max(1, min(self.most, math.floor(free + (1 - FREE))))
        if target > self.current and not self._rise:
            self._rise = target
            return
        self.current = min(target, self._rise) if target > self.current else target
        self._rise = 0
        _last[self.most] = self.current
