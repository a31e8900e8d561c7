"""The worker: one event loop and a thread pool, like the Python worker process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any


class WorkerLoop:
    """An event loop in its own thread; async functions run on it, sync ones in its default thread pool."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._pool = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="functions-worker")
                self._loop.set_default_executor(self._pool)
                self._thread = threading.Thread(target=self._loop.run_forever, name="functions-worker", daemon=True)
                self._thread.start()
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.ensure_started())

    def stop(self, timeout: float) -> bool:
        """Let running invocations finish (cancel them after `timeout`); True when none was left behind."""
        with self._guard:
            loop, thread, pool = self._loop, self._thread, self._pool
            self._loop = self._thread = self._pool = None
        if loop is None or thread is None or pool is None:
            return True
        clean = asyncio.run_coroutine_threadsafe(_drain(timeout), loop).result(timeout + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        pool.shutdown(wait=clean, cancel_futures=True)
        if not thread.is_alive():
            loop.close()
        return clean


async def _drain(timeout: float) -> bool:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if not others:
        return True
    _, pending = await asyncio.wait(others, timeout=timeout)
    for task in pending:
        task.cancel()
    return not pending


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task and wait until it has ended."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
