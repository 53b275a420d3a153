"""Built-in tuning algorithms (``nni.algorithms.hpo``) and the registry that builds them from config."""
