"""Loudou (漏斗): a self-hosted sales-funnel CRM."""

__version__ = "0.1.0"
