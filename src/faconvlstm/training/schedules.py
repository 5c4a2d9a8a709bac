"""The cosine learning-rate schedule, resumable exactly and re-planned when the run grows.

After ``t`` optimiser steps of a run planned for ``S`` steps in all, each parameter group
with base rate ``η_0`` trains at

.. math::

    η_t = η_{min} + (η_0 - η_{min}) \\, \\tfrac12 \\bigl(1 + \\cos(π \\, t / S)\\bigr),
    \\qquad 0 ≤ t ≤ S, \\qquad η_t = η_{min} \\text{ for } t > S,

the usual cosine annealing (``torch.optim.lr_scheduler.CosineAnnealingLR`` with
``T_max = S``). The rate is computed in closed form from the step count, never
recursively, so a run resumed from a checkpoint draws the same rates, bit for bit, as one
that was never interrupted.

Why a class of our own:

* The plan ``S`` is only known once the training data are set up. Lightning's
  ``estimated_stepping_batches`` in ``configure_optimizers`` would set them up before a
  resumed run restores the data loader's position, and the resumed epoch would replay from
  its start. :meth:`CosineSchedule.set_total` is called from ``on_train_start`` instead.
* A run resumed with a larger budget (more ``trainer.max_epochs`` or ``max_steps``) is
  re-planned from the step it resumes at, ``s``: for ``t ≥ s`` the rate is the one a run
  planned for the new total ``S'`` has at step ``t`` (the formula with ``S'``). A finished
  run therefore steps up from ``η_min`` to ``η_s`` of the longer plan (e.g. a quarter of
  the way from ``η_min`` to ``η_0`` when 2 epochs become 3) and anneals to ``η_min`` at
  ``S'`` — instead of training on at ``η_min`` or, as ``CosineAnnealingLR`` does past
  ``T_max``, climbing back to ``η_0``. The plans are kept in the scheduler's state
  (``plans``: ``[[first_step, S], ...]``), so every later resume reproduces them exactly.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["CosineSchedule"]


class CosineSchedule(LRScheduler):
    """Cosine annealing to ``min_lr`` over a plan of ``S`` optimiser steps (see the module).

    Args:
        optimizer: the wrapped optimiser; its groups' ``initial_lr`` are the base rates.
        min_lr: the floor ``η_min`` (same for every group).
        total: the plan ``S``, or ``None`` until :meth:`set_total` is called (the rate is
            the base rate until then).
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, min_lr: float = 0.0, total: float | None = None
    ) -> None:
        self.min_lr = float(min_lr)
        self.plans: list[list[int]] = []  # [first step, total steps S], in step order
        super().__init__(optimizer)
        if total is not None:
            self.set_total(total)

    def set_total(self, total: float) -> None:
        """Plan ``total`` optimiser steps in all, from the current step on.

        The first call defines the schedule; a later call with the plan it already has
        (a plain resume) changes nothing; another total re-plans from the current step.

        Raises:
            ValueError: ``total`` is not a finite positive number of steps.
        """
        if not math.isfinite(total) or total < 1:
            raise ValueError(
                f"optim.scheduler: cosine needs a finite number of optimiser steps, got "
                f"{total}; set trainer.max_epochs (or trainer.max_steps) to a positive number"
            )
        total = int(total)
        if not self.plans:
            self.plans = [[0, total]]
        elif self.plans[-1][1] != total:
            self.plans.append([self.last_epoch, total])
        rates = self._rates()
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        self._last_lr = rates

    def _rates(self) -> list[float]:
        """``η_t`` of every parameter group at ``t = last_epoch`` (closed form)."""
        step = self.last_epoch
        bases = [group["initial_lr"] for group in self.optimizer.param_groups]
        if not self.plans:
            return bases
        total = next(s for first, s in reversed(self.plans) if first <= step)
        if step >= total:
            return [self.min_lr] * len(bases)
        shape = 0.5 * (1.0 + math.cos(math.pi * step / total))
        return [self.min_lr + (base - self.min_lr) * shape for base in bases]

    def get_lr(self) -> list[float]:
        return self._rates()
