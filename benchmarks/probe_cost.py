"""What the evaluation's probes cost on a long record, at one and two BLAS threads.

    python benchmarks/probe_cost.py --reference --md benchmarks/probe_cost_latest.md

Every probe of ``compare`` (``faconvlstm.protocol.measure.probes``) is scored by blocked
cross-validation by calendar year, and the quadratic and logistic probes choose their
penalty (and degree) by an inner leave-one-year-out inside each outer fold: with G years
that is G·(G−1) inner fits per candidate. On the 18 probe years of a 20-year record the
quadratic ridge probe ran 22 candidates × 306 inner sets through scikit-learn, one pipeline
fit each (the ``--reference`` row), and the logistic probes held one BLAS thread per core
on a machine whose other core was busy. The library now solves every candidate of a
fitting set from one eigendecomposition (``quadratic_probe_r2``), and ``threads`` limits
the BLAS pools too (``faconvlstm.runtime.thread_setting``).

The embeddings are synthetic and seeded, shaped like the 20-year record's (``--years``
years of ``--steps`` days, E = ``--dim``): a slow oscillator and four regimes read through
a random linear map, plus noise. Times are one call each (seconds, wall); the machine's
load is printed with them. With ``--reference`` the quadratic ridge probe is also run the
old way, and the two R² must agree to 1e-9.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from faconvlstm.evaluation import interpretability as probes


def embeddings(years: int, steps: int, dim: int, seed: int = 0):
    """``(z, oscillator, regime, year)`` of ``years·steps`` synthetic days."""
    rng = np.random.default_rng(seed)
    n = years * steps
    t = np.arange(n) / 365.0
    oscillator = np.sin(2 * np.pi * t / 3.7)
    regime = np.repeat(rng.integers(0, 4, size=n // 5 + 1), 5)[:n]  # 5-day spells
    signal = np.column_stack([oscillator, np.eye(4)[regime]])
    z = signal @ rng.normal(size=(signal.shape[1], dim)) + rng.normal(size=(n, dim))
    z[:, 0] += 0.5 * z[:, 1] ** 2  # something only a quadratic readout sees
    return z, oscillator, regime, np.repeat(np.arange(years), steps)


def reference_quadratic_r2(z, y, groups) -> float:
    """The quadratic ridge probe through scikit-learn: one pipeline fit per fitting set
    and candidate (what ``quadratic_probe_r2`` ran before)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline

    def probe(p):
        return make_pipeline(*probes._features(p[0]), Ridge(alpha=p[1]))

    params = [(d, a) for d in (1, 2) for a in probes.QUADRATIC_ALPHAS]
    pred = probes._nested_blocked_predict(probe, params, z, y, groups, r2_score)
    return float(r2_score(y, pred))


def _timed(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=int, default=18, help="probe years (groups)")
    ap.add_argument("--steps", type=int, default=344, help="days per year")
    ap.add_argument("--dim", type=int, default=16, help="embedding width E")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="BLAS threads")
    ap.add_argument("--reference", action="store_true", help="also the scikit-learn path")
    ap.add_argument("--md", type=Path, help="write the table to this Markdown file")
    args = ap.parse_args(argv)

    z, oscillator, regime, year = embeddings(args.years, args.steps, args.dim)
    cases: list[tuple[str, Callable[[], float]]] = [
        ("linear R²", lambda: probes.linear_probe_r2(z, oscillator, groups=year)),
        ("quadratic R²", lambda: probes.quadratic_probe_r2(z, oscillator, groups=year)),
        ("linear accuracy", lambda: probes.linear_probe_accuracy(z, regime, groups=year)),
        ("quadratic accuracy", lambda: probes.quadratic_probe_accuracy(z, regime, groups=year)),
    ]
    if args.reference:
        cases.insert(
            2,
            (
                "quadratic R², scikit-learn per fit",
                lambda: reference_quadratic_r2(z, oscillator, year),
            ),
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"<!-- python benchmarks/probe_cost.py {command} -->",
        f"{args.years} years × {args.steps} days, E = {args.dim}; "
        f"{os.cpu_count()} CPUs, 1-min load average {load:.1f} at the start",
        "",
        "| probe | "
        + " | ".join(f"{n} BLAS thread{'s' if n > 1 else ''}: s" for n in args.threads)
        + " | value |",
        "|---|" + "---|" * (len(args.threads) + 1),
    ]
    values: dict[str, float] = {}
    for name, fn in cases:
        seconds = []
        for n in args.threads:
            with threadpool_limits(n):
                values[name], s = _timed(fn)
            seconds.append(s)
        lines.append(
            f"| {name} | " + " | ".join(f"{s:.2f}" for s in seconds) + f" | {values[name]:.4f} |"
        )
    if args.reference:
        diff = abs(values["quadratic R²"] - values["quadratic R², scikit-learn per fit"])
        lines += ["", f"|quadratic R² − scikit-learn's| = {diff:.1e}"]
        if diff > 1e-9:
            print("\n".join(lines))
            print("the quadratic probe differs from the scikit-learn pipelines", file=sys.stderr)
            return 1
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.md:
        args.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
