"""Image loading: resize, clear errors for missing/corrupt files, and the DataLoader dataset."""
import numpy as np
import pytest
import torch

from mduit_loc.datasets.images import ImageListDataset, list_images, load_image, save_image, to_tensor, to_uint8
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


# --- issue 12: 16-bit images, decompression bombs ----------------------------------------
def _png(values: np.ndarray, color_type: int, bit_depth: int = 16) -> bytes:
    """A minimal PNG writer, so that the test controls the bit depth whatever PIL writes."""
    import struct
    import zlib

    height = values.shape[0]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + values[y].astype(dtype).tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", values.shape[1], height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


LEVELS = np.array([[0, 257, 1000], [30000, 65535, 32768]], np.uint16)


def test_16_bit_grey_png_is_scaled_not_white(tmp_path):
    """A 16-bit PNG decoded to an all-white image (values clipped at 255), silently indexed."""
    (tmp_path / "grey16.png").write_bytes(_png(LEVELS, color_type=0))
    image = load_image(tmp_path / "grey16.png")
    expected = np.round(LEVELS / 257).astype(np.uint8)
    assert image.shape == (2, 3, 3)
    np.testing.assert_array_equal(image, np.repeat(expected[..., None], 3, axis=-1))
    assert load_image(tmp_path / "grey16.png", size=(4, 6)).shape == (4, 6, 3)


@pytest.mark.parametrize("color_type,channels", [(2, 3), (6, 4), (4, 2)])
def test_16_bit_colour_pngs_are_8_bit_rgb(tmp_path, color_type, channels):
    values = np.stack([LEVELS] * channels, axis=-1)
    (tmp_path / "c16.png").write_bytes(_png(values, color_type=color_type))
    image = load_image(tmp_path / "c16.png")
    assert np.abs(image[..., 0].astype(int) - np.round(LEVELS / 257)).max() <= 1


def test_float_images_are_refused_with_a_reason(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(FormatError, match="32-bit floating-point images are not supported") as info:
        load_image(tmp_path / "f.tiff")
    assert info.value.path == tmp_path / "f.tiff"


@pytest.mark.parametrize("pixels", [70, 130])  # above the limit (PIL warns), and above twice it (PIL raises)
def test_decompression_bomb_is_a_one_line_image_error_that_skip_skips(tmp_path, gradient, monkeypatch, pixels):
    """An image above PIL's limit printed a 26-line traceback and aborted a run even with --on-error skip."""
    from PIL import Image

    save_image(tmp_path / "good.png", gradient)  # 6x10: 60 pixels
    (tmp_path / "big.png").write_bytes(_png(np.zeros((pixels // 10, 10), np.uint8), color_type=0, bit_depth=8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60)
    with pytest.raises(FormatError, match="decompression-bomb limit") as info:
        load_image(tmp_path / "big.png")
    assert info.value.path == tmp_path / "big.png" and "\n" not in str(info.value)
    skipping = ImageListDataset([tmp_path / "good.png", tmp_path / "big.png"], size=(4, 8), on_error="skip")
    assert [ok for _, _, ok in (skipping[0], skipping[1])] == [True, False]
    with pytest.raises(FormatError, match="big.png"):
        ImageListDataset([tmp_path / "big.png"], size=(4, 8))[0]
