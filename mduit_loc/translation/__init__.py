"""MDUIT: multi-domain unsupervised image-to-image translation with appearance adaptive convolution.

Implements Jeong, Lee and Sohn's method (paper §2, §3.1): content encoder E_c, VGG-based appearance
filter encoder E_a, appearance-adaptive (grouped, per-sample) convolution f ⊗ W, generator G, image
and appearance discriminators D_i and D_a, and the contrastive projection head H whose output
z = H(E_c(I)) is the retrieval descriptor.

Modules: ``config`` (settings, presets ``tiny`` and ``paper``), ``networks``, ``adaptive_conv``,
``head``, ``losses``, ``pairing`` (per-epoch z-based source/target pairing, NCE negatives),
``data``, ``steps`` (one training step), ``trainer``, ``checkpoint``, ``curves``, ``distributed``,
``finish`` and ``model_io`` (the run folder; ``load_mduit(run_dir, device) -> MDUIT``), ``budget``
(wall-clock budget), ``api`` (``train(config, data, out, ...)`` for other modules), ``grid``,
and the commands ``cli_train`` / ``cli_translate``.
"""

__all__ = ["train", "load_mduit"]


def __getattr__(name: str):
    # Lazy, so that importing a light submodule (config) does not load the trainer.
    if name in ("train", "load_mduit"):
        from mduit_loc.translation import api

        return getattr(api, name)
    raise AttributeError(f"module 'mduit_loc.translation' has no attribute {name!r}")
