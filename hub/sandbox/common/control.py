"""`/_sandbox/...` control routes every emulator mounts: read and set fault knobs, expire tokens.

These are the sandbox's own operator API (used by the sandbox page, the CLI and tests); they are
not part of any provider's API and never validated against a provider spec."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .faults import Faults
from .oauth import TokenAuthority


def control_blueprint(faults: Faults, tokens: TokenAuthority | None = None) -> Blueprint:
    bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

    @bp.get("/faults")
    def get_faults():
        return jsonify(faults.as_dict())

    @bp.route("/faults", methods=["POST", "PATCH"])
    def set_faults():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "body must be a JSON object of fault settings"}), 400
        try:
            return jsonify(faults.update(body))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400

    @bp.post("/tokens/expire")
    def expire_tokens():
        if tokens is None:
            return jsonify({"error": "this emulator has no OAuth server"}), 404
        return jsonify({"expired": tokens.expire_all_now()})

    @bp.get("/oauth/counters")
    def oauth_counters():
        return jsonify(tokens.counters() if tokens else {})

    return bp
