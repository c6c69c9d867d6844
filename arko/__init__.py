"""arko: an SDK for API-driven CI/CD pipelines built on gRPC."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "arko-ci"
"""The name arko is installed under (``arko`` on PyPI is an unrelated project)."""

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # a source tree put on sys.path, never installed
    __version__ = "0+unknown"
