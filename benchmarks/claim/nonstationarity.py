"""How non-stationary the demo's synthetic record is, in the units the models see.

Per calendar year: the RMS of the normalised anomalies (training-period statistics and
day-of-year climatology, as ``compare_demo`` trains) and the RMSE of a 16-EOF
reconstruction fitted on the training years. Validation split only (train 2000-2001).

    python benchmarks/claim/nonstationarity.py
"""

import numpy as np

from faconvlstm.protocol.config import load_compare_config
from faconvlstm.protocol.heldout import prepare_data, year_of
from faconvlstm.protocol.plan import make_plan
from faconvlstm.protocol.subjects import EOFSubject

SPLIT = [
    "train.data.train_years=[2000,2001]",
    "train.data.val_years=[2002,2002]",
    "train.data.test_years=[2003,2003]",
]


def main() -> None:
    cfg = load_compare_config("compare_demo", SPLIT)
    data = prepare_data(make_plan(cfg, "unused").reference, 31)
    eof = EOFSubject.fit(data, 16)
    for name, x, times in (
        ("train", data.train_x, data.train_times),
        ("held-out", data.x, data.times),
    ):
        x = x.numpy()
        _, recon = eof.embed_and_reconstruct(x)
        years = year_of(times)
        for y in np.unique(years):
            sel = years == y
            rms = np.sqrt(np.mean(x[sel] ** 2, axis=(0, 2, 3)))  # per channel
            err = np.sqrt(np.mean((recon[sel] - x[sel]) ** 2))
            print(
                f"{name:8s} {y}: anomaly RMS per channel {np.round(rms, 3).tolist()}, "
                f"16-EOF recon RMSE {err:.3f} (unweighted)"
            )


if __name__ == "__main__":
    main()
