"""Project-wide middleware."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# The site's own pages load only their own scripts and styles (no CDN, no inline
# script), so a strict policy costs nothing and blunts any injection that slips
# past escaping. The admin keeps Django's defaults: it uses inline attributes.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' {websocket_origins}; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Add a ``Content-Security-Policy`` header to HTML pages outside /admin/.

    ``connect-src`` names the page's own host with ``ws:``/``wss:`` explicitly, as
    older browsers do not count WebSockets under ``'self'``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/admin/")
            or "Content-Security-Policy" in response
            or not response.get("Content-Type", "").startswith("text/html")
        ):
            return response
        host = request.get_host()
        scheme = "wss" if request.is_secure() else "ws"
        response["Content-Security-Policy"] = _POLICY.format(websocket_origins=f"{scheme}://{host}")
        return response
