"""Settings modules: ``development`` (manage.py default), ``production`` (ASGI/WSGI default)
and ``test`` (pytest). Pick one with ``DJANGO_SETTINGS_MODULE``."""
