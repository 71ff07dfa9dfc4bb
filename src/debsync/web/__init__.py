"""The web console: server-rendered pages for the daily work (Starlette, Jinja2, htmx vendored
in ``static/``), mounted on the daemon's HTTP server or run alone by ``debsync web``.

:func:`debsync.web.app.build_web_app` builds it; pages live in :mod:`debsync.web.pages`.
"""
