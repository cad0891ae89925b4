"""The connector contract, checked on every connector: the folders under hub/connectors/ and the
connectors a test folder registers. Nothing here names a provider.

A connector declares roles and parts (`hub.connectors.contract.Connector`); each case below runs
when the connector declares the part it checks, and is skipped, saying so, only when it does not.
A declared part that does not keep the contract fails, and so does a missing piece of the core.

Cases that talk to an API use the connector's emulator through its test folder's harness,
`tests/connectors/<name>/harness.py`:

    CONNECTOR                 only for a connector defined outside hub/connectors/ (registered here)
    live(tmp_path)            a context manager: the emulator on a loopback port, yielding an object with
        .client               the connector's API client, signed in
        .api_base             the API root the client uses
        .record_kinds         (crm) object kinds its CrmSource loads (the emulator holds some of each)
        .step_settings(what)  (targets) valid settings for the step kind `what` in that emulator
        .count(makes)         (targets) how many objects of that type (task, project ...) it holds
A contact source's emulator holds some persons.

Webhook fixtures are `tests/connectors/<name>/fixtures/*` (JSON bodies, or form bodies as `.txt`),
as the provider's documentation shows them. A fixture may come with `<stem>.request.json`:
`{"headers": {...}, "secrets": {"user", "password", "app_secret"}, "url": ..., "received_at": ...}`, a
delivery signed as the provider signs it, which must verify, and must not once its body is altered
(`received_at`, epoch seconds: when the hub took it in, for schemes that refuse stale timestamps)."""
from __future__ import annotations

import importlib
import json
import uuid
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hub import connectors as registry
from hub.connectors import contract
from hub.connectors.contract import auth as contract_auth
from hub.connectors.contract import records as contract_records
from hub.connectors.contract import targets as contract_targets
from hub.connectors.contract import triggers as contract_triggers
from hub.connectors.contract import webhooks as contract_webhooks

TESTS = Path(__file__).parent / "connectors"


# -- what is collected ------------------------------------------------------------------------------
def _harness(name: str) -> ModuleType | None:
    if not (TESTS / name / "harness.py").exists():
        return None
    return importlib.import_module(f"tests.connectors.{name}.harness")


def _registered_elsewhere() -> dict[str, contract.Connector]:
    """Connectors that test folders define outside hub/connectors/ (their harness exports CONNECTOR)."""
    found = {}
    for folder in sorted(p for p in TESTS.iterdir() if (p / "harness.py").exists()):
        module = _harness(folder.name)
        if getattr(module, "CONNECTOR", None) is not None:
            found[module.CONNECTOR.name] = module.CONNECTOR
    return found


EXTRA = _registered_elsewhere()
NAMES = sorted(set(registry.available()) | set(EXTRA))


def _connector(name: str) -> contract.Connector:
    return EXTRA[name] if name in EXTRA else registry.connector(name)


def _by_name(fn) -> list:
    """pytest params (name, *values) for every connector, `fn(connector)` giving the values."""
    return [pytest.param(name, *values, id="-".join([name, *map(str, values)]))
            for name in NAMES for values in fn(_connector(name))]


def _roles(c):
    return [(r,) for r in sorted(c.roles)]


def _steps(c):
    """Step kinds that make an object (a task, a project): `ensure` must make it once per key.
    A step that updates a record has nothing to count."""
    return [(what,) for what, step in sorted(c.targets.items()) if step.makes in ("task", "project")]


def _catalogs(c):
    return [(n,) for n in sorted(c.catalogs)]


def _fixtures(c):
    folder = TESTS / c.name / "fixtures"
    if not folder.is_dir():
        return []
    return [(p.name,) for p in sorted(folder.iterdir())
            if p.suffix in (".json", ".txt") and not p.name.endswith(".request.json")]


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def registered():
    """The connectors test folders define, registered as a plug-in would be, for this module."""
    for c in EXTRA.values():
        registry.register(c)
    yield
    for name in EXTRA:
        registry.unregister(name)


