"""MDUIT: multi-domain unsupervised image-to-image translation with appearance adaptive convolution.

Implements Jeong, Lee and Sohn's method (paper §2, §3.1): content encoder E_c, VGG-based appearance
filter encoder E_a, appearance-adaptive (grouped, per-sample) convolution f ⊗ W, generator G, image
and appearance discriminators D_i and D_a, and the contrastive projection head H whose output
z = H(E_c(I)) is the retrieval descriptor.

Modules: ``config`` (settings, presets ``tiny`` and ``paper``), ``networks``, ``adaptive_conv``,
``head``, ``losses``, ``pairing`` (per-epoch z-based source/target pairing, NCE negatives),
``data``, ``steps`` (one training step), ``trainer``, ``checkpoint``, ``curves``, ``distributed``,
``finish`` and ``model_io`` (the run folder; ``load_mduit(run_dir, device) -> MDUIT``), ``budget``
(wall-clock budget), ``run_options``, ``translate``, ``grid``, ``api`` (``train``, ``load_mduit``,
``translate_images``: what other packages call) and the commands ``cli_train`` / ``cli_translate``.
"""
