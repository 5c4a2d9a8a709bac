"""The screen log (``OUT/screen.jsonl`` of ``screen.py``) as the Markdown table of docs/claim.md.

    python benchmarks/claim/table.py /tmp/claim/screen/screen.jsonl
    python benchmarks/claim/table.py /tmp/claim/screen/screen.jsonl --decide base

The last line of each (setting, seeds, fold) wins (a ``--remeasure`` supersedes the first
measurement of the same trained models). Where a run's ``results.json`` is still beside the
log, a metric is followed by its seed standard deviation (``0.253 ± 0.018``).

``--decide BASE`` adds the decision rule of docs/claim.md: for every setting scored on the
same folds (scored years) and seeds as ``BASE``, the mean over those folds of each FA
metric of :data:`RULE`, and whether the setting beats ``BASE`` on every one (higher is
better, except the reconstruction RMSE) — the condition for a setting to ship.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screen import HEADLINE  # benchmarks/claim/screen.py: the metrics each row records

#: the representation metrics of the table (the screen's headline less the timings)
KEYS = tuple(k for k in HEADLINE if k not in ("silhouette", "train_seconds"))

#: the metrics of the decision rule, and whether lower is better
RULE = {
    "ari_truth": False,
    "stability_cka": False,
    "probe_r2": False,
    "probe_r2_index": False,
    "probe_acc_regime": False,
    "recon_rmse": True,
}


def read_log(path: str | Path) -> dict[tuple[str, int, str], dict]:
    """``{(setting, n_seeds, fold): row}``, the last line of each key winning."""
    rows = {}
    for line in open(path):
        r = json.loads(line)
        rows[(r["setting"], len(r["seeds"]), r.get("fold", "2003"))] = r
    return rows


def _sds(log: Path, name: str, n: int, fold: str) -> dict[str, dict[str, float]]:
    """``{model: {metric: seed sd}}`` from the run's results.json, or {} if it is gone."""
    suffix = "" if fold == "2003" else f"_f{fold}"
    res = log.parent / f"{name}_s{n}{suffix}" / "results.json"
    if not res.exists():
        return {}
    models = json.loads(res.read_text())["models"]
    return {
        m: {k[: -len("_sd")]: v for k, v in r["summary"].items() if k.endswith("_sd")}
        for m, r in models.items()
    }


def decide(
    rows: dict[tuple[str, int, str], dict], base: str, model: str = "fa"
) -> tuple[dict[str, float], list[dict]]:
    """The decision rule against ``base``: ``(base means, verdicts)``, the base's
    ``{metric: mean over its folds}`` and one dict per other setting with ``folds``,
    ``means`` and ``ships`` (better on every metric of :data:`RULE`). Only settings scored
    on every fold and seed count of ``base`` are decided."""
    keys = {(n, f) for s, n, f in rows if s == base}
    if not keys:
        raise SystemExit(f"table.py: no row of the setting {base!r} in the log")
    folds = sorted(f for _, f in keys)

    def means(setting: str) -> dict[str, float]:
        return {
            k: float(np.mean([rows[(setting, n, f)]["metrics"][model][k] for n, f in keys]))
            for k in RULE
        }

    ref = means(base)
    out = []
    for setting in dict.fromkeys(s for s, _, _ in rows):
        if setting == base or not all((setting, n, f) in rows for n, f in keys):
            continue
        m = means(setting)
        better = [(m[k] < ref[k]) if low else (m[k] > ref[k]) for k, low in RULE.items()]
        out.append({"setting": setting, "folds": folds, "means": m, "ships": all(better)})
    return ref, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="a screen.jsonl")
    ap.add_argument("--decide", metavar="BASE", help="apply the decision rule against BASE")
    args = ap.parse_args(argv)
    rows = read_log(args.log)
    print(
        "| setting | scored year | seeds | wall (s) | model | "
        + " | ".join(KEYS)
        + " | final train / val loss |"
    )
    print("|---|---|---|---|---|" + "---|" * (len(KEYS) + 1))
    for (name, n, fold), r in rows.items():
        sds = _sds(args.log, name, n, fold)
        for model, m in r["metrics"].items():
            losses = r["final_losses"].get(model) or []
            loss = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in losses) or "–"
            cells = []
            for k in KEYS:
                if m.get(k) is None:
                    cells.append("–")
                    continue
                sd = sds.get(model, {}).get(k)
                cells.append(f"{m[k]:.3f}" + (f" ± {sd:.3f}" if sd else ""))
            vals = " | ".join(cells)
            print(f"| {name} | {fold} | {n} | {r['wall_s']:.0f} | {model} | {vals} | {loss} |")
    if args.decide:
        print()
        print("| setting (FA, mean over folds) | " + " | ".join(RULE) + " | ships |")
        print("|---|" + "---|" * (len(RULE) + 1))
        ref, verdicts = decide(rows, args.decide)
        print(f"| {args.decide} | " + " | ".join(f"{ref[k]:.3f}" for k in RULE) + " | – |")
        for v in verdicts:
            cells = " | ".join(f"{v['means'][k]:.3f}" for k in RULE)
            print(f"| {v['setting']} | {cells} | {'yes' if v['ships'] else 'no'} |")


if __name__ == "__main__":
    main()