@pytest.fixture(scope="module")
def lives(tmp_path_factory):
    """name -> its harness's live emulator, opened on first use and closed with the module."""
    opened: dict[str, Any] = {}
    with ExitStack() as stack:
        def get(name: str):
            if name not in opened:
                harness = _harness(name)
                assert harness is not None and hasattr(harness, "live"), (
                    f"tests/connectors/{name}/harness.py with live(): the contract test runs the parts "
                    f"{name} declares against its emulator (see tests/test_contract.py)")
                opened[name] = stack.enter_context(harness.live(tmp_path_factory.mktemp(name)))
            return opened[name]
        yield get


def _catalog(c: contract.Connector, client):
    cache: dict[str, Any] = {}

    def load(name: str):
        if name not in cache:
            cache[name] = c.catalogs[name].load(client)
        return cache[name]
    return load


def _needs(c: contract.Connector, part: str, role: str) -> None:
    """Skip a case whose part the connector does not declare (a role that needs it fails elsewhere)."""
    if not getattr(c, part):
        also = f"; its {role} role needs one (test_role_has_its_parts)" if role in c.roles else ""
        pytest.skip(f"{c.name} declares no {part} part{also}")


# -- the connector itself ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_connector_is_declared(name):
    c = _connector(name)
    assert isinstance(c, contract.Connector)
    assert c.name == name and c.title
    assert c.roles and set(c.roles) <= contract.ROLES, sorted(c.roles)
    assert isinstance(c.auth, (contract_auth.OAuth2, contract_auth.ApiKey)), type(c.auth)
    assert callable(c.client), "client: (api_base, token_source, **options) -> ApiClient"
    assert c.identity is not None or c.auth.identity is not None, "identity: who connected"
    kinds = {t.kind for t in c.triggers}
    for preset in c.presets:
        assert isinstance(preset, contract_triggers.Preset)
        assert set(preset.needs) <= contract.ROLES, preset.needs
        trigger = preset.rule.get("trigger")
        kind = trigger.get("kind") if isinstance(trigger, dict) else trigger
        if "crm" in preset.needs:     # another connector's events: any neutral kind
            assert kind in contract_webhooks.KINDS, f"preset {preset.key}: {kind} is not a neutral kind"
        else:
            assert kind in kinds, f"preset {preset.key}: {c.name} emits no {kind}"
        for step in preset.rule.get("steps", ()):
            if step.get("kind", "").startswith(f"{c.name}."):
                assert step["kind"].split(".", 1)[1] in c.targets, f"preset {preset.key}: no step kind {step['kind']}"


@pytest.mark.parametrize("name, role", _by_name(_roles))
def test_role_has_its_parts(name, role):
    c = _connector(name)
    if role == "crm":
        assert isinstance(c.webhooks, contract_webhooks.Webhooks), "a crm gives its Webhooks"
        assert callable(c.source), "a crm gives its CrmSource factory"
        assert c.triggers, "a crm says which event kinds it emits"
        for t in c.triggers:
            assert isinstance(t, contract_triggers.Trigger)
            assert t.kind in contract_webhooks.KINDS, f"{t.kind}: not a neutral kind"
            assert t.kind in c.webhooks.kinds, f"trigger {t.kind}: its webhooks never emit it"
    elif role in ("task_target", "project_target"):
        makes = "task" if role == "task_target" else "project"
        assert any(s.makes == makes for s in c.targets.values()), f"a {role} offers a step that makes a {makes}"
    elif role in ("contact_source", "contact_store"):
        assert c.contacts is not None, f"a {role} gives its contacts part"
    for what, step in c.targets.items():
        assert isinstance(step, contract_targets.StepKind) and step.what == what
        assert set(step.catalogs) <= set(c.catalogs), f"step {what}: unknown catalogs {step.catalogs}"


# -- webhooks ---------------------------------------------------------------------------------------
def _request(c, fixture: Path, headers: dict | None = None, body: bytes | None = None):
    body = fixture.read_bytes() if body is None else body
    kind = "application/json" if fixture.suffix == ".json" else "application/x-www-form-urlencoded"
    headers = {k.lower(): v for k, v in (headers or {"content-type": kind}).items()}
    url = f"https://hub.test/hooks/{c.name}/contract-token"
    return contract_webhooks.RawRequest("POST", url, headers, body, headers.get("content-type", kind))


SECRETS = contract_webhooks.Secrets(user="relayhub-contract", password="contract-password",
                                    app_secret_source=lambda: "contract-app-secret")


