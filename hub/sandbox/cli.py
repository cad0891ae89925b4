"""`flask --app hub sandbox ...`: play the CRM user and turn fault knobs from a terminal.

The emulators live inside the running hub (`make run`), so these commands talk to it over HTTP,
through the same pages and control routes a person uses; the hub's base URL comes from settings."""
from __future__ import annotations

import re

import click
import requests
from flask import current_app
from flask.cli import AppGroup

sandbox_cli = AppGroup("sandbox", help="Drive the built-in provider sandbox of a running hub.")


def _root(provider: str) -> str:
    services = current_app.extensions["hub"]
    if not services.settings["hub.sandbox"]:
        raise click.ClickException("the sandbox is off (HUB_SANDBOX=false)")
    return f"{services.base_url}/sandbox/{provider}"


def _call(method: str, url: str, **kwargs) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=15, allow_redirects=False,
                                    headers={"Accept": "application/json"}, **kwargs)
    except requests.ConnectionError:
        raise click.ClickException(f"no hub answers at {url.split('/sandbox/')[0]}: start it with `make run`") from None
    if response.status_code >= 400:
        raise click.ClickException(f"{response.status_code}: {error_text(response)}")
    return response


def error_text(response: requests.Response) -> str:
    """One line saying what went wrong: the JSON error's message, or a page's text without its
    head, styles and scripts."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("errors")
        if message:
            return " ".join(str(message).split())[:300]
    text = re.sub(r"(?is)<(head|style|script)\b.*?</\1>", " ", response.text)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:300] or response.reason or "no answer"


@sandbox_cli.command("faults")
@click.argument("provider", type=click.Choice(["pipedrive", "bitrix24", "asana", "google"]))
@click.argument("settings", nargs=-1)
def faults(provider: str, settings: tuple[str, ...]) -> None:
    """Show or set fault knobs, e.g. `faults pipedrive error_rate=0.1 latency_ms=200`."""
    url = f"{_root(provider)}/_sandbox/faults"
    if settings:
        body = {}
        for item in settings:
            key, sep, value = item.partition("=")
            if not sep:
                raise click.ClickException(f"{item}: expected name=value")
            body[key] = value
        current = _call("POST", url, json=body).json()
    else:
        current = _call("GET", url).json()
    for key, value in sorted(current.items()):
        click.echo(f"{key:<24} {value}")


@sandbox_cli.command("expire-tokens")
@click.argument("provider", type=click.Choice(["pipedrive", "bitrix24", "asana", "google"]))
def expire_tokens(provider: str) -> None:
    """Expire every access token of the emulator now (refresh tokens stay valid)."""
    click.echo(f"expired {_call('POST', f'{_root(provider)}/_sandbox/tokens/expire').json()['expired']} token(s)")


@sandbox_cli.group("deal")
def deal() -> None:
    """Create and change Pipedrive deals (webhooks fire as in the CRM)."""


@deal.command("create")
@click.argument("title")
@click.option("--stage", "stage_id", type=int, default=None, help="stage id (default: the first stage)")
@click.option("--value", type=float, default=None)
def deal_create(title: str, stage_id: int | None, value: float | None) -> None:
    form = {"title": title, "stage_id": stage_id or "", "value": "" if value is None else value}
    location = _call("POST", f"{_root('pipedrive')}/_sandbox/ui/deals", data=form).headers.get("Location", "")
    match = re.search(r"/deals/(\d+)", location)
    click.echo(f"deal {match.group(1) if match else '?'} created")


@deal.command("won")
@click.argument("deal_id", type=int)
def deal_won(deal_id: int) -> None:
    _call("POST", f"{_root('pipedrive')}/_sandbox/ui/deals/{deal_id}/status", data={"status": "won"})
    click.echo(f"deal {deal_id} marked won")


@deal.command("lost")
@click.argument("deal_id", type=int)
@click.option("--reason", default="")
def deal_lost(deal_id: int, reason: str) -> None:
    _call("POST", f"{_root('pipedrive')}/_sandbox/ui/deals/{deal_id}/status", data={"status": "lost", "lost_reason": reason})
    click.echo(f"deal {deal_id} marked lost")


@deal.command("move")
@click.argument("deal_id", type=int)
@click.argument("stage_id", type=int)
def deal_move(deal_id: int, stage_id: int) -> None:
    _call("POST", f"{_root('pipedrive')}/_sandbox/ui/deals/{deal_id}/stage", data={"stage_id": stage_id})
    click.echo(f"deal {deal_id} moved to stage {stage_id}")
