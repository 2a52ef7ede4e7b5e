"""In-process domain events: typed dataclasses and their subscribers.

Handlers run on the event loop. A plain function runs at once, inside
`publish`; a coroutine function is started as a task, so a slow subscriber
never delays the telephony reader. Tasks are tracked so shutdown can wait for
them and no write is lost.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger(__name__)


class Bus:
    def __init__(self) -> None:
        # (handler, is a coroutine function): asked once here, not on every publish, because the
        # telephony reader publishes on its hot path and inspect's answer is dozens of calls.
        self._handlers: dict[type, list[tuple[Callable, bool]]] = defaultdict(list)
        self._tasks: set[asyncio.Task] = set()

    def subscribe(self, event_type: type, handler: Callable) -> None:
        self._handlers[event_type].append((handler, inspect.iscoroutinefunction(handler)))

    def publish(self, event: object) -> None:
        for handler, is_coroutine in self._handlers.get(type(event), ()):
            if is_coroutine:
                task = asyncio.get_running_loop().create_task(self._run(handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            try:
                handler(event)
            except Exception:
                log.exception("bus handler failed", extra={"event": type(event).__name__})

    def track(self, task: asyncio.Task) -> None:
        """A background task of a subscriber's own that `drain` should wait for too."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(handler: Callable, event: object) -> None:
        try:
            await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bus handler failed", extra={"event": type(event).__name__})

    async def drain(self) -> None:
        """Wait for every handler task started so far (and those they start)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