@pytest.mark.parametrize("name", NAMES)
def test_webhooks_refuse_an_unproven_delivery(name):
    c = _connector(name)
    _needs(c, "webhooks", "crm")
    fixtures = [TESTS / name / "fixtures" / f for (f,) in _fixtures(c)] or [None]
    for fixture in fixtures:
        body = fixture.read_bytes() if fixture else b'{"contract": "test"}'
        plain = _request(c, fixture or Path("x.json"), body=body)
        with pytest.raises(contract_webhooks.Refused):
            c.webhooks.verify(plain, SECRETS)
        forged = _request(c, fixture or Path("x.json"), body=body, headers={
            "content-type": plain.content_type, "authorization": "Basic cmVsYXlodWItY29udHJhY3Q6bm9wZQ==",
            "x-signature": "0" * 64, "x-hub-signature": "sha256=" + "0" * 64})
        with pytest.raises(contract_webhooks.Refused):
            c.webhooks.verify(forged, SECRETS)


@pytest.mark.parametrize("name", NAMES)
def test_signed_fixtures_verify_and_tampered_ones_do_not(name):
    c = _connector(name)
    _needs(c, "webhooks", "crm")
    signed = sorted((TESTS / name / "fixtures").glob("*.request.json")) if (TESTS / name / "fixtures").is_dir() else []
    if not signed:
        pytest.skip(f"{name} has no signed fixture (<stem>.request.json)")
    for sidecar in signed:
        spec = json.loads(sidecar.read_text())
        fixture = sidecar.with_name(sidecar.name[:-len(".request.json")] + ".json")
        if not fixture.exists():
            fixture = fixture.with_suffix(".txt")
        secrets = contract_webhooks.Secrets(user=spec["secrets"].get("user", ""),
                                            password=spec["secrets"].get("password", ""),
                                            token=spec["secrets"].get("token", ""),
                                            app_secret_source=lambda: spec["secrets"].get("app_secret", ""))
        good = _request(c, fixture, spec["headers"])
        if spec.get("url"):
            good.url = spec["url"]
        good.received_at = spec.get("received_at")
        c.webhooks.verify(good, secrets)
        tampered = _request(c, fixture, spec["headers"], body=good.body.replace(b"}", b" }", 1) + b" ")
        tampered.url, tampered.received_at = good.url, good.received_at
        with pytest.raises(contract_webhooks.Refused):
            c.webhooks.verify(tampered, secrets)


class _LazyClient:
    """The client `normalize` gets: made (the emulator started) only if the connector touches it."""

    def __init__(self, make):
        self._make, self._client = make, None

    def __getattr__(self, attr):
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, attr)


@pytest.mark.parametrize("name, fixture", _by_name(_fixtures))
def test_fixture_normalizes_to_known_kinds(name, fixture, lives):
    c = _connector(name)
    _needs(c, "webhooks", "crm")
    request = _request(c, TESTS / name / "fixtures" / fixture)
    deliveries = c.webhooks.split(request)
    assert deliveries, f"{fixture}: split gave no delivery"
    client = _LazyClient(lambda: lives(name).client)
    kinds = []
    for delivery in deliveries:
        assert isinstance(delivery, contract_webhooks.Delivery) and delivery.key and len(delivery.key) <= 200
        events = []
        for item in c.webhooks.normalize(delivery, client):
            if isinstance(item, contract_webhooks.Snapshot):   # the object read now: compared with nothing known
                assert c.webhooks.changes is not None, "a Snapshot is compared through `changes`"
                events += c.webhooks.changes(None, item)
            else:
                events.append(item)
        for event in events:
            assert isinstance(event, contract_webhooks.CrmEvent)
            assert event.event_id and event.object_id, event
        kinds += [e.kind for e in events]
    assert kinds, f"{fixture}: no event (an unsupported delivery is no fixture of what the connector reads)"
    assert set(kinds) <= contract_webhooks.KINDS, f"not neutral: {set(kinds) - contract_webhooks.KINDS}"
    assert set(kinds) <= set(c.webhooks.kinds), f"not declared in Webhooks.kinds: {set(kinds) - c.webhooks.kinds}"


