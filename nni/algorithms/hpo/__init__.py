"""Built-in hyperparameter optimization tuners and assessors.

Import the algorithm modules directly (as with NNI), e.g.
``from nni.algorithms.hpo.tpe_tuner import TpeTuner``.
"""
