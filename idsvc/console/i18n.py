"""The console's two languages: message catalogues (zh_CN first, en), numbers and dates per locale.

The catalogues are small JSON files loaded once; a key missing from a catalogue renders as
``⟦key⟧`` so the browser tests (and tests/console/test_i18n.py) catch it instead of showing English
to a Chinese reader or the reverse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"
MISSING = "⟦{key}⟧"
_CATALOGUE_DIR = Path(__file__).parent / "catalogues"


@cache
def catalogue(language: str) -> dict[str, str]:
    return json.loads((_CATALOGUE_DIR / f"{language}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def language_or_default(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Translator:
    language: str
    timezone: str = "Asia/Shanghai"

    def __call__(self, key: str, **values: object) -> str:
        text = catalogue(self.language).get(key)
        if text is None:
            return MISSING.format(key=key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in catalogue(self.language)

    def reason(self, code: str) -> str:
        """A decision's reason in the reader's words; a code without an entry stays the code (machine-readable, docs/device-api.md)."""
        return self(f"reason.{code}") if self.has(f"reason.{code}") else code

    def event(self, kind: str) -> str:
        """A device event (audit kind ``device.<kind>``) in the reader's words; an unknown kind stays as sent."""
        short = kind.removeprefix("device.")
        return self(f"device_event.{short}") if self.has(f"device_event.{short}") else short

    def number(self, value: float) -> str:
        """Counts in the reader's convention (zh_CN and en both group by thousands: 12,345)."""
        return format_decimal(value, locale=self.language)

    def datetime(self, value: datetime | None, timezone: str | None = None) -> str:
        """A UTC time shown in the site's time zone: 2026年12月1日 15:40:35 / Dec 1, 2026, 3:40:35 PM."""
        if value is None:
            return "—"
        return format_datetime(value, "medium", tzinfo=ZoneInfo(timezone or self.timezone), locale=self.language)
