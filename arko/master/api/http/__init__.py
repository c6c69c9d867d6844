"""The master's HTTP adapter: a JSON API, ``/openapi.json`` and the web UI.

Routes call the same cores as the gRPC servicers (the job service, the
registry, the slaves' catalogs); nothing in the rest of ``arko.master``
imports this package except the daemon's wiring in ``app.py``.
"""
