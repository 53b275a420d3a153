"""A trial whose best settings move a little from one week to the next (the data drifted).

``WEEK`` (an environment variable, 1 or 2) picks the week; the loss is a shifted bowl, so the
best ``lr`` and ``momentum`` of week 2 are near, but not at, those of week 1.
"""

import math
import os

import nni

WEEK = int(os.environ.get("WEEK", "1"))
SHIFT = 0.0 if WEEK == 1 else 0.05      # week 2: the optimum moved by a twentieth of a decade

params = nni.get_next_parameter()
lr, momentum = params["lr"], params["momentum"]
batch = params.get("batch_size", 64)    # week 2 also tunes the batch size (a new parameter)
loss = ((math.log10(lr) + 2.5 - SHIFT) ** 2 + 4 * (momentum - 0.85 - SHIFT) ** 2
        + (0.02 * abs(math.log2(batch / 64)) if WEEK == 2 else 0.0))
nni.report_final_result(loss)
