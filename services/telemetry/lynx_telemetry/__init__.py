"""Telemetry-ingest service: stores scalar telemetry and answers queries."""
