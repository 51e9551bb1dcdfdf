"""App configurations that belong to the project rather than to one app."""

from django.contrib.admin.apps import AdminConfig


class ChatAdminConfig(AdminConfig):
    """Django's admin with ``config.admin.ChatAdminSite`` as ``admin.site``."""

    default_site = "config.admin.ChatAdminSite"
