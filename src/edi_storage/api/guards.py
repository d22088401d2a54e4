"""What ``create_app`` puts in front of the routes: a bearer token, an allowed-hosts check, request body
limits, and ``Allow`` headers that list every method of a path. Plain ASGI middleware, so that each
refusal happens before the request body is read (and before anything reaches a route or the database).

From the outside in (``create_app`` installs them in this order):

1. ``TrustedHostMiddleware`` (Starlette): a ``Host`` header not allowed answers 400 (DNS rebinding);
2. ``BearerToken``: with a token configured, a request without ``Authorization: Bearer <token>`` answers
   401 with ``WWW-Authenticate: Bearer`` (``/health`` and ``/api/health`` excepted);
3. ``BodyLimit``: a body larger than the limit of its route answers 413, judged from ``Content-Length``
   before anything is read, and by counting the bytes of a chunked body as they arrive;
4. ``ExactRouting``: a path ending in a newline answers 404 (Starlette's route patterns end in ``$``,
   which matches before a final newline: ``/api/sessions/%0A`` would reach the collection), and a 405
   carries ``Allow`` with every method of the path, not one route's.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Collection, Iterable
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_ENV = "EDI_STORAGE_API_TOKEN"
HEALTH_PATHS = frozenset({"/health", "/api/health"})  # answered without a token: for probes
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MiB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 1 * MiB
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1`` (brackets allowed): an interface only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_host_names(hosts: Iterable[str]) -> list[str]:
    """The ``Host`` header values to accept, as TrustedHostMiddleware compares them: an IPv6 address in
    brackets (``[::1]``, as a Host header carries it), wildcard binds (``0.0.0.0``, ``::``) left out: no
    client names a server by them."""
    names: list[str] = []
    for host in hosts:
        name = host.strip().lower()
        if not name or name in {"0.0.0.0", "::", "[::]"}:
            continue
        bare = name.strip("[]")
        try:
            if ipaddress.ip_address(bare).version == 6:
                name = f"[{bare}]"
        except ValueError:
            pass
        if name not in names:
            names.append(name)
    return names


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[Message]:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": data},
    ]


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    for message in _json_response(status, body, headers):
        await send(message)


# -- the bearer token --------------------------------------------------------------------------------
UNAUTHORIZED = {"detail": "this server needs Authorization: Bearer <token>", "error": "Unauthorized"}
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_matches(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class BearerToken:
    """Every request but the health checks carries ``Authorization: Bearer <token>``, or gets 401."""

    def __init__(self, app: ASGIApp, token: str, exempt: Collection[str] = HEALTH_PATHS) -> None:
        self.app, self.token, self.exempt = app, token, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.exempt:
            authorization = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
            )
            if not token_matches(authorization, self.token):
                await _answer(send, 401, UNAUTHORIZED, CHALLENGE)
                return
        await self.app(scope, receive, send)


bearer_scheme = HTTPBearer(
    auto_error=False,
    description=f"The token of `edi-storage serve --token` (or ${TOKEN_ENV}); required when one is set.",
)


def bearer_dependency(token: str) -> Callable[..., Any]:
    """A route dependency declaring the bearer scheme in the OpenAPI document, and checking it (so that a
    router mounted in another application is protected as ``create_app``'s middleware protects it)."""

    def check(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> None:
        if not token_matches(request.headers.get("authorization"), token):
            raise HTTPException(401, UNAUTHORIZED["detail"], headers=CHALLENGE)

    return check


# -- body limits -----------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """A request body larger than ``limit_of(method, path)`` bytes answers 413 before it is read whole:
    refused from its ``Content-Length`` at once, or, sent chunked, when the bytes counted so far pass the
    limit (the route's answer, if it already has one, is replaced by the 413)."""

    def __init__(self, app: ASGIApp, limit_of: Callable[[str, str], int]) -> None:
        self.app, self.limit_of = app, limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["method"], scope["path"])
        too_large = {"detail": f"the request body is larger than {limit} bytes", "error": "PayloadTooLarge"}
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _answer(send, 413, too_large, {"Connection": "close"})
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the route made of the cut body, the answer is 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _answer(send, 413, too_large, {"Connection": "close"})
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, too_large, {"Connection": "close"})


# -- 405 with every method of the path -----------------------------------------------------------------
class ExactRouting:
    """A path is routed only as written. Starlette answers 405 with the methods of the first route
    matching the path; a path served by several routes (GET, PUT and DELETE of
    ``/api/sessions/{id}``) lists them all here. And a path ending in a newline, which Starlette would
    route as the path without it, names nothing: 404."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app, self.routes = app, routes

    def methods(self, scope: Scope) -> list[str]:
        """Every method some route fully matches at this path (routers included in routers too)."""
        routes = list(self.routes())
        return [
            method
            for method in HTTP_METHODS
            if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].endswith("\n"):
            await _answer(send, 404, {"detail": "Not Found", "error": "NotFound"})
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(self.methods(scope)).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow)]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
