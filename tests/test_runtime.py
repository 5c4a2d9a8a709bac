"""faconvlstm.runtime: PyTorch threads chosen for the machine's load when the user sets none."""

import multiprocessing
import sys
import time

import pytest
import torch

from faconvlstm import runtime
from faconvlstm.runtime import choose_threads, runnable_others, thread_setting, usable_cores


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_user_vars(monkeypatch):
    for var in runtime.USER_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)


def test_usable_cores_is_at_least_one_and_at_most_the_machine():
    import os

    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_runnable_others_is_the_median_of_the_readings_minus_our_own_threads(monkeypatch):
    readings = iter([5, 9, 4, 5, 2])
    monkeypatch.setattr(runtime, "_procs_running", lambda: next(readings))
    monkeypatch.setattr(runtime, "_own_running_threads", lambda: 1)
    # others per reading: 4, 8, 3, 4, 1 -> median 4
    assert runnable_others(readings=5, interval_s=0.0) == 4.0


def test_runnable_others_falls_back_to_the_load_average_without_proc(monkeypatch):
    def missing():
        raise OSError("no /proc")

    monkeypatch.setattr(runtime, "_procs_running", missing)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (3.5, 0.0, 0.0))
    assert runnable_others(interval_s=0.0) == 2.5  # the load average minus ourselves


def _spin(seconds):  # pragma: no cover - child process
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_runnable_others_sees_jobs_that_hold_the_cpus():
    """Two spinning processes are runnable for the whole reading; the count is a floor
    (other jobs on a shared machine can only add to it)."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_spin, args=(20.0,), daemon=True) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.3)  # let both start spinning
        assert runnable_others(readings=7) >= 2.0
    finally:
        for p in procs:
            p.terminate()
            p.join()


@pytest.mark.parametrize(
    ("cores", "others", "now", "expected"),
    [
        (4, 0.0, 4, 4),  # idle machine: PyTorch's own count
        (4, 1.0, 4, 3),  # one core taken
        (4, 1.4, 4, 3),  # rounded
        (2, 2.0, 2, 1),  # both cores taken: still one thread
        (2, 7.0, 2, 1),  # oversubscribed: never below one
        (8, 0.0, 2, 2),  # a user's lower setting is never raised
    ],
)
def test_choose_threads_lowers_the_count_by_the_cores_others_hold(
    monkeypatch, cores, others, now, expected
):
    monkeypatch.setattr(runtime, "usable_cores", lambda: cores)
    monkeypatch.setattr(runtime, "runnable_others", lambda: others)
    torch.set_num_threads(now)
    assert choose_threads() == expected


def test_thread_setting_sets_and_restores_even_on_error():
    torch.set_num_threads(2)
    with thread_setting(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"), thread_setting(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with thread_setting(None) as n:
        assert n == 2 and torch.get_num_threads() == 2


def test_auto_uses_the_choice_unless_the_user_set_omp_num_threads(monkeypatch, no_user_vars):
    torch.set_num_threads(2)
    monkeypatch.setattr(runtime, "choose_threads", lambda: 1)
    with thread_setting("auto") as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with thread_setting("auto") as n:
        assert n == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, "two", True, 1.5])
def test_thread_setting_refuses_what_is_not_a_count(bad):
    with pytest.raises(ValueError, match="threads must be"):
        with thread_setting(bad):
            pass


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_thread_setting_limits_the_blas_pools_of_the_evaluation_and_restores_them():
    # scikit-learn's probes run on NumPy/SciPy's BLAS: one thread per core there collapses
    # on a busy machine as PyTorch's pool does, so `threads` holds for both
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np  # noqa: F401  (loads NumPy's BLAS, so that there is a pool to limit)

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if _blas_threads() != {2}:
            pytest.skip("this BLAS cannot run 2 threads here")
        with thread_setting(1):
            assert _blas_threads() == {1}
        assert _blas_threads() == {2}
        with thread_setting(None):  # null: left as it is
            assert _blas_threads() == {2}
