#!/usr/bin/env python3
"""List the message ids used in templates and code that have no zh-CN translation.

    .venv/bin/python scripts/i18n_missing.py            # prints missing ids as .po entries
Exit status 1 when any is missing (the test suite checks the same)."""

from __future__ import annotations

import sys

from loudou.web.i18n_catalog import missing_translations

missing = missing_translations("zh-CN")
for msgid, where in missing:
    print(f"#: {where}\nmsgid {msgid!r}\nmsgstr \"\"\n".replace("msgid '", 'msgid "').replace("'\nmsgstr", '"\nmsgstr'))
sys.exit(1 if missing else 0)
