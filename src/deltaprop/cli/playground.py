"""``deltaprop playground``: the local web page where a learner watches back propagation."""

from __future__ import annotations

import secrets
import socket
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from .shared import app, fail, user_input

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@app.command()
def playground(
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="start with this built-in set or CSV file"),
    ] = None,
    target: Annotated[str | None, typer.Option(help="the target column of --data's file")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to listen on")] = 8765,
    host: Annotated[
        str,
        typer.Option(
            help="the address to listen on (others than 127.0.0.1 are reachable "
            "from the network: the page then needs the token in the printed URL)"
        ),
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="open the page in a browser")
    ] = True,
) -> None:
    """Start the playground: a local web page that trains a network with deltaprop and steps
    through one sample's back propagation. Ctrl-C stops it.

    Example: deltaprop playground --data my.csv --target label
    """
    try:
        import uvicorn

        from ..playground.server import create_app
    except ImportError:
        fail("the playground needs its web extra: pip install 'deltaprop[web]'")
    if data is not None and Path(data).suffix.lower() not in ("", ".csv"):
        fail(f"--data: the playground reads built-in sets and .csv files, got {data!r}")
    token = None if host in LOCAL_HOSTS else secrets.token_urlsafe(24)
    with user_input("--data"):
        application = create_app(data, target, port=port, token=token)
    if token is not None:
        typer.echo(
            f"Note: listening on {host}, reachable from the network: the page answers only "
            "with the token in the URL below",
            err=True,
        )
    if not _port_free(host, port):
        fail(f"--port: {port} is in use on {host}; choose another with --port")
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if token is not None:
        url += f"?token={token}"
    typer.echo(f"deltaprop playground: {url}  (Ctrl-C stops it)")
    if browser:
        webbrowser.open(url)  # False, and nothing else, where no browser is available
    uvicorn.run(application, host=host, port=port, log_level="warning")
