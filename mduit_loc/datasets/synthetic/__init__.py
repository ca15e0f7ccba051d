"""The built-in synthetic multi-condition benchmark: a procedural town rendered under the ten
RobotCar Seasons conditions and written in the RobotCar Seasons layout with exact ground truth.

    from mduit_loc.datasets.synthetic import generate, get_preset
    generate("data/synth", get_preset("tiny"), seed=0)
"""
from mduit_loc.datasets.synthetic.generate import SynthResult, Town, generate
from mduit_loc.datasets.synthetic.presets import PRESETS, SynthPreset, get_preset

__all__ = ["generate", "get_preset", "PRESETS", "SynthPreset", "SynthResult", "Town"]
