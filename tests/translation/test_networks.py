"""Shapes and gradients of every module, initialisation, and the presets' architecture."""
import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.nn.vgg import VGG16Trunk
from mduit_loc.translation.config import preset
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.networks import appearance_discriminator, count_parameters, image_discriminator, init_weights

from .conftest import small_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_mduit(small_config(init_std=0.02), warn_untrained_vgg=False)


def test_module_shapes(model):
    config = model.config
    images = torch.rand(3, 3, 32, 48)
    content = model.content_encoder(images)
    assert content.shape == (3, config.content_channels, 8, 12)
    filters = model.appearance_encoder(images)
    assert filters.shape == (3, *config.filter_shape) == (3, 16, 1, 5, 5)
    assert model.generate(content, filters).shape == (3, 3, 32, 48)
    z = model.describe(images)
    assert z.shape == (3, config.descriptor_dim)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    out = model.translate(images, filters[:1])
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert image_discriminator(config)(images).shape[:2] == (3, 1)
    assert appearance_discriminator(config)(torch.cat([images, images], 1)).shape[:2] == (3, 1)


def test_translate_and_describe_work_at_sizes_off_the_downsampling_grid(model):
    images = torch.rand(2, 3, 37, 30)
    filters = model.appearance_filters(torch.rand(1, 3, 20, 20))
    assert model.translate(images, filters).shape == images.shape
    assert model.describe(images).shape == (2, model.descriptor_dim)


def test_every_module_gets_gradients(model):
    config = model.config
    images = torch.rand(2, 3, 32, 32)
    model.zero_grad()
    out = model.generate(model.content_encoder(images), model.appearance_encoder(images.flip(0)))
    (out.mean() + model.describe(images).sum()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        if "trunk" not in name and not name.endswith("pool.p"):
            assert parameter.grad.abs().sum() > 0, name
    for discriminator in (image_discriminator(config), appearance_discriminator(config)):
        discriminator(torch.rand(2, discriminator.in_channels, 32, 32)).mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())


