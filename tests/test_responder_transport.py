"""The provider transport (httpcore on asyncio streams) over real sockets.

What the outbox relies on: a refused connection is ``connect`` (surely not sent,
retried); once the request may have left, a silent or vanishing server is
``timeout``/``transport`` (``unknown``, never resent); keep-alive reuse; TLS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from responder.provider import Outcome, SendResult, TwilioClient
from responder.transport import ProviderTransport

SID = "AC" + "0" * 32
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def created(body: bytes = b'{"sid": "SM1", "status": "queued", "num_segments": "1"}') -> bytes:
    return (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


async def send_through(serve: Serve | None, *, count: int = 1, read_timeout: float = 5.0,
                       tls: ssl.SSLContext | None = None,
                       verify: ssl.SSLContext | bool = True) -> list[SendResult]:
    if serve is None:  # a port nobody listens on
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = None
    writers: list[asyncio.StreamWriter] = []
    if serve is not None:
        server = await asyncio.start_server(tracked(serve, writers), "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
    scheme, host = ("https", "localhost") if tls else ("http", "127.0.0.1")
    limits = httpx.Limits(max_connections=4)
    timeout = httpx.Timeout(connect=2.0, read=read_timeout, write=2.0, pool=2.0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits,
                                 transport=ProviderTransport(limits=limits, verify=verify)) as hc:
        client = TwilioClient(hc, api_base=f"{scheme}://{host}:{port}", account_sid=SID,
                              auth_token="tok")
        results = [await client.send(to="+33612345678", from_="+33644649021",
                                     body="Bonjour & à bientôt", now=0.0)
                   for _ in range(count)]
    if server is not None:
        server.close()
        for writer in writers:  # the server side of every connection, whatever its handler did
            writer.transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)
    return results


def tracked(serve: Serve, writers: list[asyncio.StreamWriter]) -> Serve:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            await serve(reader, writer)

    return handler


def test_sends_form_with_basic_auth_and_reuses_the_connection() -> None:
    seen: list[tuple[bytes, bytes]] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                seen.append(await read_request(reader))
                writer.write(created())
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    results = asyncio.run(send_through(serve, count=3))
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert results[0].provider_sid == "SM1" and results[0].segments == 1
    assert connections == 1
    head, body = seen[0]
    assert head.startswith(f"POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1".encode())
    assert b"authorization: basic " + base64.b64encode(
        f"{SID}:tok".encode()).lower() in head.lower()
    assert b"content-type: application/x-www-form-urlencoded" in head.lower()
    assert dict(parse_qsl(body.decode())) == {"To": "+33612345678", "From": "+33644649021",
                                              "Body": "Bonjour & à bientôt"}


def test_refused_connection_is_retryable() -> None:
    [result] = asyncio.run(send_through(None))
    assert (result.outcome, result.kind) == (Outcome.RETRY, "connect")


def test_silent_server_is_a_read_timeout_never_resent() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)
        writer.close()

    [result] = asyncio.run(send_through(serve, read_timeout=0.2))
    assert (result.outcome, result.kind) == (Outcome.UNKNOWN, "timeout")


def test_dropped_after_the_request_is_unknown() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()

    [result] = asyncio.run(send_through(serve))
    assert (result.outcome, result.kind) == (Outcome.UNKNOWN, "transport")


def test_429_with_retry_after() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"code": 20429, "message": "Too Many Requests"}'
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    [result] = asyncio.run(send_through(serve))
    assert (result.outcome, result.kind, result.retry_after_s) == (Outcome.RETRY, "http_429", 7.0)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(created())
        await writer.drain()
        writer.close()

    trusting = ssl.create_default_context(cafile=str(cert))
    [result] = asyncio.run(send_through(serve, tls=server_ctx, verify=trusting))
    assert result.outcome is Outcome.SENT
    # An untrusted certificate fails the handshake: nothing was sent, safe to retry.
    [refused] = asyncio.run(send_through(serve, tls=server_ctx))
    assert (refused.outcome, refused.kind) == (Outcome.RETRY, "connect")
