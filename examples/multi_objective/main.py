"""A trial with two objectives: a random forest on scikit-learn's digits (bundled, no download),
trading accuracy against fit time and model size.

It reports one dict holding every objective the config names (``accuracy``, ``fit_ms``) plus
``default`` (NNI's trial API wants it; here it is the accuracy) and the model size for display.
Runs standalone too: ``python main.py`` uses the defaults below.
"""

import time

import nni
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

DEFAULTS = {"n_estimators": 20, "max_depth": 8, "max_features": 0.3, "criterion": "gini"}


def main() -> None:
    params = {**DEFAULTS, **(nni.get_next_parameter() or {})}
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                                   max_features=params["max_features"], criterion=params["criterion"],
                                   random_state=0, n_jobs=1)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_ms = (time.perf_counter() - start) * 1000
    accuracy = model.score(X_test, y_test)
    nodes = sum(tree.tree_.node_count for tree in model.estimators_)
    nni.report_final_result({"default": accuracy, "accuracy": accuracy, "fit_ms": fit_ms, "nodes": nodes})


if __name__ == "__main__":
    main()
