"""NNI users' inputs that must keep working (issue 12): custom search-space formats and
results of any JSON shape, Batch's scalar options, NNI 3.0's resume/view style, the
imported-data route and NNI's log line, multiThread, classArgsValidator and the module
paths tuners and scripts import.  Real managers, real trial processes, real SQLite."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import pid_alive, wait_for
from nni.experiment import CustomAlgorithmConfig, Experiment, rest

NNICTL = str(Path(sys.executable).parent / "nnictl")

RECORDING_TUNER = """
    import json, os
    from nni.tuner import Tuner

    class OwnFormatTuner(Tuner):
        '''A custom tuner whose search space is {"x": [low, high]} (not NNI's format).'''
        def __init__(self, log):
            self.log, self.n = log, 0
        def update_search_space(self, search_space):
            self.low, self.high = search_space["x"]
        def generate_parameters(self, parameter_id, **kwargs):
            self.n += 1
            return {"x": self.low + self.n}
        def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
            with open(self.log, "a") as f:
                f.write(json.dumps({"parameters": parameters, "value": value}) + "\\n")
"""

LIST_RESULT_TRIAL = """
    import nni
    p = nni.get_next_parameter()
    nni.report_final_result([p["x"], p["x"] * 2])
"""


def _exp_dir(exp) -> Path:
    return Path(exp.config.experiment_working_directory) / exp.id


def test_custom_tuner_with_its_own_space_format_gets_list_results(make_experiment, tmp_path):
    (tmp_path / "tuners").mkdir()
    (tmp_path / "tuners" / "own_tuner.py").write_text(textwrap.dedent(RECORDING_TUNER))
    log = tmp_path / "received.jsonl"
    exp = make_experiment(LIST_RESULT_TRIAL, {"x": [1, 100]}, concurrency=1, max_trials=3)
    exp.config.tuner = CustomAlgorithmConfig(class_name="own_tuner.OwnFormatTuner",
                                             code_directory=str(tmp_path / "tuners"),
                                             class_args={"log": str(log)})
    assert exp.run(port=0) is True
    received = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["value"][0] for r in received) == [2, 3, 4]
    assert all(r["value"] == [r["parameters"]["x"], r["parameters"]["x"] * 2] for r in received)
    with sqlite3.connect(_exp_dir(exp) / "db" / "nni.sqlite") as db:
        stored = sorted(json.loads(v) for (v,) in db.execute("SELECT value FROM metrics WHERE type='FINAL'"))
    assert stored == [[2, 4], [3, 6], [4, 8]]


def test_builtin_tuner_still_refuses_a_space_in_another_format(make_experiment):
    from nni.experiment.config import ConfigError
    exp = make_experiment(LIST_RESULT_TRIAL, {"x": [1, 100]})
    with pytest.raises(ConfigError, match="searchSpace: search space parameter 'x'"):
        exp.start(port=0)


def test_batch_tuner_gives_scalar_options_as_they_are(make_experiment):
    trial = """
        import json, os, nni
        p = nni.get_next_parameter()
        open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "p.json"), "w").write(json.dumps(p))
        nni.report_final_result(1.0)
    """
    exp = make_experiment(trial, {"lr": {"_type": "choice", "_value": [0.1, 0.01, "auto"]}}, max_trials=10)
    exp.config.tuner.name, exp.config.tuner.class_args = "BatchTuner", {}
    assert exp.run(port=0) is True
    got = sorted(json.dumps(json.loads(p.read_text())) for p in _exp_dir(exp).glob("trials/*/p.json"))
    assert got == sorted(json.dumps(v) for v in [0.1, 0.01, "auto"])


def test_imported_data_route_and_the_experiment_done_log_line(make_experiment):
    trial = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"
    exp = make_experiment(trial, {"x": {"_type": "uniform", "_value": [0, 1]}}, concurrency=1, max_trials=2)
    exp.start(port=0)
    assert rest.get(exp.port, "/experiment/imported-data") == []
    first = [{"parameter": {"x": 0.5}, "value": 0.5}]
    second = [{"parameter": {"x": 0.25}, "value": {"default": 0.25}}, {"parameter": {"x": 0.75}, "value": 0.75}]
    rest.request("POST", exp.port, "/experiment/import-data", first)
    rest.request("POST", exp.port, "/experiment/import-data", second)
    imported = rest.get(exp.port, "/experiment/imported-data")
    assert [json.loads(batch) for batch in imported] == [first, second]
    # NNI's integration test looks for the import file's JSON, spaces removed, among them
    assert json.dumps(second).replace(" ", "") in imported
    assert exp.wait(timeout=120) == "DONE"
    log = (_exp_dir(exp) / "log" / "nnimanager.log").read_text()
    assert "Experiment done." in log


STREAMING = """
    import time, nni
    p = nni.get_next_parameter()
    time.sleep(0.2)
    nni.report_final_result(p["x"])
