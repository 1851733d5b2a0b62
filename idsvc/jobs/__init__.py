"""The service's periodic jobs, run inside ``idsvc serve`` by the scheduler (core/scheduler.py):
what operators used to put in cron. docs/operations.md lists them (a test keeps the list in step)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from idsvc.alarms.hj212 import retention as emission_retention
from idsvc.audit.decision_log import JOURNAL_DIR, replay_journals
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.core.scheduler import Job, Scheduler
from idsvc.faces.service import purge_templates
from idsvc.privacy import retention
from idsvc.sync.feed import prune_older_than


def catalogue(ctx: AppContext) -> list[Job]:
    def template_purge(dry_run: bool) -> dict[str, Any]:
        with ctx.db.session() as s:
            return {"templates_deleted_for_people": purge_templates(s, ctx.settings, dry_run=dry_run)}

    def sync_prune(dry_run: bool) -> dict[str, Any]:
        with ctx.db.session() as s:
            return prune_older_than(s, timedelta(days=ctx.settings.sync_keep_days), dry_run=dry_run)

    def journal_compaction(dry_run: bool) -> dict[str, Any]:
        return {"decisions_replayed": replay_journals(ctx.db, ctx.settings.data_dir / JOURNAL_DIR, dry_run=dry_run)}

    def retention_run(dry_run: bool) -> dict[str, Any]:
        return retention.run(ctx.db, ctx.settings, dry_run=dry_run).summary()

    def emission_prune(dry_run: bool) -> dict[str, Any]:
        with ctx.db.session() as s:
            return emission_retention.prune(s, utcnow(), keep_days=ctx.settings.emission_keep_days,
                                            real_time_keep_days=ctx.settings.emission_real_time_keep_days, dry_run=dry_run)

    return [
        Job("template_purge", timedelta(days=1), template_purge, "delete face templates no grant needs any more (site retention.face_template_days)"),
        Job("sync_prune", timedelta(days=1), sync_prune, "drop the sync change log older than IDSVC_SYNC_KEEP_DAYS"),
        Job("journal_compaction", timedelta(minutes=5), journal_compaction, "write decision journals of stopped processes to the audit trail"),
        Job("retention", timedelta(days=1), retention_run, "delete contact data after tenancies, pseudonymise old door history, finish erasures"),
        Job("emission_prune", timedelta(days=1), emission_prune, "delete HJ 212 emission records older than IDSVC_EMISSION_KEEP_DAYS (real-time: IDSVC_EMISSION_REAL_TIME_KEEP_DAYS)"),
    ]


def scheduler(ctx: AppContext) -> Scheduler:
    return Scheduler(ctx.db, catalogue(ctx), ctx.settings.data_dir / "locks", tick=ctx.settings.scheduler_tick_seconds)
