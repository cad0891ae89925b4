"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""
