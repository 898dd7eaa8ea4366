"""The decode pool: per-image work in threads, for whole arrays or streamed in chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_collecting_errors", "prefetched_chunks"]

T = TypeVar("T")


def map_collecting_errors(
    work: Callable[[int], None], n: int, threads: int, catch: tuple[type[BaseException], ...]
) -> list[str]:
    """Call ``work(i)`` for ``i in range(n)`` (in ``threads`` threads when > 1).

    Exceptions of the types in ``catch`` do not stop the others: their messages
    are returned, sorted, so that the caller can report all bad images at once.
    """
    errors: list[str] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except catch as exc:
            errors.append(str(exc))

    if threads > 1 and n > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(guarded, range(n)))
    else:
        for i in range(n):
            guarded(i)
    return sorted(errors)


def prefetched_chunks(
    work: Callable[[int], T], n: int, chunk: int, threads: int, ahead: int = 2
) -> Iterator[list[T]]:
    """Yield ``[work(i) for i in chunk]`` for consecutive chunks of ``range(n)``.

    With ``threads > 1`` the ``ahead`` next chunks are computed in a thread pool
    while the caller works on the current one; otherwise everything runs in the
    calling thread, chunk by chunk. An exception of ``work`` is raised when its
    chunk is reached.
    """
    starts = range(0, n, int(chunk))
    if threads <= 1:
        for s in starts:
            yield [work(i) for i in range(s, min(n, s + chunk))]
        return
    with ThreadPoolExecutor(threads) as pool:

        def submit(start: int) -> list[Future[T]]:
            return [pool.submit(work, i) for i in range(start, min(n, start + chunk))]

        pending = [submit(s) for s in starts[:ahead]]
        following = iter(starts[ahead:])
        while pending:
            futures = pending.pop(0)
            nxt = next(following, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield [f.result() for f in futures]
