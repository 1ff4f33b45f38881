"""`lynx`: run the local stack, submit studies and read their results."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from lynx_cli import gate, results, tokens
from lynx_cli.api import DEFAULT_URL, Api, ApiError

DEFAULT_RUNNER_CONFIG = Path("configs/lynx-runner-basilisk.yaml")


def batch_status(enum_name: str) -> str:
    """The REST name of a BatchStatus value, from the protos ("COMPLETED" -> "Completed")."""
    from lynx.scheduler.v1 import scheduler_service_pb2 as pb
    from lynx_common.names import BATCH_STATUS

    return BATCH_STATUS.name(pb.BatchStatus.Value(f"BATCH_STATUS_{enum_name}"))


def load_study(path: Path) -> dict:
    """A batch config from YAML or JSON (`config` alone, or a whole {name, runs_override, config} body)."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror}"
    except yaml.YAMLError as exc:
        problem = f"{path} is not valid YAML/JSON: {exc}"
    else:
        if isinstance(document, dict):
            return document
        problem = f"{path} must hold a mapping (a batch config)"
    print(f"lynx: {problem}", file=sys.stderr)
    raise SystemExit(gate.BAD_CONFIG)


def submission(document: dict, name: str | None, runs: int | None) -> dict:
    """The POST /jobs body for a config file's contents."""
    body = dict(document) if "config" in document else {"config": document}
    body.setdefault("name", name or body["config"].get("simulation", {}).get("name", "batch"))
    if name:
        body["name"] = name
    if runs is not None:
        body["runs_override"] = runs
    return body


def progress_line(status: dict) -> str:
    counts = status["jobs_by_status"]
    parts = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    return (f"{status['batch']['status']:<9} {parts}  "
            f"({status['throughput_jobs_per_minute']:.1f} jobs/min)")


def follow(api: Api, batch_id: str, interval: float = 1.0, out=sys.stdout, watch=None) -> dict:
    """Poll the batch, printing a line whenever progress changes, until it is terminal."""
    last = None
    terminal = {batch_status(s) for s in ("COMPLETED", "FAILED", "CANCELLED")}
    while True:
        if watch is not None:
            watch()
        status = api.get(f"/batches/{batch_id}")
        key = (status["batch"]["status"], status["jobs_by_status"])
        if key != last:
            print(f"  {time.strftime('%H:%M:%S')}  {progress_line(status)}", file=out, flush=True)
            last = key
        if status["batch"]["status"] in terminal:
            return status
        time.sleep(interval)


