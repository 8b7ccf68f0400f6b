"""The HTTP API: an app factory and one small router per resource."""

from kefu.api.app import create_app

__all__ = ["create_app"]
