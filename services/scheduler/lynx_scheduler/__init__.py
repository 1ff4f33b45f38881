"""Scheduler service: batches, jobs, attempts and runners; leases and retries."""
