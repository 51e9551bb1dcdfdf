"""Sign-up page; login, logout and password change are Django's own views (see urls.py)."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.throttle import limit_per_address


@require_http_methods(["GET", "HEAD", "POST"])
@limit_per_address("signup", "CHAT_SIGNUP_RATE", "Too many sign-ups from your network.")
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account from a username and password, log it in, go to ``next`` or the index."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if request.method == "POST":
        form = UserCreationForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    else:
        form = UserCreationForm()
    return render(request, "accounts/signup.html", {"form": form, "next": next_url})
