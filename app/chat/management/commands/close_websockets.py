"""``manage.py close_websockets``: close this server's chat connections before a restart.

Sends one ``chat.server_close`` event to the group of the server (see
chat/servers.py); every connection in it, in any daphne process of the server,
closes with the given code. Run it on the host whose servers are about to
restart, after the load balancer stopped sending it new connections: clients
then reconnect to another server at once and catch up on what they missed.
"""

from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from redis.exceptions import RedisError

from chat.servers import CLOSE_SERVICE_RESTART, close_server_websockets


class Command(BaseCommand):
    """Close the WebSocket connections of one server with a close code (1012 by default)."""

    help = (
        "Close the chat WebSocket connections of this server (CHAT_SERVER_ID) with a close "
        "code, 1012 (service restart) by default, so that clients reconnect elsewhere."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: --code, --reason, --server-id."""
        parser.add_argument(
            "--code",
            type=int,
            default=CLOSE_SERVICE_RESTART,
            help="Close code: 1000, 1001, 1008, 1011, 1012 or 1013, or 3000..4999 "
            "(default %(default)s, service restart).",
        )
        parser.add_argument(
            "--reason",
            default="service restart",
            help="Close reason, at most 123 bytes of UTF-8 (default %(default)r).",
        )
        parser.add_argument(
            "--server-id",
            default=None,
            help="Server whose connections to close (default: the CHAT_SERVER_ID setting, "
            "the host name unless set).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Send the close event to the server's group and say which group it went to.

        Raises:
            CommandError: an invalid code, reason or server id, or the channel
                layer's Redis failed (exit status 1, the message on stderr).
        """
        server_id = options["server_id"] or settings.CHAT_SERVER_ID
        try:
            group = async_to_sync(close_server_websockets)(
                server_id, options["code"], options["reason"]
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        except (RedisError, OSError) as error:
            raise CommandError(
                f"Could not reach the channel layer: {error.__class__.__name__}: {error}"
            ) from error
        self.stdout.write(
            f"Sent close {options['code']} to the WebSocket connections of server "
            f"{server_id!r} (group {group})."
        )
