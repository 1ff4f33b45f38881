"""Fixtures every test folder can use."""

from __future__ import annotations

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto in server mode) on loopback.

    Yields a dict with ``endpoint`` and ``env`` (the AWS_* variables a client
    or a child process needs). Make a bucket with ``make_bucket(name)``.
    """
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "lynx-test",
        "AWS_SECRET_ACCESS_KEY": "lynx-test-secret",
        "AWS_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )

    def make_bucket(name: str) -> str:
        client.create_bucket(Bucket=name)
        return name

    try:
        yield {"endpoint": endpoint, "env": env, "client": client, "make_bucket": make_bucket}
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The loopback S3 server's AWS_* variables set in this process."""
    for key, value in s3_server["env"].items():
        monkeypatch.setenv(key, value)
    return s3_server
