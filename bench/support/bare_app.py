"""The baseline for bench/ingest.py: a bare Flask handler that parses the JSON and answers."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/hooks/<provider>/<token>")
def receive(provider: str, token: str):
    request.get_json(force=True)
    return jsonify({"ok": True})
