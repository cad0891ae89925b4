"""Pieces every provider emulator shares: persisted state, fault knobs and an OAuth token authority.

Emulators share this plumbing, never their provider logic, and nothing here is shared with the
connectors that talk to them (a shared mistake would make both sides agree on it)."""
from .state import SandboxState
from .faults import Faults
from .oauth import OAuthClient, OAuthError, TokenAuthority
from .control import control_blueprint

__all__ = ["SandboxState", "Faults", "OAuthClient", "OAuthError", "TokenAuthority", "control_blueprint"]
