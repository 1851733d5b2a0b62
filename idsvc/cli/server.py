"""Commands that run or prepare the service: serve, db upgrade."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from idsvc.config import Settings
from idsvc.core.cli import fail, load_settings, print_json
from idsvc.core.logs import logging_config
from idsvc.core.metrics import MULTIPROCESS_ENV
from idsvc.core.private_files import private_dir


def _migrate(settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from idsvc.core.sealing import Sealer, SealingError
    from idsvc.db.migrate import upgrade

    private_dir(settings.data_dir)
    try:
        upgrade(settings.effective_database_url, sealer=Sealer.from_config(settings.master_key, settings.data_dir))
    except OperationalError as exc:
        fail(f"cannot reach the database ({exc.orig}); check IDSVC_DATABASE_URL")
    except SealingError as exc:
        fail(str(exc))


def _listen_address(host: str, port: int) -> tuple[str, int]:
    """Refuse an address the service could not listen on before migrating anything."""
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535, not {port}")
    try:
        if not host.strip():
            raise ValueError("empty")
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        fail(f"--host {host[:80]!r} is not an address to listen on; use an IP address such as 127.0.0.1 or 0.0.0.0")
    return host, port


def _fresh_metrics_dir() -> None:
    """With PROMETHEUS_MULTIPROC_DIR (several workers, core/metrics.py), counts of an earlier run must go."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder:
        return
    path = Path(folder)
    if not path.is_dir():
        fail(f"{MULTIPROCESS_ENV}={folder} is not a directory; create an empty one for the workers' metrics")
    for stale in path.glob("*.db"):
        stale.unlink()


def register(app: typer.Typer) -> None:
    db = typer.Typer(no_args_is_help=True, help="Database schema.")
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Apply every pending migration (safe to run again)."""
        settings = load_settings()
        _migrate(settings)
        typer.echo("database is up to date")

    @db.command("current")
    def db_current() -> None:
        """The schema revisions the database has and the ones this release needs (before and after an upgrade)."""
        from sqlalchemy.exc import OperationalError

        from idsvc.db.migrate import current_heads, release_heads

        settings = load_settings()
        try:
            applied = current_heads(settings.effective_database_url)
        except OperationalError as exc:
            fail(f"cannot reach the database ({exc.orig}); check IDSVC_DATABASE_URL")
        wanted = release_heads()
        print_json({"database": sorted(applied), "release": sorted(wanted), "up_to_date": applied == wanted})
        if applied != wanted:
            raise typer.Exit(3)

    @app.command("master-key")
    def master_key() -> None:
        """Print a new random master key for IDSVC_MASTER_KEY (base64 of 32 bytes)."""
        from idsvc.core.sealing import new_master_key

        typer.echo(new_master_key())

    @app.command()
    def serve(
        host: str = typer.Option(None, help="Bind address (default from IDSVC_HOST)."),
        port: int = typer.Option(None, help="Port (default from IDSVC_PORT)."),
        demo: bool = typer.Option(False, help="Seed the demo site first (only if the database is empty)."),
        workers: int = typer.Option(1, min=1, help="Worker processes (needs Redis and PostgreSQL when > 1)."),
    ) -> None:
        """Migrate the database and run the HTTP service."""
        import uvicorn

        from idsvc.core.http_server import uvicorn_options

        settings = load_settings()
        host, port = _listen_address(settings.host if host is None else host, settings.port if port is None else port)
        _migrate(settings)
        if demo:
            from idsvc.demo import seed_demo_if_empty

            seed_demo_if_empty(settings)
        if workers > 1 and not (settings.redis_url and not settings.effective_database_url.startswith("sqlite")):
            fail("several workers need IDSVC_REDIS_URL and a PostgreSQL IDSVC_DATABASE_URL (in-process caches are per process)")
        _fresh_metrics_dir()
        uvicorn.run(
            "idsvc.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=logging_config(settings.log_level, settings.log_format),
            # Bridges hold event streams open; do not wait for them forever on shutdown.
            timeout_graceful_shutdown=5,
            **uvicorn_options(settings),  # bounded request heads, forwarded headers from named proxies only
        )
