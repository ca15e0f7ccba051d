"""``mduit-loc train`` and ``mduit-loc translate`` end to end, and their errors."""
import json

import numpy as np
from PIL import Image

from mduit_loc.cli import main
from mduit_loc.translation.grid import HEADER_GAP

from .conftest import TEST_SETTINGS


def settings_args(**overrides):
    args = []
    for key, value in {**TEST_SETTINGS, **overrides}.items():
        text = "x".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def test_train_then_translate(domain_data, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(domain_data), "--out", str(run), "--max-steps", "4", "--no-progress",
                 "--num-workers", "0", "--device", "cpu", *settings_args()])
    assert code == 0
    printed = capsys.readouterr().out
    assert "24 images in 3 domains" in printed and "training finished: 4/4 steps" in printed
    assert json.loads((run / "run.json").read_text())["config"]["max_steps"] == 4

    listing = tmp_path / "sources.txt"
    listing.write_text("# night sources\ndata/night/place000.png\n\ndata/night/place001.png\n")
    out = tmp_path / "translated"
    code = main(["translate", "--model", str(run), "--images", str(listing), str(domain_data / "snow"),
                 "--appearance", str(domain_data / "day" / "place002.png"), "domain:night", "--out", str(out),
                 "--grid-limit", "4", "--device", "cpu"])
    assert code == 0
    sources, appearances = 2 + 8, 2
    assert len(list(out.glob("*__*.png"))) == sources * appearances
    assert (out / "000_place000__00_place002.png").is_file()
    assert (out / "009_place007__01_domain-night.png").is_file()
    lines = (out / "translations.csv").read_text().splitlines()
    assert lines[0] == "source,appearance,output" and len(lines) == 1 + sources * appearances
    grid = np.asarray(Image.open(out / "grid.png"))
    # grid-limit 4 sources plus the exemplar row; the source column plus the appearances; each image
    # upscaled to 192 px (the layout itself is tested in test_grid.py)
    rows, columns = 4 + 1, appearances + 1
    assert grid.shape[0] > 192 * rows and 192 * columns + 2 * HEADER_GAP < grid.shape[1] < 192 * (columns + 1.5)


def test_user_errors_are_one_line(domain_data, tmp_path, capsys):
    assert main(["train", "--data", str(domain_data), "--out", str(tmp_path / "r"), "--set", "no_such=1"]) == 2
    assert "unknown setting 'no_such'" in capsys.readouterr().err
    assert main(["train", "--data", str(domain_data), "--out", str(tmp_path / "r"), "--set", "paired_norm=l3"]) == 2
    assert "paired_norm must be one of ('l1', 'l2'), got 'l3'" in capsys.readouterr().err
    assert main(["train", "--data", str(domain_data / "day"), "--out", str(tmp_path / "r")]) == 2
    assert "domain" in capsys.readouterr().err
    listing = tmp_path / "list.txt"
    listing.write_text("missing.png\n")
    assert main(["translate", "--model", str(tmp_path / "nothing"), "--images", str(listing),
                 "--appearance", str(listing), "--out", str(tmp_path / "o")]) == 2
    assert "run.json" in capsys.readouterr().err


def test_list_files_name_the_missing_line(tmp_path):
    import pytest

    from mduit_loc.errors import DataNotFoundError
    from mduit_loc.translation.translate import expand_inputs

    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n\nmissing.png\n")
    with pytest.raises(DataNotFoundError, match=r"list.txt:3"):
        expand_inputs([str(listing)])


def test_train_flags_map_to_settings(tmp_path):
    import argparse

    from mduit_loc.translation import cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--preset", "paper",
                              "--time-budget-min", "2.5", "--max-steps", "100", "--no-i2i", "--no-nce",
                              "--threads", "1", "--no-test-queries", "--set", "nce_temperature=0.1"])
    config, settings = cli_train.build_config(args)
    assert (config.time_budget_min, config.max_steps, config.use_i2i, config.use_nce) == (2.5, 100, False, False)
    assert config.nce_temperature == 0.1 and config.content_channels == 256
    assert set(settings) == {"time_budget_min", "max_steps", "use_i2i", "use_nce", "nce_temperature"}
    assert args.threads == 1 and args.no_test_queries


def test_list_files_are_read_like_every_text_file(tmp_path):
    """Issue 12 (phase A leftover): a bad byte in an image list is named by file and line."""
    import pytest

    from mduit_loc.errors import FormatError
    from mduit_loc.translation.translate import expand_inputs

    listing = tmp_path / "list.txt"
    listing.write_bytes(b"# images\n\xff.png\n")
    with pytest.raises(FormatError, match=r"list.txt:2: expected UTF-8 text"):
        expand_inputs([str(listing)])
