"""The generic install and connect flows (OAuth 2.0 consent or an API key typed into a form), the
credentials they keep (encrypted, refreshed single-flight) and the clients built on them. Nothing
here names a provider: each connector's `auth` (hub/connectors/contract/auth.py) says the rest."""
