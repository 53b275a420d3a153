"""Every ``nnictl`` command shown in docs/cli.md and the README runs, against live experiments.

The commands are read from the documents' code blocks, so the documents cannot drift from
the tool: a renamed flag, a changed message or a removed command fails here.

- A *synopsis* (a line with placeholders such as ``CONFIG`` or ``PORT``) is parsed by
  nnictl's own parser, and must name every option that command has.
- Every other line is run for real, in document order, by the real ``nnictl``. ``ID``,
  ``[ID]``, ``<id>`` and example ids (``3nkf2m8e``) become the id of a live experiment,
  ``--trial_id Fu3TJ`` one of its trials; ``[...]`` optional parts are included. A command
  that needs a running (or a stopped) experiment gets one first. Ports become ``0`` so
  runs in parallel cannot clash.
- Files the documents use (``config.yml``, ``search_space.json``, ``results.json``, the
  ``meta.yml`` shown with ``cat``) exist in the working directory; a comment after a
  ``create`` that is YAML (``# tuner: {name: TPX}``) is applied to that config file.
- Output the documents show is checked: ``Error: ...`` lines (exit code 1 and the message
  up to its first ``...`` or parenthesis), one-line confirmations (``Experiment ...
  stopped.``, ``Imported ...``, ``Registered ...``; numbers and ids may differ) and table
  headers. Any other command must exit 0.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import wait_for
from nni.experiment import rest
from test_nnictl import NNICTL, nnictl

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "docs" / "cli.md", ROOT / "README.md"]
PLACEHOLDERS = {"CONFIG": "config.yml", "PORT": "0", "PREFIX": "/nni", "ID": "ID"}

TRIAL = """
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"])
if os.path.exists("hold"):   # the test is about to kill a trial: wait to be killed
    open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "holding"), "w").close()
    deadline = time.monotonic() + 300
    while os.path.exists("hold") and time.monotonic() < deadline:
        time.sleep(0.05)
