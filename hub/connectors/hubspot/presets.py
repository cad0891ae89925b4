"""Ready-made HubSpot automations (the lead pipeline behaviours): filled by the lead automation work."""
from __future__ import annotations

PRESETS: tuple = ()
