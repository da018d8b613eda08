"""A dock shows its worker's progress ticks at most every TICK_GAP_MS, and never lags behind."""

from __future__ import annotations

from napari_fidreg._widgets.ticks import TICK_GAP_MS, TickGate
from napari_fidreg.core.progress import Progress


def test_ticks_closer_than_the_gap_are_thinned_and_the_last_held_one_comes_later(qtbot):
    shown = []
    gate = TickGate(shown.append)
    for i in range(1, 11):  # ten ticks at once: the first is shown, the newest is held
        gate(Progress("correcting", i, 60))
    assert [t.done for t in shown] == [1]
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=10 * TICK_GAP_MS)
    assert shown[-1].done == 10  # the bar catches up once the gap is over, without a new tick
    gate(Progress("correcting", 60, 60))  # a stage's last tick: at once
    gate(Progress("projections", 1, 3))  # a new stage's first: at once
    assert [t.done for t in shown] == [1, 10, 60, 1]
    qtbot.wait(3 * TICK_GAP_MS)
    assert len(shown) == 4  # nothing was held


def test_a_held_tick_is_dropped_when_the_worker_ends(qtbot):
    shown = []
    gate = TickGate(shown.append)
    gate(Progress("blocks", 1, 24))
    gate(Progress("blocks", 2, 24))  # held
    gate.drop()  # what the worker's returned / errored / aborted / finished do (follow)
    qtbot.wait(3 * TICK_GAP_MS)
    assert [t.done for t in shown] == [1]  # "done" or "cancelled" is not written over


def test_the_gate_follows_a_real_worker(qtbot):
    from napari.qt.threading import create_worker

    def job():
        for i in range(1, 201):
            yield Progress("planes", i, 200)

    shown = []
    gate = TickGate(shown.append)
    worker = create_worker(job, _start_thread=False, _connect={"yielded": gate})
    gate.follow(worker)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start()
    qtbot.wait(3 * TICK_GAP_MS)
    assert shown[0].done == 1 and shown[-1].done == 200
    assert len(shown) < 200  # thinned
    assert [t.done for t in shown] == sorted(t.done for t in shown)  # in order
