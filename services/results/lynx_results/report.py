"""The study's report (GET /batches/{id}/report.html, `lynx report`): one self-contained HTML file (inline
CSS, plots as embedded PNG, no script, no CDN) that stays readable at 100,000 runs (binned and sampled plots)."""

from __future__ import annotations

import base64
import io
import json
from html import escape
from importlib import metadata

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from lynx.scheduler.v1 import scheduler_service_pb2 as pb  # noqa: E402
from lynx_common import names  # noqa: E402
from lynx_results.records import Records  # noqa: E402
from lynx_results.summary import summarize  # noqa: E402

SCATTER_POINTS = 4_000
SCATTER_INPUTS = 3
FAILED_ROWS = 200
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:24px;
color:#1d2330;background:#fff}h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:2px solid #e4e8f0;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #dde2ea;padding:3px 8px;text-align:right}
th{background:#f3f5f9}td.l,th.l{text-align:left}.muted{color:#667}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 14px}.card b{display:block;font-size:20px}
img{max-width:100%}pre{background:#f6f8fb;padding:10px;overflow:auto;font-size:12px;max-height:360px}
.bad{color:#b3261e}
"""


def _version() -> str:
    for dist in ("lynx-results", "lynx-common"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)  # fixed margins (below): tight layouts cost more than the plots
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _num(x: object, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return escape(str(x))


def _interval(ci: list | None) -> str:
    return "–" if not ci else f"[{_num(ci[0])}, {_num(ci[1])}]"


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table of already-escaped cells; the first `left` columns align left."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _histogram(name: str, y: np.ndarray, stats: dict) -> str:
    y = y[np.isfinite(y)]
    if not len(y):
        return '<p class="muted">no finite values</p>'
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    fig.subplots_adjust(left=0.1, right=0.88, bottom=0.16, top=0.96)
    ax.hist(y, bins=min(60, max(5, int(np.sqrt(len(y))))), color="#6b8cce", alpha=0.8)
    ax.set_xlabel(name)
    ax.set_ylabel("runs")
    ecdf = ax.twinx()
    ys = np.sort(y)
    step = max(1, len(ys) // 1000)
    ecdf.plot(ys[::step], (np.arange(len(ys)) + 1)[::step] / len(ys), color="#1d2330", lw=1.2, drawstyle="steps-post")
    ecdf.set_ylim(0, 1)
    ecdf.set_ylabel("empirical CDF")
    for p in ("p5", "p50", "p95"):
        ax.axvline(stats["percentiles"][p], color="#b3261e", lw=0.8, ls="--")
    return _png(fig)


def _scatter(name: str, rec: Records, finished: np.ndarray, inputs: list[str], rng) -> str:
    if not inputs:
        return ""
    rows = np.flatnonzero(finished & np.isfinite(rec.numbers[name]))
    if len(rows) > SCATTER_POINTS:
        rows = np.sort(rng.choice(rows, SCATTER_POINTS, replace=False))
    failed = rec.failed[rows]
    fig, axes = plt.subplots(1, len(inputs), figsize=(3.3 * len(inputs), 3.0), squeeze=False)
    for ax, x in zip(axes[0], inputs, strict=True):
        xs, ys = rec.numeric_inputs[x][rows], rec.numbers[name][rows]
        ax.scatter(
            xs[~failed],
            ys[~failed],
            s=4 if len(rows) > 500 else 16,
            alpha=0.5,
            color="#6b8cce",
            label="succeeded",
            rasterized=True,
        )
        ax.scatter(xs[failed], ys[failed], s=10, marker="x", color="#b3261e", label="failed")
        ax.set_xlabel(x)
        ax.set_ylabel(name)
    axes[0][0].legend(loc="upper right", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.96, wspace=0.35)
    return _png(fig)


def _convergence(conv: dict) -> str:
    outs = list(conv["outputs"])
    if not conv["runs"]:
        return '<p class="muted">no finished runs yet</p>'
    n = len(outs) + 1
    fig, axes = plt.subplots(1, n, figsize=(min(3.4 * n, 14), 2.8), squeeze=False)
    runs = np.asarray(conv["runs"])
    fp = conv["failure_probability"]
    lo, hi = (np.array([c[i] for c in fp["wilson_95"]]) for i in (0, 1))
    ax = axes[0][0]
    ax.fill_between(runs, lo, hi, color="#f2b8b5", label="Wilson 95 %")
    ax.plot(runs, fp["estimate"], color="#b3261e")
    ax.set_title("failure probability", fontsize=10)
    ax.set_xlabel("finished runs")
    for ax, name in zip(axes[0][1:], outs, strict=True):
        ax.plot(runs, [np.nan if m is None else m for m in conv["outputs"][name]["mean"]], color="#1d2330")
        ax.set_title(f"mean of {name}", fontsize=10)
        ax.set_xlabel("finished runs")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.19, top=0.9, wspace=0.35)
    return _png(fig)


def _ranked(sens: dict) -> list[tuple[str, dict]]:
    """Numeric inputs by decreasing first-order index (then |Spearman|)."""

    def key(item):
        s = item[1]
        fo = (s.get("first_order") or {}).get("estimate")
        return (-(fo if fo is not None else -1), -abs(s.get("spearman") or 0))

    return sorted(((k, v) for k, v in sens.items() if "by_level" not in v), key=key)


def _sensitivity_table(sens: dict) -> str:
    rows = []
    for name, s in _ranked(sens):
        fo = s["first_order"] or {}
        rows.append(
            [
                escape(name),
                _num(fo.get("estimate"), 3),
                _interval(fo.get("ci_95")),
                _num(s["spearman"], 3),
                _num(s["prcc"], 3),
            ]
        )
    out = _table(["input", "first-order index", "95 % CI", "Spearman", "PRCC"], rows) if rows else ""
    for name, s in sens.items():
        if "by_level" in s:
            level_rows = [
                [escape(lv), _num(v["n"]), _num(v.get("mean", v.get("failure_rate")))]
                for lv, v in s["by_level"].items()
            ]
            out += f"<h3>{escape(name)} by level</h3>" + _table(["level", "runs", "mean / failure rate"], level_rows)
    return out


def _failed_table(rec: Records) -> str:
    rows = np.flatnonzero(rec.failed)
    if not len(rows):
        return '<p class="muted">no failed runs</p>'
    body = [
        [
            _num(int(rec.run_id[i])),
            escape(str(rec.job_id[i])),
            escape(names.TERMINATION_REASON.name(int(rec.reason[i]))),
            escape(rec.condition[i] or ""),
            escape(str(rec.error[i] or ""))[:200],
            _num(int(rec.attempts[i])),
        ]
        for i in rows[:FAILED_ROWS]
    ]
    more = f'<p class="muted">first {FAILED_ROWS} of {len(rows)} failed runs</p>' if len(rows) > FAILED_ROWS else ""
    return _table(["run", "job", "reason", "early-termination condition", "error", "attempts"], body, left=6) + more


def render(batch: pb.Batch, rec: Records, summary: dict | None = None) -> str:
    """The report of a batch as one HTML document (every user string escaped)."""
    summary = summary if summary is not None else summarize(rec)
    rng = np.random.default_rng(0)
    finished = rec.finished
    runs, fp = summary["runs"], summary["failure_probability"]
    title = escape(batch.name or batch.batch_id)
    config = escape(json.dumps(json_format.MessageToDict(batch.config, preserving_proto_field_name=True), indent=2))
    cards = "".join(
        f'<div class="card"><span class="muted">{escape(k.replace("_", " "))}</span><b>{_num(v)}</b></div>'
        for k, v in runs.items()
        if k != "failures_by_reason"
    )
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Lynx report: {title}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>{title}</h1><p class=muted>batch {escape(batch.batch_id)} · seed {batch.seed} · "
        f"status {escape(names.BATCH_STATUS.name(batch.status))} · Lynx {escape(_version())}</p>",
        f'<h2 id="runs">Runs</h2><div class="cards">{cards}</div>',
        _table(["reason", "failed runs"], [[escape(k), _num(v)] for k, v in runs["failures_by_reason"].items()])
        if runs["failures_by_reason"]
        else "",
        '<h2 id="failure">Failure probability</h2>',
        _table(
            ["", "estimate", "Wilson 95 %", "Clopper-Pearson 95 %"],
            [["any failure", _num(fp["estimate"]), _interval(fp["wilson_95"]), _interval(fp["clopper_pearson_95"])]]
            + [
                [escape(c), _num(v["estimate"]), _interval(v["wilson_95"]), _interval(v["clopper_pearson_95"])]
                for c, v in fp["by_condition"].items()
            ],
        ),
        '<h2 id="outputs">Outputs</h2>',
    ]
    sens = summary["sensitivity"]
    for name, st in summary["outputs"].items():
        parts.append(f"<h3>{escape(name)}</h3>")
        if not st["n"]:
            parts.append('<p class="muted">no finite values</p>')
            continue
        pct = st["percentiles"]
        wilks = st.get("wilks_95_95")
        parts.append(
            _table(
                ["n", "mean", "mean 95 % CI", "std", "min", *pct, "max", "Wilks 95/95 upper"],
                [
                    [
                        _num(st["n"]),
                        _num(st["mean"]),
                        _interval(st["mean_ci_95"]),
                        _num(st["std"]),
                        _num(st["min"]),
                        *(_num(v) for v in pct.values()),
                        _num(st["max"]),
                        _num(wilks["upper"]) if wilks else "–",
                    ]
                ],
                left=0,
            )
        )
        parts.append(_histogram(name, rec.numbers[name][finished], st))
        top = [k for k, _ in _ranked(sens["outputs"].get(name, {}))][:SCATTER_INPUTS]
        parts.append(_scatter(name, rec, finished, top, rng))
    parts.append('<h2 id="sensitivity">Sensitivity</h2>')
    for name, s in sens["outputs"].items():
        parts.append(f"<h3>{escape(name)}</h3>" + _sensitivity_table(s))
    parts.append("<h3>failure</h3>" + _sensitivity_table(sens["failure"]))
    parts.append('<h2 id="convergence">Convergence</h2>' + _convergence(summary["convergence"]))
    parts.append('<h2 id="failed-runs">Failed runs</h2>' + _failed_table(rec))
    parts.append(f'<h2 id="config">Configuration</h2><pre>{config}</pre></body></html>')
    return "\n".join(parts)
