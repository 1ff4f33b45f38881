"""The warm-start fork server: a child of the runner that imports heavy modules once, then forks per job.

Run as a script with the scenario's own interpreter (`python_executable`), never imported by it:

    python forkserver.py --fd N [--preload module ...]

Standard library only, so it works in any scenario venv. It talks to the runner over the
AF_UNIX SOCK_SEQPACKET socket `N` (one JSON message per packet):

* server -> runner, once: ``{"ready": true, "preloaded": [...], "failed": {module: error}, "threads": n}``
* runner -> server: ``{"id", "entrypoint", "cwd", "env", "memory_limit"}`` with the job's stdout and
  stderr pipe ends attached as SCM_RIGHTS file descriptors
* server -> runner: ``{"id", "pid"}`` right after the fork (or ``{"id", "error"}``), and later
  ``{"id", "returncode"}`` once the fork server has reaped the job (negative = killed by that signal)
* server -> runner, with ``--learn`` (preload ``auto``): ``{"learned": [...], "failed": {...}}`` after it
  imported modules its jobs imported, or ``{"learned": [], "rejected": [...]}`` when their trial failed
  (forkserver_learn.py)

The forked child becomes the job: a new session (so the runner can SIGKILL its whole group), the
job's environment, cwd, argv ``[entrypoint]``, stdin from /dev/null, stdout/stderr on the given pipes,
fresh random seeds, then the entrypoint runs as ``__main__`` through runpy and the interpreter exits
as it would after ``python entrypoint`` (exit code, uncaught exception -> 1, atexit, thread joins).

The server starts no threads itself and never imports grpc: forking a process with threads is unsafe.
It exits when the runner closes the socket.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback

try:
    from lynx_runner import forkserver_learn
except ImportError:  # run as a script: its own directory is sys.path[0] until main() changes it
    import forkserver_learn

MAX_MESSAGE = 1 << 20


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def _parse(path: str):
    import ast

    try:
        with open(path, "rb") as f:
            return ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None


def _import_names(node) -> list[str]:
    """`import a.b` yields a.b; `from a.b import c` yields a.b and a.b.c (c may be a submodule); relative: nothing."""
    import ast

    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return []


def _clean(names: list[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n != "__future__" and not n.startswith("__future__.")))


def entrypoint_imports(path: str) -> list[str]:
    """The modules a script imports at its top level (also inside top-level try blocks), in order;
    `from a.b import c` yields a.b and a.b.c (c may be a submodule). Relative imports are skipped."""
    import ast

    tree = _parse(path)
    if tree is None:
        return []
    names: list[str] = []
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.Try):
            statements[:0] = node.body
        else:
            names += _import_names(node)
    return _clean(names)


def _is_main_guard(node) -> bool:
    """`if __name__ == "__main__":` (either operand order)."""
    import ast

    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
            and isinstance(node.test.ops[0], ast.Eq)):
        return False
    sides = [node.test.left, *node.test.comparators]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def entrypoint_body_imports(path: str) -> list[str]:
    """The modules a script imports unconditionally inside its functions and methods (at any depth)
    and in its `if __name__ == "__main__":` block: the import statements each of those bodies runs
    whenever it runs (directly in the body, or in its `try` and `with` blocks), never those under
    `if`, loops or `except`. Scripts that import inside `main()` are common; these names are what a
    job will import once the script's functions run, so the fork server can import them first."""
    import ast

    tree = _parse(path)
    if tree is None:
        return []
    names: list[str] = []
    bodies = [node.body for node in tree.body if _is_main_guard(node)]
    bodies += [node.body for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for body in bodies:
        statements = list(body)
        while statements:
            node = statements.pop(0)
            if isinstance(node, (ast.Try, ast.With, ast.AsyncWith)):
                statements[:0] = node.body
            else:
                names += _import_names(node)
    return _clean(names)


def _modules_of(imported_names: list[str], keep_missing: bool) -> list[str]:
    """The names that are modules (a `from` name that is a class or function is dropped); a name whose
    top package cannot be found is kept only with `keep_missing` (reported as a failed preload)."""
    import importlib.util

    result: list[str] = []
    for imported in imported_names:
        parent, _, _ = imported.rpartition(".")
        try:
            if importlib.util.find_spec(imported) is not None:
                result.append(imported)
        except (ImportError, ValueError, AttributeError):
            if keep_missing and not parent:
                result.append(imported)
    return result


def expand_auto(modules: list[str], entrypoint: str) -> list[str]:
    """Replace "auto" with the entrypoint's top-level imports; a `from` name that is not a module is dropped."""
    result: list[str] = []
    for name in modules:
        if name != "auto":
            result.append(name)
        elif entrypoint:
            result += _modules_of(entrypoint_imports(entrypoint), keep_missing=True)
    return list(dict.fromkeys(result))


def body_preloads(modules: list[str], entrypoint: str, taken: list[str]) -> list[str]:
    """With "auto": the modules the entrypoint's functions and main block import unconditionally
    (`entrypoint_body_imports`) that are installed, not in `taken`, and not denied (gRPC)."""
    if "auto" not in modules or not entrypoint:
        return []
    names = [n for n in entrypoint_body_imports(entrypoint)
             if n not in taken and n not in sys.modules and not forkserver_learn.is_denied(n)]  # before find_spec
    return _modules_of(names, keep_missing=False)


class Server:
    """Receives job requests, forks one child per job, reaps children and reports their exit."""

    def __init__(self, sock: socket.socket, learner: forkserver_learn.Learner | None = None,
                 warm_up: str = "") -> None:
        self.sock = sock
        self.learner = learner
        self.warm_up = warm_up
        self.jobs: dict[int, str] = {}  # pid -> job id
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def serve(self) -> dict | None:
        """Loop until the runner goes away (returns None) or, in a forked child, return its job."""
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ, "request")
        selector.register(self.wake_r, selectors.EVENT_READ, "child")
        if self.learner is not None:
            selector.register(self.learner.sock, selectors.EVENT_READ, "learn")
        while True:
            importing = self.learner is not None and bool(self.learner.importing)
            for key, _ in selector.select(0 if importing else None):
                if key.data == "learn":
                    self.learner.drain(set(self.jobs))
                    continue
                if key.data == "child":
                    self._drain_wakeups()
                    if self.learner is not None:
                        self.learner.drain(set(self.jobs))  # a job reports before it exits
                    self._reap()
                    continue
                try:
                    data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 2)
                except (ConnectionResetError, OSError):
                    data, fds = b"", []
                if not data:
                    for fd in fds:
                        os.close(fd)
                    return None
                job = self._fork(json.loads(data), fds)
                if job is not None:
                    selector.close()
                    return job
            self._reap()
            if self.learner is not None and self.learner.importing:
                done = self.learner.import_step(self.warm_up)
                if done is not None:
                    _send(self.sock, done)
            if self.learner is not None and self.learner.pending:
                self.learner.start_trial(self.warm_up, close=(self.sock.fileno(),))

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        while self.jobs or (self.learner is not None and self.learner.trial_pid):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.learner is not None and pid == self.learner.trial_pid:
                rejected = self.learner.trial_ended(status)
                if rejected is not None:
                    _send(self.sock, rejected)
                continue
            job_id = self.jobs.pop(pid, None)
            if job_id is not None:
                _send(self.sock, {"id": job_id, "returncode": os.waitstatus_to_exitcode(status)})

    def _fork(self, request: dict, fds: list[int]) -> dict | None:
        """Fork a child for `request`; returns the request in the child, None in the server."""
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            _send(self.sock, {"id": request.get("id"), "error": "expected stdout and stderr descriptors"})
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _send(self.sock, {"id": request["id"], "error": f"fork failed: {exc}"})
            return None
        if pid == 0:
            request["_fds"] = fds
            return request
        for fd in fds:
            os.close(fd)
        self.jobs[pid] = request["id"]
        _send(self.sock, {"id": request["id"], "pid": pid})
        return None

    def release(self, request: dict) -> None:
        """In the child: drop everything that belongs to the server."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in (self.wake_r, self.wake_w):
            os.close(fd)
        self.sock.close()
        if self.learner is not None:
            request["_learn"] = self.learner.address
            self.learner.close()


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL): this process dies with its parent (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def become_job(request: dict) -> str:
    """In the forked child: take on the job's session, files, environment and limits; returns the entrypoint."""
    os.setsid()
    _die_with_parent()  # a job never outlives its fork server, which never outlives the runner
    out_fd, err_fd = request["_fds"]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    for fd in (devnull, out_fd, err_fd):
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    memory_limit = int(request.get("memory_limit") or 0)
    if memory_limit > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))
    _reseed()
    entrypoint = request["entrypoint"]
    sys.argv[:] = [entrypoint]
    sys.path[0] = os.path.dirname(os.path.realpath(entrypoint))
    return entrypoint


