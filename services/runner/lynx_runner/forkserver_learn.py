"""Learned preloads for the fork server (`preload: [auto]`): standard library only, like forkserver.py.

Each forked job, as it exits, reports the modules it imported that the fork server had not (a
datagram to the server's abstract AF_UNIX socket; the job holds no descriptor for it while it runs,
and the server accepts a report only from the pid of one of its own jobs, checked with
SCM_CREDENTIALS). The server collects the names and, between jobs, tries them in a *trial child*
first: a fork that imports them, runs the warm-up and checks that no thread runs and no denied
module (gRPC) was pulled in. Only when the trial passes does the server import them itself, in the
trial's order and in short slices between the jobs it forks and reaps (so learning never holds up
a job's start or the report of its exit); if it fails, the names are rejected for good. So the
server never holds a thread when it forks, and a job sees exactly what it would with the same
names (those imported so far) in an explicit `preload` list.

Guards: only names of modules the job itself imported (never `__main__`), that have a spec (came
from an importer), that are not denied and do not reference a denied module in their namespace
(transitively), at most MAX_LEARNED names per fork server.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

MAX_LEARNED = 1500
IMPORT_SLICE_S = 0.05  # the server imports learned names in slices this long, serving jobs in between
MAX_REPORT_BYTES = 150_000
# Never imported into the fork server: gRPC's core keeps process-wide state a forked child inherits.
DENIED_ROOTS = frozenset({"grpc"})
NEVER_LEARNED = frozenset({"__main__", "__mp_main__"})
TRIAL_OK, TRIAL_THREADS, TRIAL_DENIED = 0, 3, 4
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid


def is_denied(name: str) -> bool:
    return name.split(".", 1)[0] in DENIED_ROOTS


def _learnable(name: str) -> bool:
    return not is_denied(name) and name not in NEVER_LEARNED


def new_modules(baseline: set[str]) -> list[str]:
    """The modules imported since `baseline`, in import order, without denied ones or modules that
    reference a denied module (or, transitively, a module that does) in their namespace."""
    added = [name for name in list(sys.modules) if name not in baseline]
    tainted = {name for name in added if is_denied(name)} | {name for name in sys.modules if is_denied(name)}
    candidates: dict[str, object] = {}
    for name in added:
        module = sys.modules.get(name)
        if name in tainted or not _learnable(name) or module is None or getattr(module, "__spec__", None) is None:
            continue
        candidates[name] = module
    changed = True
    while changed:
        changed = False
        for name, module in list(candidates.items()):
            if _references(module, tainted):
                tainted.add(name)
                del candidates[name]
                changed = True
    return list(candidates)


def _references(module: object, tainted: set[str]) -> bool:
    """Whether the module's globals hold a tainted module, or a function/class defined in one."""
    try:
        values = list(vars(module).values())
    except TypeError:
        return False
    for value in values:
        owner = value.__name__ if type(value) is type(sys) else getattr(value, "__module__", None)
        if isinstance(owner, str) and owner in tainted:
            return True
    return False


