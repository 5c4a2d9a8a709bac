"""The probes of a finished comparison, scored on its training years only.

    python benchmarks/claim/probe_check.py runs/demo

For every subject and seed of the comparison in DIR (trained checkpoints and its
``compare.yaml``), the oscillator, box-index and regime probes — linear and quadratic —
are fitted and scored by blocked cross-validation over the calendar years of the
*training* windows alone. The evaluation period is never embedded, so this checks the
design of a probe (does the quadratic readout read at least what the linear one does?)
without touching the test period that the comparison's table reports.

Prints one Markdown row per subject: the mean ± sd over seeds of each probe.

    python benchmarks/claim/probe_check.py runs/demo --by-position

scores the linear probes on the embeddings of one window position at a time (the steps
t = 0..T-1 of the training windows, each its own sample set): does a slow signal sit in
every step's code, or only in some? A recurrent decoder lets a model keep a slowly
varying part of the field in the code of one step per window (docs/claim.md, "A decoder
without memory"). One row per subject and probe: the mean over seeds at each position.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from faconvlstm.evaluation.interpretability import (
    linear_probe_accuracy,
    linear_probe_r2,
    quadratic_probe_accuracy,
    quadratic_probe_r2,
)
from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.heldout import driver_index, prepare_data, year_of
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.runs import measured_model
from faconvlstm.protocol.subjects import SUBJECTS, EOFSubject, LearnedSubject

PROBES = (
    ("oscillator", "linear", linear_probe_r2),
    ("oscillator", "quadratic", quadratic_probe_r2),
    ("box index", "linear", linear_probe_r2),
    ("box index", "quadratic", quadratic_probe_r2),
    ("regime", "linear", linear_probe_accuracy),
    ("regime", "quadratic", quadratic_probe_accuracy),
)


def training_year_probes(out: Path, by_position: bool = False) -> dict[str, list[dict[str, float]]]:
    """``{subject: [{"<target> <kind>": score}, one per seed]}`` over the training years;
    with ``by_position`` the linear probes only, keyed ``"<target> linear t=<t>"``, each
    fitted and scored on the embeddings of window position t alone."""
    cfg = load_compare_config(out / "compare.yaml")
    plan = make_plan(cfg, out)
    ev = cfg.evaluation
    data = prepare_data(plan.reference, ev.climatology_smooth_days, ev.targets, ev.labels)
    years = year_of(data.train_times.ravel())
    if np.unique(years).size < 2:
        raise SystemExit(
            f"probe_check: {out} trains on one calendar year ({years[0]}); blocked "
            "cross-validation over the training years needs at least 2 "
            "(train.data.train_years)"
        )
    shape = data.train_x.shape[-3:]
    targets = {
        "oscillator": data.train_oscillator,
        "box index": driver_index(data, data.train_x.numpy().reshape(-1, *shape)),
        "regime": data.train_regime,
    }
    n_eofs = cfg.eof_n_eofs or plan.reference.model.get("embed_dim", 32)
    n_windows, steps = data.train_x.shape[:2]
    probes = [p for p in PROBES if targets[p[0]] is not None]
    if by_position:  # sample i·T + t is window i, step t
        probes = [p for p in probes if p[1] == "linear"]
        by_step = {
            t: np.asarray(y).reshape(n_windows, steps) for t, y in targets.items() if y is not None
        }
        years_w = years.reshape(n_windows, steps)
    scores: dict[str, list[dict[str, float]]] = {}
    for spec in plan.specs:
        if SUBJECTS[spec.model].learned:
            model, _ = measured_model(spec)
            subject = LearnedSubject(model, data)
        else:
            subject = EOFSubject.fit(data, n_eofs)
        z = subject.embed(data.train_x, data.train_phase)
        if by_position:
            z_w = z.reshape(n_windows, steps, -1)
            row = {
                f"{target} {kind} t={t}": probe(
                    z_w[:, t], by_step[target][:, t], groups=years_w[:, t]
                )
                for target, kind, probe in probes
                for t in range(steps)
            }
        else:
            row = {
                f"{target} {kind}": probe(z, targets[target], groups=years)
                for target, kind, probe in probes
            }
        scores.setdefault(spec.model, []).append(row)
    return scores


def print_by_position(scores: dict[str, list[dict[str, float]]]) -> None:
    """One Markdown row per subject and probe: the seeds' mean at each window position."""
    keys = list(next(iter(scores.values()))[0])
    names = list(dict.fromkeys(k.split(" t=")[0] for k in keys))
    steps = len(keys) // len(names)
    print("| subject | probe | " + " | ".join(f"t={t}" for t in range(steps)) + " |")
    print("|---|---|" + "---|" * steps)
    for subject, rows in scores.items():
        for name in names:
            means = [np.mean([r[f"{name} t={t}"] for r in rows]) for t in range(steps)]
            print(f"| {subject} | {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a finished compare folder")
    ap.add_argument(
        "--by-position",
        action="store_true",
        help="linear probes on each window position's embeddings alone",
    )
    args = ap.parse_args(argv)
    scores = training_year_probes(args.out, by_position=args.by_position)
    if args.by_position:
        print_by_position(scores)
        return
    keys = list(next(iter(scores.values()))[0])
    print("| subject | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
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
