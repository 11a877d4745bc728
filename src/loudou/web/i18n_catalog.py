"""Checks that every message the app can show has a zh-CN translation: message ids are
extracted from templates and Python code with Babel, as ``pybabel extract`` would."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from loudou.web.i18n import translations

PACKAGE_DIR = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
METHOD_MAP = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def used_messages() -> dict[str, str]:
    """msgid → first place it is used."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PACKAGE_DIR, METHOD_MAP, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True,
    ):
        # A plural message is one catalog entry keyed by its singular id.
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def missing_translations(locale: str) -> list[tuple[str, str]]:
    tr = translations(locale)
    catalog = getattr(tr, "_catalog", {})
    out = []
    for msgid, where in sorted(used_messages().items()):
        value = catalog.get(msgid)
        if value is None:
            value = catalog.get((msgid, 0))
        if not value:
            out.append((msgid, where))
    return out
