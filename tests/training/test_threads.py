"""The compiled epoch's thread count: chosen by the load, segment by segment, never a number
changed by it."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.training import loop as loop_module
from deltaprop.training import threads as threads_module
from deltaprop.training.threads import SEGMENT_SECONDS, Threads, cpu_sample


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    monkeypatch.setattr(threads_module, "_last", {})
    monkeypatch.setattr(threads_module, "_seen", {})


class Machine:
    """A machine of ``cores`` cores where other processes use ``others`` of them and this one
    ``own``: the samples :class:`Threads` reads, the clock moving by each segment's time."""

    def __init__(self, others: float, own: float = 1.0) -> None:
        self.others, self.own = others, own
        self.wall = self.busy = self.mine = 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.busy += (self.others + self.own) * seconds
        self.mine += self.own * seconds

    def sample(self):
        return self.wall, self.busy, self.mine


def drive(chooser: Threads, machine: Machine, segments: int) -> list[int]:
    """Run ``segments`` segments of 1 ms batches; the count of each, in order."""
    counts = []
    for _ in range(segments):
        count, batches = chooser.count(), chooser.segment(10_000)
        machine.advance(batches * 0.001)
        chooser.took(batches, batches * 0.001)
        counts.append(count)
    return counts


def test_a_fixed_count_runs_everything_at_once_and_never_reads_the_load():
    machine = Machine(others=2.0)
    chooser = Threads(2, adaptive=False, sample=machine.sample, cores=2)
    assert chooser.segment(300) == 300
    assert drive(chooser, machine, 20) == [2] * 20
    assert not Threads(1, adaptive=True, sample=machine.sample, cores=2).adaptive


def test_where_the_load_cannot_be_read_it_keeps_all_its_threads():
    chooser = Threads(4, adaptive=True, sample=lambda: None, cores=4)
    assert not chooser.adaptive and chooser.count() == 4


@pytest.mark.parametrize(
    ("cores", "most", "others", "expected"),
    [
        (2, 2, 0.0, 2),  # quiet: every core
        (2, 2, 0.2, 2),  # a little noise: still every core
        (2, 2, 0.5, 1),  # half a core taken: it is no longer free
        (2, 2, 1.0, 1),  # one burner, or a second training on one thread
        (2, 2, 4.0, 1),  # four burners: never fewer than one thread
        (8, 8, 3.0, 5),
        (8, 4, 1.0, 4),  # never more than most
    ],
)
def test_it_runs_on_the_cores_the_others_leave_free(cores, most, others, expected):
    machine = Machine(others)
    chooser = Threads(most, adaptive=True, sample=machine.sample, cores=cores)
    counts = drive(chooser, machine, 40)
    assert counts[0] == most  # it starts on all of them, before it has read the load
    assert counts[-10:] == [expected] * 10
    assert chooser.others == pytest.approx(others)
    assert threads_module._last == {most: expected}  # and the next fit starts there
    assert Threads(most, adaptive=True, sample=machine.sample, cores=cores).count() == expected


def test_it_follows_the_load_as_it_comes_and_goes():
    machine = Machine(others=0.0)
    chooser = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert drive(chooser, machine, 30)[-5:] == [2] * 5
    machine.others = 1.0
    assert drive(chooser, machine, 30)[-5:] == [1] * 5
    machine.others = 0.0
    assert drive(chooser, machine, 30)[-5:] == [2] * 5


def test_a_new_fit_starts_on_the_load_since_the_last_one_read_it():
    machine = Machine(others=0.0)
    first = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert drive(first, machine, 30)[-1] == 2  # quiet: both cores
    machine.own = 0.0  # between the fits: this process idle, a second training on a core
    machine.others = 1.0
    machine.advance(0.5)
    second = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert second.count() == 1 and 0.8 < second.others <= 1.0  # (the last window's tail was quiet)
    machine.others = 0.0
    machine.advance(0.1)  # too short a gap to read: the count the last fit left
    assert Threads(2, adaptive=True, sample=machine.sample, cores=2).count() == 1
    machine.advance(threads_module.RECENT_SECONDS + 1)  # too old: the count the last fit left
    assert Threads(2, adaptive=True, sample=machine.sample, cores=2).count() == 1
    machine.advance(1.0)  # a quiet second since the last sample: both cores after one more
    last = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert last.count() == 1 and last.others == 0.0
    assert drive(last, machine, 10)[-1] == 2


