"""Accounts: sign up, log in and log out with Django's authentication."""
