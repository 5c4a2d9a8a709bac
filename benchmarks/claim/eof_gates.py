"""The learned gates of a finished compare run with ``model.eof_path`` (docs/claim.md).

With the EOF path, ``z = p + γ_z z^learned`` and ``x̂ = EOF truncation + γ_x x̂^learned``
(docs/training.md, "A learned correction to the EOFs"). The gates say how far training moved
each model off the EOF code, and the size of the learned part beside the principal
components says how much of the embedding is learned:

    python benchmarks/claim/eof_gates.py /tmp/claim/eofpath_s3

prints one row per learned model and seed: ``γ_z``, ``γ_x``, and on the validation years'
windows ``rms(γ_z z^learned) / rms(p)`` and ``rms(γ_x x̂^learned) / rms(x)`` (the share
of the learned part in the embedding and in the reconstruction). Reads the checkpoints;
trains nothing, never opens the test period.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_check import validation_data

from faconvlstm.protocol.runs import measured_model


def gate_rows(out: Path) -> list[dict]:
    """One dict per learned run of the comparison in ``out`` whose model has an EOF path,
    measured on its validation years (the test period is never opened)."""
    _, plan, data = validation_data(out)
    rows = []
    for spec in plan.specs:
        if not spec.learned:
            continue
        model, _ = measured_model(spec)
        if not getattr(model, "eof_path", False):
            continue
        with torch.no_grad():
            res = model(data.x, times=data.phase, mask=data.valid)
            x = torch.where(data.valid, data.x, torch.zeros(()))
            pcs = model.eof_pcs(x, data.valid)
            linear = model.eof_reconstruct(pcs)
            learned_z = res["embeddings"] - pcs
            learned_x = res["recon"] - linear
        rows.append(
            {
                "model": spec.model,
                "seed": spec.seed,
                "gamma_z": float(model.eof_gate[0].detach()),
                "gamma_x": float(model.eof_gate[1].detach()),
                "z_share": float(learned_z.pow(2).mean().sqrt() / pcs.pow(2).mean().sqrt()),
                "x_share": float(learned_x.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a finished compare directory")
    args = parser.parse_args(argv)
    rows = gate_rows(args.out)
    if not rows:
        raise SystemExit(f"{args.out}: no learned model with model.eof_path")
    print("| model | seed | γ_z | γ_x | rms learned z / rms PCs | rms learned x̂ / rms x |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['seed']} | {r['gamma_z']:.3f} | {r['gamma_x']:.3f} | "
            f"{r['z_share']:.3f} | {r['x_share']:.3f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
