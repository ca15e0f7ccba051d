"""The run folder's files (issue 12): the checksum of the weights (item 10), written as one set (item 11),
one writer (item 12)."""
import json
import subprocess
import sys

import pytest
import torch

from mduit_loc.errors import ConfigMismatchError
from mduit_loc.output_lock import OutputBusyError
from mduit_loc.torch_io import sha256_file, state_dict_sha256
from mduit_loc.translation import api, finish
from mduit_loc.translation.model_io import load_mduit
from mduit_loc.translation.trainer import Trainer, TrainOptions

from .conftest import small_config


def train(data, out, steps: int = 2, **options):
    # compared bit for bit (checksums): on the CPU, also where CUDA is visible (its kernels are not deterministic)
    options = {"num_workers": 0, "progress": False, "device": torch.device("cpu"), **options}
    return Trainer(small_config(max_steps=steps, checkpoint_every=steps), TrainOptions(data=data, out=out, **options))


def test_identical_trainings_have_one_checksum_whatever_the_file_bytes(domain_data, tmp_path):
    """torch.save embeds the (random, temporary) file name: the checksum is of the tensors, not the file."""
    for name in ("a", "b"):
        train(domain_data, tmp_path / name).run()
    meta = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("a", "b")}
    assert meta["a"]["checksum"] == meta["b"]["checksum"] and meta["a"]["checksum_method"] == "state-dict-sha256-v1"
    assert sha256_file(tmp_path / "a" / "model.pt") != sha256_file(tmp_path / "b" / "model.pt")
    assert load_mduit(tmp_path / "b").checksum == meta["a"]["checksum"]


def test_an_older_run_recording_the_file_hash_still_loads(domain_data, tmp_path):
    run = tmp_path / "run"
    train(domain_data, run).run()
    meta = json.loads((run / "run.json").read_text())
    del meta["checksum_method"]
    meta["checksum"] = sha256_file(run / "model.pt")     # what runs recorded before the weights' checksum
    (run / "run.json").write_text(json.dumps(meta))
    assert load_mduit(run).checksum == meta["checksum"]  # its identity is unchanged: its indexes still accept it
    weights = torch.load(run / "model.pt", weights_only=True)
    torch.save(weights, run / "model.pt")                # the same weights, other bytes: cannot be told apart
    with pytest.raises(ConfigMismatchError, match="this older run records the SHA-256 of the model.pt bytes"):
        load_mduit(run)
    meta["checksum_method"] = "md5"
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match='run.json: expected "checksum_method": "state-dict-sha256-v1"'):
        load_mduit(run)


def test_a_run_killed_while_finishing_leaves_no_partial_set_and_resumes(domain_data, tmp_path, monkeypatch):
    run = tmp_path / "run"

    def dying_run_json(*args):
        raise KeyboardInterrupt   # model.pt and appearances.pt of the run are written by now

    monkeypatch.setattr(finish, "write_run_json", dying_run_json)
    with pytest.raises(KeyboardInterrupt):
        train(domain_data, run).run()
    monkeypatch.undo()
    assert not (run / "model.pt").exists() and not (run / "appearances.pt").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".mduit-staging-") or p.suffix == ".tmp"]
    train(domain_data, run, resume=True).run()   # the last checkpoint is the last step: only the finish runs again
    meta = json.loads((run / "run.json").read_text())
    assert meta["checksum"] == state_dict_sha256(torch.load(run / "model.pt", weights_only=True))


def test_a_second_training_into_a_held_run_folder_is_refused_before_any_work(domain_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    script = ("import sys; from mduit_loc.output_lock import output_lock\n"
              f"with output_lock({str(run)!r}, 'train'):\n    print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    monkeypatch.setattr(api, "Trainer", lambda *a, **k: pytest.fail("no work may start"))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=rf"another mduit-loc train \(pid {holder.pid}\) is writing to "):
            api.train(small_config(max_steps=1), domain_data, run, num_workers=0, progress=False, device="cpu")
    finally:
        holder.communicate("")
    assert sorted(p.name for p in run.iterdir()) == [".mduit-lock"]
