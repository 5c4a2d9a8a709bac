"""The screen log (``OUT/screen.jsonl`` of ``screen.py``) as the Markdown table of docs/claim.md.

    python benchmarks/claim/table.py /tmp/claim/screen/screen.jsonl

The last line of each (setting, seeds) wins (a ``--remeasure`` supersedes the first
measurement of the same trained models).
"""

import json
import sys

KEYS = (
    "ari_truth",
    "stability_cka",
    "probe_r2",
    "probe_r2_index",
    "probe_acc_regime",
    "recon_rmse",
)


def main(path: str) -> None:
    rows = {}
    for line in open(path):
        r = json.loads(line)
        rows[(r["setting"], len(r["seeds"]))] = r
    print(
        "| setting | seeds | wall (s) | model | " + " | ".join(KEYS) + " | final train / val loss |"
    )
    print("|---|---|---|---|" + "---|" * (len(KEYS) + 1))
    for (name, n), r in rows.items():
        for model, m in r["metrics"].items():
            losses = r["final_losses"].get(model) or []
            loss = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in losses) or "–"
            vals = " | ".join("–" if m.get(k) is None else f"{m[k]:.3f}" for k in KEYS)
            print(f"| {name} | {n} | {r['wall_s']:.0f} | {model} | {vals} | {loss} |")


if __name__ == "__main__":
    main(sys.argv[1])
