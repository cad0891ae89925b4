"""One process of the refresh race test: N API calls through one shared connection (run with -m)."""
from __future__ import annotations

import json
import sys

from hub import create_app
from hub.connectors.pipedrive.client import PipedriveClient
from hub.oauth.tokens import ConnectionTokens


def main() -> None:
    connection_id, calls, api_domain = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    app = create_app()
    services = app.extensions["hub"]
    client = PipedriveClient(api_domain, ConnectionTokens(services, connection_id), rate_limit=None)
    ok, errors = 0, []
    for _ in range(calls):
        try:
            client.me()
            ok += 1
        except Exception as exc:  # reported to the test, which fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"ok": ok, "errors": errors[:5], "error_count": len(errors)}))
    services.db.dispose()


if __name__ == "__main__":
    main()
