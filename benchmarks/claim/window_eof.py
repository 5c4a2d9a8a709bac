"""The linear ceiling of a sequence code: per-day EOFs against window (extended) EOFs, on
the training years and the validation years of a finished comparison.

    python benchmarks/claim/window_eof.py runs/demo
    python benchmarks/claim/window_eof.py runs/demo --ranks 16 32 64 128

The protocol's EOF baseline codes each day on its own: E numbers per day, the leading E
√cos φ-weighted EOFs of the training days. A sequence autoencoder codes a window of T days
into T embeddings of width E, and its decoder sees all of them, so the best *linear* code
it could learn is not the per-day EOFs but the leading T·E EOFs of whole windows
(extended EOFs, as in multichannel singular spectrum analysis): by Eckart–Young the rank
T·E truncation of the windows is at least as good as E EOFs per day on the data it is
fitted to, because coding each day with E EOFs is one rank-T·E linear map of the window.

Whether that extra room carries to other years is the question. If the window EOFs
reconstruct the validation years better than per-day EOFs, there is linear temporal
structure a sequence model could use and the learned models fail to find it; if they do
not, per-day EOFs are already the best linear code of held-out years, and a learned code
must find nonlinear structure to beat them.

Fitting windows: every window of T consecutive training days (stride 1), the per-day EOFs
on the training days themselves (the protocol's ``EOFSubject``). Scored windows: the
protocol's training windows and its validation windows (``fit_check.validation_data``;
the test period is never opened). RMSE is the protocol's (WeatherBench2
latitude-weighted, normalised units, mean over channels), ``explained`` is
:math:`1 - \\mathrm{MSE}/\\mathrm{MS}_0` with MS₀ the anomalies' mean square, as in
``fit_check.py``.

Prints one Markdown row per code: ``per-day EOF (E)`` and ``window EOF (rank k)`` for
each ``--ranks`` (default T·E).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_check import PERIODS, _periods, _rmse, validation_data

from faconvlstm.models import EOFEmbedding
from faconvlstm.protocol.subjects import EOFSubject


def training_windows(fields: np.ndarray, window: int) -> np.ndarray:
    """Every window of ``window`` consecutive days of ``fields`` (T, C, H, W), stride 1:
    ``(T − window + 1, window, C, H, W)``; missing values (NaN) become 0 (zero anomaly)."""
    days = np.nan_to_num(np.asarray(fields, dtype=np.float64))
    view = np.lib.stride_tricks.sliding_window_view(days, window, axis=0)
    return np.moveaxis(view, -1, 1)  # (N, C, H, W, T) -> (N, T, C, H, W)


class WindowEOF:
    """The leading ``rank`` EOFs of whole windows: each window ``(T, C, H, W)`` is one state
    vector of T·C·H·W values (√cos φ-weighted, :class:`~faconvlstm.models.EOFEmbedding`
    with the T·C step-channels as its channels)."""

    def __init__(self, rank: int, lat: np.ndarray):
        self.eof, self.lat = EOFEmbedding(n_eofs=rank), lat

    @staticmethod
    def _flat(x: np.ndarray) -> np.ndarray:
        n, t, c, h, w = x.shape
        return x.reshape(n, t * c, h, w)

    def fit(self, windows: np.ndarray) -> "WindowEOF":
        self.eof.fit(self._flat(windows), lat=self.lat)
        return self

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """The rank-``rank`` truncation of windows ``x`` (N, T, C, H, W)."""
        z = self.eof.transform(self._flat(x), lat=self.lat)
        return self.eof.inverse_transform(z).reshape(x.shape)


def window_eof(out: Path, ranks: list[int] | None = None) -> dict[str, dict[str, float]]:
    """``{code: {"<period> rmse": ..., "<period> explained": ...}}`` for ``zero`` (the
    anomalies' RMS), the per-day EOFs of the comparison's width E and the window EOFs of
    each rank (default T·E)."""
    cfg, plan, data = validation_data(out)
    run = plan.reference
    n_eofs = cfg.eof_n_eofs or run.model.get("embed_dim", 32)
    window = run.data.window
    ranks = ranks or [window * n_eofs]
    periods = _periods(data)
    zero = {p: _rmse(np.zeros_like(x), x, v, data.lat) for p, (x, v, _) in periods.items()}

    def scores(reconstruct) -> dict[str, float]:
        row: dict[str, float] = {}
        for p, (x, valid, _) in periods.items():
            rmse = _rmse(reconstruct(np.where(valid, x, 0.0)), x, valid, data.lat)
            row[f"{p} rmse"] = rmse
            row[f"{p} explained"] = 1.0 - (rmse / zero[p]) ** 2
        return row

    out_rows = {"zero": {f"{p} rmse": zero[p] for p in PERIODS}}
    out_rows["zero"] |= {f"{p} explained": 0.0 for p in PERIODS}
    daily = EOFSubject.fit(data, n_eofs)
    out_rows[f"per-day EOF ({n_eofs})"] = scores(lambda x: daily.embed_and_reconstruct(x)[1])
    fitting = training_windows(data.train_fields, window)
    for rank in ranks:
        if rank > fitting.shape[0]:
            raise SystemExit(
                f"window_eof: rank {rank} is more than the {fitting.shape[0]} training "
                "windows; choose smaller --ranks"
            )
        code = WindowEOF(rank, data.lat).fit(fitting)
        out_rows[f"window EOF (rank {rank})"] = scores(code.reconstruct)
    return out_rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a finished compare folder")
    ap.add_argument("--ranks", type=int, nargs="+", help="window EOFs kept (default T·E)")
    args = ap.parse_args(argv)
    rows = window_eof(args.out, args.ranks)
    keys = [f"{p} {m}" for p in PERIODS for m in ("rmse", "explained")]
    print("| code | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")


if __name__ == "__main__":
    sys.exit(main())
