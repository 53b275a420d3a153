"""A MultiPhaseTuner that gives each trial job a chain of related parameter sets.

A job's first phase gets a fresh random point of the search space. Each later phase of
the same job (known by ``trial_job_id``) starts from the best point that job has seen
and narrows around it, so a job that warm-starts its model keeps refining one
configuration instead of jumping elsewhere.
"""

import math
import random

from nni.multi_phase import MultiPhaseTuner
from nni.utils import extract_scalar_reward


class ChainTuner(MultiPhaseTuner):
    def __init__(self, optimize_mode="maximize", shrink=0.5, seed=None):
        self.maximize = optimize_mode == "maximize"
        self.shrink = shrink
        self.rng = random.Random(seed)
        self.space = {}
        self.jobs = {}            # trial job id -> {"best": (reward, params), "phase": n}
        self.given = {}           # parameter id -> trial job id

    def update_search_space(self, search_space):
        for name, spec in search_space.items():
            if spec["_type"] != "loguniform":
                raise ValueError(f"ChainTuner handles loguniform parameters only; {name!r} is {spec['_type']}")
        self.space = {name: tuple(math.log(v) for v in spec["_value"]) for name, spec in search_space.items()}

    def generate_parameters(self, parameter_id, trial_job_id=None):
        job = self.jobs.setdefault(trial_job_id, {"best": None, "phase": 0})
        width = self.shrink ** job["phase"]
        params = {}
        for name, (low, high) in self.space.items():
            if job["best"] is None:
                center = self.rng.uniform(low, high)
            else:
                center = math.log(job["best"][1][name])
            half = (high - low) * width / 2
            params[name] = math.exp(min(high, max(low, center + self.rng.uniform(-half, half))))
        job["phase"] += 1
        self.given[parameter_id] = trial_job_id
        return params

    def receive_trial_result(self, parameter_id, parameters, value, trial_job_id=None):
        reward = extract_scalar_reward(value)
        job = self.jobs[trial_job_id]
        better = job["best"] is None or (reward > job["best"][0] if self.maximize else reward < job["best"][0])
        if better:
            job["best"] = (reward, parameters)

    def trial_end(self, trial_job_id, success):
        self.jobs.pop(trial_job_id, None)
