"""ASGI entry point for daphne: ``config.asgi:application``.

Routes WebSockets under /ws/ to the chat consumer, behind the origin check
(Origin must equal one of CHAT_ALLOWED_ORIGINS: scheme, host and port) and the
session authentication middleware (which keeps sessions of a previous
SECRET_KEY logged in, chat/sessions.py); other WebSocket paths are closed with 4404;
plain HTTP goes to Django, so daphne alone can also serve the whole site.
Uses the production settings unless ``DJANGO_SETTINGS_MODULE`` says otherwise.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

# Set up Django (apps, models) before anything below imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings

from chat.routing import websocket_urlpatterns
from chat.sessions import auth_middleware_stack

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(
            auth_middleware_stack(URLRouter(websocket_urlpatterns)), settings.CHAT_ALLOWED_ORIGINS
        ),
    }
)
