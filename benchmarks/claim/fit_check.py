"""Undertrained or not generalising? Reconstruction of a finished comparison on its
training years and on its validation years, beside the EOFs of equal width.

    python benchmarks/claim/fit_check.py runs/demo

Issue 14 reads "a nonlinear autoencoder with an E-dimensional bottleneck that reconstructs
held-out data worse than E EOFs is undertrained": the leading E EOFs are the best *linear*
E-dimensional code of the training period, so a converged nonlinear code should at least
match them there. This script separates the two explanations of a held-out loss:

* **training years** (the windows the models were fitted on): a learned model whose RMSE
  here is above the EOFs' has not reached the linear optimum on its own data —
  undertrained, or limited by its architecture;
* **validation years** (``train.data.val_years``, normalised with the training period's
  statistics, as every screen scores them): the gap that opens between the two columns is
  generalisation to a record whose variance grows (``nonstationarity.py``).

The test period is not read. RMSE is the protocol's reconstruction RMSE (WeatherBench2
latitude-weighted, normalised units, mean over channels) of every subject and seed; the
zero row is the RMS of the anomalies themselves (the training climatology as the
reconstruction), and ``explained`` is :math:`1 - \\mathrm{MSE}/\\mathrm{MS}_0`, the
fraction of that mean square a code reconstructs.

Prints one Markdown row per subject: the mean ± sd over seeds.
"""

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from faconvlstm.evaluation.quality import lat_weighted_rmse
from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.heldout import EvalData, prepare_data
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.runs import measured_model
from faconvlstm.protocol.subjects import SUBJECTS, EOFSubject, LearnedSubject

PERIODS = ("train", "validation")


def _rmse(recon: np.ndarray, x: np.ndarray, valid: np.ndarray, lat: np.ndarray) -> float:
    """Mean over channels of the latitude-weighted RMSE of ``recon`` (N, T, C, H, W)."""
    target = np.where(valid, x, np.nan)
    return float(lat_weighted_rmse(recon, target, lat=lat).mean())


def _periods(data: EvalData) -> dict[str, tuple]:
    """``{period: (x, valid, phase)}``: the training windows and the validation windows."""
    train_x = data.train_x.numpy()
    return {
        "train": (train_x, np.ones(train_x.shape, dtype=bool), data.train_phase),
        "validation": (data.x.numpy(), data.valid.numpy(), data.phase),
    }


def validation_data(out: Path) -> tuple[Any, Any, EvalData]:
    """``(compare config, plan, data)`` of the comparison in ``out`` with its *validation*
    years as the held-out windows: ``prepare_data`` cuts ``val_years`` when ``test_years``
    is unset, so the test period is never opened."""
    cfg = load_compare_config(out / "compare.yaml")
    plan = make_plan(cfg, out)
    run = plan.reference
    if run.data.val_years is None:
        raise SystemExit(f"fit_check: {out} has no train.data.val_years to score")
    run = dataclasses.replace(run, data=dataclasses.replace(run.data, test_years=None))
    return cfg, plan, prepare_data(run, cfg.evaluation.climatology_smooth_days)


def fit_check(out: Path) -> dict[str, list[dict[str, float]]]:
    """``{subject: [{"<period> rmse": ..., "<period> explained": ...}, one per seed]}``,
    with the subject ``zero`` (the anomalies' RMS) first."""
    cfg, plan, data = validation_data(out)
    run = plan.reference
    periods = _periods(data)
    zero = {p: _rmse(np.zeros_like(x), x, v, data.lat) for p, (x, v, _) in periods.items()}
    scores: dict[str, list[dict[str, float]]] = {
        "zero": [{f"{p} rmse": zero[p] for p in PERIODS} | {f"{p} explained": 0.0 for p in PERIODS}]
    }
    n_eofs = cfg.eof_n_eofs or run.model.get("embed_dim", 32)
    for spec in plan.specs:
        if SUBJECTS[spec.model].learned:
            model, _ = measured_model(spec)
            subject = LearnedSubject(model, data)
        else:
            subject = EOFSubject.fit(data, n_eofs)
        row: dict[str, float] = {}
        for p, (x, valid, phase) in periods.items():
            _, recon = subject.embed_and_reconstruct(x, phase)
            rmse = _rmse(recon, x, valid, data.lat)
            row[f"{p} rmse"] = rmse
            row[f"{p} explained"] = 1.0 - (rmse / zero[p]) ** 2
        scores.setdefault(spec.model, []).append(row)
    return scores


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a finished compare folder")
    args = ap.parse_args(argv)
    scores = fit_check(args.out)
    keys = [f"{p} {m}" for p in PERIODS for m in ("rmse", "explained")]
    print("| subject | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, rows in scores.items():
        cells = [np.array([r[k] for r in rows]) for k in keys]
        print(
            f"| {name} | "
            + " | ".join(
                f"{c.mean():.3f} ± {c.std(ddof=1) if c.size > 1 else 0:.3f}" for c in cells
            )
            + " |"
        )


if __name__ == "__main__":
    sys.exit(main())
