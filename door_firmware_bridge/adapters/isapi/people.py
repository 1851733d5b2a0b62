"""The terminal's own person list kept in step with the grants, so that a terminal that recognises
faces (or cards) by itself recognises only people granted at its door now.

ISAPI Face Recognition Terminals, Pro Series §9.16 (person management) and §9.11 (face pictures):
``POST /ISAPI/AccessControl/UserInfo/Search``, ``POST .../UserInfo/Record`` (add),
``PUT .../UserInfo/Modify`` (edit), ``PUT .../UserInfoDetail/Delete`` (delete; "the credentials
(card, fingerprint, face picture, iris data) linked via the person ID will also be deleted") and
``PUT /ISAPI/Intelligent/FDLib/FDSearch/Delete`` (a face record alone, by FPID = person ID).

The person ID (``employeeNo``, up to 32 characters) is the person's 16-byte feed pseudonym in hex:
no name, phone or ID number ever reaches a terminal; ``name`` is a short form of the same pseudonym.
The wanted list comes from the verified feed: people active with a grant for this door that is
active and has not ended, without a weekly schedule or a use limit (a terminal deciding alone can
enforce neither: such people stay off it and pass by QR or remote verification); the person's
``Valid`` window is the grant's (now-valid first, in the site's time zone). Everyone else is deleted
from the terminal, with their face; where the site shares face templates (``faces`` in the feed), a
person whose template was withdrawn keeps their entry but loses their face. Face pictures are never
added by the bridge: the service keeps templates, not photos (design/privacy.md), so faces are
enrolled at the terminal itself, only for people already on its list.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from door_firmware_bridge.adapters.isapi.terminal import Terminal, ok_status
from idsvc.sync.verify import FeedState

SEARCH_PAGE = 30


@dataclass(frozen=True)
class Window:
    begin: datetime
    end: datetime


@dataclass
class SyncReport:
    added: int = 0
    modified: int = 0
    deleted: int = 0
    faces_deleted: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def wanted(state: FeedState, door_id: int, now: datetime) -> dict[str, Window]:
    """employeeNo -> validity window, for the people this terminal may recognise by itself."""
    zone, windows = ZoneInfo(state.timezone), {}
    for grant in state.grants.values():
        sub = grant.get("sub")
        if (not isinstance(sub, bytes) or door_id not in grant["door_ids"] or grant["status"] != "active" or grant["until"] <= now.timestamp()
                or grant.get("schedule") or grant.get("max_uses") is not None or state.people.get(sub) != "active"):
            continue
        windows.setdefault(sub.hex(), []).append(Window(datetime.fromtimestamp(grant["from"], zone), datetime.fromtimestamp(grant["until"], zone)))
    return {employee_no: _pick(found, now) for employee_no, found in windows.items()}


def _pick(windows: list[Window], now: datetime) -> Window:
    """One window per person (a terminal holds one): the current grant lasting longest, else the next to start."""
    current = [w for w in windows if w.begin <= now]
    return max(current, key=lambda w: w.end) if current else min(windows, key=lambda w: w.begin)


def _local(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")  # the terminal's local time (its zone is the site's)


def _person(terminal: Terminal, employee_no: str, window: Window) -> dict[str, Any]:
    return {"UserInfo": {
        "employeeNo": employee_no, "name": f"p-{employee_no[:8]}", "userType": "normal",
        "Valid": {"enable": True, "beginTime": _local(window.begin), "endTime": _local(window.end), "timeType": "local"},
        "doorRight": str(terminal.cfg.door_no), "RightPlan": [{"doorNo": terminal.cfg.door_no, "planTemplateNo": "1"}],
    }}


async def on_terminal(terminal: Terminal) -> dict[str, Window]:
    """The persons the terminal holds now, with their windows (paged search)."""
    found: dict[str, Window] = {}
    position, search_id = 0, secrets.token_hex(8)
    while True:
        cond = {"UserInfoSearchCond": {"searchID": search_id, "searchResultPosition": position, "maxResults": SEARCH_PAGE}}
        answer = await terminal.client.post("/ISAPI/AccessControl/UserInfo/Search", params={"format": "json"}, json=cond)
        answer.raise_for_status()
        body = answer.json().get("UserInfoSearch", {})
        people = body.get("UserInfo") or []
        for person in people:
            valid = person.get("Valid") or {}
            try:
                found[str(person["employeeNo"])] = Window(datetime.fromisoformat(valid["beginTime"]), datetime.fromisoformat(valid["endTime"]))
            except (KeyError, ValueError):
                found[str(person.get("employeeNo"))] = Window(datetime.min, datetime.min)  # unreadable: rewritten below
        position += len(people)
        if body.get("responseStatusStrg") != "MORE" or not people:
            return found


async def reconcile(terminal: Terminal, state: FeedState, now: datetime) -> SyncReport:
    report = SyncReport()
    want = wanted(state, terminal.door.door_id, now)
    have = await on_terminal(terminal)
    for employee_no, window in want.items():
        held = have.get(employee_no)
        if held is not None and _local(held.begin) == _local(window.begin) and _local(held.end) == _local(window.end):
            continue
        path = "/ISAPI/AccessControl/UserInfo/Modify" if held is not None else "/ISAPI/AccessControl/UserInfo/Record"
        call = terminal.client.put if held is not None else terminal.client.post
        answer = await call(path, params={"format": "json"}, json=_person(terminal, employee_no, window))
        if ok_status(answer):
            report.modified += held is not None
            report.added += held is None
        else:
            report.failed += 1
    stale = [employee_no for employee_no in have if employee_no not in want]
    if stale:
        body = {"UserInfoDetail": {"mode": "byEmployeeNo", "EmployeeNoList": [{"employeeNo": e} for e in stale]}}
        answer = await terminal.client.put("/ISAPI/AccessControl/UserInfoDetail/Delete", params={"format": "json"}, json=body)
        report.deleted, report.failed = (len(stale), report.failed) if ok_status(answer) else (0, report.failed + len(stale))
    if state.faces_shared:
        faceless = [e for e in want if bytes.fromhex(e) not in state.templates and e not in terminal.faces_removed]
        if faceless:
            params = {"format": "json", "FDID": terminal.cfg.face_library, "faceLibType": "blackFD"}
            answer = await terminal.client.put("/ISAPI/Intelligent/FDLib/FDSearch/Delete", params=params, json={"FPID": [{"value": e} for e in faceless]})
            if ok_status(answer):
                report.faces_deleted = len(faceless)
                terminal.faces_removed.update(faceless)
            else:
                report.failed += len(faceless)
    terminal.faces_removed.intersection_update(want)
    return report
