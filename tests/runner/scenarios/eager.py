"""A scenario that imports inside main(), unconditionally, as many real scripts do: with preload
[auto] the fork server reads those imports from the file and imports them before the first job.
Writes ready.txt (wall time once its imports are done)."""


def main() -> None:
    import os
    import time
    from pathlib import Path

    import slow_import  # 0.6 s at import time, a stand-in for Basilisk

    (Path(os.environ["TETRYX_OUTPUT_DIR"]) / "ready.txt").write_text(repr(time.time()))
    print(slow_import.VALUE)


if __name__ == "__main__":
    main()
