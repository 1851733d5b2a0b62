"""A site's plan for the console's map: the uploaded image and the doors' places on it.

Only the site's admins change it (or read the stored image: the plan of a site is for its staff).
The image is decoded and saved again (PNG stays PNG, anything else becomes JPEG), so what is stored
and served is pixels only: no EXIF position, no embedded script. Positions are fractions (0-1) of the
plan's width and height, y downwards; a door without one is placed by the console's generated layout.
"""

from __future__ import annotations

import io

from sqlalchemy.orm import Session

from idsvc.auth.principal import Principal
from idsvc.core.errors import InvalidInput, PayloadTooLarge
from idsvc.core.images import load_pixels, open_picture
from idsvc.registry import doors, events, sites
from idsvc.registry.models import SitePlan

MAX_BYTES = 5_000_000
MAX_PIXELS = 25_000_000


def get(session: Session, principal: Principal, site_id: int) -> SitePlan | None:
    site = sites.get_site(session, principal, site_id)
    principal.require_site_admin(site.id)
    return session.get(SitePlan, site.id)


def _plan(session: Session, principal: Principal, site_id: int) -> SitePlan:
    plan = get(session, principal, site_id)
    if plan is None:
        plan = SitePlan(site_id=site_id, door_positions={})
        session.add(plan)
    return plan


def upload_image(session: Session, principal: Principal, site_id: int, data: bytes) -> SitePlan:
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"The plan is over {MAX_BYTES // 1_000_000} MB; send a smaller picture.", code="image_too_large")
    picture = load_pixels(open_picture(data, MAX_PIXELS))
    keep_png = picture.format == "PNG"
    out = io.BytesIO()
    if keep_png:
        picture.save(out, format="PNG", optimize=True)
    else:
        picture.convert("RGB").save(out, format="JPEG", quality=88)
    plan = _plan(session, principal, site_id)
    plan.image, plan.media_type = out.getvalue(), "image/png" if keep_png else "image/jpeg"
    plan.width, plan.height = picture.size
    session.flush()
    events.record(session, principal, "site.plan_uploaded", entity_type="site", entity_id=site_id, site_id=site_id,
                  data={"width": plan.width, "height": plan.height, "bytes": len(plan.image)})
    return plan


def place_door(session: Session, principal: Principal, site_id: int, door_id: int, x: float, y: float) -> SitePlan:
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise InvalidInput("A door's place is x and y between 0 and 1 (fractions of the plan's width and height).", code="invalid_input")
    door = doors.get_door(session, principal, door_id)
    if door.site_id != site_id:
        raise InvalidInput(f"Door {door_id} is not a door of site {site_id}.", code="door_not_in_site")
    plan = _plan(session, principal, site_id)
    plan.door_positions = {**(plan.door_positions or {}), str(door.id): [round(x, 4), round(y, 4)]}
    events.record(session, principal, "door.placed", entity_type="door", entity_id=door.id, site_id=site_id, door_id=door.id, data={"x": round(x, 4), "y": round(y, 4)})
    return plan