def test_gaussian_initialisation_spares_norms_and_the_vgg_trunk():
    torch.manual_seed(0)
    model = build_mduit(small_config(init_std=0.001), warn_untrained_vgg=False)
    reference = VGG16Trunk(model.config.vgg_layer)
    weight = model.appearance_encoder.to_filter.weight
    assert weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.all(model.appearance_encoder.to_filter.bias == 0)
    trunk_std = model.appearance_encoder.trunk.features[0].weight.std().item()
    assert trunk_std == pytest.approx(reference.features[0].weight.std().item(), rel=0.3) and trunk_std > 0.01
    norms = [m for m in model.generator.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(torch.all(m.weight == 1) for m in norms)
    untouched = build_mduit(small_config(init_std=None), warn_untrained_vgg=False)
    assert untouched.appearance_encoder.to_filter.weight.std().item() > 0.01


def test_paper_preset_architecture():
    config = preset("paper")
    assert config.content_channels == 256 and config.filter_groups == 256
    assert config.filter_shape == (256, 1, 5, 5)  # 256 x 256 x 5 x 5 as 256 groups of 1 x 5 x 5
    assert config.vgg_layer == "relu3_3" and config.init_std == 0.001 and config.batch_size == 1
    assert (config.content_margin, config.nce_temperature, config.n_negatives) == (0.1, 0.07, 16)
    weights = (config.weight_rec_self, config.weight_rec_cycle, config.weight_con_content,
               config.weight_con_appearance, config.weight_nce)
    assert weights == (100, 100, 10, 1, 1)
    assert (config.lr, config.beta1, config.beta2, config.epochs, config.constant_lr_fraction) == \
        (2e-4, 0.5, 0.999, 50, 0.7)
    model = build_mduit(config, warn_untrained_vgg=False)
    counts = model.parameter_counts()
    assert counts["appearance_encoder_vgg_trunk"] == 1_735_488  # VGG-16 conv1_1 .. conv3_3
    assert model.appearance_encoder.to_filter.out_features == 256 * 25
    assert count_parameters(model) == sum(counts[k] for k in ("content_encoder", "appearance_encoder",
                                                              "generator", "head"))


def test_translator_preset_is_tiny_with_a_stronger_layout_loss_and_a_finer_content_map():
    tiny, translator = preset("tiny").to_dict(), preset("tiny-translator").to_dict()
    changed = {key for key in tiny if tiny[key] != translator[key]}
    assert changed == {"preset", "weight_paired", "weight_adv_image", "weight_adv_appearance", "n_downsample",
                       "encoder_base_channels"}
    assert (translator["weight_paired"], translator["target_choice"]) == (800.0, "pose")
    assert (translator["weight_adv_image"], translator["weight_adv_appearance"]) == (0.25, 0.25)
    # the same content channels (base * 2**n_downsample) on a map twice as fine
    assert translator["encoder_base_channels"] * 2 ** translator["n_downsample"] == \
        tiny["encoder_base_channels"] * 2 ** tiny["n_downsample"]
    model, reference = (build_mduit(preset(name), warn_untrained_vgg=False) for name in ("tiny-translator", "tiny"))
    assert model.downsample_factor == reference.downsample_factor // 2 == 2
    content = model.content(torch.rand(1, 3, 64, 64))
    assert content.shape[-2:] == (32, 32)
    assert tiny["target_choice"] == "pose"
    assert preset("tiny-translator").to_dict() == translator, "a fresh copy each time"
    with pytest.raises(MduitError, match="unknown preset"):
        preset("small")


def test_init_weights_none_is_a_no_op():
    layer = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    before = layer[0].weight.clone()
    init_weights(layer, None)
    assert torch.equal(before, layer[0].weight)


def test_generator_norm_setting():
    torch.manual_seed(0)
    plain = build_mduit(small_config(generator_norm="none", generator_coordinates=False),
                        warn_untrained_vgg=False).generator
    layer_norm = build_mduit(small_config(generator_coordinates=False), warn_untrained_vgg=False).generator
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in layer_norm.modules()) == 4   # 2 in the res block, 2 up
    stylised = torch.randn(1, 16, 8, 8)
    assert plain(stylised).shape == layer_norm(stylised).shape == (1, 3, 32, 32)
    with pytest.raises(MduitError, match="generator_norm"):
        small_config(generator_norm="batch")


def test_generator_coordinates_let_g_tell_positions_apart():
    """Reflect padding makes G blind to position: a uniform input gives a uniform image. With the
    coordinate channels the same input gives an image that varies over the frame."""
    torch.manual_seed(0)
    assert small_config().generator_coordinates   # the tiny recipe's G reads positions
    blind = build_mduit(small_config(generator_coordinates=False), warn_untrained_vgg=False).generator
    placed = build_mduit(small_config(generator_coordinates=True), warn_untrained_vgg=False).generator
    uniform = torch.full((2, 16, 8, 8), 0.3)
    blind_image, placed_image = blind(uniform), placed(uniform)
    assert blind_image.shape == placed_image.shape == (2, 3, 32, 32)
    assert float(blind_image.std(dim=(2, 3)).max()) < 1e-5
    assert float(placed_image.std(dim=(2, 3)).min()) > 1e-4
    assert torch.allclose(placed_image[0], placed_image[1])   # position, not the sample, decides


def test_generator_width_widens_only_g():
    torch.manual_seed(0)
    narrow = build_mduit(small_config(generator_coordinates=False), warn_untrained_vgg=False)
    wide = build_mduit(small_config(generator_width=32, generator_coordinates=False), warn_untrained_vgg=False)
    entry = wide.generator.layers[0][0]
    assert (entry.in_channels, entry.out_channels) == (16, 32)
    stylised = torch.randn(1, 16, 8, 8)
    assert wide.generator(stylised).shape == narrow.generator(stylised).shape == (1, 3, 32, 32)
    assert count_parameters(wide.content_encoder) == count_parameters(narrow.content_encoder)
    with pytest.raises(MduitError, match="generator_width"):
        small_config(generator_width=2)
