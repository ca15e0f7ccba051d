"""Image loading: resize, clear errors for missing/corrupt files, and the DataLoader dataset."""
import numpy as np
import pytest
import torch

from mduit_loc.datasets.images import (ImageListDataset, list_images, load_image, save_image, to_tensor,
                                       to_uint8)
from mduit_loc.errors import DataNotFoundError, FormatError


@pytest.fixture()
def gradient():
    """A 6x10 image whose red channel encodes the column and green the row."""
    rows, cols = np.mgrid[0:6, 0:10]
    return np.stack([cols * 25, rows * 40, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


def test_png_round_trip_is_exact(tmp_path, gradient):
    save_image(tmp_path / "g.png", gradient)
    loaded = load_image(tmp_path / "g.png")
    assert loaded.dtype == np.uint8 and loaded.shape == (6, 10, 3)
    np.testing.assert_array_equal(loaded, gradient)


def test_jpeg_round_trip_is_close(tmp_path, gradient):
    save_image(tmp_path / "g.jpg", gradient, quality=95)
    assert np.abs(load_image(tmp_path / "g.jpg").astype(int) - gradient).mean() < 6


def test_resize_takes_height_then_width(tmp_path, gradient):
    save_image(tmp_path / "g.png", gradient)
    small = load_image(tmp_path / "g.png", size=(3, 5))
    assert small.shape == (3, 5, 3)
    assert small[0, 0, 0] < small[0, -1, 0] and small[0, 0, 1] < small[-1, 0, 1]  # orientation kept


def test_grey_and_rgba_images_become_rgb(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 4), 9, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((4, 4, 4), 9, np.uint8)).save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "grey.png").shape == (4, 4, 3)
    assert load_image(tmp_path / "rgba.png").shape == (4, 4, 3)


def test_missing_and_corrupt_images_are_named(tmp_path, gradient):
    with pytest.raises(DataNotFoundError, match="image not found"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(FormatError, match="readable image") as info:
        load_image(tmp_path / "text.jpg")
    assert info.value.path == tmp_path / "text.jpg"
    save_image(tmp_path / "full.jpg", gradient)
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:200])
    with pytest.raises(FormatError, match="truncated.jpg"):
        load_image(tmp_path / "truncated.jpg")


def test_tensor_conversions(gradient):
    tensor = to_tensor(gradient)
    assert tensor.shape == (3, 6, 10) and tensor.dtype == torch.float32
    assert float(tensor.max()) <= 1.0 and tensor[0, 0, 1] == pytest.approx(25 / 255)
    np.testing.assert_array_equal(to_uint8(tensor), gradient)
    np.testing.assert_array_equal(to_uint8(tensor[None])[0], gradient)


def test_list_images_is_recursive_sorted_and_filtered(tmp_path, gradient):
    save_image(tmp_path / "b" / "2.png", gradient)
    save_image(tmp_path / "a.jpg", gradient)
    (tmp_path / "b" / "notes.txt").write_text("x")
    assert list_images(tmp_path) == [tmp_path / "a.jpg", tmp_path / "b" / "2.png"]
    with pytest.raises(DataNotFoundError, match="image folder not found"):
        list_images(tmp_path / "none")


def test_image_list_dataset_fails_or_skips_bad_images(tmp_path, gradient):
    save_image(tmp_path / "good.png", gradient)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    paths = [tmp_path / "good.png", tmp_path / "bad.jpg"]
    skipping = ImageListDataset(paths, size=(4, 8), on_error="skip")
    batch = next(iter(torch.utils.data.DataLoader(skipping, batch_size=2)))
    images, indices, ok = batch
    assert images.shape == (2, 3, 4, 8) and indices.tolist() == [0, 1] and ok.tolist() == [True, False]
    assert float(images[1].abs().sum()) == 0 and float(images[0].sum()) > 0
    with pytest.raises(FormatError, match="bad.jpg"):
        ImageListDataset(paths, size=(4, 8))[1]
    with pytest.raises(ValueError, match="on_error"):
        ImageListDataset(paths, size=(4, 8), on_error="ignore")
