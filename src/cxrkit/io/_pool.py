"""Run per-image work in a thread pool, collecting every failure before reporting."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["map_collecting_errors"]


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
