"""PyTorch CPU threads chosen by the library when the user sets none.

FA's step is many small, memory-bound ops. Each pays a thread synchronisation that is cheap
on an idle machine and very expensive when another job holds a core: measured on a 2-core
machine, one FA layer with two PyTorch threads ran 3× slower than with one thread while one
core was busy, and a whole model up to 8× slower (``docs/performance.md``, fact 5). PyTorch's
default (one thread per core) assumes the machine is ours alone. On a shared node it is not.

:func:`choose_threads` counts the cores this process may use and the other work that is
running on them now, and returns

.. math::

    n = \\max\\bigl(1,\\ \\min(n_\\text{now},\\ n_\\text{cores} − \\operatorname{round}(r))\\bigr)

where ``n_now`` is ``torch.get_num_threads()`` (so a user's own lower setting is never
raised), ``n_cores`` the usable cores (CPU affinity, capped by a cgroup v2 CPU quota), and
``r`` the median, over a few readings ~10 ms apart, of the runnable tasks on the machine that
are not threads of this process (Linux ``/proc/stat`` ``procs_running`` minus this
process's running threads). Where ``/proc`` is not readable (macOS, Windows), ``r`` is the
1-minute load average minus one when available, else 0.

Run configurations say ``threads: auto`` (the default) for this choice, an integer for a
fixed count, or ``null`` to leave PyTorch's setting as it is. ``auto`` also leaves it as it
is when ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set: the user chose.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import torch

__all__ = ["choose_threads", "runnable_others", "thread_setting", "usable_cores"]

#: Environment variables through which a user sets the thread count themselves.
USER_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 ``cpu.max``
    quota (rounded up), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable)."""
    n = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            # the state follows the parenthesised command name, which may hold spaces
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "R":
                n += 1
        except (OSError, IndexError):
            continue
    return n


def _procs_running() -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("procs_running"):
            return int(line.split()[1])
    raise OSError("no procs_running in /proc/stat")


def runnable_others(readings: int = 5, interval_s: float = 0.01) -> float:
    """Runnable tasks on the machine that are not threads of this process: the median of
    ``readings`` samples ``interval_s`` apart (``/proc/stat``; elsewhere the 1-minute load
    average minus one, or 0 where none is available)."""
    try:
        samples = []
        for i in range(readings):
            if i:
                time.sleep(interval_s)
            samples.append(max(0, _procs_running() - _own_running_threads()))
        return float(statistics.median(samples))
    except (OSError, ValueError):
        try:
            return max(0.0, os.getloadavg()[0] - 1.0)
        except (AttributeError, OSError):
            return 0.0


def choose_threads() -> int:
    """The thread count for this machine now (module docstring): PyTorch's current count,
    lowered by the cores other running work holds, at least 1."""
    free = usable_cores() - round(runnable_others())
    return max(1, min(torch.get_num_threads(), free))


def _user_chose() -> str | None:
    return next((v for v in USER_THREAD_VARS if os.environ.get(v)), None)


@contextmanager
def thread_setting(threads: int | str | None) -> Iterator[int]:
    """Run a block with ``threads`` PyTorch intra-op threads and restore the previous count.

    The same count limits the BLAS and OpenMP pools of NumPy, SciPy and scikit-learn inside
    the block (``threadpoolctl``): the evaluation's probes and k-means run there, and a
    BLAS pool of one thread per core collapses on a busy machine just as PyTorch's does
    (measured on the 2-core machine with one other job: one fit of the quadratic ridge
    probe took 29 ms with one BLAS thread and 58 ms with two; ``docs/performance.md``,
    "The evaluation's cost on long records").

    Args:
        threads: an integer ≥ 1 (that many), ``"auto"`` (:func:`choose_threads`, unless
            ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is set) or ``None`` (unchanged).

    Yields:
        The thread count in effect inside the block.
    """
    before = torch.get_num_threads()
    if threads == "auto":
        n = before if _user_chose() else choose_threads()
    elif threads is None:
        n = before
    elif isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        n = threads
    else:
        raise ValueError(f"threads must be an integer >= 1, 'auto' or null, got {threads!r}")
    torch.set_num_threads(n)
    try:
        with _native_pools(None if threads is None else n):
            yield n
    finally:
        torch.set_num_threads(before)


def _native_pools(n: int | None) -> AbstractContextManager:
    """The BLAS and OpenMP pools of NumPy, SciPy and scikit-learn (the evaluation's probes
    and clusterings) limited to ``n`` threads for a block (``threadpoolctl``), then
    restored; unchanged for ``None`` or where ``threadpoolctl`` is not installed (the
    PyTorch-only extra, which runs none of them)."""
    if n is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(n)
