"""lynx-runner: runs leased jobs on one host and relays their telemetry."""
