"""Shared fixtures for the sampler tests: distributions with independent scipy references,
every validation error case (used at core level and over gRPC), and proto builders."""

from __future__ import annotations

import hashlib
import math

from google.protobuf import struct_pb2
from scipy import stats

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.sampler.v1 import sampler_service_pb2 as pb

# Continuous distributions and the scipy distribution each must follow, written out from the
# documented meaning of the fields (not taken from the sampler's own objects).
CONTINUOUS: dict[str, tuple[dict, object]] = {
    "uniform": ({"type": "uniform", "min": -2.0, "max": 3.0}, stats.uniform(loc=-2.0, scale=5.0)),
    "normal": ({"type": "normal", "mean": 5.0, "std": 2.0}, stats.norm(5.0, 2.0)),
    "truncated_normal": (
        {"type": "truncated_normal", "mean": 0.0, "std": 1.0, "min": -0.5, "max": 2.0},
        stats.truncnorm(-0.5, 2.0),
    ),
    "lognormal": ({"type": "lognormal", "mu": 1.0, "sigma": 0.5}, stats.lognorm(s=0.5, scale=math.e)),
    "triangular": ({"type": "triangular", "min": 0.0, "mode": 1.0, "max": 4.0}, stats.triang(0.25, 0.0, 4.0)),
    "beta": ({"type": "beta", "alpha": 2.0, "beta": 5.0, "min": 10.0, "max": 20.0}, stats.beta(2.0, 5.0, 10.0, 10.0)),
    "exponential": ({"type": "exponential", "rate": 2.0, "min": 1.0}, stats.expon(loc=1.0, scale=0.5)),
}
INTEGER = {"type": "integer_uniform", "min": -2, "max": 3}  # six values, equally likely
CHOICE = {"type": "choice", "values": ["a", 2.5, "c", "never"], "weights": [5, 3, 2, 0]}
CHOICE_P = {"a": 0.5, 2.5: 0.3, "c": 0.2, "never": 0.0}
ALL = [(name, spec) for name, (spec, _) in CONTINUOUS.items()] + [("integer", INTEGER), ("choice", CHOICE)]

U = {"type": "uniform", "min": 0.0, "max": 1.0}
N = {"type": "normal", "mean": 0.0, "std": 1.0}
XY = [("x", U), ("y", N)]
C2 = {"parameters": ["x", "y"], "matrix": [[1, 0.5], [0.5, 1]]}
D = "dispersions.e.distribution."


def e(**spec) -> list[tuple[str, dict]]:
    """One dispersion named `e`."""
    return [("e", spec)]


