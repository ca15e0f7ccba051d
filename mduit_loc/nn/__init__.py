"""Network building blocks shared by the translation model and the baselines."""
