"""The comparison protocol: FAConvLSTM vs ConvLSTM vs EOF, measured side by side.

``faconvlstm compare`` / ``faconvlstm demo`` run it end to end. Its rooms, in the order the
work flows (see ``docs/protocol.md``)::

    config    CompareConfig, read by the training configs' typed loader
    plan      one RunSpec per (subject, seed); Layout owns the output folder
    heldout   the held-out windows and the ground truth (EvalData)
    subjects  the subjects as one Embedder protocol (learned models, EOF)
    runs      training / resume orchestration (faconvlstm.training.fit)
    measure   the metrics of faconvlstm.evaluation applied to a subject, typed results
    results   typed results, results.json, and the one metric registry METRICS
    report    report.md and figures from the typed results

With ``train.task: forecast`` the learned subjects are forecasters instead (rooms
``forecast`` — baselines, WeatherBench2 scores, typed results —, ``forecast_runs`` and
``forecast_report``).

The names below are imported on first use, so ``import faconvlstm.protocol`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "METRICS",
    "CompareConfig",
    "Layout",
    "Results",
    "compare",
    "load_compare_config",
    "write_report",
]

_EXPORTS = {
    "METRICS": "faconvlstm.protocol.results",
    "Results": "faconvlstm.protocol.results",
    "CompareConfig": "faconvlstm.protocol.config",
    "load_compare_config": "faconvlstm.protocol.config",
    "Layout": "faconvlstm.protocol.plan",
    "compare": "faconvlstm.protocol.runs",
    "write_report": "faconvlstm.protocol.report",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'faconvlstm.protocol' has no attribute {name!r}")
