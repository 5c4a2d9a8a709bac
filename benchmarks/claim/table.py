"""The screen log (``OUT/screen.jsonl`` of ``screen.py``) as the Markdown table of docs/claim.md.

    python benchmarks/claim/table.py /tmp/claim/screen/screen.jsonl

The last line of each (setting, seeds) wins (a ``--remeasure`` supersedes the first
measurement of the same trained models).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screen import HEADLINE  # benchmarks/claim/screen.py: the metrics each row records

#: the representation metrics of the table (the screen's headline less the timings)
KEYS = tuple(k for k in HEADLINE if k not in ("silhouette", "train_seconds"))


def main(path: str) -> None:
    rows = {}
    for line in open(path):
        r = json.loads(line)
        rows[(r["setting"], len(r["seeds"]), r.get("fold", "2003"))] = r
    print(
        "| setting | scored year | seeds | wall (s) | model | "
        + " | ".join(KEYS)
        + " | final train / val loss |"
    )
    print("|---|---|---|---|---|" + "---|" * (len(KEYS) + 1))
    for (name, n, fold), r in rows.items():
        for model, m in r["metrics"].items():
            losses = r["final_losses"].get(model) or []
            loss = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in losses) or "–"
            vals = " | ".join("–" if m.get(k) is None else f"{m[k]:.3f}" for k in KEYS)
            print(f"| {name} | {fold} | {n} | {r['wall_s']:.0f} | {model} | {vals} | {loss} |")


if __name__ == "__main__":
    main(sys.argv[1])