def _reseed() -> None:
    """Forked children must not share the server's random state (a fresh interpreter seeds from the OS)."""
    if "random" in sys.modules:
        sys.modules["random"].seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def main() -> dict | None:
    """Preload, report ready, serve; returns the job only in a forked child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--preload", nargs="*", default=[])
    parser.add_argument("--warm-up", default="")
    parser.add_argument("--entrypoint", default="")
    parser.add_argument("--learn", action="store_true", help="learn preloads from the modules jobs import")
    parser.add_argument("--shallow", action="store_true",
                        help="with auto: skip the imports inside the entrypoint's functions (set on a restart "
                             "after they started threads or imported gRPC)")
    args = parser.parse_args()
    _die_with_parent()
    # sys.path[0] is the runner's source directory: it must not shadow scenario modules. Like
    # `python entrypoint`, the entrypoint's own directory comes first (each job sets it again).
    sys.path[0] = os.path.dirname(os.path.realpath(args.entrypoint)) if args.entrypoint else os.getcwd()
    sock = socket.socket(fileno=args.fd)
    preload = expand_auto(args.preload, args.entrypoint)
    loaded, failed = forkserver_learn.import_names(preload)
    safe = not _unsafe_to_fork()
    tried, body = ([], []) if args.shallow else _preload_body_imports(args.preload, args.entrypoint, preload)
    loaded += body
    if args.warm_up:
        forkserver_learn.run_warm_up(args.warm_up, failed)
    if tried and safe and _unsafe_to_fork():  # what the body imports brought (or its warm-up) did it
        _restart_shallow()
    global _PRECOMPILED
    _PRECOMPILED = precompile(args.entrypoint) if args.entrypoint else None
    gc.collect()
    gc.freeze()  # preloaded objects move to the permanent generation: jobs neither scan nor copy them
    if threading.active_count() > 1:
        failed["threads"] = (f"{threading.active_count()} Python threads run after preloading; forking them is "
                             "unsafe, so this fork server refuses to serve")
        _send(sock, {"ready": False, "preloaded": loaded, "failed": failed})
        return None
    _send(sock, {"ready": True, "preloaded": loaded, "failed": failed, "threads": threading.active_count(),
                 "os_threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1})
    server = Server(sock, forkserver_learn.Learner() if args.learn else None, args.warm_up)
    try:
        job = server.serve()
    except Exception:  # noqa: BLE001 - logged to the server's log; the runner sees EOF
        traceback.print_exc()
        return None
    if job is not None:
        server.release(job)
    return job


def _preload_body_imports(modules: list[str], entrypoint: str, taken: list[str]) -> tuple[list[str], list[str]]:
    """Import what the entrypoint's functions import unconditionally (`body_preloads`); (names tried,
    names imported). Unlike the top-level imports, a job might never run them: one that fails to
    import is skipped quietly (noted in the server's log), and if they (or finding them: that imports
    their parent packages) leave a thread running or pull in gRPC, main() starts the server over
    without them (`_restart_shallow`) instead of refusing to serve."""
    names = body_preloads(modules, entrypoint, taken)
    loaded, failed = forkserver_learn.import_names(names)
    for name, error in failed.items():
        print(f"fork server: skipped {name}, imported inside the entrypoint's functions: {error}", file=sys.stderr)
    return names, loaded


def _unsafe_to_fork() -> bool:
    return threading.active_count() > 1 or any(forkserver_learn.is_denied(name) for name in sys.modules)


def _restart_shallow() -> None:
    """Replace this process with a fresh fork server that skips the entrypoint's function-level
    imports (an exec drops every module and thread they brought; the runner's socket stays open)."""
    print("fork server: the imports inside the entrypoint's functions start threads or import gRPC; "
          "restarting without them", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv, "--shallow"])


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter exits with for an uncaught SystemExit (printing a non-int code)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_uncaught(exc: BaseException, entrypoint: str) -> None:
    """sys.excepthook with the fork server's own frames cut off, as a fresh `python entrypoint` shows it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != entrypoint:
        tb = tb.tb_next
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _flush_open_files(gc, io) -> None:
    """Flush every open file object, text wrappers before the buffers under them (as exit would)."""
    kinds = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
    files = [o for o in gc.get_objects() if type(o) in kinds]  # type(): isinstance is slow on SWIG proxies
    files.sort(key=lambda o: type(o) is not io.TextIOWrapper)
    for f in files:
        try:
            if not f.closed:
                f.flush()
        except Exception:  # noqa: BLE001 - a file that cannot flush would not flush at exit either
            pass


_PRECOMPILED: tuple[str, tuple[int, ...], object] | None = None  # (path, stat key, code) of the entrypoint


def _stat_key(path: str) -> tuple[int, ...]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _compile_file(path: str):
    """The file's code as `python path` compiles it: never with this module's __future__ flags."""
    import io

    with io.open_code(path) as f:
        source = f.read()
    return compile(source, path, "exec", dont_inherit=True)


def precompile(path: str) -> tuple[str, tuple[int, ...], object] | None:
    """The entrypoint compiled once in the server, so jobs need not compile it again; None when it
    cannot be read or compiled (then each job compiles it and reports the error as python would)."""
    try:
        key = _stat_key(path)
        return path, key, _compile_file(path)
    except (OSError, SyntaxError, ValueError):
        return None


def _entrypoint_code(entrypoint: str):
    """The entrypoint's code: the server's compiled copy while the file is unchanged (same mtime,
    size and inode), else compiled now from the file."""
    if _PRECOMPILED is not None and _PRECOMPILED[0] == entrypoint:
        try:
            if _stat_key(entrypoint) == _PRECOMPILED[1]:
                return _PRECOMPILED[2]
        except OSError:
            pass
    return _compile_file(entrypoint)


def run_job(entrypoint: str, learn_address: str = "") -> None:
    """Run the entrypoint as __main__ and exit like the interpreter would; never returns.

    After the script: join non-daemon threads, run atexit handlers, release the script's globals
    (so __del__ methods run and unclosed files flush), flush stdio, then os._exit. The interpreter-wide
    teardown of every preloaded module is skipped: it costs ~0.6 s for Basilisk and nothing observable.
    """
    import atexit
    import builtins
    import importlib.machinery
    import io
    import types

    baseline = set(sys.modules) if learn_address else set()
    main_module = types.ModuleType("__main__")
    main_module.__dict__.update(
        __file__=entrypoint, __cached__=None, __builtins__=builtins, __annotations__={},
        __loader__=importlib.machinery.SourceFileLoader("__main__", entrypoint),
    )
    sys.modules["__main__"] = main_module
    code = 0
    interrupted = False
    try:
        exec(_entrypoint_code(entrypoint), main_module.__dict__)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - reported exactly as the interpreter would
        _print_uncaught(exc, entrypoint)
        interrupted = isinstance(exc, KeyboardInterrupt)
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001
        _print_uncaught(exc, entrypoint)
    # drop the script's module: its globals form cycles, and gc runs every __del__ before clearing any of them;
    # open files are flushed first (gc may close a file before the text wrapper on it) and again after
    _flush_open_files(gc, io)
    if sys.modules.get("__main__") is main_module:
        del sys.modules["__main__"]
    del main_module
    gc.collect()
    _flush_open_files(gc, io)
    if learn_address:
        forkserver_learn.report(learn_address, baseline)
    if interrupted:  # like CPython 3.8+: die of SIGINT so the parent sees -2
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)


if __name__ == "__main__":
    _job = main()
    if _job is None:
        sys.exit(0)
    run_job(become_job(_job), _job.get("_learn", ""))
