"""Every console page in one router, for ``create_app`` to mount (the order matters where paths share a prefix)."""

from __future__ import annotations

from fastapi import APIRouter

from idsvc.console import audit_pages, district, landlord, manage, pages, site_plan_pages, staff

router = APIRouter()
for part in (pages, landlord, district, audit_pages, staff, site_plan_pages, manage):
    router.include_router(part.router)