# (id, dispersions, options for core.plan, field path of the error)
ERRORS: list[tuple[str, list, dict, str]] = [
    ("uniform-equal", e(type="uniform", min=1.0, max=1.0), {}, D + "max"),
    ("uniform-reversed", e(type="uniform", min=2.0, max=1.0), {}, D + "max"),
    ("uniform-no-min", e(type="uniform", max=1.0), {}, D + "min"),
    ("uniform-no-max", e(type="uniform", min=0.0), {}, D + "max"),
    ("uniform-nan", e(type="uniform", min=math.nan, max=1.0), {}, D + "min"),
    ("uniform-inf", e(type="uniform", min=0.0, max=math.inf), {}, D + "max"),
    ("uniform-string", e(type="uniform", min="0", max=1.0), {}, D + "min"),
    ("uniform-bool", e(type="uniform", min=True, max=2.0), {}, D + "min"),
    ("uniform-mode", e(type="uniform", min=0.0, max=1.0, mode=0.5), {}, D + "mode"),
    ("uniform-overflow", e(type="uniform", min=-1e308, max=1e308), {}, D + "max"),
    ("normal-overflow", e(type="normal", mean=0.0, std=1e308), {}, D + "std"),
    ("normal-std-0", e(type="normal", mean=0.0, std=0.0), {}, D + "std"),
    ("normal-std-neg", e(type="normal", mean=0.0, std=-1.0), {}, D + "std"),
    ("normal-no-mean", e(type="normal", std=1.0), {}, D + "mean"),
    ("normal-mode", e(type="normal", mean=0.0, std=1.0, mode=1.0), {}, D + "mode"),
    ("normal-min", e(type="normal", mean=0.0, std=1.0, min=-1.0), {}, D + "min"),
    ("tnormal-no-min", e(type="truncated_normal", mean=0.0, std=1.0, max=1.0), {}, D + "min"),
    ("tnormal-reversed", e(type="truncated_normal", mean=0.0, std=1.0, min=1.0, max=-1.0), {}, D + "max"),
    ("tnormal-std-0", e(type="truncated_normal", mean=0.0, std=0.0, min=-1.0, max=1.0), {}, D + "std"),
    ("lognormal-sigma-0", e(type="lognormal", mu=0.0, sigma=0.0), {}, D + "sigma"),
    ("lognormal-no-mu", e(type="lognormal", sigma=1.0), {}, D + "mu"),
    ("lognormal-mean", e(type="lognormal", mean=0.0, std=1.0), {}, D + "mean"),
    ("lognormal-mu-huge", e(type="lognormal", mu=800.0, sigma=1.0), {}, D + "mu"),
    ("lognormal-overflow", e(type="lognormal", mu=0.0, sigma=500.0), {}, D + "sigma"),
    ("triangular-mode-out", e(type="triangular", min=0.0, mode=5.0, max=4.0), {}, D + "mode"),
    ("triangular-no-mode", e(type="triangular", min=0.0, max=4.0), {}, D + "mode"),
    ("triangular-reversed", e(type="triangular", min=4.0, mode=4.0, max=4.0), {}, D + "max"),
    ("beta-alpha-0", e(type="beta", alpha=0.0, beta=1.0), {}, D + "alpha"),
    ("beta-no-beta", e(type="beta", alpha=1.0), {}, D + "beta"),
    ("beta-reversed", e(type="beta", alpha=1.0, beta=1.0, min=1.0, max=0.0), {}, D + "max"),
    ("exponential-rate-0", e(type="exponential", rate=0.0), {}, D + "rate"),
    ("exponential-no-rate", e(type="exponential", min=1.0), {}, D + "rate"),
    ("exponential-min-inf", e(type="exponential", rate=1.0, min=-math.inf), {}, D + "min"),
    ("exponential-max", e(type="exponential", rate=1.0, max=3.0), {}, D + "max"),
    ("integer-fraction", e(type="integer_uniform", min=1.5, max=3.0), {}, D + "min"),
    ("integer-reversed", e(type="integer_uniform", min=3.0, max=1.0), {}, D + "max"),
    ("integer-huge", e(type="integer_uniform", min=0.0, max=2.0**60), {}, D + "max"),
    ("choice-no-values", e(type="choice"), {}, D + "values"),
    ("choice-bool", e(type="choice", values=[1.0, True]), {}, D + "values"),
    ("choice-null", e(type="choice", values=["a", None]), {}, D + "values"),
    ("choice-nan", e(type="choice", values=[1.0, math.nan]), {}, D + "values"),
    ("choice-duplicate", e(type="choice", values=["a", "b", "a"]), {}, D + "values"),
    ("choice-weights-length", e(type="choice", values=["a", "b"], weights=[1.0]), {}, D + "weights"),
    ("choice-weights-negative", e(type="choice", values=["a", "b"], weights=[1.0, -1.0]), {}, D + "weights"),
    ("choice-weights-zero", e(type="choice", values=["a", "b"], weights=[0.0, 0.0]), {}, D + "weights"),
    ("choice-weights-inf", e(type="choice", values=["a", "b"], weights=[1.0, math.inf]), {}, D + "weights"),
    ("choice-min", e(type="choice", values=["a"], min=0.0), {}, D + "min"),
    ("constant-no-value", e(type="constant"), {}, D + "value"),
    ("constant-levels", e(type="constant", value=1.0, levels=2), {"method": "grid"}, D + "levels"),
    ("choice-levels", e(type="choice", values=["a"], levels=2), {"method": "grid"}, D + "levels"),
    ("no-type", e(min=0.0, max=1.0), {}, D + "type"),
    ("unknown-type", e(type="gamma", alpha=1.0), {}, D + "type"),
    ("list-type", e(type=["uniform"]), {}, D + "type"),
    ("corr-not-a-mapping", XY, {"correlation": [["x", "y"]]}, "monte_carlo.correlation"),
    ("levels-zero", e(type="uniform", min=0.0, max=1.0, levels=0), {"method": "grid"}, D + "levels"),
    ("levels-fraction", e(type="uniform", min=0.0, max=1.0, levels=1.5), {"method": "grid"}, D + "levels"),
    ("levels-without-grid", e(type="uniform", min=0.0, max=1.0, levels=3), {}, D + "levels"),
    (
        "integer-levels-too-many",
        e(type="integer_uniform", min=0.0, max=2.0, levels=4),
        {"method": "grid"},
        D + "levels",
    ),
    ("grid-levels-missing", e(type="normal", mean=0.0, std=1.0), {"method": "grid"}, D + "levels"),
    (
        "grid-too-large",
        [("a", dict(U, levels=1000)), ("b", dict(U, levels=1000)), ("c", dict(U, levels=2))],
        {"method": "grid"},
        "dispersions.c.distribution.levels",
    ),
    ("grid-extension", [("x", dict(U, levels=3))], {"method": "grid", "existing_runs": 3}, "existing_runs"),
    (
        "grid-correlation",
        [("x", dict(U, levels=3)), ("y", dict(N, levels=3))],
        {"method": "grid", "correlation": C2},
        "monte_carlo.correlation",
    ),
    (
        "grid-optimization",
        [("x", dict(U, levels=3))],
        {"method": "grid", "optimization": "random-cd"},
        "monte_carlo.optimization",
    ),
    ("no-dispersions", [], {}, "dispersions"),
    ("blank-name", [(" ", U)], {}, "dispersions"),
    ("duplicate-name", [("x", U), ("y", U), ("x", U)], {}, "dispersions.x"),
    ("unknown-method", XY, {"method": "stratified"}, "monte_carlo.sampling_method"),
    ("method-case", XY, {"method": "LATIN_HYPERCUBE"}, "monte_carlo.sampling_method"),
    ("runs-0", XY, {"runs": 0}, "monte_carlo.runs"),
    ("runs-negative", XY, {"runs": -4}, "monte_carlo.runs"),
    ("runs-too-many", XY, {"runs": 1_000_001}, "monte_carlo.runs"),
    ("seed-negative", XY, {"seed": -1}, "monte_carlo.seed"),
    ("optimization-unknown", XY, {"optimization": "lloyd"}, "monte_carlo.optimization"),
    ("optimization-sobol", XY, {"method": "sobol", "optimization": "random-cd"}, "monte_carlo.optimization"),
    ("optimization-too-many", XY, {"runs": 5000, "optimization": "random-cd"}, "monte_carlo.optimization"),
    ("existing-negative", XY, {"existing_runs": -1}, "existing_runs"),
    ("lhs-extension-not-multiple", XY, {"existing_runs": 10, "runs": 15}, "runs"),
    ("extension-too-many", XY, {"method": "random", "existing_runs": 999_999, "runs": 2}, "runs"),
    (
        "corr-unknown",
        XY,
        {"correlation": {"parameters": ["x", "z"], "matrix": C2["matrix"]}},
        "monte_carlo.correlation.parameters",
    ),
    (
        "corr-twice",
        XY,
        {"correlation": {"parameters": ["x", "x"], "matrix": C2["matrix"]}},
        "monte_carlo.correlation.parameters",
    ),
    ("corr-one", XY, {"correlation": {"parameters": ["x"], "matrix": [[1]]}}, "monte_carlo.correlation.parameters"),
    ("corr-no-parameters", XY, {"correlation": {"matrix": C2["matrix"]}}, "monte_carlo.correlation.parameters"),
    (
        "corr-constant",
        [("x", U), ("k", {"type": "constant", "value": 1.0})],
        {"correlation": {"parameters": ["x", "k"], "matrix": C2["matrix"]}},
        "monte_carlo.correlation.parameters",
    ),
    (
        "corr-string-choice",
        [("x", U), ("s", {"type": "choice", "values": ["a", "b"]})],
        {"correlation": {"parameters": ["x", "s"], "matrix": C2["matrix"]}},
        "monte_carlo.correlation.parameters",
    ),
    ("corr-no-matrix", XY, {"correlation": {"parameters": ["x", "y"]}}, "monte_carlo.correlation.matrix"),
    (
        "corr-rows",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[1, 0.5]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-row-length",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[1, 0.5], [0.5]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-string",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[1, "a"], ["a", 1]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-range",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[1, 1.5], [1.5, 1]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-diagonal",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[0.9, 0.5], [0.5, 1]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-asymmetric",
        XY,
        {"correlation": {"parameters": ["x", "y"], "matrix": [[1, 0.5], [0.4, 1]]}},
        "monte_carlo.correlation.matrix",
    ),
    (
        "corr-not-pd",
        [("x", U), ("y", N), ("z", U)],
        {"correlation": {"parameters": ["x", "y", "z"], "matrix": [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]}},
        "monte_carlo.correlation.matrix",
    ),
]


