"""A scenario that imports only inside main(), as many real scripts do (stdlib and sibling modules).

parameters.mode: "slow" imports slow_import (0.6 s at import time, a stand-in for Basilisk);
"quick" imports nothing slow; "parts" imports, instead of slow_import, every module of the package
slow_parts one by one (when a test has put one beside this file);
"thread" also imports thread_import (starts a thread when imported); "grpc" also imports grpc and
creates a telemetry client; "telemetry" only creates the client (over the runner's Unix socket it
never imports grpc) and writes grpc.txt (whether grpc was imported). Writes ready.txt (wall time
once its imports are done).
"""


def main() -> None:
    import json
    import os
    import sys
    import time
    from pathlib import Path

    config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
    mode = config["parameters"].get("mode", "slow")
    if mode not in ("quick", "parts"):
        import slow_import  # noqa: F401
    if mode == "parts":
        import importlib

        for part in sorted(os.listdir(Path(__file__).parent / "slow_parts")):
            if part.endswith(".py") and part != "__init__.py":
                importlib.import_module(f"slow_parts.{part[:-3]}")

    if mode == "thread":
        import thread_import  # noqa: F401
    if mode == "grpc":
        import grpc  # noqa: F401
    if mode in ("grpc", "telemetry"):
        from lynx_telemetry_client import telemetry_client_from_env

        client = telemetry_client_from_env()
        client.send({"x": 1.0}, timestamp_ns=1)
        client.flush()
        (Path(os.environ["TETRYX_OUTPUT_DIR"]) / "grpc.txt").write_text(str("grpc" in sys.modules))
    (Path(os.environ["TETRYX_OUTPUT_DIR"]) / "ready.txt").write_text(repr(time.time()))
    print(sys.modules["slow_import"].VALUE if "slow_import" in sys.modules else "quick")


if __name__ == "__main__":
    main()
