"""A probe scenario (stdlib only): records what it can observe about how it was started, then
behaves as its run config's parameters.mode says (exit codes, signals, floods, memory hogs, outputs).

The same file runs cold (python probe.py) and warm (forked by the fork server); tests compare what it saw.
"""

STARTING_GLOBALS = sorted(globals())

import atexit  # noqa: E402
import json  # noqa: E402
import mmap  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

OUT = Path(os.environ["TETRYX_OUTPUT_DIR"])
RUN_CONFIG = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
MODE = RUN_CONFIG["parameters"].get("mode", "ok")


def fd_kind(fd: int) -> str:
    mode = os.fstat(fd).st_mode
    return "fifo" if stat.S_ISFIFO(mode) else "chr" if stat.S_ISCHR(mode) else "file" if stat.S_ISREG(mode) else "?"


def annotated(x: int) -> Path:
    """Its annotations are objects unless the script itself opts into PEP 563 (never inherited)."""
    return Path(str(x))


def observed() -> dict:
    """Everything a scenario could reasonably look at about its start."""
    if "decimal" not in sys.modules:  # imported late, in a branch, on purpose: with preload [auto]
        import decimal  # the fork server does not read it from the file, it learns it from the jobs
    decimal = sys.modules["decimal"]

    env = {k: v for k, v in os.environ.items() if k != "TETRYX_TELEMETRY_URL"}
    numbers = [random.random()]
    if "numpy" in sys.modules:
        numbers.append(float(sys.modules["numpy"].random.random()))
    return {
        "name": __name__,
        "starting_globals": STARTING_GLOBALS,
        "doc": __doc__.split(":")[0],
        "loader": type(__loader__).__name__,
        "spec": repr(__spec__),
        "main_module_is_this": sys.modules["__main__"].__dict__ is globals(),
        "file": __file__,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "path0": sys.path[0],
        "env": env,
        "telemetry_host": os.environ["TETRYX_TELEMETRY_URL"].removeprefix("grpc://").partition("?")[0].rpartition(":")[0],
        "run_config": RUN_CONFIG,
        "own_session": os.getsid(0) == os.getpid(),
        "own_group": os.getpgid(0) == os.getpid(),
        "stdin_is_devnull": os.path.samestat(os.fstat(0), os.stat(os.devnull)),
        "stdout_is_pipe": fd_kind(1) == "fifo",
        "stderr_is_pipe": fd_kind(2) == "fifo",
        "stdout_line_buffered": sys.stdout.line_buffering,
        "stdout_encoding": sys.stdout.encoding,
        "signals": {name: repr(signal.getsignal(getattr(signal, name)))
                    for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE", "SIGHUP", "SIGUSR1")},
        "threads": threading.active_count(),
        "umask": os.umask(os.umask(0o22)),
        "interpreter": sys.executable,
        "random": numbers,
        "decimal_context": repr(decimal.getcontext()),
        "annotations": repr(annotated.__annotations__),
    }


(OUT / "probe.json").write_text(json.dumps(observed(), indent=1, sort_keys=True))


def on_exit() -> None:
    (OUT / "atexit.txt").write_text("atexit ran")


def late_writer() -> None:
    time.sleep(0.2)
    (OUT / "thread.txt").write_text("non-daemon thread finished")


class WritesOnCollection:
    """Writes a file when the interpreter releases it at exit."""

    def __del__(self) -> None:
        (OUT / "collected.txt").write_text("__del__ ran at exit")


if MODE in ("ok", "outputs"):
    UNCLOSED = open(OUT / "unclosed.txt", "w")  # noqa: SIM115 - flushed only when released at exit
    UNCLOSED.write("buffered until exit")
    COLLECTED = WritesOnCollection()
    atexit.register(on_exit)
    threading.Thread(target=late_writer).start()
    print("probe says hello")
if MODE == "outputs":
    (OUT / "a.txt").write_text("a")
    (OUT / "sub" / "dir").mkdir(parents=True)
    (OUT / "sub" / "dir" / "b.bin").write_bytes(bytes(range(256)) * 11 + bytes(range(184)))
    outside = Path(os.environ["OUTSIDE"])
    os.symlink(outside / "secret.txt", OUT / "link_to_file")
    os.symlink(outside, OUT / "link_to_dir")
    os.symlink(outside, OUT / "sub" / "nested_link")
elif MODE == "swap_output_dir":
    for child in OUT.iterdir():
        child.unlink()
    OUT.rmdir()
    os.symlink(os.environ["OUTSIDE"], OUT)
elif MODE == "exit3":
    sys.exit(3)
elif MODE == "exit_text":
    sys.exit("not an exit code")
elif MODE == "raise":
    raise ValueError("boom from the probe")
elif MODE == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
elif MODE == "sigterm_handled":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
elif MODE == "sigterm_default":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
elif MODE == "sleep":
    time.sleep(60)
elif MODE == "grandchild":
    child = subprocess.Popen(["sleep", "60"])
    (OUT / "grandchild.pid").write_text(str(child.pid))
    time.sleep(60)
elif MODE == "flood":
    sys.stdout.write("HEAD-OF-STDOUT\n" + "o" * 300_000 + "\nTAIL-OF-STDOUT\n")
    sys.stderr.write("e" * 300_000 + "\nLAST-WORDS-ON-STDERR\n")
    sys.exit(5)
elif MODE == "hog_heap":
    hog = bytearray(400 * 2**20)
elif MODE == "hog_shared":
    hog = mmap.mmap(-1, 400 * 2**20)
    for offset in range(0, len(hog), 4096):
        hog[offset] = 1
        if offset % (16 * 2**20) == 0:
            time.sleep(0.01)
    time.sleep(30)
elif MODE == "telemetry":
    from lynx_telemetry_client import telemetry_client_from_env

    client = telemetry_client_from_env()
    client.send({"x": 1.0}, timestamp_ns=1_000_000_000)
    client.send({"x": 100.0}, timestamp_ns=2_000_000_000)
    client.flush()
    time.sleep(30)
