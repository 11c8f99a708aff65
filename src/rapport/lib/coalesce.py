"""Calls that arrive while a run is in flight are run together in the next one.

This is group commit done by the application: a call finding nothing in flight runs at once,
alone, so a quiet process adds no wait; calls arriving during that run queue, and the next run
takes them all (up to `most`). Under load the cost of a run (a round trip, a commit) is paid
once per batch instead of once per call.

When a batch of several fails, each of its calls is run again alone, so one bad call fails by
itself and never takes the others with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """`await coalescer(item)` runs `run_many([..., item, ...])` and returns the item's result."""

    def __init__(
        self, run_many: Callable[[list[T]], Awaitable[Sequence[R]]], *, most: int = 256
    ) -> None:
        self._run_many = run_many
        self._most = most
        self._busy = False
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        if self._busy:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await future
        self._busy = True
        try:
            (result,) = await self._run_many([item])
            return result
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        """After a run: the calls that queued meanwhile go next, in a task of their own."""
        if self._waiting:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                await self._run_batch(batch)
        except BaseException as error:  # cancelled at shutdown: nobody is left waiting forever
            for _item, future in self._waiting:
                _settle(future, error=error)
            self._waiting = []
            raise
        finally:
            self._busy = False

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run_many([item for item, _future in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
            else:  # one bad call must not fail the others: each runs again alone
                for one in batch:
                    await self._run_batch([one])
            return
        except BaseException as error:
            for _item, future in batch:
                _settle(future, error=error)
            raise
        for (_item, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _settle(future: asyncio.Future[Any], *, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
