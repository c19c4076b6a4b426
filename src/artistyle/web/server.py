"""Serve the studio with uvicorn on a socket bound here, so a busy port is a clear error."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from ..errors import UsageError
from .app import LOOPBACK_HOSTS, create_app

__all__ = ["is_loopback", "serve", "url_for"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    """The address to open in a browser for a server bound to ``host:port``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # bound to every address; this one works on this machine
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port); UsageError if that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


# Each of these stops the studio the same way: SIGTERM from `kill` or a service manager, SIGHUP when the
# terminal closes (its default action would kill the process without closing the worker or the streams).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app at Ctrl-C (or SIGTERM, SIGHUP) so that its open event streams end.

    Unlike uvicorn, it does not raise the signal again after the shutdown: the studio has
    stopped as asked, so ``artistyle web`` exits with status 0, the same as after Ctrl-C.
    """

    def __init__(self, config: uvicorn.Config, stopping: threading.Event):
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: object) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be caught in the main thread
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(
    host: str, port: int, *, ready: Callable[[str], None] | None = None, **settings: object,
) -> None:
    """Run the studio until Ctrl-C; ``ready(url)`` is called once it listens.

    ``settings`` go to :func:`~artistyle.web.app.create_app`. On a loopback host only
    the loopback names are accepted in the Host header; on any other host, any.
    """
    allowed = [*LOOPBACK_HOSTS, host] if is_loopback(host) else ["*"]
    app = create_app(allowed_hosts=allowed, **settings)  # type: ignore[arg-type]
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        # The worker starts and stops here rather than in the app's lifespan: at a second
        # Ctrl-C uvicorn cancels the lifespan task, and Starlette prints a traceback for it.
        app, log_level="warning", access_log=False, lifespan="off",
        # Event streams stay open; do not wait for them at Ctrl-C.
        timeout_graceful_shutdown=1,
    )
    server = _Server(config, app.state.stopping)
    studio = app.state.studio
    studio.start()
    if ready is not None:
        ready(url_for(host, actual_port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        studio.close()  # stops a run and ends the worker
