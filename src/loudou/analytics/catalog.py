"""Every report module, in menu order; importing one registers its report."""

from importlib import import_module

#: The order of the report menu, the API listing and ``loudou report --help``.
MENU = ("funnel", "snapshot", "timeinstage", "cycle", "winrate", "winloss", "channels", "segments", "customers",
        "behaviour", "bottlenecks", "change")

for _name in MENU:
    import_module(f"loudou.analytics.{_name}")
