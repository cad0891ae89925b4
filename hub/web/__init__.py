"""Web layer: health endpoints now; settings pages and the JSON API join here."""
from .health import bp as health_bp

__all__ = ["health_bp"]
