"""Project configuration: settings, URL routing and the ASGI/WSGI entry points."""
