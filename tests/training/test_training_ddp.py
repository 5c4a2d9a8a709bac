"""``trainer.strategy: ddp`` on two CPU processes (gloo): disjoint shards, one checkpoint writer.

Lightning's DDP launcher re-runs the training script once per extra rank, so the run goes
through a script file. Each rank records the window indices it trained on; the checkpoint
writer is wrapped to record which rank wrote.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from faconvlstm.training import load_checkpoint

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import lightning as L
    import faconvlstm.training.checkpoint as ck
    from faconvlstm.training import fit

    out = Path(sys.argv[2])
    _save = ck.atomic_torch_save

    def logged_save(obj, path):
        with open(out / f"saves_rank{os.environ.get('LOCAL_RANK', '0')}.log", "a") as fh:
            fh.write(f"{path}\\n")
        _save(obj, path)

    ck.atomic_torch_save = logged_save

    class Record(L.Callback):
        def __init__(self):
            self.seen = []
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append([trainer.current_epoch, batch["index"].tolist()])
        def on_train_end(self, trainer, pl_module):
            path = out / f"seen_rank{trainer.global_rank}.json"
            path.write_text(json.dumps({"world": trainer.world_size, "seen": self.seen}))

    out.mkdir(parents=True, exist_ok=True)
    fit(sys.argv[1], out=out, callbacks=[Record()])
""")

CONFIG = {
    "seed": 0,
    "data": {
        "source": "synthetic",
        "synthetic": {"n_years": 2, "nlat": 8, "nlon": 16},
        "window": 6,
        "stride": 8,
        "train_years": [2000, 2000],
        "val_years": [2001, 2001],
        "batch_size": 4,
    },
    "model": {"cell": "fa", "filters": [4], "embed_dim": 8},
    "trainer": {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp",
        "max_epochs": 2,
        "limit_val_batches": 2,
        "enable_progress_bar": False,
    },
    "checkpoint": {"every_n_train_steps": 2},
}


def test_two_gloo_ranks_train_on_disjoint_shards_and_one_writes_checkpoints(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, str(script), str(config), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-4000:]

    ranks = [json.loads((out / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    for epoch in (0, 1):
        shards = [{i for e, batch in r["seen"] if e == epoch for i in batch} for r in ranks]
        assert shards[0] and shards[1]
        assert not shards[0] & shards[1], f"ranks overlap in epoch {epoch}"
        assert len(shards[0]) == len(shards[1])
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"])  # same number of steps

    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (out / "saves_rank1.log").exists(), "rank 1 wrote a checkpoint"
    saves = (out / "saves_rank0.log").read_text().split()
    assert saves and all(Path(s).parent == out / "checkpoints" for s in saves)
    ckpt = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == len(ranks[0]["seen"])
