"""Asana as a task target: create tasks and projects from CRM events, attach deal files.

`manifest.MANIFEST` gives the generic OAuth code Asana's endpoints and granular scopes;
`client.AsanaClient` is the typed HTTP client; `richtext.to_html_notes` turns rendered templates
into rich text Asana accepts; `resources.workspace_catalog` feeds the settings dropdowns."""
from .manifest import MANIFEST

__all__ = ["MANIFEST"]

from ..contract import Connector
from . import ids
from .catalogs import CATALOGS
from .targets import TARGETS
from .triggers import PRESETS
from .client import AsanaClient
from .identity import identity

CONNECTOR = Connector(
    name="asana",
    title="Asana",
    roles=frozenset({"task_target", "project_target"}),
    auth=MANIFEST,
    catalogs=CATALOGS,
    targets=TARGETS,
    presets=PRESETS,
    client=AsanaClient,
    identity=identity,
    ids=ids,
)
