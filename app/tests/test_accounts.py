"""Sign up, log in and log out."""

import pytest
from django.contrib.auth import get_user_model

from tests.helpers import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_login_logout_flow(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200

    response = client.post(
        "/accounts/signup/",
        {"username": "dora", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert get_user_model().objects.filter(username="dora").exists()
    assert b"Signed in as <strong>dora</strong>" in client.get("/").content

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302

    response = client.post(
        "/accounts/login/?next=/chat/lobby/",
        {"username": "dora", "password": PASSWORD, "next": "/chat/lobby/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/chat/lobby/"
    assert client.get("/chat/lobby/").status_code == 200


def test_logout_by_get_is_refused(client, make_user):
    client.force_login(make_user("erin"))
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200


def test_login_with_wrong_password_fails(client, make_user):
    make_user("fred")
    response = client.post("/accounts/login/", {"username": "fred", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get("/").status_code == 302


def test_signup_rejects_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "gina", "password1": PASSWORD, "password2": PASSWORD + "!"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not get_user_model().objects.filter(username="gina").exists()


def test_signup_ignores_next_pointing_to_another_site(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "hank",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/"


def test_logout_form_on_every_page_posts_with_csrf_token(client, make_user):
    client.force_login(make_user("ivan"))
    page = client.get("/").content.decode()
    assert 'action="/accounts/logout/"' in page
    assert "csrfmiddlewaretoken" in page
