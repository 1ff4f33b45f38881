"""`lynx token create|revoke|list`: manage API tokens through the gateway (admin token in LYNX_TOKEN)."""

from __future__ import annotations

import argparse
import json

from lynx_cli.api import Api

ROLES = ("read", "submit", "admin", "runner")


def cmd_create(args: argparse.Namespace) -> int:
    """Mint a token; the secret alone on the last line, so `tail -n1` captures it."""
    if args.role == "runner" and not args.runner_id:
        raise SystemExit("lynx token create: --role runner needs --runner-id")
    if args.role != "runner" and args.runner_id:
        raise SystemExit("lynx token create: --runner-id is only for --role runner")
    body = {"role": args.role, "name": args.name or ""}
    if args.runner_id:
        body["runner_id"] = args.runner_id
    reply = Api(args.url).post("/tokens", body)
    token = reply["token"]
    runner = f" for runner {token['runner_id']}" if token.get("runner_id") else ""
    print(f"created {token['role']} token {token['token_id']}{runner}; keep its secret, it is shown only once:")
    print(reply["secret"])
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    reply = Api(args.url).post(f"/tokens/{args.token_id}/revoke", {})
    print(f"revoked token {reply['token']['token_id']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(json.dumps(Api(args.url).get("/tokens"), indent=2))
    return 0


def add_parser(sub, url_arg) -> None:
    """Add `lynx token ...` to the CLI's subparsers; `url_arg(parser)` adds the shared --url."""
    token = sub.add_parser("token", help="create, revoke or list API tokens (needs an admin LYNX_TOKEN)")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="mint a token; prints its secret alone on the last line")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--runner-id", help="the one runner id a runner token may register as")
    create.add_argument("--name", help="what the token is for")
    create.set_defaults(func=cmd_create)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_revoke)
    listing = actions.add_parser("list", help="list tokens (without secrets)")
    listing.set_defaults(func=cmd_list)
    for p in (create, revoke, listing):
        url_arg(p)
