"""The environment variables a trial receives from its training service (NNI's names)."""

from __future__ import annotations

import os
from typing import NamedTuple


class TrialEnv(NamedTuple):
    platform: str | None
    experiment_id: str
    trial_job_id: str
    sys_dir: str
    output_dir: str
    sequence_id: int
    channel_url: str | None
    token: str | None


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
    )
