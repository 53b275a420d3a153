"""The environment variables a trial receives from its training service (NNI's names)."""

from __future__ import annotations

import os


class TrialEnv:
    """What a trial knows about itself. (A plain class: ``typing`` costs a trial 5 ms to import.)"""

    __slots__ = ("platform", "experiment_id", "trial_job_id", "sys_dir", "output_dir", "sequence_id",
                 "channel_url", "token", "first_parameter")

    def __init__(self, *, platform: str | None, experiment_id: str, trial_job_id: str, sys_dir: str,
                 output_dir: str, sequence_id: int, channel_url: str | None, token: str | None,
                 first_parameter: str | None = None) -> None:
        self.platform = platform
        self.experiment_id = experiment_id
        self.trial_job_id = trial_job_id
        self.sys_dir = sys_dir
        self.output_dir = output_dir
        self.sequence_id = sequence_id
        self.channel_url = channel_url
        self.token = token
        self.first_parameter = first_parameter   # record 0 as JSON (NNI_TRIAL_PARAMETER), if given


def read_trial_env() -> TrialEnv:
    env = os.environ
    return TrialEnv(
        platform=env.get("NNI_PLATFORM") or None,
        experiment_id=env.get("NNI_EXP_ID", "STANDALONE"),
        trial_job_id=env.get("NNI_TRIAL_JOB_ID", "STANDALONE"),
        sys_dir=env.get("NNI_SYS_DIR", os.getcwd()),
        output_dir=env.get("NNI_OUTPUT_DIR", os.getcwd()),
        sequence_id=int(env.get("NNI_TRIAL_SEQ_ID", "0") or 0),
        channel_url=env.get("NNI_TRIAL_CHANNEL") or None,
        token=env.get("NNI_TRIAL_TOKEN") or None,
        first_parameter=env.get("NNI_TRIAL_PARAMETER") or None,
    )
