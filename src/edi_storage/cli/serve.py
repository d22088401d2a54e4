"""``serve``: the HTTP API, with uvicorn."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer
from rich.text import Text

from edi_storage.cli.app import Cli, command

API_EXTRA = "pip install 'edi-storage[api]'"


API_MODULES = ("fastapi", "uvicorn", "python_multipart")


def missing_api_modules() -> list[str]:
    """The modules of the ``api`` extra that cannot be imported (imported here, only for ``serve``)."""
    missing = []
    for name in API_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


@command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="EDI_STORAGE_API_TOKEN",
            help="Every request but /health must carry 'Authorization: Bearer TOKEN'. "
            "Required unless --host is loopback.",
            show_default=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A Host header to accept besides localhost, 127.0.0.1, ::1 and --host (repeatable): "
            "the names clients use to reach the server.",
            show_default=False,
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1024, help="The largest request body; image uploads may be 33 MiB.")
    ] = 1024 * 1024,
    header_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a request's line and headers may take to arrive.")
    ] = 10.0,
    keep_alive: Annotated[int, typer.Option(min=1, help="Seconds an idle connection stays open.")] = 5,
    limit_concurrency: Annotated[
        int, typer.Option(min=1, help="Connections at once; beyond them uvicorn answers 503.")
    ] = 256,
) -> None:
    """Serve the HTTP API (/api/sessions, /api/prompts, /api/gallery, /health; OpenAPI at /docs) with
    uvicorn. Refuses a database that is not at the code's schema (run `edi-storage upgrade`), and any
    interface but loopback without a token."""
    cli: Cli = ctx.obj
    if missing := missing_api_modules():
        cli.err.print(
            Text(f"error: the HTTP API needs the api extra ({', '.join(missing)} missing): {API_EXTRA}",
                 style="red"),
            soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(1)
    from edi_storage.api import create_app
    from edi_storage.api.guards import is_loopback
    from edi_storage.api.server import ServerLimits, run

    if not token and not is_loopback(host):
        cli.err.print(
            Text(f"error: --host {host} serves every session, image and prompt to the network: set a token "
                 "(--token or EDI_STORAGE_API_TOKEN), or serve on 127.0.0.1", style="red"),
            soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(2)
    # Opened here, without creating or migrating anything (errors end as one line); closed at shutdown.
    application = create_app(
        url=cli.url,
        token=token or "",
        allowed_hosts=[host, *(allowed_host or [])],
        max_body_bytes=max_body_bytes,
    )
    auth = "bearer token required" if token else "no token: loopback only"
    cli.err.print(Text(f"serving {application.title} on http://{host}:{port} (OpenAPI at /docs; {auth})"))
    run(
        application,
        host,
        port,
        ServerLimits(
            header_timeout=header_timeout, keep_alive=keep_alive, limit_concurrency=limit_concurrency
        ),
    )
