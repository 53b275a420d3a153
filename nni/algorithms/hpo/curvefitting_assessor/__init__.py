"""NNI's Curvefitting assessor, as NNI lays it out: ``curvefitting_assessor`` (the
assessor), ``model_factory`` (:class:`CurveModel`) and ``curvefunctions`` (the 12 curve
families).  ``nni.algorithms.hpo.curvefitting_assessor.CurvefittingAssessor`` is the
class path configs use."""

from .curvefitting_assessor import CurvefittingAssessor, CurvefittingClassArgsValidator
from .model_factory import CurveModel

__all__ = ["CurvefittingAssessor", "CurvefittingClassArgsValidator", "CurveModel"]
