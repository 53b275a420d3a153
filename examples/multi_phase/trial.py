"""A multi-phase trial: one SGD classifier trained phase after phase with warm starts.

Each phase asks the tuner for a new parameter set, continues training the same model
from the previous phase's weights with those parameters, and reports that phase's
validation accuracy as its final result. It stops when the tuner has no more (None).
"""

import nni
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
import warnings

PHASES = 4

warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)

model = SGDClassifier(learning_rate="constant", warm_start=True, max_iter=5, tol=None, random_state=0)
for phase in range(PHASES):
    params = nni.get_next_parameter()
    if params is None:          # the tuner (or maxTrialNumber) has no more parameter sets
        break
    model.set_params(alpha=params["alpha"], eta0=params["eta0"])
    for epoch in range(3):
        model.fit(X_train, y_train)      # warm_start: continues from the previous weights
        nni.report_intermediate_result(model.score(X_val, y_val))
    nni.report_final_result({"default": model.score(X_val, y_val), "phase": phase})
