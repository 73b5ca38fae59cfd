"""A leaner httpx transport for the provider calls: httpcore on plain asyncio streams.

httpx's default transport runs httpcore over anyio, which wraps every socket read
and write in cancel scopes, checkpoints and attribute lookups (measured at about a
third of the ~2 ms of CPU a loopback Twilio call cost), and writes each request in
two ``send`` syscalls (headers, then body). This backend keeps httpcore (HTTP/1.1,
TLS, keep-alive, the connection pool and its exception types) and only replaces
the network layer: asyncio streams, ``asyncio.timeout`` for deadlines, and the
request's writes gathered into one ``send`` made just before the response is read.

Failure semantics are the ones ``responder.provider`` relies on, the same as
httpcore's anyio backend: a failure to connect (or to complete the TLS handshake) is
``ConnectError``/``ConnectTimeout``, i.e. surely not sent; once connected, any
failure to write or read is ``WriteError``/``WriteTimeout``/``ReadError``/
``ReadTimeout``, i.e. possibly sent. Deferring the writes to the first read cannot
turn a "may have been sent" into a "surely not sent": a deferred write that fails
still raises ``WriteError``/``WriteTimeout``, never a connect error.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.request import getproxies

import httpcore
import httpx
from httpcore._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from httpcore._utils import is_socket_readable

STREAM_LIMIT = 2**16


class AsyncioStream(AsyncNetworkStream):
    """One TCP (or TLS) connection; writes are buffered until the next read or close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: list[bytes] = []
        self._write_timeout: float | None = None

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        try:
            async with asyncio.timeout(self._write_timeout):
                self._writer.write(data)
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:  # RuntimeError: transport closed
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush()
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)
            self._write_timeout = timeout

    async def aclose(self) -> None:
        self._pending.clear()
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        try:
            await self._flush()
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname,
                                             ssl_handshake_timeout=timeout)
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError, httpcore.WriteError, httpcore.WriteTimeout) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        writer = self._writer
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        if info == "is_readable":
            # Readable while idle means the peer closed it (or sent junk): don't reuse it.
            if self._reader.at_eof() or writer.transport.is_closing():
                return True
            return is_socket_readable(writer.get_extra_info("socket"))
        return None


class AsyncioBackend(AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        local = None if local_address is None else (local_address, 0)
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local, limit=STREAM_LIMIT
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ProviderTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport (certificate checks, pool limits) on ``AsyncioBackend``.

    Used for the provider unless proxy environment variables are set (httpx honours
    them only with its own transport, so the service then keeps httpx's).
    """

    def __init__(self, *, limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(limits=limits, verify=ssl_context)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )


def environment_proxies() -> bool:
    """Whether proxy variables (HTTPS_PROXY, ALL_PROXY...) would route the provider calls."""
    return bool(set(getproxies()) & {"http", "https", "all"})
