"""Top-level URL routes. WebSocket routes are in chat/routing.py."""

from django.contrib import admin
from django.urls import include, path

from config.favicon import favicon
from config.health import healthz

urlpatterns = [
    path("", include("chat.urls")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
]
