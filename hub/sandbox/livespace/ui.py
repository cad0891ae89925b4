"""The sandbox page where a person plays the Livespace user: win, lose or reopen a deal, move it to
another step of its sales process, add and complete tasks, set up the webhook subscription (as an
administrator does in Account settings -> Webhooks) and send the webhooks waiting in the queue.
Rows have ids `deal-<id>` and `task-<id>` for browser tests."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template_string, request, url_for

from .crm import ApiError, LivespaceCrm

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Livespace (sandbox)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:.8rem 1rem;margin-bottom:1rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;min-width:560px}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef1f4;vertical-align:top}
th{font-weight:600;color:#52606d;font-size:.85rem}
form.inline{display:inline-flex;gap:.3rem;flex-wrap:wrap;align-items:flex-end;margin:0 .2rem .2rem 0}
button{font:inherit;padding:.25rem .6rem;border:1px solid #9aa5b1;border-radius:5px;background:#fff;cursor:pointer}
button.won{border-color:#2f9e44;color:#1b6e2d}button.lost{border-color:#c92a2a;color:#a61e1e}
input,select{font:inherit;padding:.25rem .35rem;border:1px solid #9aa5b1;border-radius:5px;max-width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.5rem;align-items:end}
label{display:flex;flex-direction:column;font-size:.85rem;color:#52606d;gap:.15rem}
.status{font-weight:600}.s-won{color:#1b6e2d}.s-lost{color:#a61e1e}.s-open{color:#1c5fa8}
.note{padding:.5rem .8rem;border-radius:6px;background:#e6f4ea;margin-bottom:.8rem}
.note.error{background:#fde8e8}code{background:#f0f2f5;padding:0 .25rem;overflow-wrap:anywhere}
.muted{color:#7b8794}nav.sandbox-nav{margin:-1rem -1rem 1rem}
@media (max-width:640px){table{min-width:0}thead{display:none}tr{display:block;border-bottom:1px solid #dde3ea;padding:.4rem 0}
td{display:block;border:0;padding:.15rem 0}td[data-label]::before{content:attr(data-label) ": ";color:#7b8794;font-size:.85rem}}
</style></head><body><main>
{% if sandbox_nav is defined %}{{ sandbox_nav() }}{% endif %}
<h1>Livespace <span class="muted">· {{ account.name }} (sandbox)</span></h1>
{% if msg %}<div class="note{% if error %} error{% endif %}" role="status">{{ msg }}</div>{% endif %}
<section><form class="inline" method="post" action="{{ url_for('livespace_ui.actor') }}">
<label>Acting as <select name="user_id">{% for u in users %}<option value="{{ u.id }}"
{% if u.id == actor.id %}selected{% endif %}>{{ u.name }}{% if u.is_admin %} (admin){% endif %}</option>{% endfor %}
</select></label><button>Switch</button></form></section>

<section><h2>API keys</h2><p class="muted">Account settings → API → Users: what an admin pastes into the hub's
Livespace form (with any address, such as <code>https://demo.livespace.io</code>; the sandbox answers for it).
Sandbox keys only.</p><div class="scroll"><table><thead><tr><th>User</th><th>API key</th><th>API secret</th></tr></thead><tbody>
{% for u in users %}<tr><td>{{ u.name }}{% if u.is_admin %} (admin){% endif %}</td><td data-label="Key"><code>{{ keys[u.id][0] }}</code></td>
<td data-label="Secret"><code>{{ keys[u.id][1] }}</code></td></tr>{% endfor %}</tbody></table></div></section>

<section><h2>Deals</h2><div class="scroll"><table><thead><tr><th>Deal</th><th>Sales process · stage</th>
<th>Status</th><th>Value</th><th>Actions</th></tr></thead><tbody>
{% for d in deals %}<tr id="deal-{{ d.id }}"><td><b>{{ d.name }}</b></td><td data-label="Stage">{{ d.process_name }} · {{ d.stage_name }}</td>
<td data-label="Status" class="status s-{{ d.status }}">{{ d.status }}</td><td data-label="Value">{{ d.value }} {{ d.currency }}</td><td>
<form class="inline" method="post" action="{{ url_for('livespace_ui.stage', deal_id=d.id) }}">
<select name="stage_id" aria-label="Stage of {{ d.name }}">{% for s in d.stages_all %}<option value="{{ s.id }}"
{% if s.id == d.stage_id %}selected{% endif %}>{{ s.name }}</option>{% endfor %}</select><button>Move</button></form>
{% for status, label in (("won", "Win"), ("lost", "Lose"), ("open", "Reopen")) if status != d.status %}
<form class="inline" method="post" action="{{ url_for('livespace_ui.status', deal_id=d.id) }}">
<input type="hidden" name="status" value="{{ status }}"><button class="{{ status }}">{{ label }}</button></form>
{% endfor %}</td></tr>{% endfor %}</tbody></table></div></section>

<section><h2>Tasks</h2><div class="scroll"><table><thead><tr><th>Task</th><th>Type</th><th>Date</th>
<th>Responsible</th><th>Linked to</th><th></th></tr></thead><tbody>
{% for t in todos %}<tr id="task-{{ t.id }}"><td>{{ t.title }}{% if t.is_private == "1" %} <span class="muted">(private)</span>{% endif %}</td>
<td data-label="Type">{{ t.type_name or "" }}</td><td data-label="Date">{{ t.date_from }}</td><td data-label="Responsible">{{ names.get(t.owner_id, "") }}</td>
<td data-label="Linked to">{% for o in t.objects %}{{ o.object_type }}: {{ o.object_name }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
<td>{% if t.is_completed == "1" %}<span class="s-won">done</span>{% else %}
<form class="inline" method="post" action="{{ url_for('livespace_ui.complete', todo_id=t.id) }}">
<button>Complete</button></form>{% endif %}</td></tr>
{% else %}<tr><td colspan="6" class="muted">No tasks yet.</td></tr>{% endfor %}</tbody></table></div>
<h2>Add a task</h2><form method="post" action="{{ url_for('livespace_ui.add_todo') }}" class="grid">
<label>Title<input name="title" required maxlength="255"></label>
<label>Type<select name="type_id"><option value="">(none)</option>{% for t in types %}
<option value="{{ t.id }}">{{ t.name }}</option>{% endfor %}</select></label>
<label>Date<input name="date" type="date"></label>
<label>Deal<select name="deal_id"><option value="">(none)</option>{% for d in deals %}
<option value="{{ d.id }}">{{ d.name }}</option>{% endfor %}</select></label>
<button>Add task</button></form></section>

<section><h2>Webhooks</h2>
<p class="muted">As an administrator does in Account settings → Webhooks: the endpoint URL and the secret the
hub shows you; saving sends the handshake (an empty POST).</p>
<div class="scroll"><table><thead><tr><th>Endpoint</th><th>Triggers</th><th>Active</th><th></th></tr></thead><tbody>
{% for s in subscriptions %}<tr><td><code>{{ s.url }}</code></td><td data-label="Triggers">{{ s.triggers|join(", ") }}</td>
<td data-label="Active">{{ "yes" if s.active else "no" }}{% if s.handshake is not none %} <span class="muted">(handshake {{ s.handshake }})</span>{% endif %}</td>
<td><form class="inline" method="post" action="{{ url_for('livespace_ui.activate', sub_id=s.id) }}"><button>Activate</button></form>
<form class="inline" method="post" action="{{ url_for('livespace_ui.unsubscribe', sub_id=s.id) }}"><button>Delete</button></form></td></tr>
{% else %}<tr><td colspan="4" class="muted">No subscription yet.</td></tr>{% endfor %}</tbody></table></div>
<form method="post" action="{{ url_for('livespace_ui.subscribe') }}" class="grid">
<label>Endpoint URL<input name="url" type="url" required></label><label>Secret<input name="secret" required></label>
<button>Save and activate</button></form>
<p>{{ pending }} webhook(s) waiting. <form class="inline" method="post" action="{{ url_for('livespace_ui.deliver') }}">
<button>Send them now</button></form></p></section>
</main></body></html>"""


