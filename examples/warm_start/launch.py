"""Both weeks from Python: week 1 cold, then week 2 warm-started from it.

    python launch.py
"""

import sys
from pathlib import Path

from nni.experiment import Experiment

HERE = Path(__file__).resolve().parent


def week(number: int, trials: int, warm_from: str | None = None) -> Experiment:
    experiment = Experiment("local")
    config = experiment.config
    config.experiment_name = f"warm-start-week{number}"
    config.search_space_file = str(HERE / f"search_space_week{number}.json")
    config.trial_command = f"WEEK={number} {sys.executable} main.py"
    config.trial_code_directory = str(HERE)
    config.trial_concurrency = 2
    config.max_trial_number = trials
    config.tuner.name = "TPE"
    config.tuner.class_args = {"optimize_mode": "minimize", "seed": number}
    if warm_from:
        config.warm_start = {"experiments": [warm_from]}
    return experiment


if __name__ == "__main__":
    first = week(1, 30)
    first.run(port=0)
    second = week(2, 15, warm_from=first.id)
    second.start(port=0)
    second.wait()
    best = min((r for r in second.export_data()), key=lambda r: r.value)
    print(f"week 2 best {best.value:.4f} with {best.parameter}; see 'nnictl experiment status {second.id}'")
    second.stop()
