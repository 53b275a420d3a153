"""Run the constraints example from Python: ``python examples/constraints/launch.py [--port P]``.

30 trials (about a minute on two cores), then the best *feasible* trial and how many trials
broke the latency or size budget.
"""

import argparse
import json
import sys
from pathlib import Path

from nni.experiment import Experiment, rest

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080, help="REST API / web UI port (0: any free port)")
parser.add_argument("--trials", type=int, default=30)
parser.add_argument("--tuner", default="TPE", help="TPE, GP, Evolution, RegularizedEvolution or Random")
args = parser.parse_args()

experiment = Experiment("local")
experiment.config.experiment_name = "digits accuracy within a latency and size budget"
experiment.config.trial_command = f"{sys.executable} main.py"
experiment.config.trial_code_directory = here
experiment.config.search_space = json.loads((here / "search_space.json").read_text())
experiment.config.constraints = [{"metric": "latency_ms", "max": 100}, {"metric": "size_kb", "max": 1000}]
experiment.config.tuner.name = args.tuner
experiment.config.tuner.class_args = {"optimize_mode": "maximize", "seed": 0}
experiment.config.trial_concurrency = 2
experiment.config.max_trial_number = args.trials

experiment.start(args.port)
try:
    experiment.wait(show_progress=True)
    jobs = rest.get(experiment.port, "/trial-jobs")
    infeasible = [j for j in jobs if j.get("feasibility") and not j["feasibility"]["feasible"]]
    best = rest.get(experiment.port, "/progress")
    print(f"\nbest feasible accuracy {best['bestMetric']} (trial {best['bestTrialId']}); "
          f"{len(infeasible)} of {len(jobs)} trials broke a budget")
finally:
    experiment.stop()
