"""Keeps a remote or Ray trial's lease: ``python -m nni.runtime.lease [PID]``.

The manager declares an attempt lost when its lease is not renewed for
``trialLeaseTimeout`` (a machine gone silent), and runs the trial again elsewhere. This
small loop renews it every ``NNI_TRIAL_LEASE_INTERVAL`` seconds from the trial's machine,
over the trial's own channel and token. It runs in the trial's process group (so it ends
with the trial), stops when ``PID`` (the trial's shell) is gone, and stops for good when
the manager answers 409: a newer attempt has replaced this one.
"""

from __future__ import annotations

import os
import sys
import time

from .channel import ChannelError, TrialChannel
from .process import pid_alive


def keep_lease(channel: TrialChannel, interval: float, machine: str | None = None, alive=lambda: True) -> None:
    """Renew every ``interval`` seconds while ``alive()``; returns when superseded or done."""
    while alive():
        try:
            channel.renew_lease(machine)
        except ChannelError as exc:
            if exc.status in (403, 409):   # superseded (or the trial is unknown): nothing to keep
                return
        except OSError:
            pass   # the manager is unreachable right now; the next renewal tries again
        time.sleep(interval)


def main() -> int:
    env = os.environ
    url, token, trial_id = env.get("NNI_TRIAL_CHANNEL"), env.get("NNI_TRIAL_TOKEN"), env.get("NNI_TRIAL_JOB_ID")
    interval = float(env.get("NNI_TRIAL_LEASE_INTERVAL") or 0)
    if not (url and token and trial_id and interval > 0):
        return 0
    pid = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    sys_dir = env.get("NNI_SYS_DIR")
    if sys_dir:
        try:   # where tests (and curious users) find the lease keeper of an attempt
            with open(os.path.join(sys_dir, "lease.pid"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    keep_lease(TrialChannel(url, trial_id, token), interval, None, lambda: pid_alive(pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
