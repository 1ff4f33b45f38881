"""API tokens: kept by the sha256 of their secret in the scheduler's store, served as lynx.auth.v1.AuthService."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import aiosqlite
import grpc

from lynx.auth.v1 import auth_service_pb2 as pb
from lynx.auth.v1 import auth_service_pb2_grpc as pb_grpc
from lynx_common import security
from lynx_common.security import Principal, new_secret, token_hash
from lynx_common.status import abort_invalid

log = logging.getLogger(__name__)
_RUNNER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COLUMNS = "token_id, role, runner_id, name, created_at, revoked_at"


def _token(row) -> pb.Token:
    token_id, role, runner_id, name, created_at, revoked_at = row
    return pb.Token(token_id=token_id, role=pb.Role.Value(f"ROLE_{role.upper()}"), runner_id=runner_id, name=name,
                    created_at=created_at, revoked_at=revoked_at or 0.0)


class Tokens:
    """The token table, with an in-memory map of valid hashes (tokens are few; revocation clears it)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self._valid: dict[str, Principal] | None = None

    async def _load(self) -> dict[str, Principal]:
        if self._valid is None:
            rows = await self.db.execute_fetchall(
                "SELECT secret_hash, token_id, role, runner_id FROM tokens WHERE revoked_at IS NULL")
            self._valid = {h: Principal(tid, role, runner_id) for h, tid, role, runner_id in rows}
        return self._valid

    async def verify(self, secret: str) -> Principal | None:
        """The valid token's principal, or None."""
        return (await self._load()).get(token_hash(secret))

    async def create(self, role: str, runner_id: str = "", name: str = "",
                     secret: str | None = None) -> tuple[pb.Token, str]:
        """Store a new token (or the given secret, e.g. the admin.token file's); returns (token, secret)."""
        secret = secret or new_secret()
        token_id = secrets.token_hex(6)
        row = (token_id, role, runner_id, name, time.time(), None)
        await self.db.execute(f"INSERT INTO tokens ({_COLUMNS}, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (*row, token_hash(secret)))
        await self.db.commit()
        self._valid = None
        log.info("token %s created: role %s%s", token_id, role, f" runner {runner_id}" if runner_id else "")
        return _token(row), secret

    async def revoke(self, token_id: str) -> pb.Token | None:
        await self.db.execute("UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                              (time.time(), token_id))
        await self.db.commit()
        self._valid = None
        rows = await self.db.execute_fetchall(f"SELECT {_COLUMNS} FROM tokens WHERE token_id = ?", (token_id,))
        return _token(rows[0]) if rows else None

    async def list(self) -> list[pb.Token]:
        rows = await self.db.execute_fetchall(f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at")
        return [_token(r) for r in rows]

    async def ensure_admin_file(self, path: Path) -> None:
        """Make the secret in `path` a valid admin token, writing a new one (mode 0600) if the file is missing."""
        if path.is_file():
            secret = path.read_text().strip()
        else:
            secret = new_secret()
            security.write_secret(path, secret)
        if await self.verify(secret) is None:
            await self.create(security.ADMIN, name=f"admin ({path.name})", secret=secret)


class AuthServicer(pb_grpc.AuthServiceServicer):
    """CreateToken/RevokeToken/ListTokens (admin: the interceptor checks) and Authenticate (open)."""

    def __init__(self, tokens: Tokens, holds: Callable[[str, str], bool],
                 revoked: Callable[[str], None] = lambda token_id: None) -> None:
        self.tokens = tokens
        self.holds = holds  # (runner_id, job_id) -> whether that runner holds the job's lease now
        self.revoked = revoked  # ends what the token holds open (a runner's stream)

    async def CreateToken(self, request: pb.CreateTokenRequest, context) -> pb.CreateTokenResponse:
        if request.role == pb.ROLE_UNSPECIFIED:
            await abort_invalid(context, "role", "is required: read, submit, admin or runner")
        role = pb.Role.Name(request.role).removeprefix("ROLE_").lower()
        if role == security.RUNNER:
            if not request.runner_id:
                await abort_invalid(context, "runner_id", "is required for a runner token")
            if not _RUNNER_ID.fullmatch(request.runner_id):
                await abort_invalid(context, "runner_id", "must be 1-128 letters, digits, '.', '_' or '-'")
        elif request.runner_id:
            await abort_invalid(context, "runner_id", "is only for runner tokens")
        if len(request.name) > 200:
            await abort_invalid(context, "name", "must be at most 200 characters")
        token, secret = await self.tokens.create(role, request.runner_id, request.name)
        return pb.CreateTokenResponse(token=token, secret=secret)

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context) -> pb.RevokeTokenResponse:
        token = await self.tokens.revoke(request.token_id)
        if token is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"token {request.token_id!r} not found")
        log.info("token %s revoked", request.token_id)
        self.revoked(request.token_id)
        return pb.RevokeTokenResponse(token=token)

    async def ListTokens(self, request: pb.ListTokensRequest, context) -> pb.ListTokensResponse:
        return pb.ListTokensResponse(tokens=await self.tokens.list())

    async def Authenticate(self, request: pb.AuthenticateRequest, context) -> pb.AuthenticateResponse:
        principal = await self.tokens.verify(request.secret)
        if principal is None:
            return pb.AuthenticateResponse(valid=False)
        holds = bool(request.job_id) and (
            principal.role == security.ADMIN
            or (principal.role == security.RUNNER and self.holds(principal.runner_id, request.job_id)))
        token = pb.Token(token_id=principal.token_id, role=pb.Role.Value(f"ROLE_{principal.role.upper()}"),
                         runner_id=principal.runner_id)
        return pb.AuthenticateResponse(valid=True, token=token, holds_job=holds)
