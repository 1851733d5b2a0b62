"""Every console page in one router, for ``create_app`` to mount (the order matters where paths share a prefix)."""

from __future__ import annotations

from fastapi import APIRouter

from idsvc.console import audit_pages, district, landlord, manage, pages, site_plan_pages, staff
from idsvc.console.web import ConsoleRoute
from idsvc.core.errors import NotFound

router = APIRouter()
for part in (pages, landlord, district, audit_pages, staff, site_plan_pages, manage):
    router.include_router(part.router)

unknown = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@unknown.get("/console/{path:path}")
def no_such_page(path: str) -> None:
    """Last: any other console address is a page saying so (the API's 404 is JSON)."""
    raise NotFound(f"There is no console page /console/{path[:100]}.", code="not_found")


router.include_router(unknown)
