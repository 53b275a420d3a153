"""The ground every training service shares: its context, the end message, the GPU env rule, the queue."""

from __future__ import annotations

import asyncio

import pytest

from nni.experiment import Experiment
from nni.training_service import GpuNeeds, ServiceContext, TrainingService, TrialEnded, TrialSpec
from nni.training_service._common import TrialQueue, end_message


def _local_experiment(code_dir) -> Experiment:
    exp = Experiment("local")
    exp.config.trial_command = "true"
    exp.config.trial_code_directory = str(code_dir)
    exp.config.search_space = {"x": {"_type": "choice", "_value": [1]}}
    exp.config.trial_concurrency = 1
    exp.config.tuner.name = "Random"
    return exp


def test_context_carries_what_a_service_needs_from_the_config(tmp_path):
    exp = _local_experiment(tmp_path)
    exp.config.trial_gpu_number = 1
    exp.config.nni_manager_ip = "10.1.2.3"
    exp.config.training_service.use_active_gpu = True
    exp.config.training_service.gpu_indices = "0,2"
    exp.config.training_service.max_trial_number_per_gpu = 3
    config = exp.config.canonical_copy()
    context = ServiceContext.from_config(config, experiment_id="abc", experiment_dir=tmp_path / "abc", port=8123)
    assert (context.experiment_id, context.manager_port) == ("abc", 8123)
    assert context.trial_channel == "http://10.1.2.3:8123"
    assert context.gpu == GpuNeeds(trial_gpu_number=1, gpu_indices=(0, 2), max_trial_number_per_gpu=3,
                                   use_active_gpu=True)
    assert context.service.platform == "local"


def test_cuda_visible_devices_follows_trial_gpu_number():
    assert GpuNeeds(trial_gpu_number=None).cuda_env() == {}                  # unset: inherited
    assert GpuNeeds(trial_gpu_number=0).cuda_env() == {"CUDA_VISIBLE_DEVICES": ""}   # NNI: no GPU
    assert GpuNeeds(trial_gpu_number=2).cuda_env([3, 1]) == {"CUDA_VISIBLE_DEVICES": "3,1"}


def test_end_message_names_the_exit_where_and_the_stderr_tail(tmp_path):
    stderr = tmp_path / "stderr"
    assert end_message(0, stderr) == ""
    assert end_message(3, stderr) == "exit code 3; stderr was empty"
    assert end_message(-9, stderr, where="Ray node n1") == "killed by signal 9 on Ray node n1; stderr was empty"
    stderr.write_bytes(b"x" * 5000 + b"\nTraceback: boom\n")
    message = end_message(1, stderr, where="alice@host:22")
    assert message.startswith("exit code 1 on alice@host:22; stderr tail:\n")
    assert message.endswith("Traceback: boom") and len(message.split("\n", 1)[1]) == 1999   # 2000 bytes, stripped
    assert end_message(None, stderr, reason="the SSH channel closed").startswith("the SSH channel closed; stderr tail:")
    stderr.write_bytes(b"Traceback (most recent call last):\nModuleNotFoundError: No module named 'nni'\n")
    assert end_message(1, stderr).startswith("exit code 1 (the trial's Python cannot import nni: start the experiment")


class _Recorder(TrainingService):
    """A service that only records what the queue tells the manager."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

        async def waiting(trial_id: str, reason: str) -> None:
            self.events.append(("waiting", trial_id, reason))

        async def ended(ended: TrialEnded) -> None:
            self.events.append(("ended", ended.trial_id, ended.message))

        self.on_trial_waiting, self.on_trial_end = waiting, ended

    async def submit(self, spec: TrialSpec) -> None: ...

    async def kill(self, trial_id: str) -> None: ...

    async def stop(self) -> None: ...


def _spec(trial_id: str) -> TrialSpec:
    return TrialSpec(trial_id, 0, "true", ".", ".", gpu_number=1)


def test_queue_reports_each_new_reason_once_and_cancels_without_running():
    async def main() -> _Recorder:
        service = _Recorder()
        queue = TrialQueue(service, dispatch=lambda: asyncio.sleep(0))
        a, b = _spec("a"), _spec("b")
        queue.append(a)
        queue.append(b)
        for reason in ("no GPU", "no GPU", "GPU 0 busy"):
            await queue.wait(a, reason)
        assert await queue.cancel("b") and not await queue.cancel("b")
        await queue.wait(b, "no GPU")   # no longer queued: nothing to report
        assert queue.take(a) and not queue.take(a) and not queue
        return service

    assert asyncio.run(main()).events == [("waiting", "a", "no GPU"), ("waiting", "a", "GPU 0 busy"),
                                          ("ended", "b", "canceled before it started")]


def test_queue_runs_one_dispatch_at_a_time():
    async def main() -> list[str]:
        trace: list[str] = []

        async def dispatch() -> None:
            trace.append("in")
            await asyncio.sleep(0.01)   # e.g. nvidia-smi on a worker thread
            trace.append("out")

        queue = TrialQueue(_Recorder(), dispatch)
        await asyncio.gather(queue.dispatch(), queue.dispatch(), queue.dispatch())
        return trace

    assert asyncio.run(main()) == ["in", "out"] * 3


@pytest.mark.parametrize("queued", [0, 2])
def test_queue_close_cancels_every_queued_trial(queued):
    async def main() -> _Recorder:
        service = _Recorder()

        async def dispatch() -> None:
            service.events.append(("dispatched", None))

        queue = TrialQueue(service, dispatch)
        for i in range(queued):
            queue.append(_spec(f"t{i}"))
        queue.recheck_later(0.01)
        await queue.close()
        await asyncio.sleep(0.05)   # a recheck left armed would dispatch here
        return service

    assert [e[:2] for e in asyncio.run(main()).events] == [("ended", f"t{i}") for i in range(queued)]


def test_local_kill_while_the_trial_process_is_being_created_ends_it(tmp_path):
    """A kill that arrives while the trial's process is still being created (it left the
    queue, the process does not exist yet) waits for it and ends it: the trial does not run
    to its end."""
    from nni.training_service.local import LocalTrainingService

    exp = _local_experiment(tmp_path)
    context = ServiceContext.from_config(exp.config.canonical_copy(), experiment_id="race",
                                         experiment_dir=tmp_path / "race", port=1)

    async def scenario() -> TrialEnded:
        service = LocalTrainingService(context)
        ended: asyncio.Future = asyncio.get_running_loop().create_future()

        async def on_end(e: TrialEnded) -> None:
            ended.set_result(e)

        async def on_start(trial_id: str, **_: object) -> None:
            pass

        service.on_trial_end, service.on_trial_start = on_end, on_start
        await service.start()
        try:
            spec = TrialSpec("t1", 0, "sleep 300", str(tmp_path), str(tmp_path / "t1"))
            # submit() runs until its process is being created, then kill() comes in
            await asyncio.gather(service.submit(spec), service.kill("t1"))
            return await asyncio.wait_for(ended, 120)
        finally:
            await service.stop()

    ended = asyncio.run(scenario())
    assert ended.exit_code is not None and ended.exit_code < 0, ended     # killed by a signal
