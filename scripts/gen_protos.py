"""Generate the Python code of every proto under protos/ into gen/python/ (the one generator)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "gen" / "python"
# The scenario-side client ships its own copy of the telemetry messages so it
# installs with grpcio and protobuf alone; it must stay byte-identical.
CLIENT_COPY = (
    OUT / "lynx" / "telemetry" / "v1" / "telemetry_service_pb2.py",
    ROOT / "clients" / "python" / "lynx_telemetry_client" / "telemetry_service_pb2.py",
)


def main() -> int:
    """Regenerate gen/python from scratch so that deleted protos leave no stale modules."""
    if (OUT / "lynx").exists():
        shutil.rmtree(OUT / "lynx")
    OUT.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        print(f"protoc failed with exit code {code}", file=sys.stderr)
        return code
    for package in (p for p in (OUT / "lynx").rglob("*") if p.is_dir()):
        (package / "__init__.py").write_text("")
    (OUT / "lynx" / "__init__.py").write_text("")
    shutil.copyfile(*CLIENT_COPY)
    print(f"generated {len(files)} protos into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
