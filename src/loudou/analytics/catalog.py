"""Imports every report module so that each registers itself, in menu order."""

from loudou.analytics import funnel, snapshot  # noqa: F401