def with_defaults(options: dict) -> dict:
    """core.plan keyword arguments with a valid run count and seed unless the case sets them."""
    return {"runs": 20, "seed": 1, **options}


def to_value(v: object) -> struct_pb2.Value:
    """A python value as google.protobuf.Value."""
    out = struct_pb2.Value()
    if v is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, str):
        out.string_value = v
    elif isinstance(v, list):
        out.list_value.extend(v)
    else:
        out.number_value = v
    return out


def to_distribution(spec: dict) -> cfg.Distribution:
    """A Distribution proto; raises TypeError for what a proto cannot carry (e.g. min="0")."""
    d = cfg.Distribution()
    for key, v in spec.items():
        if key == "values":
            d.values.extend(to_value(x) for x in v)
        elif key == "weights":
            d.weights.extend(v)
        elif key == "type":
            d.type = v
        elif key == "levels":
            if isinstance(v, float) and not v.is_integer():
                raise TypeError("levels must be an integer in a proto")
            d.levels = int(v)
        else:
            if isinstance(v, (bool, str)):
                raise TypeError(f"{key} must be a double in a proto")
            setattr(d, key, v)
    return d


def to_request(dispersions: list, options: dict) -> pb.SampleRequest:
    """The SampleRequest that carries the same request as core.plan(dispersions, **options)."""
    options = with_defaults(options)
    request = pb.SampleRequest(
        dispersions=[cfg.Dispersion(name=n, distribution=to_distribution(s)) for n, s in dispersions],
        sampling_method=options.get("method", ""),
        runs=options["runs"],
        seed=options["seed"],
        optimization=options.get("optimization", ""),
        existing_runs=options.get("existing_runs", 0),
    )
    correlation = options.get("correlation")
    if correlation is not None and not isinstance(correlation, dict):
        raise TypeError("a proto correlation is a message")
    if correlation is not None:
        request.correlation.parameters.extend(correlation.get("parameters", []))
        if "matrix" in correlation:
            request.correlation.matrix.extend(correlation["matrix"])
    return request


def snapshot() -> dict:
    """What a run's configuration is built from, for every method: the rows of a correlated
    sample, of an extension, and a digest of the serialized gRPC chunks (typed columns and seeds)."""
    from lynx_sampler import columns, core  # here so that importing the cases stays light

    out: dict = {}
    corr = {"parameters": ["uniform", "normal", "lognormal"], "matrix": [[1, 0.4, -0.2], [0.4, 1, 0.1], [-0.2, 0.1, 1]]}
    for method in ("random", "latin_hypercube", "sobol", "halton"):
        s = core.sample(ALL, method, 64, seed=2024, correlation=corr)
        e = core.sample(ALL, method, 64, seed=2024, existing_runs=64)
        chunks = b"".join(r.SerializeToString(deterministic=True) for r in columns.responses(s, 2024, 25))
        out[method] = [s.rows(), e.rows(), hashlib.sha256(chunks).hexdigest()]
    grid = [("u", {"type": "uniform", "min": 0.0, "max": 1.0, "levels": 3}), ("c", CHOICE)]
    out["grid"] = [core.sample(grid, "grid", 0, 2024).rows()]
    return out