"""


def test_nni3_resume_view_and_run_or_resume_by_id(make_experiment):
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = make_experiment(STREAMING, space, concurrency=1, max_trials=3)
    exp.id = "nni3style"
    exp.start(port=0)
    assert exp.id == "nni3style"
    wait_for(lambda: any(j.status == "SUCCEEDED" for j in exp.list_trial_jobs()), 60, "a finished trial")
    exp.stop()

    resumed = Experiment(None, id="nni3style")
    assert resumed.resume(port=0, wait_completion=False) is None
    try:
        assert resumed.wait(timeout=120) == "DONE"
        assert resumed.config.max_trial_number == 3        # the stored config came back
        n_jobs = len(resumed.list_trial_jobs())
    finally:
        resumed.stop()

    viewer = Experiment(None, id="nni3style")
    viewer.view(port=0, non_blocking=True)
    try:
        assert viewer.get_status() == "VIEWED" and len(viewer.list_trial_jobs()) == n_jobs
    finally:
        viewer.stop()

    again = Experiment(None, id="nni3style")
    assert again.run_or_resume(port=0, wait_completion=False) is None   # exists: resumed
    try:
        assert again.wait(timeout=120) == "DONE"
    finally:
        again.stop()

    fresh = make_experiment(STREAMING, space, concurrency=1, max_trials=1)
    fresh.id = "brandnew1"
    assert fresh.run_or_resume(port=0) is True                           # unknown id: run
    assert (Path(fresh.config.experiment_working_directory) / "brandnew1" / "db" / "nni.sqlite").is_file()
    with pytest.raises(ValueError, match="needs the experiment id"):
        Experiment("local").resume()


def test_shared_storage_and_other_platforms_are_refused_clearly():
    from nni.experiment.config import ConfigError, ExperimentConfig, OpenpaiConfig
    with pytest.raises(ConfigError, match="sharedStorage: NNI's shared storage .* not supported by nni-ng"):
        ExperimentConfig.from_dict({"trialCommand": "x", "trialConcurrency": 1, "tuner": {"name": "TPE"},
                                    "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
                                    "trainingService": {"platform": "local"},
                                    "sharedStorage": {"storageType": "NFS"}}).canonical_copy()
    with pytest.raises(ConfigError, match="OpenPAI training service is not supported"):
        OpenpaiConfig()


BLOCKING_TUNER = """
    import threading, time
    from nni.tuner import Tuner

    class BlockingTuner(Tuner):
        '''The first request never returns (user code stuck); the others answer at once.'''
        def __init__(self):
            self.first = True
            self.lock = threading.Lock()
        def update_search_space(self, search_space):
            pass
        def generate_parameters(self, parameter_id, **kwargs):
            with self.lock:
                first, self.first = self.first, False
            if first:
                threading.Event().wait()
            return {"x": parameter_id}
        def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
            pass