def ui_blueprint(crm: LivespaceCrm) -> Blueprint:
    bp = Blueprint("livespace_ui", __name__, url_prefix="/_sandbox/ui")

    def actor() -> dict:
        chosen = crm.user(request.cookies.get("livespace_actor", ""))
        return chosen or crm.admin()

    def back(msg: str, error: bool = False):
        return redirect(url_for("livespace_ui.index", msg=msg, error="1" if error else None))

    def field(name: str) -> str:
        return (request.form.get(name) or "").strip()

    @bp.get("/")
    def index():
        users = crm.users()
        return render_template_string(
            PAGE, account=crm.data.get("account", {}), users=users, actor=actor(), deals=crm.deals(),
            todos=crm.todos()[::-1], types=crm.todo_types(), subscriptions=crm.subscriptions(),
            pending=len(crm.deliveries("pending")), names={u["id"]: u["name"] for u in users},
            keys={u["id"]: crm.key_of(u["id"]) for u in users},
            msg=request.args.get("msg", "")[:300], error=bool(request.args.get("error")))

    def actor_set():
        user = crm.user(field("user_id"))
        response = back(f"Acting as {user['name']}" if user else "No such user", user is None)
        if user:
            response.set_cookie("livespace_actor", user["id"], httponly=True, samesite="Lax")
        return response

    bp.add_url_rule("/actor", "actor", actor_set, methods=["POST"])

    def attempt(action, done: str):
        try:
            action()
        except ApiError as exc:
            return back(f"Refused: {exc.error}", True)
        return back(done)

    @bp.post("/deals/<deal_id>/status")
    def status(deal_id):
        wanted = field("status")
        if wanted not in ("open", "won", "lost"):
            return back("status: open, won or lost", True)
        return attempt(lambda: crm.set_status(deal_id, wanted), f"Deal marked {wanted}")

    @bp.post("/deals/<deal_id>/stage")
    def stage(deal_id):
        return attempt(lambda: crm.move_stage(deal_id, field("stage_id")), "Deal moved")

    @bp.post("/todos")
    def add_todo():
        values = {"title": field("title"), "type_id": field("type_id") or None, "date": field("date") or None,
                  "owner_id": actor()["id"]}
        if field("deal_id"):
            values["objects"] = [{"object_type": "deal", "object_id": field("deal_id")}]
        return attempt(lambda: crm.add_todo(values, actor()), "Task added")

    @bp.post("/todos/<todo_id>/complete")
    def complete(todo_id):
        return attempt(lambda: crm.complete_todo(todo_id, actor()["id"]), "Task completed")

    @bp.post("/subscriptions")
    def subscribe():
        def make():
            sub = crm.subscribe(field("url"), field("secret"))
            if not sub["active"]:
                raise ApiError(400, f"saved, but the handshake was answered {sub['handshake'] or 'with nothing'}: "
                                    "not active")
        return attempt(make, "Subscription saved and active")

    @bp.post("/subscriptions/<sub_id>/activate")
    def activate(sub_id):
        return back("Active" if crm.activate(sub_id) else "The handshake failed: not active",
                    not crm.subscription(sub_id) or not crm.subscription(sub_id)["active"])

    @bp.post("/subscriptions/<sub_id>/delete")
    def unsubscribe(sub_id):
        crm.delete_subscription(sub_id)
        return back("Subscription deleted")

    @bp.post("/deliver")
    def deliver():
        statuses = crm.deliver_pending()
        return back(f"Sent {len(statuses)} webhook(s): " + (", ".join(map(str, statuses)) or "none waiting"))
    return bp