def test_more_threads_only_when_two_readings_in_a_row_leave_the_cores_free():
    machine = Machine(others=1.0)
    chooser = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert drive(chooser, machine, 20)[-1] == 1
    windows = []
    for others in (0.0, 1.0, 0.0, 0.0, 1.0):  # a pause of one reading, then one of two
        machine.others = others
        machine.advance(threads_module.WINDOW_SECONDS * 1.01)
        chooser.took(1, 0.001)
        windows.append(chooser.count())
    assert windows == [1, 1, 1, 2, 1]  # down at once, up only after the second free reading


def test_segments_aim_at_their_time():
    machine = Machine(others=0.0)
    chooser = Threads(2, adaptive=True, sample=machine.sample, cores=2)
    assert chooser.segment(100) == 2  # the first, before a batch's time is known
    chooser.took(2, 2 * 0.004)
    assert chooser.segment(10_000) * 0.004 == pytest.approx(SEGMENT_SECONDS, rel=0.1)
    assert chooser.segment(3) == 3  # never more than are left


def test_the_machine_is_read_from_proc_stat():
    sample = cpu_sample()
    if sample is None:
        pytest.skip("no /proc/stat here")
    wall, busy, own = sample
    sum(i * i for i in range(300_000))  # some CPU time of our own
    later = cpu_sample()
    assert later is not None
    assert later[0] > wall and later[2] > own and later[1] >= busy


def test_changing_the_count_mid_epoch_changes_no_bit(monkeypatch):
    # a chooser that switches every segment: the weights must equal those of one thread
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 150)).astype(np.float32)
    y = rng.integers(0, 10, 600)
    seen: list[int] = []

    def train(**options):
        net = dp.mlp([150, 200, 70, 10], rng=1)
        opt = dp.Adam(net.parameters(), lr=1e-2)
        options.update(epochs=2, batch_size=16, rng=2, verbose=0, engine="compiled")
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, **options)
        return net.flat_values.copy()

    one = train(n_threads=1)

    def alternate(self):
        count = 1 + len(seen) % 2
        seen.append(count)
        return count

    monkeypatch.setattr(Threads, "count", alternate)
    monkeypatch.setattr(Threads, "segment", lambda self, left: min(left, 3))
    monkeypatch.setattr(loop_module, "threads_in_use", lambda: 2)
    np.testing.assert_array_equal(train(), one)
    assert seen.count(1) > 5 and seen.count(2) > 5


def test_a_fixed_count_holds_blas_there_on_the_reference_path():
    """``n_threads`` fixes OpenBLAS's count on the reference path: while training, and only
    then; the weights are those of training inside the same limit by hand."""
    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.default_rng(3)
    X = rng.standard_normal((256, 784)).astype(np.float32)  # 784: OpenBLAS's bits change
    y = rng.integers(0, 10, 256)
    counts: list[set[int]] = []

    class Record(dp.Callback):
        def on_batch_end(self, run, batch, loss):
            counts.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    def train(**options):
        net = dp.mlp([784, 64, 10], rng=1)
        opt = dp.Adam(net.parameters(), lr=1e-3)
        options.update(epochs=2, batch_size=64, rng=2, verbose=0, engine="reference")
        dp.fit(net, dp.SoftmaxCrossEntropy(), opt, X, y, validation_split=0.25, **options)
        return net.flat_values.copy()

    with threadpool_limits(2, user_api="blas"):  # a count other than the one fixed, any machine
        before = {info["filepath"]: info["num_threads"] for info in threadpool_info()}
        fixed = train(n_threads=1, callbacks=[Record()])
        assert {info["filepath"]: info["num_threads"] for info in threadpool_info()} == before
    assert len(counts) == 6 and all(seen == {1} for seen in counts)
    with threadpool_limits(1, user_api="blas"):
        by_hand = train()
    np.testing.assert_array_equal(fixed, by_hand)
    np.testing.assert_array_equal(train(n_threads=1), fixed)
