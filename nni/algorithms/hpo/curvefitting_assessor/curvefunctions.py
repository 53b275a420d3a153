"""The 12 learning-curve families of NNI's Curvefitting assessor (NNI's names, formulas,
parameter orders and default parameters; see Domhan et al., 2015).

``all_models[name]`` is the function ``f(x, *params)``, ``model_para[name]`` its default
parameters (used until a fit replaces them) and ``model_para_num[name]`` their count;
``curve_combination_models`` lists the families in NNI's order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["all_models", "model_para", "model_para_num", "curve_combination_models", "vap", "pow3", "linear",
           "logx_linear", "dr_hill_zero_background", "log_power", "pow4", "mmf", "exp4", "ilog2", "weibull",
           "janoschek"]

curve_combination_models = ["vap", "pow3", "linear", "logx_linear", "dr_hill_zero_background", "log_power",
                            "pow4", "mmf", "exp4", "ilog2", "weibull", "janoschek"]


def vap(x, a, b, c):
    """Vapor pressure: ``exp(a + b / x + c * log(x))``."""
    return np.exp(a + b / x + c * np.log(x))


def pow3(x, c, a, alpha):
    """``c - a * x ** -alpha``."""
    return c - a * x ** (-alpha)


def linear(x, a, b):
    """``a * x + b``."""
    return a * x + b


def logx_linear(x, a, b):
    """``a * log(x) + b``."""
    return a * np.log(x) + b


def dr_hill_zero_background(x, theta, eta, kappa):
    """``theta * x ** eta / (kappa ** eta + x ** eta)``."""
    return (theta * x ** eta) / (kappa ** eta + x ** eta)


def log_power(x, a, b, c):
    """Logistic power: ``a / (1 + (x / exp(b)) ** c)``."""
    return a / (1.0 + (x / np.exp(b)) ** c)


def pow4(x, alpha, a, b, c):
    """``c - (a * x + b) ** -alpha``."""
    return c - (a * x + b) ** (-alpha)


def mmf(x, alpha, beta, kappa, delta):
    """Morgan-Mercer-Flodin: ``alpha - (alpha - beta) / (1 + (kappa * x) ** delta)``."""
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def exp4(x, c, a, b, alpha):
    """``c - exp(-a * x ** alpha + b)``."""
    return c - np.exp(-a * (x ** alpha) + b)


def ilog2(x, c, a):
    """``c - a / log(x)``."""
    return c - a / np.log(x)


def weibull(x, alpha, beta, kappa, delta):
    """Weibull: ``alpha - (alpha - beta) * exp(-(kappa * x) ** delta)``."""
    return alpha - (alpha - beta) * np.exp(-(kappa * x) ** delta)


def janoschek(x, a, beta, k, delta):
    """Janoschek: ``a - (a - beta) * exp(-k * x ** delta)``."""
    return a - (a - beta) * np.exp(-k * x ** delta)


all_models = {name: globals()[name] for name in curve_combination_models}

#: NNI's default parameters of each family (figures from NNI's curvefunctions).
model_para = {
    "vap": [-0.622028, -0.470050, 0.042322],
    "pow3": [0.84, 0.52, 0.01],
    "linear": [1.0, 0.0],
    "logx_linear": [0.378106, 0.046506],
    "dr_hill_zero_background": [0.772320, 0.586449, 2.460843],
    "log_power": [0.77, 2.98, -0.51],
    "pow4": [0.1, 200, 0.0, 0.8],
    "mmf": [0.7, 0.1, 0.01, 5],
    "exp4": [0.7, 0.8, -0.8, 0.3],
    "ilog2": [0.78, 0.43],
    "weibull": [0.7, 0.1, 0.01, 1],
    "janoschek": [0.73, 0.07, 0.355, 0.46],
}

model_para_num = {name: len(params) for name, params in model_para.items()}
