"""Run the digits example from Python: ``python examples/sklearn_classification/launch.py [--port P]``.

Shows a progress bar until the 20 trials are done, then prints the best ones.
"""

import argparse
import json
import sys
from pathlib import Path

from nni.experiment import Experiment

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080, help="REST API / web UI port (0: any free port)")
parser.add_argument("--trials", type=int, default=20)
args = parser.parse_args()

experiment = Experiment("local")
experiment.config.experiment_name = "sklearn digits classification"
experiment.config.trial_command = f"{sys.executable} main.py"
experiment.config.trial_code_directory = here
experiment.config.search_space = json.loads((here / "search_space.json").read_text())
experiment.config.tuner.name = "TPE"
experiment.config.tuner.class_args["optimize_mode"] = "maximize"
experiment.config.trial_concurrency = 2
experiment.config.max_trial_number = args.trials

experiment.start(args.port)
try:
    experiment.wait(show_progress=True)
    results = sorted(experiment.export_data(), key=lambda r: r.value["default"], reverse=True)
    print(f"\n{len(results)} trials finished; the best three:")
    for row in results[:3]:
        print(f"  accuracy {row.value['default']:.4f}  (trial {row.trialJobId})  {json.dumps(row.parameter)}")
finally:
    experiment.stop()