time.sleep(1)
nni.report_final_result(p["x"])
print("done", p["x"])
"""


def code_blocks(path: Path) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"^```[a-z]*\n(.*?)^```", path.read_text(), re.S | re.M)]


def split_comment(line: str) -> tuple[str, str]:
    match = re.search(r"\s+#\s?(.*)$", line)
    return (line[:match.start()], match.group(1)) if match else (line, "")


def documented_steps() -> list[dict]:
    """Each nnictl line of the documents: its words, comment, the output shown, the files shown."""
    steps = []
    for path in DOCUMENTS:
        for block in code_blocks(path):
            current = None
            files: dict[str, list[str]] = {}
            cat = None
            for line in block:
                prompt = line.startswith("$ ")
                text = line[2:] if prompt else line
                if text.startswith("nnictl ") or text == "nnictl":
                    command, comment = split_comment(text)
                    current = {"where": f"{path.name}: {line.strip()}", "words": shlex.split(command)[1:],
                               "comment": comment, "output": [], "files": dict(files)}
                    steps.append(current)
                    cat = None
                elif prompt and text.startswith("cat "):
                    cat = text.split()[1]
                    files[cat] = []
                    current = None
                elif prompt:
                    current = cat = None      # another shell command: not ours to run
                elif cat is not None:
                    files[cat].append(line)
                elif current is not None:
                    current["output"].append(line)
    return steps


STEPS = documented_steps()


def is_synopsis(words: list[str]) -> bool:
    return any(w.strip("[]") in PLACEHOLDERS and w.strip("[]") != "ID" for w in words) or "|" in words


def test_the_documents_show_commands():
    assert len(STEPS) > 30 and any(is_synopsis(s["words"]) for s in STEPS)


@pytest.mark.parametrize("step", [s for s in STEPS if is_synopsis(s["words"])], ids=lambda s: s["where"])
def test_each_synopsis_parses_and_names_every_option(step):
    from nni.cli.__main__ import build_parser
    words = [w.strip("[]") for w in step["words"] if w.strip("[]")]
    argv = ["abc12345" if w == "ID" else PLACEHOLDERS.get(w, w) for w in words]
    args = build_parser().parse_args(argv)      # a flag the tool lacks exits here
    assert args.handler is not None
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[words[0]]    # the command's own parser
    options = {o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    shown = {w for w in words if w.startswith("--")}
    assert options == shown, f"{step['where']}: the tool has {sorted(options)}, the document shows {sorted(shown)}"


class World:
    """The live experiments the documented commands run against (at most one running)."""

    def __init__(self, workdir: Path, tmp_path: Path) -> None:
        self.workdir = workdir
        self.tmp_path = tmp_path
        self.id: str | None = None
        self.state = "none"      # none, running, stopped, viewed
        self.base = {
            "experimentName": "docs",
            "searchSpaceFile": "search_space.json",
            "trialCommand": f"{sys.executable} trial.py",
            "trialCodeDirectory": ".",
            "trialConcurrency": 2,
            "maxTrialNumber": 10000,
            "experimentWorkingDirectory": str(tmp_path / "experiments"),
            "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
            "trainingService": {"platform": "local"},
        }

    def write_config(self, name: str, overrides: dict | None = None) -> None:
        data = copy.deepcopy(self.base)
        for key, value in (overrides or {}).items():
            if key == "classArgs":      # shown as a tuner field
                data["tuner"][key] = value
            else:
                data[key] = value
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "trial.py").write_text(TRIAL)
        (path.parent / "search_space.json").write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 1]}}))
        path.write_text(yaml.safe_dump(data))

    def port(self) -> int:
        return json.loads((Path(os.environ["NNI_NG_HOME"]) / "experiments" / f"{self.id}.json").read_text())["port"]

    def created(self, out: subprocess.CompletedProcess) -> None:
        match = re.search(r"Experiment (\w+) (?:started|resumed)", out.stdout)
        if out.returncode == 0 and match:
            self.id, self.state = match.group(1), "running"

    def stop(self) -> None:
        if self.state in ("running", "viewed"):
            assert nnictl("stop", self.id).returncode == 0
            self.state = "stopped"

    def ensure(self, need: str | None) -> None:
        if need is None:
            return
        if self.state == "none":
            self.write_config("config.yml")
            self.created(nnictl("create", "--config", "config.yml", "--port", "0"))
            assert self.state == "running"
        if need == "running" and self.state != "running":
            self.stop()
            out = nnictl("resume", self.id, "--port", "0")
            assert out.returncode == 0, out.stderr
            self.state = "running"
        if need == "stopped":
            self.stop()
        if need in ("running", "results"):
            # Documented commands show trials and results: wait for some.
            if self.state == "running":
                wait_for(lambda: rest.get(self.port(), "/export-data"), what="a first result")

    def running_trial(self) -> str:
        """A trial that stays running until killed (it holds while ``hold`` exists)."""
        (self.workdir / "hold").touch()
        jobs = wait_for(lambda: [j for j in rest.get(self.port(), "/trial-jobs")
                                 if j["status"] == "RUNNING" and Path(j["trialDir"], "holding").exists()],
                        what="a held running trial")
        return jobs[0]["trialJobId"]

    def any_trial(self) -> str:
        from nni.manager.store import Store
        store = Store(self.tmp_path / "experiments" / self.id / "db" / "nni.sqlite", readonly=True)
        try:
            return store.trials()[0]["trial_id"]
        finally:
            store.close()


EXAMPLE_TRIAL = "Fu3TJ"     # the documents' example trial id
EXAMPLE_ID = re.compile(r"^(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{8}$")


def need_of(words: list[str], names_experiment: bool) -> str | None:
    head = " ".join(words[:2])
    if words[0] in ("create", "stop", "algo") or head == "experiment list":
        return None
    if words[0] in ("resume", "view") or head == "experiment delete":
        return "stopped"
    if words[0] in ("update", "top", "webui") or head in ("trial kill", "experiment import"):
        return "running"
    return "results" if names_experiment else "running"


def expected_line(line: str) -> re.Pattern:
    """A shown output line as a pattern: ids, numbers and paths may differ, ``...`` is anything."""
    parts = []
    for token in line.split():
        # Ids, numbers and paths differ from run to run.
        parts.append(".*" if token == "..." else r"\S+" if re.search(r"\d|/", token) else re.escape(token))
    return re.compile(r"\s+".join(parts))


def check_output(step: dict, out: subprocess.CompletedProcess) -> None:
    where = step["where"]
    shown = [line for line in step["output"] if line.strip()]
    errors = [line for line in shown if line.startswith("Error: ")]
    if errors:
        assert out.returncode == 1, (where, out.stdout, out.stderr)
        prefix = re.split(r"\.\.\.|\(", errors[0])[0].strip()
        assert out.stderr.startswith(prefix), (where, prefix, out.stderr)
        return
    assert out.returncode == 0, (where, out.stdout, out.stderr)
    for i, line in enumerate(shown):
        if re.match(r"(Experiment|Imported|Registered|Note:) ", line):
            assert expected_line(line).search(out.stdout), (where, line, out.stdout)
        elif i + 1 < len(shown) and re.fullmatch(r"[-\s]+", shown[i + 1]) and "-" in shown[i + 1]:
            header = out.stdout.splitlines()[0].split() if out.stdout.strip() else []
            assert header == line.split(), (where, line, out.stdout)


def test_every_documented_command_runs_as_shown(tmp_path, monkeypatch):
    workdir = Path.cwd()          # each test's own (conftest)
    world = World(workdir, tmp_path)
    world.write_config("config.yml")
    world.write_config("examples/sklearn_classification/config.yml")
    (workdir / "results.json").write_text(json.dumps([{"parameter": {"x": 0.5}, "value": 0.5}]))
    # `algo register` needs the class its meta file names to be importable.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]))
    ran = 0
    try:
        for step in STEPS:
            words = step["words"]
            if not words or is_synopsis(words):
                continue
            for name, lines in step["files"].items():
                (workdir / name).write_text("\n".join(lines) + "\n")
                meta = yaml.safe_load((workdir / name).read_text())
                if isinstance(meta, dict) and "className" in meta:
                    module, _, cls = meta["className"].rpartition(".")
                    module_path = workdir / (module.replace(".", "/") + ".py")
                    for parent in module_path.relative_to(workdir).parents:
                        if str(parent) != ".":
                            (workdir / parent).mkdir(parents=True, exist_ok=True)
                            (workdir / parent / "__init__.py").touch()
                    module_path.write_text(textwrap.dedent(f"""
                        from nni.algorithms.hpo.random_tuner import RandomTuner
                        class {cls}(RandomTuner):
                            pass
                    """))
            argv = [w.strip("[]") for w in words if w.strip("[]")]
            names_experiment = any(w in ("ID", "<id>") or EXAMPLE_ID.match(w) for w in argv)
            if argv[0] == "create":
                if not any(line.startswith("Error: ") for line in step["output"]):
                    world.stop()      # one running experiment at a time, as `nnictl stop` (no id) needs
                try:
                    overrides = yaml.safe_load(step["comment"]) if step["comment"] else None
                except yaml.YAMLError:
                    overrides = None
                config = argv[argv.index("--config") + 1]
                if isinstance(overrides, dict):
                    world.write_config(config, overrides)
                elif (workdir / config).exists():
                    world.write_config(config)
            else:
                world.ensure(need_of(argv, names_experiment))
            concrete = []
            for i, w in enumerate(argv):
                if w in ("ID", "<id>") or EXAMPLE_ID.match(w):
                    w = world.id
                elif i and argv[i - 1] == "--trial_id":
                    w = world.running_trial() if argv[:2] == ["trial", "kill"] else world.any_trial()
                elif w == EXAMPLE_TRIAL:      # `nnictl log trial [ID] Fu3TJ`: a trial id without --trial_id
                    w = world.any_trial()
                elif i and argv[i - 1] in ("--port", "-p"):
                    w = "0"
                concrete.append(w)
            if concrete[0] in ("create", "view") and "--port" not in concrete:
                concrete += ["--port", "0"]
            if concrete[0] == "top":
                run_top(concrete, step)
            else:
                out = nnictl(*concrete)
                (workdir / "hold").unlink(missing_ok=True)
                check_output(step, out)
                if concrete[0] in ("create", "resume"):
                    world.created(out)
                elif concrete[0] == "view" and out.returncode == 0:
                    world.state = "viewed"
                elif concrete[0] == "stop" and out.returncode == 0 and "stopped" in out.stdout:
                    world.state = "stopped" if world.state != "none" else "none"
                elif concrete[:2] == ["experiment", "delete"] and out.returncode == 0:
                    world.id, world.state = None, "none"
            ran += 1
    finally:
        nnictl("stop", "--all")
    assert ran >= 30


def run_top(argv: list[str], step: dict) -> None:
    """``top`` runs until Ctrl-C: read its first frame, then interrupt it."""
    top = subprocess.Popen([NNICTL, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in top.stdout:
            lines.append(line)
            if line.startswith("Trials:"):
                break
        top.send_signal(signal.SIGINT)
        top.communicate(timeout=60)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
    assert top.returncode in (0, 130), (step["where"], lines)
    shown = [line for line in step["output"] if line.strip()]
    if shown:
        assert expected_line(shown[0]).search(lines[0]), (step["where"], shown[0], lines)


# -- every Python block of the documents runs (issue 30, item 9) ---------------------------------
# A block may be marked by an HTML comment on the line before its fence:
#   <!-- test: fragment -->        part of a larger program (names defined elsewhere): compiled only
#   <!-- test: file NAME -->       a file the text goes on to use: written under NAME, compiled
#   <!-- test: with experiment --> runs with `experiment`, an Experiment (not started) on the
#                                  bundled example examples/sklearn_classification, stopped after
# Any other block runs as a script, as written (port 8080 becomes 0), in a folder with the
# document's files so far and a quick trial as trial.py and main.py; it must exit 0 and print
# no "Warning:" nor "Experiment failed".
PY_DOCUMENTS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
MARKER = re.compile(r"<!--\s*test:\s*(fragment|file\s+(\S+)|with experiment)\s*-->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

QUICK_TRIAL = """
import nni
params = nni.get_next_parameter() or {}
numbers = [v for v in params.values() if isinstance(v, (int, float))]
nni.report_final_result({"default": float(sum(numbers)), "size": len(params)})   # a dict metric, as the examples'
"""

WITH_EXPERIMENT = """
import json, sys
from pathlib import Path
from nni.experiment import Experiment
example = Path({example!r})
experiment = Experiment('local')
experiment.config.trial_command = sys.executable + ' main.py'
experiment.config.trial_code_directory = str(example)
experiment.config.search_space = json.loads((example / 'search_space.json').read_text())
experiment.config.tuner.name = 'TPE'
experiment.config.tuner.class_args['optimize_mode'] = 'maximize'
experiment.config.max_trial_number = 3
experiment.config.trial_concurrency = 2
try:
{block}
    experiment.config.canonical_copy()     # what the block set is a valid config
