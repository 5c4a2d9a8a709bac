"""The cosine schedule: the textbook curve, exact state round trips, re-planning."""

import math

import pytest
import torch

from faconvlstm.training.schedules import CosineSchedule


def _sched(total=None, lr=0.1, min_lr=0.01):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return opt, CosineSchedule(opt, min_lr=min_lr, total=total)


def _run(opt, sched, steps):
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_one_plan_is_cosine_annealing_to_min_lr():
    opt, sched = _sched(total=10)
    rates = _run(opt, sched, 12)
    expected = [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(11)]
    assert rates[:11] == pytest.approx(expected, rel=1e-12)  # closed form, rounding only
    assert rates[11] == 0.01  # past the plan: the floor, no warm restart


def test_state_round_trip_gives_bit_identical_rates():
    opt, sched = _sched(total=10)
    _run(opt, sched, 4)
    opt2, sched2 = _sched()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    sched2.set_total(10)  # what on_train_start does on resume: the same plan, no change
    assert sched2.plans == [[0, 10]]
    assert _run(opt2, sched2, 8) == _run(opt, sched, 8)


def test_a_larger_total_replans_from_the_current_step():
    opt, sched = _sched(total=8)
    _run(opt, sched, 8)
    sched.set_total(12)
    assert sched.plans == [[0, 8], [8, 12]]
    rates = _run(opt, sched, 4)
    assert rates == pytest.approx(
        [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * t / 12)) for t in range(8, 12)], rel=1e-12
    )


@pytest.mark.parametrize("total", [float("inf"), 0])
def test_an_unbounded_run_is_refused_with_the_keys_to_set(total):
    _, sched = _sched()
    with pytest.raises(ValueError, match=r"trainer\.max_epochs"):
        sched.set_total(total)
