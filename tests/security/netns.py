"""Linux network namespaces as hosts: one bridge in the test's namespace (the "client host") and a
veth into each namespace, each with its own address. Root (CAP_NET_ADMIN) only."""

from __future__ import annotations

import os
import subprocess


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    name = f"lxprobe{os.getpid() % 100000}"
    try:
        made = _ip("netns", "add", name, check=False)
    except FileNotFoundError:
        return "the `ip` command (iproute2) is not installed"
    if made.returncode != 0:
        return f"`ip netns add` is forbidden here: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


class Hosts:
    """Namespaces named `<name><tag>` on 10.<a>.<b>.0/24: host i gets .i+1, the client (this namespace) .254."""

    def __init__(self, names: list[str]) -> None:
        tag = os.getpid() % 10000
        self.prefix = f"10.{200 + tag % 50}.{tag % 250}"
        self.bridge = f"lxbr{tag}"
        self.client_addr = f"{self.prefix}.254"
        self.namespaces = {name: f"lx{name}{tag}" for name in names}
        self.addresses = {name: f"{self.prefix}.{i + 1}" for i, name in enumerate(names)}
        self._veths: list[str] = []

    def __enter__(self) -> Hosts:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.client_addr}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, (name, ns) in enumerate(self.namespaces.items()):
                outer, inner = f"{self.bridge}v{i}", f"{self.bridge}n{i}"
                _ip("netns", "add", ns)
                _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                self._veths.append(outer)
                _ip("link", "set", outer, "master", self.bridge)
                _ip("link", "set", outer, "up")
                _ip("link", "set", inner, "netns", ns)
                self.run(name, "ip", "addr", "add", f"{self.addresses[name]}/24", "dev", inner)
                self.run(name, "ip", "link", "set", inner, "up")
                self.run(name, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def run(self, name: str, *argv: str) -> None:
        subprocess.run(self.wrap(name, list(argv)), check=True, capture_output=True, timeout=30)

    def wrap(self, name: str, argv: list[str]) -> list[str]:
        """`argv` run inside host `name`'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[name], *argv]

    def __exit__(self, *exc: object) -> None:
        for veth in self._veths:
            _ip("link", "del", veth, check=False)
        for ns in self.namespaces.values():
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)
