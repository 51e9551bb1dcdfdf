"""``GET /favicon.ico``: a redirect to the site icon among the static files.

Pages link the icon (base.html), but browsers without the link, feed readers and
bookmarking tools still ask for ``/favicon.ico`` at the root. The answer points at
the collected file (its hashed name in production), which nginx serves from
``/static/`` with a year of caching. The redirect itself is temporary and cached for
a day: a new icon has a new hashed name, which a permanent redirect would hide.
"""

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

# The icon's path among the static files, as base.html links it.
FAVICON = "chat/favicon.ico"
# Seconds a client may keep the redirect.
REDIRECT_MAX_AGE = 86400


@require_safe
@cache_control(public=True, max_age=REDIRECT_MAX_AGE)
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Redirect (302) to the static URL of the site icon."""
    return HttpResponseRedirect(static(FAVICON))
