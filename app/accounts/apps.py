"""App configuration for the accounts app."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-up, login and logout pages over django.contrib.auth (no models of its own)."""

    name = "accounts"
    verbose_name = "Accounts"
