"""Marketplace install and target-account connections over OAuth 2.0 (one generic implementation)."""
from .manifest import OAuthManifest

__all__ = ["OAuthManifest"]
