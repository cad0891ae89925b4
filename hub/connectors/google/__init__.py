"""Google Contacts (People API v1) as a sync target: labels and contacts of one Google account.

`manifest.MANIFEST` tells the generic OAuth code the endpoints and scopes; `client.PeopleClient`
is the typed HTTP client; `contacts` maps between a neutral person and Google's Person; `store`
is the contact sync's `ContactStore`."""
from .manifest import MANIFEST

__all__ = ["MANIFEST"]

from ..contract import Connector
from . import ids
from .store import GoogleContacts
from .client import PeopleClient
from .identity import identity

CONNECTOR = Connector(
    name="google",
    title="Google Contacts",
    roles=frozenset({"contact_store"}),
    auth=MANIFEST,
    client=PeopleClient,
    identity=identity,
    ids=ids,
    contacts=GoogleContacts,
)
