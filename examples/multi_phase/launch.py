"""Run the multi-phase example from Python: ``python examples/multi_phase/launch.py [--port P]``."""

import argparse
import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))

from chain_tuner import ChainTuner  # noqa: E402
from nni.experiment import Experiment  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080, help="REST API port (0: any free port)")
args = parser.parse_args()

experiment = Experiment(ChainTuner(optimize_mode="maximize", seed=0), "local")
experiment.config.experiment_name = "multi-phase warm-started SGD"
experiment.config.trial_command = f"{sys.executable} trial.py"
experiment.config.trial_code_directory = here
experiment.config.search_space = json.loads((here / "search_space.json").read_text())
experiment.config.multi_phase = True
experiment.config.trial_concurrency = 2
experiment.config.max_trial_number = 16     # parameter sets, not trial jobs

experiment.start(args.port)
try:
    experiment.wait(show_progress=True)
    for job in experiment.list_trial_jobs():
        finals = {m.parameterId: m.data["default"] for m in job.finalMetricData}
        print(f"trial {job.trialJobId} ({job.status}):")
        for phase in job.hyperParameters:
            accuracy = finals.get(phase.parameter_id)
            shown = f"{accuracy:.4f}" if accuracy is not None else "-"
            print(f"  phase {phase.parameter_index}: accuracy {shown}  "
                  f"alpha={phase.parameters['alpha']:.2e} eta0={phase.parameters['eta0']:.2e}")
finally:
    experiment.stop()
