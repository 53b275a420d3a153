"""The parameter record and the read models, as trials, REST clients and readers of a stopped
experiment see them (``nni.records``, ``nni.manager.read_model``)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import wait_for
from nni.experiment import TrialHyperParameters, rest
from nni.manager.read_model import optimize_mode, stored_optimize_mode, trial_jobs
from nni.records import ParameterRecord

WIRE_KEYS = ["parameter_id", "parameter_source", "parameters", "parameter_index"]

# Asks the manager for parameter record 0 over the trial channel, as the trial API does,
# and keeps the raw answer where the test can read it.
TRIAL_KEEPING_ITS_RECORD = """
    import json, os, nni
    from nni.runtime.channel import TrialChannel
    channel = TrialChannel(os.environ["NNI_TRIAL_CHANNEL"], os.environ["NNI_TRIAL_JOB_ID"], os.environ["NNI_TRIAL_TOKEN"])
    with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "record.json"), "w") as f:
        json.dump(channel.request_parameter(0), f)
    p = nni.get_next_parameter()
    nni.report_final_result(p["x"])
"""


def test_trials_rest_clients_and_stopped_readers_get_nnis_parameter_record(make_experiment):
    exp = make_experiment(TRIAL_KEEPING_ITS_RECORD, {"x": {"_type": "uniform", "_value": [0, 1]}},
                          concurrency=2, max_trials=2)
    exp.start(port=0)
    wait_for(lambda: exp.get_status() == "DONE", timeout=180, what="the experiment to finish")
    raw_jobs = rest.get(exp.port, "/trial-jobs")
    api_jobs = {j.trialJobId: j for j in exp.list_trial_jobs()}
    exp.stop()
    assert len(raw_jobs) == 2
    for job in raw_jobs:
        with open(f"{job['trialDir']}/record.json") as f:
            record = json.load(f)
        # What the trial got over the channel: NNI's four keys, in NNI's order.
        assert list(record) == WIRE_KEYS
        assert record["parameter_source"] == "algorithm" and record["parameter_index"] == 0
        assert set(record["parameters"]) == {"x"}
        # What REST clients get: the same record in hyperParameters, plus its status.
        [hyper] = [json.loads(h) for h in job["hyperParameters"]]
        assert list(hyper) == WIRE_KEYS + ["status"] and hyper["status"] == "SUCCEEDED"
        assert {k: hyper[k] for k in WIRE_KEYS} == record
        # What the Python API gives: NNI's TrialHyperParameters, a ParameterRecord.
        [given] = api_jobs[job["trialJobId"]].hyperParameters
        assert isinstance(given, TrialHyperParameters) and isinstance(given, ParameterRecord)
        assert given.to_wire() == record

    # A reader of the stopped experiment's store answers what the running experiment answered.
    from nni.manager.experiment_dir import ExperimentDir
    store = ExperimentDir(f"{exp.config.experiment_working_directory}/{exp.id}").open_store(readonly=True)
    try:
        stored = trial_jobs(store)
        assert ParameterRecord.from_row(store.parameters()[0]).to_wire() in [
            {k: json.loads(h)[k] for k in WIRE_KEYS} for j in raw_jobs for h in j["hyperParameters"]]
    finally:
        store.close()
    assert [j["hyperParameters"] for j in stored] == [j["hyperParameters"] for j in raw_jobs]
    assert [j["finalMetricData"] for j in stored] == [j["finalMetricData"] for j in raw_jobs]


def test_optimize_mode_follows_one_rule_for_the_manager_and_readers():
    tpe = {"tuner": {"name": "TPE"}}
    # A built-in tuner's own default when nothing says otherwise (TPE minimizes, Evolution maximizes).
    assert optimize_mode(tpe) == "minimize"
    assert optimize_mode({"tuner": {"name": "Evolution"}}) == "maximize"
    # classArgs win over the default; what the manager stored wins over both.
    assert optimize_mode({"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}}) == "maximize"
    assert stored_optimize_mode({"config": tpe, "optimize_mode": "maximize"}) == "maximize"
    # The tuner object the manager runs, when given, is asked instead of building one.
    class Custom:
        optimize_mode = "minimize"
    assert optimize_mode({"tuner": {"className": "my.Tuner"}}, Custom()) == "minimize"
    # A custom tuner's code is never run by a reader: maximize, as NNI's default.
    assert stored_optimize_mode({"config": {"tuner": {"className": "my.Tuner", "codeDirectory": "/nowhere"}}}) \
        == "maximize"
    # Multi-objective: the first objective's mode, whatever the tuner says.
    mo = {"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "minimize"}},
          "objectives": [{"metric": "acc", "mode": "maximize"}, {"metric": "loss", "mode": "minimize"}]}
    assert optimize_mode(mo) == "maximize"


def test_the_records_and_read_models_load_neither_aiohttp_nor_numpy():
    code = ("import sys, nni.records, nni.manager.read_model, nni.cli._experiment\n"
            "print([m for m in ('aiohttp', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
