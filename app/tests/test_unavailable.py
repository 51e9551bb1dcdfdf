"""An unreachable backend answers 503 with Retry-After (config.middleware)."""

import copy
import socket

import pytest
from django.conf import settings
from django.db import OperationalError
from django.db.backends.postgresql.base import DatabaseWrapper
from django.http import HttpResponse
from django.test import RequestFactory

from config.middleware import ServiceUnavailableMiddleware


def closed_port() -> int:
    """A loopback TCP port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_database_error() -> OperationalError:
    """The error Django raises when PostgreSQL refuses the connection."""
    params = copy.deepcopy(settings.DATABASES["default"])
    params.update(HOST="127.0.0.1", PORT=str(closed_port()), OPTIONS={"connect_timeout": 2})
    wrapper = DatabaseWrapper(params, alias="unreachable")
    try:
        with pytest.raises(OperationalError) as caught:
            wrapper.ensure_connection()
    finally:
        wrapper.close()
    return caught.value


def middleware() -> ServiceUnavailableMiddleware:
    return ServiceUnavailableMiddleware(lambda request: HttpResponse("ok"))


@pytest.mark.django_db
def test_an_unreachable_database_answers_503_with_retry_after():
    request = RequestFactory().get("/rooms/lobby/")
    response = middleware().process_exception(request, unreachable_database_error())
    assert response is not None
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Cache-Control"] == "no-store"
    assert b"Traceback" not in response.content


def test_other_errors_stay_djangos_own():
    request = RequestFactory().get("/")
    assert middleware().process_exception(request, ValueError("a bug")) is None


def test_the_middleware_is_installed_before_axes():
    stack = settings.MIDDLEWARE
    assert stack.index("config.middleware.ServiceUnavailableMiddleware") < stack.index(
        "axes.middleware.AxesMiddleware"
    )
