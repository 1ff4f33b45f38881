"""No scenario outlives its runner: parent-death signals, per-job pid records, and a guardian.

* The job's leader gets PR_SET_PDEATHSIG(SIGKILL) (cold jobs through `setpriv --pdeathsig KILL` when
  util-linux is installed, fork-server children in forkserver.py), so it dies the moment its parent does.
* Its own children share its session; they get no parent-death signal. The runner records each job's
  leader (pid and start time from /proc/<pid>/stat) in a file under its private records dir.
* A guardian process (`python -m lynx_runner.orphans --records DIR`, started by the agent) reads its
  stdin until EOF, which is when the runner exits however it exits, SIGKILL included; it then kills
  every recorded session. A restarted runner does the same at start, from the same records.

A record is acted on only when it still describes the same process (same start time), or when that
leader is gone and processes of its session remain (Linux reuses no pid while it names a session).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


SETPRIV = shutil.which("setpriv")  # util-linux: sets PR_SET_PDEATHSIG, then execs the job (same pid)


def with_death_signal(argv: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """`argv` run through `setpriv --pdeathsig KILL`, so the job dies with the runner, when setpriv is
    installed (no preexec_fn: forking a threaded runner must not run Python in the child). The
    executable is resolved first, so a missing one is still an OSError at launch, not exit code 127."""
    if SETPRIV is None or not argv:
        return argv
    exe = argv[0]
    if os.sep in exe:
        path = exe if os.path.isabs(exe) else os.path.join(cwd, exe)
        found = path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    else:
        found = shutil.which(exe, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(2, "No such file or directory", exe)
    return [SETPRIV, "--pdeathsig", "KILL", "--", found, *argv[1:]]


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name ([0] is the state, [2] the process group,
    [21] the resident pages); None when the process is gone or the file cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields or None


def _stat(pid: int) -> tuple[int, int] | None:
    """(session id, start time in clock ticks) of a live process, None when there is none."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[3]), int(fields[19])


def session_members(sid: int) -> list[int]:
    """Live processes whose session is `sid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] == sid:
                members.append(int(entry))
    return members


def records_dir(output_root: Path, runner_id: str) -> Path:
    """The runner's private records dir (one per runner id, so runners sharing a host never touch each other's)."""
    return output_root / ".lynx-runners" / re.sub(r"[^A-Za-z0-9_.-]", "_", runner_id) / "jobs"


class JobRecords:
    """One file per running job's leader under `folder`: {"job_id", "pid", "start"}."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, job_id: str, pid: int) -> None:
        stat = _stat(pid)
        if stat is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{job_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"job_id": job_id, "pid": pid, "start": stat[1]}))
        tmp.replace(path)

    def forget(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / f"{job_id}.json").unlink()

    def kill_leftovers(self) -> int:
        """SIGKILL every recorded job session still alive; remove the records. Returns sessions killed."""
        killed = 0
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                record = json.loads(path.read_text())
                pid, start = int(record["pid"]), int(record["start"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            stat = _stat(pid)
            if stat is not None and stat[1] == start:
                targets = [pid, *session_members(pid)]
            elif stat is None:
                targets = session_members(pid)  # the leader died; its children may not have
            else:
                targets = []  # the pid now names another process
            for target in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(target, signal.SIGKILL)
            if targets:
                killed += 1
                log.warning("killed job %s (pid %d) left by a runner that is gone", record.get("job_id"), pid)
            path.unlink(missing_ok=True)
        return killed


def start_guardian(folder: Path) -> subprocess.Popen:
    """The guardian of `folder`'s records: it acts when the returned process's stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-m", "lynx_runner.orphans", "--records", str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
    )


def stop_guardian(guardian: subprocess.Popen) -> None:
    """Close its stdin (it cleans up what is left and exits) and reap it."""
    with contextlib.suppress(OSError):
        guardian.stdin.close()
    try:
        guardian.wait(5)
    except subprocess.TimeoutExpired:
        guardian.kill()
        guardian.wait()


def main(argv: list[str] | None = None) -> None:
    """Guardian: wait for EOF on stdin, then kill the recorded job sessions."""
    parser = argparse.ArgumentParser(prog="lynx-runner-guardian", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which ends its jobs itself
    while sys.stdin.buffer.read(4096):
        pass
    JobRecords(args.records).kill_leftovers()


if __name__ == "__main__":
    main()
