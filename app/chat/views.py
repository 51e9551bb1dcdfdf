"""Pages: the room list with its form, and one room."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from chat.consumers import CLOSE_INVALID_ROOM, CLOSE_TOO_MANY_SOCKETS, CLOSE_UNAUTHENTICATED
from chat.forms import RoomForm
from chat.history import room_history_html
from chat.models import Room
from chat.servers import CLOSE_SERVICE_RESTART, private_mirror

# Rooms listed on the index, most recently active first.
INDEX_ROOMS = 100
# Messages a room page shows before live ones arrive.
HISTORY_LENGTH = 50


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """List rooms by last activity; POST a room name to enter (and create) it."""
    if request.method == "POST":
        form = RoomForm(request.POST)
        if form.is_valid():
            room, _ = Room.objects.get_or_create(name=form.cleaned_data["name"])
            return redirect("chat:room", room_name=room.name)
    else:
        form = RoomForm()
    rooms = Room.objects.order_by("-last_activity_at", "name")[:INDEX_ROOMS]
    return render(request, "chat/index.html", {"form": form, "rooms": rooms})


@login_required
@require_safe
def room(request: HttpRequest, room_name: str) -> HttpResponse:
    """Show a room's last HISTORY_LENGTH messages (cached, chat/history.py); the page script
    adds live ones."""
    config = {
        "room": room_name,
        "socketPath": f"/ws/chat/{room_name}/",
        "loginUrl": f"{reverse('accounts:login')}?next={request.path}",
        "closeCodes": {
            "unauthenticated": CLOSE_UNAUTHENTICATED,
            "invalidRoom": CLOSE_INVALID_ROOM,
            "tooManySockets": CLOSE_TOO_MANY_SOCKETS,
            "serviceRestart": CLOSE_SERVICE_RESTART,
            "serviceRestartPrivate": private_mirror(CLOSE_SERVICE_RESTART),
        },
    }
    return render(
        request,
        "chat/room.html",
        {
            "room_name": room_name,
            "history_html": room_history_html(room_name, HISTORY_LENGTH),
            "chat_config": config,
        },
    )
