"""The operator CLI: ``idsvc ...`` (also ``python -m idsvc ...``).

Each domain keeps its commands in its own ``cli.py`` and is mounted here.
"""

from __future__ import annotations

import typer

from idsvc.alarms.cli import register as register_alarm_commands
from idsvc.audit_views.cli import register as register_audit_commands
from idsvc.auth.cli import register as register_key_commands
from idsvc.cli.server import register as register_server_commands
from idsvc.context import AppContext
from idsvc.core.cli import fail, use_context_factory
from idsvc.faces.cli import register as register_face_commands
from idsvc.jobs.cli import register as register_job_commands
from idsvc.passes.cli import register as register_pass_commands
from idsvc.privacy.cli import register as register_privacy_commands
from idsvc.registry.cli import register as register_registry_commands
from idsvc.revocation.cli import register as register_revocation_commands

# The domains' commands open the app's context through core.cli; building one is the wiring's job.
use_context_factory(AppContext.from_settings)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="idsvc: access control and identity service.")
for register in (
    register_server_commands, register_registry_commands, register_key_commands, register_audit_commands, register_face_commands, register_pass_commands,
    register_revocation_commands, register_alarm_commands, register_privacy_commands, register_job_commands,
):
    register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted")
