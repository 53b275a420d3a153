"""A trial: cross-validate a classifier on scikit-learn's digits data (bundled, no download).

The search space picks the model family and, nested under it, that family's own
hyperparameters. Each fold's score is reported as an intermediate result, the mean as
the final one. Runs standalone too: ``python main.py`` uses the defaults below.
"""

import nni
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

DEFAULTS = {"model": {"_name": "svm", "C": 1.0, "gamma": 0.001}}


def build_model(spec: dict):
    if spec["_name"] == "svm":
        return make_pipeline(StandardScaler(), SVC(C=spec["C"], gamma=spec["gamma"]))
    # quniform yields floats (as in NNI): cast where the model wants an int.
    return RandomForestClassifier(n_estimators=int(spec["n_estimators"]), max_depth=spec["max_depth"],
                                  max_features=spec["max_features"], random_state=0, n_jobs=1)


def main() -> None:
    params = {**DEFAULTS, **(nni.get_next_parameter() or {})}
    X, y = load_digits(return_X_y=True)
    scores = []
    for train, test in StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(X, y):
        model = build_model(params["model"]).fit(X[train], y[train])
        scores.append(model.score(X[test], y[test]))
        nni.report_intermediate_result(sum(scores) / len(scores))
    accuracy = sum(scores) / len(scores)
    nni.report_final_result({"default": accuracy, "worst_fold": min(scores)})


if __name__ == "__main__":
    main()
