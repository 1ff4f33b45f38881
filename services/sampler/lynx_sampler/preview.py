"""Offline preview: the run configs a batch config would get, sampled in process (no stack)."""

from __future__ import annotations

import time

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx_common.errors import ValidationError
from lynx_common.rest import parse
from lynx_common.run_config import check_seed, new_seed, run_config
from lynx_sampler import core
from lynx_sampler.seeds import run_seeds
from lynx_sampler.specs import correlation_spec, dispersion_specs


def config_message(config: object) -> cfg.BatchConfig:
    """The batch config as the user wrote it (dispersions as a mapping name -> {distribution,
    units}) parsed into its proto by the gateway's own REST parser (`lynx_common.rest`), so a bad
    config names the same field offline and through POST /preview."""
    return parse(cfg.BatchConfig(), config, "config")


def _runs(config: cfg.BatchConfig, runs_override: int) -> int:
    if runs_override < 0:
        raise ValidationError("runs_override", f"must not be negative, got {runs_override}")
    runs = runs_override if runs_override > 0 else config.monte_carlo.runs
    if runs < 1:
        raise ValidationError("monte_carlo.runs", f"must be at least 1, got {runs}")
    return runs


def _seed(config: cfg.BatchConfig) -> int:
    """The config's seed, or a fresh one, as the scheduler chooses it."""
    mc = config.monte_carlo
    if not mc.HasField("seed"):
        return new_seed()
    check_seed(mc.seed)
    return mc.seed


def preview(config: dict, runs_override: int = 0, limit: int = 0) -> dict:
    """`{"seed", "total_runs", "warnings", "run_configs"}` for a batch config, as the gateway's
    POST /preview answers it: the same run configs for the same config and seed (without batch
    and job ids), at most `limit` of them (0 = all). Raises ValidationError naming the field."""
    if limit < 0:
        raise ValidationError("limit", f"must not be negative, got {limit}")
    message = config_message(config)
    runs = _runs(message, runs_override)
    seed = _seed(message)
    mc = message.monte_carlo
    plan = core.plan(
        dispersion_specs(list(message.dispersions)),
        method=mc.sampling_method,
        runs=runs,
        seed=seed,
        optimization=mc.optimization,
        correlation=correlation_spec(mc),
    )
    sample = core.generate(plan)
    count = min(limit, len(sample)) if limit else len(sample)
    points = sample.rows(0, count)
    run_ids = sample.run_ids[:count]
    seeds = run_seeds(seed, run_ids).tolist() if count else []
    sim = message.simulation
    now = time.time()
    run_configs = [
        run_config(
            run_id,
            parameters,
            simulation_name=sim.name,
            simulation_version=sim.version,
            duration_minutes=sim.duration_minutes,
            sampling_method=mc.sampling_method,
            generated_at=now,
            ids={"batch_seed": seed, "seed": run_seed},
        )
        for run_id, parameters, run_seed in zip(run_ids, points, seeds, strict=True)
    ]
    return {"seed": seed, "total_runs": len(sample), "warnings": list(sample.warnings), "run_configs": run_configs}
