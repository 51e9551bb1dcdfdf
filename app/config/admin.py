"""The project's admin site: Django's, with its password change limited."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from accounts.throttle import guard_password_change


class ChatAdminSite(admin.AdminSite):
    """``admin.site`` of this project (see ``config.apps.ChatAdminConfig``).

    Its login is limited per account by django-axes like every login; its
    password change form also hashes the current password, so it gets the
    same limits as the site's (``accounts.throttle.guard_password_change``).
    """

    def password_change(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        """Django's password change page, behind both limits."""
        return guard_password_change(super().password_change)(request, extra_context)
