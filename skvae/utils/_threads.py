"""Independent pieces of work on a few threads, their results in order."""

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

# Items each worker thread may have queued beyond the one it runs: enough to
# keep every worker busy, few enough that the finished results waiting for
# an earlier one stay a few of them.
QUEUED_PER_THREAD = 2


def map_in_order(fn, items, n_threads, *, initializer=None, initargs=()):
    """Yield ``fn(item)`` for each of ``items`` in order, ``n_threads`` at once.

    One thread (or one item) runs them in the calling thread; more run them
    on as many worker threads (``initializer(*initargs)`` starts each),
    with a few items queued ahead so that memory stays bounded however many
    items there are. Worth it for work that releases the GIL: torch
    operators, NumPy's matrix products, partitions and sums. An exception
    raised by ``fn`` is raised here, and the items not started are dropped.
    """
    if n_threads <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    n_workers = min(n_threads, len(items))
    # Each worker is one of the threads: a BLAS call spreading over the
    # others too would contend with them (measured: no gain at all from a
    # second thread on NumPy's neighbour searches without this).
    with (
        one_blas_thread(),
        ThreadPoolExecutor(
            n_workers,
            thread_name_prefix="skvae",
            initializer=initializer,
            initargs=initargs,
        ) as pool,
    ):
        queued = deque()
        try:
            for item in items:
                queued.append(pool.submit(fn, item))
                if len(queued) > n_workers * QUEUED_PER_THREAD:
                    yield queued.popleft().result()
            while queued:
                yield queued.popleft().result()
        finally:
            for future in queued:
                future.cancel()


class SharedLimit:
    """A process-wide limit held while any of several overlapping callers is inside.

    ``set_limit()`` sets the limit and returns ``(value_before, restore)``;
    the first caller to enter sets it, the last to leave calls ``restore``,
    so overlapping callers (threads) cannot restore each other's limit as
    the value before.
    """

    def __init__(self, set_limit):
        self._set_limit = set_limit
        self._lock = threading.Lock()
        self._users = 0
        self._value_before = self._restore = None

    @contextmanager
    def hold(self):
        """Hold the limit in the block; yield the value before the first caller's."""
        with self._lock:
            if self._users == 0:
                self._value_before, self._restore = self._set_limit()
            self._users += 1
            value_before = self._value_before
        try:
            yield value_before
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._restore()
                    self._value_before = self._restore = None


_blas_controller = None


def _blas_to_one_thread():
    global _blas_controller
    if _blas_controller is None:
        # threadpoolctl finds the loaded BLAS libraries once (milliseconds);
        # a limit through the found controller costs tens of microseconds.
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    limiter = _blas_controller.limit(limits=1, user_api="blas")
    return None, limiter.restore_original_limits


_one_blas_thread = SharedLimit(_blas_to_one_thread)


def one_blas_thread():
    """Run the BLAS libraries (NumPy's matrix products) on one thread in the block."""
    return _one_blas_thread.hold()
