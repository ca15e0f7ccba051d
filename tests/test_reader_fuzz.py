"""Fuzz every text reader with mutations of valid golden files (issue 12).

Each reader gets, one mutation per example: CRLF line ends, a BOM, trailing whitespace (the result
must not change); a non-UTF-8 byte, a duplicated line, a token dropped or added, a number replaced
by NaN/inf/a huge value (a one-line error naming the file and that line, or the unchanged result);
random bytes and truncation (a one-line error naming the file, or some result). Never any other
exception type. The whole file runs in well under 30 s (about 15 s on two busy cores).
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.colmap_text import read_colmap_model
from mduit_loc.datasets.nvm import read_nvm, validate_nvm
from mduit_loc.errors import FormatError, MduitError
from mduit_loc.pose_files import read_pairs, read_poses
from mduit_loc.poses import Pose

DATA = Path(__file__).parent / "datasets" / "data"
GOLDEN = DATA / "golden"
MINI = DATA / "robotcar_mini"
POSES = b"""# method: test
night/rear/1.jpg 1 0 0 0 1 2 3
sun/left/2.jpg 0.7071067812 0 0 0.7071067812 -1 0 0.5
dawn/right/3.jpg 0.5 0.5 0.5 0.5 -4.25 1e-3 12
"""
PAIRS = b"""night/rear/1.jpg overcast-reference/rear/5.jpg
night/rear/1.jpg overcast-reference/rear/4.jpg
sun/left/2.jpg overcast-reference/left/1.jpg
"""
SCRATCH = Path(tempfile.mkdtemp(prefix="mduit-reader-fuzz-"))  # hypothesis runs many examples per test
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
# MDUIT_FUZZ_EXAMPLES=2000 for a deeper run; the default keeps the suite fast
FUZZ = settings(max_examples=int(os.environ.get("MDUIT_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@dataclasses.dataclass
class Target:
    """A reader fed one mutated file: ``folder`` is what the reader opens, ``relative`` the file mutated."""

    read: Callable[[Path], Any]
    source: Path                  # the folder holding the golden file(s), copied once to scratch
    relative: str

    def setup(self, name: str) -> Path:
        folder = SCRATCH / name
        if not folder.exists():
            shutil.copytree(self.source, folder)
        return folder


def _folder_of(name: str, content: bytes) -> Path:
    folder = SCRATCH / "sources" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "file.txt").write_bytes(content)
    return folder


def _golden(file_name: str) -> Path:
    folder = SCRATCH / "sources" / file_name
    if not folder.exists():
        folder.mkdir(parents=True)
        shutil.copy(GOLDEN / file_name, folder / "file.txt")
    return folder


TARGETS: dict[str, Target] = {
    "nvm": Target(lambda f: read_nvm(f / "file.txt"), _golden("model.nvm"), "file.txt"),
    "nvm_cameras_only": Target(lambda f: read_nvm(f / "file.txt", with_points=False), _golden("model.nvm"),
                               "file.txt"),
    "nvm_validate": Target(lambda f: validate_nvm(f / "file.txt"), _golden("model.nvm"), "file.txt"),
    "intrinsics": Target(lambda f: files.read_intrinsics_file(f / "file.txt"), _golden("rear_intrinsics.txt"),
                         "file.txt"),
    "extrinsics": Target(lambda f: files.read_extrinsics_file(f / "file.txt"), _golden("rear_extrinsics.txt"),
                         "file.txt"),
    "train_list": Target(lambda f: files.read_pose_matrix_file(f / "file.txt"), _golden("robotcar_v2_train.txt"),
                         "file.txt"),
    "test_ground_truth": Target(lambda f: files.read_pose_matrix_file(f / "file.txt"),
                                _golden("robotcar_v2_test_gt.txt"), "file.txt"),
    "test_list": Target(lambda f: files.read_name_list(f / "file.txt", "test list", require_condition=False),
                        _golden("robotcar_v2_test.txt"), "file.txt"),
    "location_list": Target(lambda f: files.read_name_list(f / "file.txt", "query list", require_condition=True),
                            _golden("queries_location_007.txt"), "file.txt"),
    "poses": Target(lambda f: read_poses(f / "file.txt"), _folder_of("poses", POSES), "file.txt"),
    "pairs": Target(lambda f: read_pairs(f / "file.txt"), _folder_of("pairs", PAIRS), "file.txt"),
    **{f"colmap_{name}": Target(read_colmap_model, GOLDEN / "colmap", f"{name}.txt")
       for name in ("cameras", "images", "points3D")},
    "colmap_images_without_points": Target(lambda f: read_colmap_model(f, with_points=False), GOLDEN / "colmap",
                                           "images.txt"),
    # the whole RobotCar Seasons reader, one of the mini dataset's text files mutated
    **{f"dataset:{relative}": Target(open_dataset, MINI, relative) for relative in (
        files.NVM_FILE, "intrinsics/rear_intrinsics.txt", "extrinsics/left_extrinsics.txt", files.TRAIN_FILE,
        files.TEST_FILE, f"{files.QUERY_LISTS_DIR}/queries_location_001.txt",
        f"{files.LOCATION_MODELS_DIR}/001_aligned/images.txt", f"{files.LOCATION_MODELS_DIR}/001_aligned/cameras.txt",
    )},
}


def _plain(value: Any) -> Any:
    """A comparable form of any reader's result (poses and arrays as nested lists)."""
    if isinstance(value, Pose):
        return ("pose", value.R.tolist(), value.t.tolist())
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return value.name
    return value


