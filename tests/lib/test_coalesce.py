"""Group commit's scheduling: alone when quiet, together while a run is in flight."""

import asyncio

import pytest

from rapport.lib.coalesce import Coalescer


class Runs:
    """A run_many that records its batches; the first run waits for `release` when held."""

    def __init__(self, *, hold_first: bool = False, fail_on: set[str] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        if not hold_first:
            self.release.set()
        self.started = asyncio.Event()
        self.fail_on = fail_on

    async def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.started.set()
        await self.release.wait()
        if self.fail_on & set(items):
            raise ValueError(f"bad {sorted(self.fail_on & set(items))}")
        return [item.upper() for item in items]


async def test_a_call_with_nothing_in_flight_runs_at_once_alone():
    runs = Runs()
    coalescer = Coalescer(runs)
    assert await coalescer("a") == "A"
    assert await coalescer("b") == "B"
    assert runs.batches == [["a"], ["b"]]


async def test_calls_arriving_during_a_run_go_together_in_the_next():
    runs = Runs(hold_first=True)
    coalescer = Coalescer(runs)
    first = asyncio.ensure_future(coalescer("a"))
    await runs.started.wait()
    later = [asyncio.ensure_future(coalescer(item)) for item in "bcd"]
    await asyncio.sleep(0)
    runs.release.set()
    assert await first == "A"
    assert await asyncio.gather(*later) == ["B", "C", "D"]
    assert runs.batches == [["a"], ["b", "c", "d"]]
    assert await coalescer("e") == "E"  # quiet again: alone
    assert runs.batches[-1] == ["e"]


async def test_a_batch_takes_at_most_its_limit():
    runs = Runs(hold_first=True)
    coalescer = Coalescer(runs, most=2)
    first = asyncio.ensure_future(coalescer("a"))
    await runs.started.wait()
    later = [asyncio.ensure_future(coalescer(item)) for item in "bcde"]
    await asyncio.sleep(0)
    runs.release.set()
    await first
    assert await asyncio.gather(*later) == ["B", "C", "D", "E"]
    assert runs.batches == [["a"], ["b", "c"], ["d", "e"]]


async def test_one_bad_call_fails_alone_and_the_others_are_run_again_one_by_one():
    runs = Runs(hold_first=True, fail_on={"bad"})
    coalescer = Coalescer(runs)
    first = asyncio.ensure_future(coalescer("a"))
    await runs.started.wait()
    later = [asyncio.ensure_future(coalescer(item)) for item in ("b", "bad", "c")]
    await asyncio.sleep(0)
    runs.release.set()
    await first
    results = await asyncio.gather(*later, return_exceptions=True)
    assert results[0] == "B" and results[2] == "C"
    assert isinstance(results[1], ValueError)
    assert runs.batches[1:] == [["b", "bad", "c"], ["b"], ["bad"], ["c"]]


async def test_the_first_call_failing_lets_the_waiting_ones_run():
    runs = Runs(hold_first=True, fail_on={"bad"})
    coalescer = Coalescer(runs)
    first = asyncio.ensure_future(coalescer("bad"))
    await runs.started.wait()
    later = asyncio.ensure_future(coalescer("b"))
    await asyncio.sleep(0)
    runs.release.set()
    with pytest.raises(ValueError):
        await first
    assert await later == "B"


async def test_a_waiting_caller_that_gives_up_does_not_disturb_the_others():
    runs = Runs(hold_first=True)
    coalescer = Coalescer(runs)
    first = asyncio.ensure_future(coalescer("a"))
    await runs.started.wait()
    gone, kept = asyncio.ensure_future(coalescer("b")), asyncio.ensure_future(coalescer("c"))
    await asyncio.sleep(0)
    gone.cancel()
    runs.release.set()
    await first
    assert await kept == "C"
    assert gone.cancelled()


async def test_a_cancelled_first_call_still_hands_on_to_the_waiting_ones():
    runs = Runs(hold_first=True)
    coalescer = Coalescer(runs)
    first = asyncio.ensure_future(coalescer("a"))
    await runs.started.wait()
    later = asyncio.ensure_future(coalescer("b"))
    await asyncio.sleep(0)
    first.cancel()
    runs.release.set()
    assert await later == "B"
    assert await coalescer("c") == "C"