class Learner:
    """The server's side: receives jobs' reports, runs trials, imports what passed."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(f"\0lynx-forkserver-{os.getpid()}-{os.urandom(8).hex()}")
        self.sock.setblocking(False)
        self.address: str = self.sock.getsockname()
        self.pending: dict[str, None] = {}
        self.rejected: set[str] = set()
        self.learned: list[str] = []
        self.trial_pid = 0
        self.trial_names: list[str] = []
        self.importing: list[str] = []  # names that passed their trial, still to import here (in order)
        self._loaded: list[str] = []
        self._failed: dict[str, str] = {}

    def drain(self, job_pids: set[int]) -> None:
        """Read every queued report; keep names from our own jobs that are new."""
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(MAX_REPORT_BYTES, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sender = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                    sender = _CREDENTIALS.unpack(payload[:12])[0]
            if sender not in job_pids:
                continue
            try:
                names = json.loads(data)
            except ValueError:
                continue
            for name in names if isinstance(names, list) else []:
                if (isinstance(name, str) and name not in sys.modules and name not in self.rejected
                        and name not in self.pending and name not in self.trial_names
                        and _learnable(name) and len(self.learned) + len(self.pending) < MAX_LEARNED):
                    self.pending[name] = None

    def start_trial(self, warm_up: str, close: tuple[int, ...] = ()) -> None:
        """Fork a child that imports the pending names and checks the result (exit code says);
        `close`: the server's descriptors the trial must not hold."""
        if self.trial_pid or self.importing or not self.pending:
            return
        self.trial_names, self.pending = list(self.pending), {}
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.trial_pid = pid
            return
        code = TRIAL_OK
        try:
            import signal
            import threading

            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.sock.close()
            for fd in close:
                os.close(fd)

            loaded, failed = import_names(self.trial_names)
            if warm_up and loaded:
                run_warm_up(warm_up, failed)
            if threading.active_count() > 1:
                print(f"learned preloads start threads: {self.trial_names}", file=sys.stderr)
                code = TRIAL_THREADS
            elif any(is_denied(name) for name in sys.modules):
                print(f"learned preloads import a denied module: {self.trial_names}", file=sys.stderr)
                code = TRIAL_DENIED
        except BaseException:  # noqa: BLE001 - any failure means: do not learn these
            code = 1
        sys.stderr.flush()
        os._exit(code)

    def trial_ended(self, status: int) -> dict | None:
        """After the trial child is reaped: queue its names for import here if it passed (see
        `import_step`); the message for the runner when they are rejected, else None."""
        names, self.trial_pid, self.trial_names = self.trial_names, 0, []
        if os.waitstatus_to_exitcode(status) != TRIAL_OK:
            self.rejected.update(names)
            return {"learned": [], "rejected": names}
        self.importing, self._loaded, self._failed = names, [], {}
        return None

    def import_step(self, warm_up: str, budget_s: float = IMPORT_SLICE_S) -> dict | None:
        """Import the next names that passed their trial, in the trial's order, for about `budget_s`,
        so the server still forks and reaps jobs between slices (a job forked meanwhile sees the
        modules imported so far, each one whole). After the last name: the warm-up, then the message
        for the runner; None while names remain."""
        import gc
        import time

        deadline = time.monotonic() + budget_s
        while self.importing and time.monotonic() < deadline:
            loaded, failed = import_names([self.importing.pop(0)])
            self._loaded += loaded
            self._failed.update(failed)
        gc.freeze()  # what this slice created: jobs forked before the end neither scan nor copy it
        if self.importing:
            return None
        loaded, failed = self._loaded, self._failed
        if warm_up and loaded:
            run_warm_up(warm_up, failed)
        gc.collect()
        gc.freeze()
        self.learned += loaded
        self.rejected.update(failed)
        self._loaded, self._failed = [], {}
        return {"learned": loaded, "failed": failed}

    def close(self) -> None:
        self.sock.close()


def import_names(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Import each name in order (an imported one counts as loaded); failures are reported, never raised."""
    import importlib

    loaded: list[str] = []
    failed: dict[str, str] = {}
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except BaseException as exc:  # noqa: BLE001 - a bad name must not stop the server
            failed[name] = f"{type(exc).__name__}: {exc}"
    return loaded, failed


def run_warm_up(path: str, failed: dict[str, str]) -> None:
    """Run a warm-up script (first-use caches: fonts, plots, a tiny simulation); a failure is
    recorded in `failed`, never raised."""
    import runpy

    try:
        runpy.run_path(path, run_name="__lynx_warm_up__")
    except BaseException as exc:  # noqa: BLE001 - reported, never fatal
        failed[f"warm_up {path}"] = f"{type(exc).__name__}: {exc}"


def report(address: str, baseline: set[str]) -> None:
    """In a job, as it exits: send the modules it imported to the server; never fails the job."""
    try:
        names = new_modules(baseline)
        data = json.dumps(names).encode()
        while len(data) > MAX_REPORT_BYTES and names:
            names = names[: len(names) // 2]
            data = json.dumps(names).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, address)
    except Exception:  # noqa: BLE001 - learning is an optimisation
        pass
