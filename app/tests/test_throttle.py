"""Limits on password hashing: per account (django-axes) and per client address.

The test client's peer is 127.0.0.1, one of the default CHAT_TRUSTED_PROXIES, so
an ``X-Real-IP`` header plays the client address nginx would pass on.
"""

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 3
COOLOFF = 120


@pytest.fixture(autouse=True)
def small_limits(settings):
    """Limits small enough to reach; the cool-off as an integer of seconds."""
    settings.CHAT_LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = LIMIT
    settings.CHAT_LOGIN_COOLOFF_SECONDS = COOLOFF
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(seconds=COOLOFF)
    settings.CHAT_SIGNUP_RATE = "3/h"
    settings.CHAT_PASSWORD_CHANGE_RATE = "4/h"


def from_address(address: str) -> Client:
    """A client whose requests nginx would mark as coming from ``address``."""
    return Client(HTTP_X_REAL_IP=address)


def login(client: Client, username: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def assert_refused(response, at_most: int) -> int:
    """The response is a 429 with a Retry-After of 1..at_most seconds; return it."""
    assert response.status_code == 429, response.content[:300]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= at_most
    assert b"Too many" in response.content
    return retry_after


# Per account ----------------------------------------------------------------------


def test_failed_logins_from_many_addresses_lock_the_account(make_user):
    make_user("victim")
    for i in range(LIMIT - 1):
        response = login(from_address(f"198.51.100.{i + 1}"), "victim", "guess")
        assert response.status_code == 200
        assert response.context["form"].errors
    # The LIMIT-th failure, from yet another address, locks the account.
    retry_after = assert_refused(
        login(from_address("203.0.113.50"), "victim", "guess"), at_most=COOLOFF
    )
    assert retry_after >= COOLOFF - 5
    # From now on even the right password is refused, from anywhere, and the
    # refusal's Retry-After counts down rather than growing.
    client = from_address("2001:db8:9::1")
    assert assert_refused(login(client, "victim", PASSWORD), at_most=retry_after) <= retry_after
    assert client.get("/").status_code == 302


def test_locked_account_is_refused_without_hashing(make_user, monkeypatch):
    make_user("victim")
    for _ in range(LIMIT):
        login(from_address("198.51.100.7"), "victim", "guess")
    hashed = []
    from django.contrib.auth.hashers import MD5PasswordHasher

    original = MD5PasswordHasher.verify
    monkeypatch.setattr(
        MD5PasswordHasher, "verify", lambda self, *a: hashed.append(1) or original(self, *a)
    )
    assert_refused(login(from_address("198.51.100.8"), "victim", "guess"), at_most=COOLOFF)
    assert hashed == []


def test_other_accounts_still_log_in_while_one_is_locked(make_user):
    make_user("victim")
    make_user("bystander")
    attacker = from_address("198.51.100.9")
    for _ in range(LIMIT):
        login(attacker, "victim", "guess")
    assert login(attacker, "victim", "guess").status_code == 429
    # Same address, another account with its right password: logged in.
    response = login(attacker, "bystander", PASSWORD)
    assert response.status_code == 302
    assert attacker.get("/").status_code == 200


def test_lockout_ends_after_the_cool_off(make_user, settings):
    make_user("victim")
    settings.CHAT_LOGIN_COOLOFF_SECONDS = 2
    from datetime import timedelta

    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    for _ in range(LIMIT):
        login(from_address("198.51.100.10"), "victim", "guess")
    retry_after = assert_refused(login(Client(), "victim", PASSWORD), at_most=2)
    time.sleep(retry_after + 0.2)
    assert login(Client(), "victim", PASSWORD).status_code == 302


def test_a_correct_login_clears_earlier_failures(make_user):
    make_user("typo")
    for _ in range(LIMIT - 1):
        login(Client(), "typo", "guess")
    assert login(Client(), "typo", PASSWORD).status_code == 302
    for _ in range(LIMIT - 1):
        assert login(Client(), "typo", "guess").status_code == 200


def test_admin_login_shares_the_account_lockout(make_user):
    admin = make_user("boss")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    for i in range(LIMIT - 1):
        response = login(from_address(f"192.0.2.{i + 1}"), "boss", "guess", "/admin/login/")
        assert response.status_code == 200
    assert_refused(login(from_address("192.0.2.99"), "boss", "guess", "/admin/login/"), COOLOFF)
    # Locked at the admin, locked at the site's login too.
    assert_refused(login(from_address("192.0.2.100"), "boss", PASSWORD), COOLOFF)


def password_change(client: Client, old: str, path: str = "/accounts/password/change/"):
    new = PASSWORD + " renewed"
    return client.post(path, {"old_password": old, "new_password1": new, "new_password2": new})


def test_password_change_works(make_user):
    client = from_address("198.51.100.20")
    client.force_login(make_user("carol"))
    response = password_change(client, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/done/"
    assert client.get(response["Location"]).status_code == 200
    assert login(Client(), "carol", PASSWORD + " renewed").status_code == 302


@pytest.mark.parametrize("path", ["/accounts/password/change/", "/admin/password_change/"])
def test_guessing_the_current_password_locks_the_account(make_user, path):
    user = make_user("mallory")
    user.is_staff = True
    user.save()
    client = from_address("198.51.100.21")
    client.force_login(user)
    for _ in range(LIMIT - 1):
        response = password_change(client, "guess", path)
        assert response.status_code == 200
        assert response.context["form"].errors["old_password"]
    assert_refused(password_change(client, "guess", path), at_most=COOLOFF)
    # Even the right current password is refused now, and the login too.
    assert_refused(password_change(client, PASSWORD, path), at_most=COOLOFF)
    assert_refused(login(Client(), "mallory", PASSWORD), at_most=COOLOFF)
    assert get_user_model().objects.get(username="mallory").check_password(PASSWORD)


@pytest.mark.parametrize("path", ["/accounts/password/change/", "/admin/password_change/"])
def test_password_changes_are_limited_per_address(make_user, path):
    user = make_user("nina")
    user.is_staff = True
    user.save()
    client = from_address("198.51.100.22")
    client.force_login(user)
    password = PASSWORD
    for i in range(4):
        new = f"{PASSWORD} {i}"
        response = client.post(
            path, {"old_password": password, "new_password1": new, "new_password2": new}
        )
        assert response.status_code == 302, response.content[:300]
        password = new
        client.force_login(get_user_model().objects.get(username="nina"))
    assert_refused(password_change(client, password, path), at_most=3600)


# Per address ------------------------------------------------------------------------


def signup(client: Client, username: str):
    return client.post(
        "/accounts/signup/",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_signups_are_limited_per_address():
    for i in range(3):
        assert signup(from_address("198.51.100.30"), f"new{i}").status_code == 302
    response = signup(from_address("198.51.100.30"), "new3")
    assert_refused(response, at_most=3600)
    assert not get_user_model().objects.filter(username="new3").exists()
    # Another address has a budget of its own.
    assert signup(from_address("198.51.100.31"), "new4").status_code == 302


def test_signups_are_limited_per_ipv6_64():
    for i in range(3):
        address = f"2001:db8:aa:bb:{i}::{i + 1}"
        assert signup(from_address(address), f"six{i}").status_code == 302
    # Another address of the same /64: the same budget.
    assert_refused(signup(from_address("2001:db8:aa:bb:ffff::9"), "six3"), at_most=3600)
    # The next /64 is another client.
    assert signup(from_address("2001:db8:aa:bc::1"), "six4").status_code == 302


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address():
    for i in range(3):
        assert signup(from_address("198.51.100.40"), f"map{i}").status_code == 302
    assert_refused(signup(from_address("::ffff:198.51.100.40"), "map3"), at_most=3600)


def test_failed_signups_count_too():
    client = from_address("198.51.100.41")
    for _ in range(3):
        response = client.post(
            "/accounts/signup/",
            {"username": "x", "password1": PASSWORD, "password2": "other"},
        )
        assert response.status_code == 200
    assert_refused(signup(client, "late"), at_most=3600)


def test_signup_page_itself_is_not_limited():
    client = from_address("198.51.100.42")
    for i in range(3):
        signup(client, f"page{i}")
    assert client.get("/accounts/signup/").status_code == 200


def test_x_real_ip_from_an_untrusted_peer_is_ignored():
    # A client reaching the app server directly, not through nginx, cannot
    # choose its address: its budget is its peer address's.
    for i in range(3):
        client = Client(REMOTE_ADDR="203.0.113.60", HTTP_X_REAL_IP=f"198.51.100.{100 + i}")
        assert signup(client, f"spoof{i}").status_code == 302
    client = Client(REMOTE_ADDR="203.0.113.60", HTTP_X_REAL_IP="198.51.100.200")
    assert_refused(signup(client, "spoof3"), at_most=3600)


def test_x_forwarded_for_is_not_the_client_address():
    for i in range(3):
        client = Client(HTTP_X_FORWARDED_FOR=f"198.51.100.{150 + i}", HTTP_X_REAL_IP="192.0.2.7")
        assert signup(client, f"xff{i}").status_code == 302
    client = Client(HTTP_X_FORWARDED_FOR="198.51.100.199", HTTP_X_REAL_IP="192.0.2.7")
    assert_refused(signup(client, "xff3"), at_most=3600)


def test_unix_socket_peer_is_trusted():
    # gunicorn on a unix socket reports an empty REMOTE_ADDR: nginx is the only peer.
    for i in range(3):
        client = Client(REMOTE_ADDR="", HTTP_X_REAL_IP="198.51.100.60")
        assert signup(client, f"unix{i}").status_code == 302
    via_socket = Client(REMOTE_ADDR="", HTTP_X_REAL_IP="198.51.100.60")
    assert_refused(signup(via_socket, "unix3"), at_most=3600)
    other = Client(REMOTE_ADDR="", HTTP_X_REAL_IP="198.51.100.61")
    assert signup(other, "unix4").status_code == 302


def test_signup_limit_fails_open_when_redis_is_down(redis_server):
    redis_server.stop()
    try:
        response = signup(from_address("198.51.100.70"), "outage")
    finally:
        redis_server.start()
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="outage").exists()


@override_settings(CHAT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_trusted_proxies_come_from_settings():
    # 127.0.0.1 is no longer trusted: the header is ignored, every client is 127.0.0.1.
    for i in range(3):
        assert signup(from_address(f"198.51.100.{80 + i}"), f"tp{i}").status_code == 302
    assert_refused(signup(from_address("198.51.100.90"), "tp3"), at_most=3600)
    client = Client(REMOTE_ADDR="10.1.2.3", HTTP_X_REAL_IP="198.51.100.91")
    assert signup(client, "tp4").status_code == 302
