"""Run the multi-objective example from Python: ``python examples/multi_objective/launch.py [--port P]``.

24 trials (about a minute on two cores), then the Pareto front: the trials no other trial
beats on both accuracy and fit time.
"""

import argparse
import json
import sys
from pathlib import Path

from nni.experiment import Experiment

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080, help="REST API / web UI port (0: any free port)")
parser.add_argument("--trials", type=int, default=24)
parser.add_argument("--tuner", default="MOTPE", help="MOTPE, NSGA2 or Random")
args = parser.parse_args()

experiment = Experiment("local")
experiment.config.experiment_name = "digits accuracy vs fit time"
experiment.config.trial_command = f"{sys.executable} main.py"
experiment.config.trial_code_directory = here
experiment.config.search_space = json.loads((here / "search_space.json").read_text())
experiment.config.objectives = [{"metric": "accuracy", "mode": "maximize"},
                                 {"metric": "fit_ms", "mode": "minimize"}]
experiment.config.tuner.name = args.tuner
experiment.config.tuner.class_args["seed"] = 0
experiment.config.trial_concurrency = 2
experiment.config.max_trial_number = args.trials

experiment.start(args.port)
try:
    experiment.wait(show_progress=True)
    front = sorted(experiment.pareto_front(), key=lambda r: r.value["fit_ms"])
    print(f"\n{len(experiment.export_data())} trials finished; {len(front)} on the Pareto front:")
    for row in front:
        v = row.value
        print(f"  accuracy {v['accuracy']:.4f}  fit {v['fit_ms']:7.1f} ms  {v['nodes']:6d} nodes  "
              f"{json.dumps(row.parameter)}")
finally:
    experiment.stop()