# -- CRM source and catalogs ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_source_loads_a_record_from_the_emulator(name, lives):
    c = _connector(name)
    _needs(c, "source", "crm")
    live = lives(name)
    assert live.record_kinds, "the harness names the object kinds the source loads"
    ctx = contract_records.SourceContext(live.client, live.api_base, _catalog(c, live.client))
    source = c.source(ctx)
    for kind in live.record_kinds:
        recent = source.recent(kind, 5)
        assert recent, f"the emulator holds no {kind}"
        warnings: list[str] = []
        record = source.load(kind, recent[0].id, None, contract_records.Carry(), warnings)
        assert isinstance(record, contract_records.SourceRecord)
        assert (record.kind, record.id) == (kind, recent[0].id)
        assert record.title and record.url and record.data, record
        fields = source.fields(kind)
        assert fields and all(isinstance(f, contract_records.FieldInfo) for f in fields)
        for f in fields:   # conditions read every field without an API call, whatever its value
            source.value(kind, record.data, f.key)


@pytest.mark.parametrize("name, catalog", _by_name(_catalogs))
def test_catalog_loads(name, catalog, lives):
    c = _connector(name)
    part = c.catalogs[catalog]
    assert isinstance(part, contract_records.Catalog) and part.name == catalog and part.label
    value = part.load(lives(name).client)
    json.dumps(value)   # the core caches it as JSON


# -- targets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, what", _by_name(_steps))
def test_step_ensures_one_object_per_effect_key(name, what, lives):
    c = _connector(name)
    step = c.targets[what]
    live = lives(name)
    settings = live.step_settings(what)
    catalog = _catalog(c, live.client)
    assert step.validate(settings, catalog, True) == {}, "the harness's settings are valid"
    target = step.target(contract_targets.TargetContext(live.client, live.api_base, catalog))
    spec = contract_targets.TaskSpec(name=f"Contract {what} {uuid.uuid4().hex[:8]}", notes_html="<p>contract</p>",
                                     settings=settings)
    key = f"contract:{name}:{what}:{uuid.uuid4().hex}"
    before = live.count(step.makes)
    made = target.ensure(spec, key, first_try=True)
    again = target.ensure(spec, key, first_try=False)       # a retry after a lost answer
    assert made.created and made.external_id
    assert not again.created and again.external_id == made.external_id
    assert live.count(step.makes) == before + 1
    if step.completes:
        before_completion = target.status(made.external_id)
        state = target.state(made.external_id)
        assert isinstance(state, contract_targets.TaskState) and state.status not in contract_targets.CLOSED_STATUSES
        completed = target.complete(made.external_id)
        assert completed in ("completed", "awaiting_review")
        assert completed != before_completion and target.status(made.external_id) == completed
        assert target.state(made.external_id).status == completed


# -- contacts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, role", [p for p in _by_name(_roles)
                                        if p.values[1] in ("contact_source", "contact_store")])
def test_contacts_side_reads_the_emulator(name, role, lives):
    c = _connector(name)
    _needs(c, "contacts", role)
    from hub.connectors.contract import contacts as contract_contacts   # the sync's side of the contract
    live = lives(name)
    side = c.contacts(contract_contacts.ContactsContext(api_base=live.api_base, client=live.client))
    if role == "contact_source":
        catalog = side.field_catalog()
        assert contract_contacts.NAME in {f.key for f in catalog}
        fields = contract_contacts.SOURCE_STANDARD
        pages = list(side.changes(None, fields=fields, filters={}))
        people = [p for page in pages for p in page.contacts]
        assert people and all(isinstance(p, contract_contacts.Contact) and p.id for p in people)
        again = side.get(people[0].id, fields=fields)
        assert again is not None and again.id == people[0].id
        assert side.contact_of(people[0].raw).id == people[0].id
    else:
        assert isinstance(side.limits, contract_contacts.StoreLimits)
        assert isinstance(side.count(), int)
        label = f"Contract {uuid.uuid4().hex[:8]}"
        made = side.create_group(label)
        assert side.create_group(label).id == made.id        # a retried create adopts its own label
        assert made.id in {g.id for g in side.groups()}
        first = next(iter(side.changes(None, fields=contract_contacts.STORE_FIELDS)))
        assert isinstance(first, contract_contacts.ChangesPage) and first.first
