"""A webhook URL's endpoint token is a credential: no log line shows it, whoever writes the line
(the WSGI server's access log, gunicorn's, the hub's own errors, a provider's answer, JSON context)."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests

from hub.logs import JsonFormatter, configure_logging, log_context
from hub.store import Installation
from tests.web.conftest import install

TOKEN = "Zq3-kV9_pL2mN8xR4tY6wB1c"


@pytest.fixture(autouse=True)
def redacting_logs():
    configure_logging("WARNING")  # what every hub process does at start: installs the redacting records


@pytest.mark.parametrize("logger, message, args", [
    ("werkzeug", '%s - - [%s] "%s" %s %s', ("127.0.0.1", "04/Dec/2026 21:00:00",
                                            f"POST /hooks/pipedrive/{TOKEN} HTTP/1.1", "401", "-")),
    ("hub", "unhandled error on %s %s", ("POST", f"/hooks/pipedrive/{TOKEN}")),
    ("waitress", "Exception while serving %s", (f"/hooks/asana/{TOKEN}?x=1",)),
    ("hub.connectors", "registration refused: %s", (f'{{"subscription_url": "https://hub.example.com/hooks/pipedrive/{TOKEN}"}}',)),
    ("hub.connectors", "POST %s failed", (f"https://api.example.com/v1/webhooks?url=https%3A%2F%2Fhub.example.com%2Fhooks%2Fpipedrive%2F{TOKEN}",)),
])
def test_endpoint_tokens_are_redacted_from_log_lines(caplog, logger, message, args):
    with caplog.at_level(logging.INFO, logger=logger):
        logging.getLogger(logger).warning(message, *args)
    assert TOKEN not in caplog.text
    assert "hooks" in caplog.text and "[REDACTED]" in caplog.text


def test_gunicorn_access_lines_are_redacted(tmp_path):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    access = Logger(cfg)
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": f"/hooks/pipedrive/{TOKEN}", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": f"/hooks/pipedrive/{TOKEN}", "REMOTE_ADDR": "10.0.0.7"}
    access.access(SimpleNamespace(status="200 OK", sent=11, headers=[]), SimpleNamespace(headers=[]), environ,
                  timedelta(milliseconds=3))
    for handler in access.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert "POST /hooks/pipedrive/[REDACTED] HTTP/1.1" in line and TOKEN not in line


def test_json_lines_redact_the_request_path_in_their_context():
    record = logging.getLogger("hub.webhooks").makeRecord("hub.webhooks", logging.INFO, __file__, 1, "refused", (), None)
    with log_context(path=f"/hooks/pipedrive/{TOKEN}", method="POST"):
        line = json.loads(JsonFormatter().format(record))
    assert line["path"] == "/hooks/pipedrive/[REDACTED]" and line["method"] == "POST"


def test_a_live_delivery_leaves_no_token_in_the_log(live_hub, caplog):
    _, iid = install(live_hub)
    with live_hub.services.db.begin() as s:
        token = s.get(Installation, iid).endpoint_token
    with caplog.at_level(logging.INFO):
        refused = requests.post(f"{live_hub.url}/hooks/pipedrive/{token}", json={"meta": {}})
        assert refused.status_code == 401
    assert "POST /hooks/pipedrive/[REDACTED] HTTP/1.1" in caplog.text  # the server's access line is there
    assert token not in caplog.text