def results_table(results: list[dict], jobs: dict[str, int] | None = None) -> str:
    """A plain-text table: job, run, success, seconds, artifacts (or the error)."""
    rows = [("JOB", "RUN", "SUCCESS", "SECONDS", "ARTIFACTS / ERROR")]
    for r in sorted(results, key=lambda r: (jobs or {}).get(r["job_id"], 0)):
        detail = ", ".join(r["output_files"]) if r["success"] else (r["error_message"] or "").splitlines()[0]
        run = str((jobs or {}).get(r["job_id"], ""))
        rows.append((r["job_id"], run, "yes" if r["success"] else "no", f"{r['execution_time_secs']:.2f}", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows)
    return "\n".join(lines)


def show_results(api: Api, batch_id: str) -> list[dict]:
    results = api.get(f"/batches/{batch_id}/results")
    runs = {r["job_id"]: api.get(f"/jobs/{r['job_id']}")["run_id"] for r in results}
    print(results_table(results, runs))
    return results


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM stop the stack, even when a parent shell started us with SIGINT ignored."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def cmd_up(args) -> int:
    from lynx_cli.secure import StackSecurity
    from lynx_cli.stack import Ports, Stack, StackError
    from lynx_common.limits import LIMITS
    from lynx_common.limits import value as limit_value

    for item in args.limit:  # the services inherit this process's environment
        name, _, value = item.partition("=")
        if name not in LIMITS or not value:
            print(f"lynx up: --limit {item!r}: expected NAME=VALUE with NAME one of {', '.join(LIMITS)}",
                  file=sys.stderr)
            return 2
        os.environ[LIMITS[name].env] = value
        try:
            limit_value(name)
        except ValueError as exc:
            print(f"lynx up: --limit {item}: {exc}", file=sys.stderr)
            return 2

    secure = StackSecurity(args.tls, args.auth, args.host, args.require_client_cert, args.insecure, args.allowed_host)
    try:
        stack = Stack(args.data_dir, Ports(args.scheduler_port, args.sampler_port, args.telemetry_port,
                                           args.http_port), args.runners, args.runner_config, security=secure,
                      artifact_store=args.artifact_store)
    except ValueError as exc:
        print(f"lynx up: {exc}", file=sys.stderr)
        return 2
    _interrupt_on_signals()
    try:
        stack.start()
        p = stack.ports
        for line in secure_summary(secure):
            print(line, flush=True)
        print(f"Lynx is up: gateway {p.gateway_url}, scheduler {p.scheduler_addr}, "
              f"sampler 127.0.0.1:{p.sampler}, telemetry {p.telemetry_addr}; "
              f"{args.runners} runner(s); data and logs in {stack.data_dir}. Ctrl-C stops everything.", flush=True)
        while True:
            stack.watch()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping...", flush=True)
        return 0
    except StackError as exc:
        print(f"lynx up: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def secure_summary(secure) -> list[str]:
    """What `lynx up` tells the operator about TLS and tokens (paths, never the token itself)."""
    lines = []
    if secure.files is not None:
        lines.append(f"TLS on: clients verify with the CA in {secure.files.ca} (export LYNX_TLS_CA={secure.files.ca})")
    if secure.client is not None:
        lines.append(f"mutual TLS required: a client certificate is in {secure.client.cert} and {secure.client.key}")
    if secure.admin_token_file is not None:
        lines.append(f"auth on: the admin token is in {secure.admin_token_file} "
                     f"(export LYNX_TOKEN=$(cat {secure.admin_token_file}))")
    return lines


def cmd_run(args) -> int:
    """Bring a private stack up, run one study to the end, print its results, stop."""
    from lynx_cli.stack import Ports, Stack, StackError

    body = submission(load_study(args.config), args.name, args.runs)
    stack = Stack(args.data_dir, Ports(0, 0, 0, args.http_port), args.runners, args.runner_config)
    _interrupt_on_signals()
    try:
        print(f"starting sampler, scheduler, telemetry, gateway and {args.runners} runner(s)...", flush=True)
        stack.start()
        api = Api(stack.ports.gateway_url)
        try:
            reply = api.post("/jobs", body)
        except ApiError as exc:
            print(f"lynx run: {exc}", file=sys.stderr)
            return gate.submission_error(exc)
        print(f"submitted batch {reply['batch_id']} ({reply['total_jobs']} jobs) to {stack.ports.gateway_url}",
              flush=True)
        print(f"dashboard: {stack.ports.gateway_url}/ui/batches/{reply['batch_id']}", flush=True)
        final = follow(api, reply["batch_id"], watch=stack.watch)
        print()
        results = show_results(api, reply["batch_id"])
        ok = sum(r["success"] for r in results)
        print(f"\nbatch {final['batch']['status']}: {ok}/{len(results)} jobs succeeded")
        return gate.finish(api, reply["batch_id"], args)
    except (StackError, ApiError, OSError) as exc:
        print(f"lynx run: {exc}", file=sys.stderr)
        return gate.UNAVAILABLE
    except KeyboardInterrupt:
        print("interrupted; stopping", file=sys.stderr)
        return 130
    finally:
        stack.stop()


def cmd_submit(args) -> int:
    api = Api(args.url)
    body = submission(load_study(args.config), args.name, args.runs)
    try:
        reply = api.post("/jobs", body)
    except ApiError as exc:
        print(f"lynx submit: {exc}", file=sys.stderr)
        return gate.submission_error(exc)
    except OSError as exc:
        print(f"lynx submit: cannot reach the gateway at {args.url}: {exc}", file=sys.stderr)
        return gate.UNAVAILABLE
    print(json.dumps(reply, indent=2))
    print(f"dashboard: {args.url.rstrip('/')}/ui/batches/{reply['batch_id']}", file=sys.stderr)
    if args.wait:
        try:
            follow(api, reply["batch_id"])
            show_results(api, reply["batch_id"])
            return gate.finish(api, reply["batch_id"], args)
        except (ApiError, OSError) as exc:
            print(f"lynx submit: lost the gateway at {args.url}: {exc}", file=sys.stderr)
            return gate.UNAVAILABLE
    return 0


def cmd_status(args) -> int:
    api = Api(args.url)
    if args.follow:
        follow(api, args.batch_id)
    else:
        print(json.dumps(api.get(f"/batches/{args.batch_id}"), indent=2))
    return 0


def cmd_results(args) -> int:
    api = Api(args.url)
    if not args.jobs:
        results.show_summary(api, args.batch_id, args.json)
    elif args.json:
        print(json.dumps(api.get(f"/batches/{args.batch_id}/results"), indent=2))
    else:
        show_results(api, args.batch_id)
    return 0


def cmd_cancel(args) -> int:
    print(json.dumps(Api(args.url).post(f"/batches/{args.batch_id}/cancel"), indent=2))
    return 0


def cmd_preview(args) -> int:
    from lynx_common.errors import ValidationError
    from lynx_common.run_config import run_configs_csv

    body = submission(load_study(args.config), None, args.runs)
    if args.url:
        if args.limit:
            body["limit"] = args.limit
        body.pop("name", None)
        document = Api(args.url).post("/preview", body)
    else:
        from lynx_sampler.preview import preview

        try:
            document = preview(body["config"], args.runs or 0, args.limit or 0)
        except ValidationError as exc:
            print(f"lynx: {exc}", file=sys.stderr)
            return 2
    fmt = args.format or ("csv" if args.output and args.output.suffix == ".csv" else "json")
    text = run_configs_csv(document["run_configs"]) if fmt == "csv" else json.dumps(document, indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
        print(f"wrote {len(document['run_configs'])} of {document['total_runs']} run configs to {args.output}"
              f" (seed {document['seed']})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for warning in document["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_extend(args) -> int:
    reply = Api(args.url).post(f"/batches/{args.batch_id}/extend", {"runs": args.runs})
    print(json.dumps(reply, indent=2))
    return 0


def cmd_rerun_failed(args) -> int:
    print(json.dumps(Api(args.url).post(f"/batches/{args.batch_id}/rerun-failed"), indent=2))
    return 0


def cmd_runners(args) -> int:
    print(json.dumps(Api(args.url).get("/runners"), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lynx", description="Lynx: Monte Carlo simulation studies at scale.")
    sub = parser.add_subparsers(dest="command", required=True)
    url = os.environ.get("LYNX_API_URL", DEFAULT_URL)

    up = sub.add_parser("up", help="run sampler, scheduler, telemetry and gateway (and runners) in the foreground")
    up.add_argument("--data-dir", type=Path, default=Path(".lynx"), help="SQLite files and logs (default ./.lynx)")
    up.add_argument("--http-port", type=int, default=8080, help="gateway port on 127.0.0.1 (default 8080)")
    up.add_argument("--scheduler-port", type=int, default=50051, help="0 picks a free port")
    up.add_argument("--sampler-port", type=int, default=50052, help="0 picks a free port")
    up.add_argument("--telemetry-port", type=int, default=50053, help="0 picks a free port")
    up.add_argument("--runners", type=int, default=0, help="local runners to start (default 0)")
    up.add_argument("--runner-config", type=Path, default=DEFAULT_RUNNER_CONFIG)
    up.add_argument("--artifact-store", metavar="URL", help="where output files are uploaded: a directory, file:// or"
                    " s3://bucket/prefix (env LYNX_ARTIFACT_STORE; default <data-dir>/artifacts)")
    up.add_argument("--host", default="127.0.0.1",
                    help="address the scheduler, telemetry-ingest and gateway bind (beyond loopback: --tls --auth)")
    up.add_argument("--tls", action="store_true", help="serve TLS; a private CA and certificates go to DATA_DIR/tls")
    up.add_argument("--auth", action="store_true", help="require tokens; the admin token goes to DATA_DIR/admin.token")
    up.add_argument("--require-client-cert", action="store_true", help="mutual TLS for the scheduler and ingest")
    up.add_argument("--allowed-host", action="append", default=[], help="another name clients use for this host")
    up.add_argument("--insecure", action="store_true",
                    help="allow --host beyond loopback without --tls and --auth (logged loudly)")
    up.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="override a limit for every service, e.g. --limit page_size=500 (see docs/limits.md)")
    up.set_defaults(func=cmd_up)

    run = sub.add_parser("run", help="start a private stack, run one study end to end, print results, stop")
    run.add_argument("config", type=Path, help="batch config (YAML or JSON)")
    run.add_argument("--runs", type=int, help="override monte_carlo.runs")
    run.add_argument("--name", help="batch name (default: simulation.name)")
    run.add_argument("--runners", type=int, default=1)
    run.add_argument("--runner-config", type=Path, default=DEFAULT_RUNNER_CONFIG)
    run.add_argument("--data-dir", type=Path, default=Path(".lynx/run"))
    run.add_argument("--http-port", type=int, default=0, help="gateway port (default: a free one)")
    gate.add_arguments(run)
    run.set_defaults(func=cmd_run)

    submit = sub.add_parser("submit", help="submit a batch config (YAML or JSON) to a running gateway")
    submit.add_argument("config", type=Path)
    submit.add_argument("--runs", type=int, help="override monte_carlo.runs")
    submit.add_argument("--name")
    submit.add_argument("--wait", action="store_true", help="follow progress and print results")
    gate.add_arguments(submit)
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show a batch")
    status.add_argument("batch_id")
    status.add_argument("--follow", action="store_true")
    status.set_defaults(func=cmd_status)

    results_ = sub.add_parser("results", help="show a batch's summary (--jobs: one line per job)")
    results_.add_argument("batch_id")
    results_.add_argument("--json", action="store_true", help="print the summary (with --jobs: the results) as JSON")
    results_.add_argument("--jobs", action="store_true", help="one line per job, as before the summary")
    results_.set_defaults(func=cmd_results)
    report = results.add_report_parser(sub)

    cancel = sub.add_parser("cancel", help="cancel a batch")
    cancel.add_argument("batch_id")
    cancel.set_defaults(func=cmd_cancel)

    runners = sub.add_parser("runners", help="list runners")
    runners.set_defaults(func=cmd_runners)

    preview = sub.add_parser("preview", help="sample a config without running anything; write the run configs")
    preview.add_argument("config", type=Path, help="batch config (YAML or JSON)")
    preview.add_argument("--runs", type=int, help="override monte_carlo.runs")
    preview.add_argument("--limit", type=int, help="write only the first N run configs")
    preview.add_argument("--format", choices=("json", "csv"), help="default: csv for a .csv --output, else json")
    preview.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    preview.add_argument("--url", help="use a running gateway instead of an in-process sampler")
    preview.set_defaults(func=cmd_preview)

    extend = sub.add_parser("extend", help="add runs to a batch, continuing its sample")
    extend.add_argument("batch_id")
    extend.add_argument("--runs", type=int, required=True, help="runs to add")
    extend.set_defaults(func=cmd_extend)

    rerun = sub.add_parser("rerun-failed", help="run a finished batch's failed jobs again")
    rerun.add_argument("batch_id")
    rerun.set_defaults(func=cmd_rerun_failed)

    def url_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=url, help=f"gateway URL (default $LYNX_API_URL or {DEFAULT_URL})")

    for p in (submit, status, results_, report, cancel, runners, extend, rerun):
        url_arg(p)
    tokens.add_parser(sub, url_arg)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except ApiError as exc:
        print(f"lynx: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(f"lynx: cannot reach the gateway: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
