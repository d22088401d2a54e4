"""uvicorn as ``edi-storage serve`` runs it: HTTP/1.1 through h11 (whose limits are known), with a
header timeout uvicorn itself does not have.

uvicorn closes a connection idle between requests after ``timeout_keep_alive`` seconds, but a client
that connects and sends nothing, or sends the request line and headers a byte at a time, holds its
connection for as long as it likes. ``HeaderTimeoutProtocol`` closes a connection whose request headers
are not complete ``header_timeout`` seconds after the connection opened, or after the first byte of a
later request on it arrived.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 16 * 1024  # h11: a request line and headers larger than this answer 400


class HeaderTimeoutProtocol(H11Protocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took over %s s", self.header_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers() and not self.transport.is_closing():
            self._arm()  # a request begun, its headers not complete yet
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


@dataclass(frozen=True)
class ServerLimits:
    """What ``serve`` hands uvicorn; docs/http-api.md says what each protects and what it does not."""

    header_timeout: float = 10.0  # seconds for a request's line and headers to arrive
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    limit_concurrency: int = 256  # connections and tasks at once; beyond, uvicorn answers 503
    graceful_shutdown: int = 10  # seconds open requests get to finish on SIGTERM / Ctrl-C


def run(app: Any, host: str, port: int, limits: ServerLimits) -> None:
    protocol = type("HeaderTimeout", (HeaderTimeoutProtocol,), {"header_timeout": limits.header_timeout})
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.limit_concurrency,
        timeout_graceful_shutdown=limits.graceful_shutdown,
    )
