"""Routes under /accounts/."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import path, reverse_lazy

from accounts import views
from accounts.throttle import guard_password_change

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    # Failed logins per account are limited by django-axes (its backend and
    # middleware, see settings), not here.
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    # POST only (Django 5): a link or prefetch cannot log anyone out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        login_required(
            guard_password_change(
                auth_views.PasswordChangeView.as_view(
                    template_name="accounts/password_change.html",
                    success_url=reverse_lazy("accounts:password_change_done"),
                )
            )
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        login_required(
            auth_views.PasswordChangeDoneView.as_view(
                template_name="accounts/password_change_done.html"
            )
        ),
        name="password_change_done",
    ),
]
