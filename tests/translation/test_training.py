"""Small end-to-end training runs: learning happens, outputs follow the contract, resume is exact."""
import csv
import json

import pytest
import torch

from .conftest import small_config
from mduit_loc.errors import ConfigMismatchError, MduitError
from mduit_loc.translation.checkpoint import last_checkpoint_path, load_checkpoint
from mduit_loc.translation.model_io import load_mduit, sha256_file
from mduit_loc.translation.trainer import TrainOptions, Trainer, lr_factor


def train(config, data, out, **options):
    options.setdefault("num_workers", 0)
    options.setdefault("progress", False)
    trainer = Trainer(config, TrainOptions(data=data, out=out, **options))
    return trainer, trainer.run()


def read_losses(run_dir):
    with open(run_dir / "losses.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_lr_schedule_is_constant_then_linear_to_zero():
    factors = [lr_factor(step, 10, 0.7) for step in range(11)]
    assert factors[:7] == [1.0] * 7
    assert factors[7:] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


def test_tiny_training_learns_and_writes_a_loadable_run(domain_data, tmp_path):
    config = small_config(max_steps=40, lr=1e-3, checkpoint_every=20)
    _, summary = train(config, domain_data, tmp_path / "run")
    rows = read_losses(tmp_path / "run")
    assert len(rows) == 40 and summary.steps == 40 and not summary.stopped_early
    first = sum(float(r["rec_self"]) for r in rows[:5]) / 5
    last = sum(float(r["rec_self"]) for r in rows[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    chance = 1 / (config.n_negatives + 1)
    assert sum(float(r["nce_acc"]) for r in rows[-10:]) / 10 > 2 * chance
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0

    run = tmp_path / "run"
    meta = json.loads((run / "run.json").read_text())
    assert meta["kind"] == "mduit" and meta["checksum"] == sha256_file(run / "model.pt")
    assert meta["domains"] == ["day", "night", "snow"] and meta["training"]["steps"] == 40
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt", "step_0000020.pt",
                                                                      "step_0000040.pt"]
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 40 and state["plan"].shape[1] == 4 + config.n_negatives

    model = load_mduit(run, "cpu")
    assert model.checksum == meta["checksum"] and model.image_size == (32, 32)
    images = torch.rand(2, 3, 32, 32)
    assert model.describe(images).shape == (2, config.descriptor_dim)
    filters = model.domain_filters()
    assert sorted(filters) == ["day", "night", "snow"]
    assert model.translate(images, filters["night"]).shape == images.shape
    assert model.domain_exemplars["night"][0].startswith("night/")

    (run / "model.pt").write_bytes((run / "model.pt").read_bytes() + b"x")
    with pytest.raises(ConfigMismatchError, match="checksum"):
        load_mduit(run)


def test_resume_equals_an_uninterrupted_run(domain_data, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        # 24 images, batch 4: 6 steps per epoch, so both runs cross an epoch boundary (new pairing).
        config = small_config(max_steps=9, checkpoint_every=4)
        full, _ = train(config, domain_data, tmp_path / "full")
        train(config, domain_data, tmp_path / "split", stop_after=5)
        with pytest.raises(MduitError, match="--resume"):
            train(config, domain_data, tmp_path / "split")
        resumed, summary = train(config, domain_data, tmp_path / "split", resume=True)
    finally:
        torch.use_deterministic_algorithms(False)
    assert summary.steps == 9
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in full.discriminators.state_dict().items():
        assert torch.equal(tensor, resumed.discriminators.state_dict()[name]), name
    a, b = load_checkpoint(last_checkpoint_path(tmp_path / "full")), load_checkpoint(last_checkpoint_path(tmp_path / "split"))
    assert torch.equal(a["plan"], b["plan"])
    assert read_losses(tmp_path / "full")[-1]["total_g"] == read_losses(tmp_path / "split")[-1]["total_g"]
    assert len(read_losses(tmp_path / "split")) == 9


@pytest.mark.parametrize("ablation", [{"use_i2i": False}, {"use_nce": False}])
def test_ablations_train(domain_data, tmp_path, ablation):
    config = small_config(max_steps=3, **ablation)
    _, summary = train(config, domain_data, tmp_path / "run")
    assert summary.steps == 3
    columns = read_losses(tmp_path / "run")[0]
    model = load_mduit(tmp_path / "run")
    if ablation.get("use_i2i") is False:
        assert "rec_self" not in columns and not model.can_translate
        with pytest.raises(MduitError, match="no-i2i"):
            model.translate(torch.rand(1, 3, 32, 32), torch.zeros(1, *config.filter_shape))
    else:
        assert "positive_l1" in columns and "nce" not in columns


def test_resume_refuses_changed_settings(domain_data, tmp_path):
    config = small_config(max_steps=4)
    train(config, domain_data, tmp_path / "run", stop_after=2)
    with pytest.raises(ConfigMismatchError, match="n_negatives"):
        train(small_config(max_steps=4, n_negatives=3), domain_data, tmp_path / "run", resume=True,
              explicit_settings={"n_negatives": 3})
