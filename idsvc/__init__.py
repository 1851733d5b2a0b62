"""idsvc: access control and identity for rental housing and industrial parks."""

__version__ = "0.1.0"
