"""A trial with constraints: a random forest on scikit-learn's digits (bundled, no download),
maximising accuracy subject to a prediction latency and a model size budget.

It reports one dict: the objective (``default``, the accuracy) and the metrics the config's
``constraints`` name (``latency_ms``: milliseconds to predict the whole test set, ``size_kb``:
the pickled model).  A result that misses one of them counts as infeasible and the trial's
stderr says so.  Runs standalone too: ``python main.py`` uses the defaults below.
"""

import pickle
import time

import nni
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

DEFAULTS = {"n_estimators": 20, "max_depth": 8, "max_features": 0.3}


def main() -> None:
    params = {**DEFAULTS, **(nni.get_next_parameter() or {})}
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                                   max_features=params["max_features"], random_state=0, n_jobs=1)
    model.fit(X_train, y_train)
    start = time.perf_counter()
    accuracy = model.score(X_test, y_test)
    latency_ms = (time.perf_counter() - start) * 1000
    size_kb = len(pickle.dumps(model)) / 1024
    nni.report_final_result({"default": accuracy, "latency_ms": latency_ms, "size_kb": size_kb})


if __name__ == "__main__":
    main()
