"""Benchmark fixtures, run inside the deployed app's environment by ``manage.py shell -c``.

Reads ``BENCH_USERS`` (number of users, e.g. 500) and ``BENCH_ROOM`` (room name) from the
environment. Makes sure users ``bench-0000`` ... exist (with unusable passwords: nobody can
log in as them), logs each one in through Django's own session machinery
(``django.test.Client.force_login``, which saves a real session in the configured session
store), and gives the room at least ``HISTORY_LENGTH`` messages so that its page renders a
full history from PostgreSQL. The last line of output is JSON: ``{"sessions": [cookie, ...]}``.
"""

import json
import os

from chat.models import Message
from chat.views import HISTORY_LENGTH
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

count = int(os.environ["BENCH_USERS"])
room = os.environ["BENCH_ROOM"]
User = get_user_model()
cookies = []
users = []
for n in range(count):
    user, created = User.objects.get_or_create(username=f"bench-{n:04d}")
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    users.append(user)
    client = Client()
    client.force_login(user)
    cookies.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
stored = Message.objects.filter(room__name=room).count()
for n in range(stored, HISTORY_LENGTH):
    Message.post(room, users[n % len(users)], f"history message {n} for the room page benchmark")
print(json.dumps({"sessions": cookies}))