finally:
    experiment.stop()
"""


def doc_blocks(path: Path) -> list[dict]:
    """Each fenced block: its language, text, line and test marker (None, 'fragment', 'file', 'with experiment')."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").splitlines()
        marker = MARKER.fullmatch(before[-1].strip()) if before else None
        kind = None if marker is None else ("file" if marker.group(2) else marker.group(1))
        blocks.append({"lang": match.group(1), "text": match.group(2), "kind": kind,
                       "name": marker.group(2) if marker else None,
                       "where": f"{path.name}:{text[:match.start()].count(chr(10)) + 1}"})
    return blocks


PY_BLOCKS = [(path, i) for path in PY_DOCUMENTS for i, b in enumerate(doc_blocks(path)) if b["lang"] == "python"]


def venv_path() -> str:
    """PATH with this interpreter's folder first: `python3` and `nnictl` in the documents are ours."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def test_the_documents_have_python_blocks_and_markers_are_known():
    assert len(PY_BLOCKS) >= 14
    for path in PY_DOCUMENTS:
        for line in path.read_text().splitlines():
            if "<!-- test:" in line:
                assert MARKER.fullmatch(line.strip()), f"{path.name}: unknown test marker {line!r}"


@pytest.mark.parametrize("path,index", PY_BLOCKS, ids=[doc_blocks(p)[i]["where"] for p, i in PY_BLOCKS])
def test_every_python_block_runs(path, index, tmp_path):
    blocks = doc_blocks(path)
    block = blocks[index]
    code = block["text"]
    compile(code, block["where"], "exec")       # every block is valid Python
    if block["kind"] in ("fragment", "file"):
        return
    workdir = Path.cwd()
    for name in ("trial.py", "main.py"):
        (workdir / name).write_text(QUICK_TRIAL)
    for earlier in blocks[:index]:
        if earlier["kind"] == "file":
            (workdir / earlier["name"]).write_text(earlier["text"])
    if block["kind"] == "with experiment":
        example = ROOT / "examples" / "sklearn_classification"
        code = WITH_EXPERIMENT.format(example=str(example), block=textwrap.indent(code, "    "))
    else:
        code = re.sub(r"\b8080\b", "0", code)
    (workdir / "block.py").write_text(code)
    env = dict(os.environ, PATH=venv_path())
    out = subprocess.run([sys.executable, "block.py"], cwd=workdir, capture_output=True, text=True,
                         timeout=400, env=env)
    assert out.returncode == 0, (block["where"], out.stdout, out.stderr[-3000:])
    assert "Warning:" not in out.stderr and "Experiment failed" not in out.stderr, (block["where"], out.stderr)


# -- the custom tuner guide of docs/tuners.md, as written (issue 30, item 4) ----------------------
def guide_steps(path: Path) -> list[tuple[str, object]]:
    """In document order: ('file', (name, text)) for marked files, ('run', (command, shown lines)) for
    each ``$ nnictl`` line of a console block."""
    steps: list[tuple[str, object]] = []
    for block in doc_blocks(path):
        if block["kind"] == "file":
            steps.append(("file", (block["name"], block["text"])))
        elif block["lang"] == "console":
            current = None
            for line in block["text"].splitlines():
                if line.startswith("$ "):
                    current = (line[2:], [])
                    steps.append(("run", current))
                elif current is not None:
                    current[1].append(line)
    return steps


def test_the_custom_tuner_guide_runs_as_written(monkeypatch):
    workdir = Path.cwd()
    monkeypatch.setenv("PATH", venv_path())
    steps = guide_steps(ROOT / "docs" / "tuners.md")
    runs = [s for kind, s in steps if kind == "run"]
    assert any(c.startswith("nnictl algo register") for c, _ in runs) and len(runs) >= 10
    experiments = 0
    try:
        for kind, step in steps:
            if kind == "file":
                name, text = step
                (workdir / name).write_text(text)
                continue
            command, shown = step
            words = shlex.split(command)
            assert words[0] == "nnictl", command
            expect_status = next((m.group(1) for m in (re.fullmatch(r"\w{8}: (\w+)", s) for s in shown) if m), None)
            if expect_status:
                # The experiment runs on its own: wait for the status the guide shows.
                out = wait_for(lambda: (lambda o: o if o.stdout.split()[-1:] == [expect_status] else None)(
                    nnictl(*words[1:])), timeout=240, what=f"{command}: {expect_status}")
            else:
                out = nnictl(*words[1:])
            assert out.returncode == 0, (command, out.stdout, out.stderr)
            for line in shown:
                if re.match(r"(Experiment|Registered|Unregistered) ", line):
                    assert expected_line(line).search(out.stdout), (command, line, out.stdout)
            if words[1] == "create":
                experiments += 1
            if words[1:3] == ["trial", "ls"]:
                # What the guide says of this run: width 10 stopped by the assessor, the others succeeded.
                rows = [r.split() for r in out.stdout.splitlines()[2:]]
                assert sorted(r[2] for r in rows) == ["EARLY_STOPPED"] + ["SUCCEEDED"] * 3, out.stdout
                assert any(r[2] == "EARLY_STOPPED" and '{"width":' in r and "10}" in r for r in rows), out.stdout
    finally:
        nnictl("stop", "--all")
    assert experiments == 3
