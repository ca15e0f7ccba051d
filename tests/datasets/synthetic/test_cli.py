"""``mduit-loc synth`` through ``mduit_loc.cli.main``: outputs, preview, and one-line errors."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from mduit_loc.cli import main
from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS
from mduit_loc.datasets.synthetic import generate, get_preset
from mduit_loc.datasets.synthetic.generate import RENDERING_MARKER
from mduit_loc.datasets.synthetic.preview import write_preview
from mduit_loc.errors import MduitError

TINY_ARGS = ["--preset", "tiny", "--size", "24", "--locations", "1", "--quiet"]


def test_synth_writes_a_dataset_and_a_preview(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--seed", "7", "--preview", *TINY_ARGS]) == 0
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest["seed"] == 7 and manifest["preset"]["image_size"] == 24 and manifest["locations"] == 1
    assert (out / "3D-models" / "all-merged" / "all.nvm").is_file()
    with Image.open(out / "preview.png") as preview:  # a header row, one row per condition, one column per camera
        assert preview.size == (120 + len(CAMERAS) * 24, 16 + len(ALL_CONDITIONS) * 24)
    assert "database" in capsys.readouterr().err


def test_synth_refuses_a_non_empty_folder_unless_it_is_its_own(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), *TINY_ARGS]) == 0
    capsys.readouterr()
    assert main(["synth", "--out", str(out), *TINY_ARGS]) == 2
    error = capsys.readouterr().err
    assert "not empty" in error and "--overwrite" in error and len(error.strip().splitlines()) == 1
    assert main(["synth", "--out", str(out), "--overwrite", "--seed", "1", *TINY_ARGS]) == 0
    assert json.loads((out / "synth.json").read_text())["seed"] == 1

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["synth", "--out", str(foreign), "--overwrite", *TINY_ARGS]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_synth_redoes_an_interrupted_render_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "synth"
    out.mkdir()
    (out / RENDERING_MARKER).write_text("rendering")
    (out / "images").mkdir()
    assert main(["synth", "--out", str(out), *TINY_ARGS]) == 2
    assert "interrupted" in capsys.readouterr().err
    assert main(["synth", "--out", str(out), "--overwrite", *TINY_ARGS]) == 0
    assert (out / "synth.json").is_file() and not (out / RENDERING_MARKER).exists()


def test_synth_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "file"), *TINY_ARGS]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--size", "8"], "image size must be >= 16"),
    (["--locations", "0"], "n_locations must be >= 1"),
])
def test_synth_rejects_bad_sizes_with_one_line(tmp_path, capsys, arguments, message):
    assert main(["synth", "--out", str(tmp_path / "x"), "--preset", "tiny", "--quiet", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.startswith("mduit-loc synth: error:")
    assert not (tmp_path / "x").exists()


def test_synth_rejects_an_unknown_preset(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", str(tmp_path / "x"), "--preset", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_preset_api_errors():
    with pytest.raises(MduitError, match="unknown synthetic preset 'huge'"):
        get_preset("huge")
    with pytest.raises(MduitError, match="unknown synthetic preset field"):
        get_preset("tiny").with_overrides(colour="red")
    with pytest.raises(MduitError, match="locations overlap"):
        get_preset("tiny", location_length_m=80.0)
    assert get_preset("small").image_size == 224 and get_preset("full").n_locations == 49


def test_preview_of_a_missing_location_is_a_clear_error(tmp_path):
    generate(tmp_path / "d", get_preset("tiny", image_size=24, n_locations=1), progress=False)
    with pytest.raises(MduitError, match="no overcast-reference images at location 2"):
        write_preview(tmp_path / "d", location=2)
