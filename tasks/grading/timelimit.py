"""A per-call time limit for graders that works in any thread.

math-verify's own timeout uses `signal.alarm`, which only works in the main thread (it raises in a
worker thread). Here: in the main thread a `SIGALRM` interval timer (cheap, ~µs); in any other
thread the call runs in a one-process pool that is killed and replaced when the limit passes, so a
runaway sympy simplification cannot keep running. Functions given to `run` must be picklable
(module-level) for the second path.
"""
from __future__ import annotations

import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable


class GradingTimeout(BaseException):
    """A BaseException (like KeyboardInterrupt) on purpose: parsers catch `Exception` all over (latex2sympy,
    math-verify's extraction loop), and a timeout they swallowed would let the call run on unbounded."""


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1)
        return _pool


def _kill_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            for proc in list(getattr(_pool, "_processes", {}).values()):
                proc.kill()  # a stuck worker does not stop on shutdown() alone
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


def _alarm(signum, frame):
    raise GradingTimeout()


def run(fn: Callable[..., Any], *args: Any, seconds: float) -> Any:
    """`fn(*args)`, or GradingTimeout after `seconds`."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    future = _get_pool().submit(fn, *args)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        _kill_pool()
        raise GradingTimeout() from None
