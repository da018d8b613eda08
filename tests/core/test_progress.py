"""Progress ticks, the Ticker that counts them, and drain() that runs a generator to its value."""

import dataclasses

import pytest

from napari_fidreg.core import FidregError, Progress
from napari_fidreg.core.progress import Ticker, drain


def test_label_names_the_item_when_there_is_one():
    assert Progress("correlating", 1, 4).label == "correlating"
    assert Progress("correlating", 1, 4, item="round2").label == "round2: correlating"


@pytest.mark.parametrize(
    "done,total,finished", [(0, 4, False), (3, 4, False), (4, 4, True), (5, 4, True), (0, 0, True)]
)
def test_finished_once_done_reaches_total(done, total, finished):
    assert Progress("s", done, total).finished is finished


def test_about_gives_the_same_tick_for_an_item_and_leaves_the_original():
    tick = Progress("correcting", 3, 10)
    named = tick.about("H3R3")
    assert named == Progress("correcting", 3, 10, "H3R3")
    assert named.label == "H3R3: correcting"
    assert tick.item == "" and tick.label == "correcting"
    assert named.about("other").item == "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        tick.done = 4  # type: ignore[misc]


def test_ticker_counts_steps_and_its_total_can_grow():
    ticker = Ticker(3)
    assert (ticker.done, ticker.total) == (0, 3)
    assert ticker.tick("coarse") == Progress("coarse", 1, 3)
    assert ticker.tick("blocks", steps=2) == Progress("blocks", 3, 3)
    assert ticker.done == 3
    ticker.total += 2  # an extra pass
    second = ticker.tick("retry")
    assert second == Progress("retry", 4, 5) and not second.finished
    last = ticker.tick("retry")
    assert last == Progress("retry", 5, 5) and last.finished


def _work(n, log):
    ticker = Ticker(n)
    for i in range(n):
        log.append(f"step {i}")
        yield ticker.tick("working")
    log.append("after the last tick")
    return {"steps": n}


def test_drain_returns_the_generator_value_and_passes_every_tick():
    log, ticks = [], []
    result = drain(_work(4, log), ticks.append)
    assert result == {"steps": 4}
    assert ticks == [Progress("working", i, 4) for i in range(1, 5)]
    assert log == ["step 0", "step 1", "step 2", "step 3", "after the last tick"]


def test_drain_without_a_callback_runs_to_the_end():
    log = []
    assert drain(_work(3, log)) == {"steps": 3}
    assert log[-1] == "after the last tick"


def test_drain_of_a_generator_that_never_yields():
    def nothing():
        return 42
        yield  # a generator all the same

    ticks = []
    assert drain(nothing(), ticks.append) == 42
    assert ticks == []


def test_errors_inside_the_generator_reach_the_caller_after_the_ticks_before_them():
    def failing():
        yield Progress("reading", 1, 2)
        raise FidregError("moving: stack is empty")

    ticks = []
    with pytest.raises(FidregError, match="moving: stack is empty"):
        drain(failing(), ticks.append)
    assert ticks == [Progress("reading", 1, 2)]