# --- mutations -----------------------------------------------------------------------------
SAME = "same"                      # the result must not change
ERROR_AT_LINE_OR_SAME = "line"     # an error naming the file and the mutated line, or the same result
ERROR_OR_SAME = "error_or_same"    # an error naming the file, or the same result
ANY = "any"                        # an error naming the file, or some result
_BAD_NUMBERS = ("nan", "NaN", "inf", "-inf", "1e400", "1e300", "-1e300", "99999999999999999999")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> tuple[str, bytes, str, int | None]:
    """(kind, mutated bytes, oracle, 1-based line of the mutation where one applies)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    content = [i for i, line in enumerate(lines) if line.strip()]
    kind = draw(st.sampled_from(["crlf", "bom", "trailing_whitespace", "all_equivalent", "non_utf8", "duplicate",
                                 "drop_token", "add_token", "bad_number", "random_bytes", "truncate"]))

    def joined(new_lines: list[bytes]) -> bytes:
        return b"\n".join(new_lines) + b"\n"

    if kind == "crlf":
        return kind, data.replace(b"\n", b"\r\n"), SAME, None
    if kind == "bom":
        return kind, b"\xef\xbb\xbf" + data, SAME, None
    if kind in ("trailing_whitespace", "all_equivalent"):
        pad = st.sampled_from([b" ", b"\t", b"  \t", b"\x0b", b"\x0c"])
        new = [line + draw(pad) if line.strip() and draw(st.booleans()) else line for line in lines]
        out = joined(new)
        if kind == "all_equivalent":
            out = b"\xef\xbb\xbf" + out.replace(b"\n", b"\r\n")
        return kind, out, SAME, None
    index = draw(st.sampled_from(content))
    line = lines[index]
    if kind == "non_utf8":
        column = draw(st.integers(0, len(line)))
        byte = bytes([draw(st.integers(0x80, 0xFF))])
        lines[index] = line[:column] + byte + line[column:]
        return kind, joined(lines), ERROR_AT_LINE_OR_SAME, index + 1
    if kind == "duplicate":
        lines.insert(index, line)
        return kind, joined(lines), ERROR_OR_SAME, None
    tokens = line.split()
    if kind == "drop_token" and len(tokens) >= 2:
        del tokens[draw(st.integers(0, len(tokens) - 1))]
        lines[index] = b" ".join(tokens)
        return kind, joined(lines), ERROR_OR_SAME, index + 1
    if kind == "add_token" or kind == "drop_token":
        tokens.insert(draw(st.integers(0, len(tokens))), draw(st.sampled_from([b"7", b"0", b"-1.5", b"x"])))
        lines[index] = b" ".join(tokens)
        return "add_token", joined(lines), ERROR_OR_SAME, None
    if kind == "bad_number":
        numeric = [i for i, token in enumerate(tokens) if _is_number(token.decode())]
        if numeric:
            tokens[draw(st.sampled_from(numeric))] = draw(st.sampled_from(_BAD_NUMBERS)).encode()
            lines[index] = b" ".join(tokens)
            return kind, joined(lines), ERROR_OR_SAME, index + 1
        return kind, data, SAME, None
    if kind == "random_bytes":
        position = draw(st.integers(0, len(data)))
        noise = draw(st.binary(min_size=1, max_size=4))
        replace = draw(st.booleans())
        return kind, data[:position] + noise + data[position + (len(noise) if replace else 0):], ANY, None
    position = draw(st.integers(0, len(data) - 1))
    return "truncate", data[:position], ANY, None


# --- the test ------------------------------------------------------------------------------
_BASELINES: dict[str, Any] = {}


def _baseline(name: str, target: Target, folder: Path) -> Any:
    if name not in _BASELINES:
        _BASELINES[name] = _plain(target.read(folder))
    return _BASELINES[name]


def _check_error(err: MduitError, folder: Path, mutated: Path, oracle: str, line: int | None, kind: str) -> None:
    message = str(err)
    assert "\n" not in message and "\r" not in message, f"{kind}: not one line: {message!r}"
    message.encode("utf-8")  # printable on a UTF-8 terminal (no lone surrogates)
    assert str(folder) in message, f"{kind}: the error names no file of the input: {message}"
    if isinstance(err, FormatError) and err.line is not None:
        assert f"{err.path}:{err.line}:" in message
    if kind == "non_utf8":
        assert isinstance(err, FormatError) and "UTF-8" in message, f"{kind}: {message}"
        assert (err.path, err.line) == (mutated, line), f"{kind}: wrong file or line: {message}"


@pytest.mark.parametrize("name", sorted(TARGETS))
@FUZZ
@given(data=st.data())
def test_every_text_reader_survives_mutations(name: str, data: st.DataObject) -> None:
    target = TARGETS[name]
    folder = target.setup(name.replace("/", "_").replace(":", "_"))
    mutated = folder / target.relative
    original = (target.source / target.relative).read_bytes()
    expected = _baseline(name, target, folder)
    kind, content, oracle, line = data.draw(mutations(original), label="mutation")
    mutated.write_bytes(content)
    try:
        try:
            result = target.read(folder)
        except MduitError as err:
            assert oracle != SAME, f"{kind}: the result must not change, got the error {err}"
            _check_error(err, folder, mutated, oracle, line, kind)
            return
        if oracle != ANY:
            assert _plain(result) == expected, f"{kind}: a silently different result"
    finally:
        mutated.write_bytes(original)
