"""NNI's ``nni.common`` package: helpers shared by algorithms (see :mod:`nni.common.hpo_utils`)."""
