"""The site icon: a static file every page links, and ``/favicon.ico`` pointing at it."""

import struct

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import override_settings

from config.favicon import FAVICON

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}


def test_the_icon_is_an_ico_file_with_16_and_32_pixel_images():
    with open(finders.find(FAVICON), "rb") as icon:
        data = icon.read()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    sizes = [struct.unpack_from("<BB", data, 6 + 16 * n) for n in range(count)]
    assert (reserved, kind) == (0, 1)  # 1: an icon, not a cursor.
    assert sorted(sizes) == [(16, 16), (32, 32)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_pages_link_the_icon(client, path):
    page = client.get(path).content.decode()
    assert f'<link rel="icon" href="/static/{FAVICON}" sizes="16x16 32x32">' in page


def test_favicon_ico_redirects_to_the_static_icon_for_a_day(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == f"/static/{FAVICON}"
    assert sorted(response["Cache-Control"].split(", ")) == ["max-age=86400", "public"]


def test_favicon_ico_refuses_post(client):
    assert client.post("/favicon.ico").status_code == 405


def test_favicon_ico_redirects_to_the_collected_hashed_name(client, settings, tmp_path):
    """In production (ManifestStaticFilesStorage) it points at the hashed file collected."""
    settings.STATIC_ROOT = tmp_path
    with override_settings(STORAGES=MANIFEST_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
        response = client.get("/favicon.ico")
    location = response["Location"]
    assert response.status_code == 302
    assert location.startswith("/static/chat/favicon.") and location != f"/static/{FAVICON}"
    collected = tmp_path / location.removeprefix("/static/")
    with open(finders.find(FAVICON), "rb") as source:
        assert collected.read_bytes() == source.read()
