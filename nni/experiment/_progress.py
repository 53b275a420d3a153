"""The one-line progress display of ``Experiment.run()``."""

from __future__ import annotations

from typing import Any, TextIO


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_progress(p: dict[str, Any], width: int = 24) -> str:
    done, total = p.get("limitDone", p["trialsDone"]), p.get("maxTrialNumber")
    unit = p.get("limitUnit", "trials")
    if total:
        filled = int(width * min(done, total) / total)
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}"
    else:
        bar = f"{done} {unit}"
    running = p.get("counts", {}).get("RUNNING", 0)
    failed = p.get("counts", {}).get("FAILED", 0)
    best = p.get("bestMetric")
    best_text = f"best {best:.6g} ({p.get('optimizeMode', 'maximize')[:3]})" if best is not None else "best -"
    elapsed = _clock(p.get("elapsed", 0))
    limit = p.get("maxExperimentDuration")
    if limit:
        elapsed += f"/{_clock(limit)}"
    failed_text = f"  {failed} FAILED" if failed else ""
    return f"{bar}  {running} running{failed_text}  {best_text}  {elapsed}  {p['status']}"


class ProgressLine:
    """Redraws one line on a terminal; prints a line per change elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = ""
        self._last_key: tuple = ()

    def show(self, progress: dict[str, Any]) -> None:
        text = format_progress(progress)
        if self._tty:
            self._stream.write("\r" + text.ljust(len(self._last)))
            self._stream.flush()
        else:
            # Without a terminal, only a change worth a line of log gets one.
            key = (progress.get("limitDone"), progress["status"])
            if key != self._last_key:
                self._stream.write(text + "\n")
                self._last_key = key
        self._last = text

    def close(self) -> None:
        if self._tty and self._last:
            self._stream.write("\n")
            self._stream.flush()