"""


def test_multithread_asks_per_slot_and_stop_ends_the_manager_with_a_stuck_tuner(write, tmp_path):
    write("mt/blocking_tuner.py", BLOCKING_TUNER)
    write("mt/trial.py", "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n")
    import yaml
    config = tmp_path / "mt" / "config.yml"
    config.write_text(yaml.safe_dump({
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(tmp_path / "mt"),
        "trialConcurrency": 2, "maxTrialNumber": 20, "multiThread": True,
        "experimentWorkingDirectory": str(tmp_path / "experiments"),
        "tuner": {"className": "blocking_tuner.BlockingTuner", "codeDirectory": str(tmp_path / "mt")},
        "trainingService": {"platform": "local"}}))
    out = subprocess.run([NNICTL, "create", "--config", str(config), "--port", "0"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    exp_id, port = re.search(r"Experiment (\w+) started.*http://127\.0\.0\.1:(\d+)", out.stdout, re.S).groups()
    entry = json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{exp_id}.json").read_text())
    try:
        # one slot is held by the stuck call; the other keeps running trials
        wait_for(lambda: sum(t["status"] == "SUCCEEDED" for t in rest.get(int(port), "/trial-jobs")) >= 4,
                 120, "4 trials while another tuner call is blocked")
    finally:
        stop = subprocess.run([NNICTL, "stop", exp_id], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stderr
    wait_for(lambda: not pid_alive(entry["pid"]), 60, "the manager process to end")


def test_registered_algorithm_class_args_validator_is_honoured(write, tmp_path, monkeypatch):
    write("pkg/my_algo.py", """
        from nni import ClassArgsValidator
        from nni.tuner import Tuner

        class MyTuner(Tuner):
            def __init__(self, optimize_mode="maximize", size=3):
                self.size = size
            def update_search_space(self, s): pass
            def generate_parameters(self, i, **kw): return {}
            def receive_trial_result(self, *a, **kw): pass

        class MyValidator(ClassArgsValidator):
            def validate_class_args(self, **kwargs):
                self.choices("optimize_mode", "maximize", "minimize")(kwargs.get("optimize_mode", "maximize"))
                self.range("size", int, 1, 10)(kwargs.get("size", 3))
    """)
    meta = write("pkg/meta.yml", """
        algoType: tuner
        builtinName: MyTuner
        className: my_algo.MyTuner
        classArgsValidator: my_algo.MyValidator
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "pkg"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([NNICTL, "algo", "register", "--meta", str(meta)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    from nni.algorithms.registry import AlgorithmError, create_algorithm
    assert create_algorithm("tuner", name="MyTuner", class_args={"size": 5}).size == 5
    with pytest.raises(AlgorithmError, match="bad classArgs for tuner 'MyTuner' .*size should be in range"):
        create_algorithm("tuner", name="MyTuner", class_args={"size": 50})
    with pytest.raises(AlgorithmError, match="optimize_mode should be in"):
        create_algorithm("tuner", name="MyTuner", class_args={"optimize_mode": "max"})


# ---- module paths --------------------------------------------------------------------------

SHIMS = ["nni.utils", "nni.common.hpo_utils", "nni.typehint", "nni.runtime.msg_dispatcher",
         "nni.runtime.msg_dispatcher_base", "nni.runtime.trial_command_channel", "nni.parameter_expressions",
         "nni.experiment.config", "nni.algorithms.hpo.curvefitting_assessor.model_factory",
         "nni.algorithms.hpo.curvefitting_assessor.curvefunctions", "nni.algorithms.hpo.dngo_tuner"]


@pytest.mark.parametrize("module", SHIMS)
def test_nni_module_paths_import_on_their_own(module):
    out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_import_nni_loads_only_the_trial_modules():
    code = ("import sys, nni\nfrom nni.trial import overwrite_intermediate_seq\n"
            "print(sorted(m for m in sys.modules if m == 'nni' or m.startswith('nni.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.replace("'", '"')) == [
        "nni", "nni.errors", "nni.runtime", "nni.runtime.env_vars", "nni.trial"]


def test_nni_names_users_import_exist_and_behave():
    import numpy as np
    from nni import ClassArgsValidator  # noqa: F401 - NNI exports it at the top level
    from nni.common.hpo_utils import deformat_parameters, format_search_space, validate_search_space
    from nni.experiment.config import RemoteConfig, RemoteMachineConfig  # noqa: F401
    from nni.runtime.msg_dispatcher import MsgDispatcher
    from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
    from nni.utils import json2parameter, json2space, split_index

    space = {"opt": {"_type": "choice", "_value": [{"_name": "sgd", "lr": {"_type": "loguniform", "_value": [1e-3, 1]}},
                                                    {"_name": "adam"}]},
             "bs": {"_type": "randint", "_value": [16, 64]}}
    names = json2space(space)
    assert names == ["root[opt]-choice[0][lr]-loguniform", "root[opt]-choice", "root[bs]-randint"]
    drawn = json2parameter(space, {n: True for n in names}, np.random.RandomState(0))
    plain = split_index(drawn)
    assert plain["opt"]["_name"] in ("sgd", "adam") and 16 <= plain["bs"] < 64
    assert drawn["opt"]["_index"] in (0, 1)
    formatted = format_search_space(space)
    assert list(formatted) == [("opt",), ("opt", 0, "lr"), ("bs",)]
    assert formatted[("opt", 0, "lr")].low == pytest.approx(np.log(1e-3))
    assert deformat_parameters({("opt",): 0, ("opt", 0, "lr"): 0.0, ("bs",): 4}, formatted) == \
        {"opt": {"_name": "sgd", "lr": 1.0}, "bs": 20}
    assert validate_search_space(space) is True
    assert validate_search_space({"x": {"_type": "unifrom", "_value": [0, 1]}}) is False
    assert issubclass(MsgDispatcher, MsgDispatcherBase)
    with pytest.raises(NotImplementedError, match="no dispatcher process"):
        MsgDispatcher(None, None, None).run()


def test_trial_command_channel_can_be_replaced_as_in_nni_tests():
    code = textwrap.dedent("""
        import json, nni
        from nni.runtime.trial_command_channel import TrialCommandChannel, set_default_trial_command_channel
        from nni.trial import overwrite_intermediate_seq

        class Fake(TrialCommandChannel):
            def __init__(self): self.sent = []
            def receive_parameter(self): return {"parameter_id": 7, "parameters": {"x": 1}}
            def send_metric(self, type, parameter_id, trial_job_id, sequence, value):
                self.sent.append([type, parameter_id, sequence, value])

        fake = set_default_trial_command_channel(Fake())
        overwrite_intermediate_seq(5)
        assert nni.get_next_parameter() == {"x": 1}
        nni.report_intermediate_result(0.5)
        nni.report_final_result({"default": 0.9})
        print(json.dumps(fake.sent))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [["PERIODICAL", 7, 5, 0.5], ["FINAL", 7, 0, {"default": 0.9}]]


def test_default_trial_channel_under_nni_platform_unittest_and_swaps_as_nni_tests_do():
    """NNI's test_trial.py: with NNI_PLATFORM=unittest (no manager) the default channel is a
    standalone one, setting a channel per case and back works, and each swapped-in channel
    gets its own final result for the same parameter id."""
    code = textwrap.dedent("""
        import json, nni
        from nni.runtime.trial_command_channel import (TrialCommandChannel,
            get_default_trial_command_channel, set_default_trial_command_channel)

        class Fake(TrialCommandChannel):
            def __init__(self): self.sent = []
            def receive_parameter(self): return {"parameter_id": "p", "parameters": {"x": 1}}
            def send_metric(self, type, parameter_id, trial_job_id, sequence, value):
                self.sent.append([type, parameter_id, trial_job_id, sequence, value])

        default = get_default_trial_command_channel()      # NNI's setUp; raised here before
        sent = []
        for case in range(2):
            fake = set_default_trial_command_channel(Fake())
            nni.report_final_result(case)
            sent += fake.sent
            set_default_trial_command_channel(default)      # NNI's tearDown
        print(json.dumps([sent, nni.get_next_parameter(), nni.get_trial_id()]))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNI_")}
    env.update(NNI_PLATFORM="unittest", NNI_TRIAL_JOB_ID="tj", NNI_EXP_ID="e")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    sent, params, trial_id = json.loads(out.stdout.strip().splitlines()[-1])
    assert sent == [["FINAL", "p", "tj", 0, 0], ["FINAL", "p", "tj", 0, 1]]
    assert params == {} and trial_id == "tj"                 # back on the standalone channel


def test_same_experiment_object_stops_then_resumes_then_views(make_experiment):
    """NNI's test_experiment_resume_view: stop(), resume() and view() on one Experiment object."""
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = make_experiment(STREAMING, space, concurrency=1, max_trials=2)
    exp.start(port=0)
    wait_for(lambda: any(j.status == "SUCCEEDED" for j in exp.list_trial_jobs()), 60, "a finished trial")
    exp.stop()
    first_id = exp.id
    assert exp.resume(port=0, wait_completion=False) is None      # raised "already started" before
    try:
        assert exp.id == first_id and exp.wait(timeout=120) == "DONE"
    finally:
        exp.stop()
    exp.view(port=0, non_blocking=True)
    try:
        assert exp.get_status() == "VIEWED"
    finally:
        exp.stop()


def test_pbt_import_data_continues_from_the_last_complete_generation(tmp_path):
    """NNI's import_data_test_for_pbt: entries carrying PBT's checkpoint directories continue the
    run from the last generation that has every member's result; the number is returned."""
    from nni.algorithms.hpo.pbt_tuner import PBTTuner
    root = tmp_path / "ckpt"
    space = {"lr": {"_type": "choice", "_value": [0.1, 0.01, 0.001]}}

    def rows(generation, values):
        out = []
        for member, value in enumerate(values):
            save = root / str(member) / str(generation)
            save.mkdir(parents=True, exist_ok=True)
            out.append({"parameter": {"lr": [0.1, 0.01, 0.001][member % 3], "save_checkpoint_dir": str(save),
                                      "load_checkpoint_dir": str(save)}, "value": value})
        return out

    tuner = PBTTuner(all_checkpoint_dir=str(root), population_size=3, seed=1)
    tuner.update_search_space(space)
    assert tuner.import_data(rows(0, [0.5, 0.9, 0.1]) + rows(1, [0.6, 0.7])) == 1   # generation 1 incomplete
    first = tuner.generate_parameters(100)
    # the next generation's members load generation 0's checkpoints and save under generation 1
    assert first["save_checkpoint_dir"] == str(root / "0" / "1")
    assert first["load_checkpoint_dir"].startswith(str(root)) and first["load_checkpoint_dir"].endswith("/0")

    fresh = PBTTuner(all_checkpoint_dir=str(root), population_size=3, seed=1)
    fresh.update_search_space(space)
    assert fresh.import_data([{"parameter": {"lr": 0.1}, "value": 0.5}]) is None     # no generation: start at 0
    assert fresh.generate_parameters(1)["save_checkpoint_dir"] == str(root / "0" / "0")


@pytest.mark.parametrize("tuner", ["TPE", "Random"])
def test_multi_phase_jobs_share_a_used_up_finite_space_as_in_nni2(make_experiment, tuner):
    """NNI 2.0's multi-phase-tpe case: a 2-value choice, 4 jobs of 5 phases each. NNI 2.x's
    TPE and Random proposed repeats there, so all 4 jobs run their phases (they ended the
    experiment after 2 jobs here before)."""
    trial = """
        import nni
        for i in range(5):
            p = nni.get_next_parameter()
            if p is None:
                break
            nni.report_final_result(0.1 * i)
    """
    exp = make_experiment(trial, {"test": {"_type": "choice", "_value": [1, 100]}}, concurrency=4, max_trials=4,
                          multi_phase=True)
    exp.config.tuner.name = tuner
    exp.start(port=0)
    assert exp.wait(timeout=180) == "DONE"
    jobs = exp.list_trial_jobs()
    assert len(jobs) == 4 and all(j.status == "SUCCEEDED" for j in jobs)
    assert len(exp.get_job_metrics()) >= 4
    assert sum(len(m) for m in exp.get_job_metrics().values()) == 20     # 5 phases x 4 jobs


def test_nni_pack_parameter_gives_the_wire_record():
    from nni.runtime.msg_dispatcher import _pack_parameter
    assert json.loads(_pack_parameter(3, {"x": 1}, trial_job_id="abc", parameter_index=2)) == {
        "parameter_id": 3, "parameter_source": "algorithm", "parameters": {"x": 1}, "parameter_index": 2,
        "trial_job_id": "abc"}


NAS_SPACE = {
    "conv": {"_type": "layer_choice", "_value": ["conv3x3", "conv5x5", "maxpool"]},
    "skip": {"_type": "input_choice", "_value": {"candidates": ["in1", "in2", "in3"], "n_chosen": 2}},
    "block": {"_type": "mutable_layer", "_value": {
        "layer_1": {"layer_choice": ["conv(3)", "conv(5)"], "optional_inputs": ["x", "y"],
                    "optional_input_size": [0, 1]}}},
}

NAS_TRIAL = """
    import json, os, nni
    p = nni.get_next_parameter()
    open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "arch.json"), "w").write(json.dumps(p))
    score = {"conv3x3": 0.5, "conv5x5": 0.9, "maxpool": 0.1}[p["conv"]["_value"]]
    nni.report_final_result(score + 0.01 * len(p["block"]["layer_1"]["chosen_inputs"]))
"""


def test_regularized_evolution_takes_nni_classic_nas_spaces_in_nni_format(make_experiment):
    exp = make_experiment(NAS_TRIAL, NAS_SPACE, concurrency=2, max_trials=12)
    exp.config.tuner.name = "RegularizedEvolution"
    exp.config.tuner.class_args = {"optimize_mode": "maximize", "population_size": 4, "sample_size": 2, "seed": 2}
    assert exp.run(port=0) is True
    archs = [json.loads(p.read_text()) for p in _exp_dir(exp).glob("trials/*/arch.json")]
    assert len(archs) == 12
    layers = NAS_SPACE["conv"]["_value"]
    candidates = NAS_SPACE["skip"]["_value"]["candidates"]
    for a in archs:
        assert set(a) == {"conv", "skip", "block"}
        assert a["conv"] == {"_value": layers[a["conv"]["_idx"]], "_idx": a["conv"]["_idx"]}
        assert len(a["skip"]["_idx"]) == 2 and a["skip"]["_value"] == [candidates[i] for i in a["skip"]["_idx"]]
        layer = a["block"]["layer_1"]
        assert layer["chosen_layer"] in ("conv(3)", "conv(5)") and layer["chosen_inputs"] in ([], ["x"], ["y"])
    # the results went back with the parameters in NNI's format (what export and resume use)
    with sqlite3.connect(_exp_dir(exp) / "db" / "nni.sqlite") as db:
        stored = [json.loads(v) for (v,) in db.execute("SELECT parameters FROM parameters")]
    assert sorted(map(json.dumps, stored)) == sorted(map(json.dumps, archs))


def test_nas_types_are_refused_by_tuners_that_never_took_them(make_experiment):
    from nni.experiment.config import ConfigError
    exp = make_experiment(NAS_TRIAL, NAS_SPACE)
    with pytest.raises(ConfigError, match="unknown _type 'layer_choice'.*RegularizedEvolution only"):
        exp.start(port=0)
