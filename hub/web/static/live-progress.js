/* A sync's progress without reloading the page: polls the sync's JSON API (data-api on #run) and
   redraws #run-progress as sync/_progress.html does, with the same words (data-words). Every 2 s
   while a run waits or goes on, every 15 s otherwise (a run may start on a schedule or a CRM change);
   nothing while the tab is hidden. When a run ends the page offers a reload for its conflicts and
   log, rather than reloading itself (that would lose edits in the settings form below). */
(function () {
  "use strict";
  var box = document.getElementById("run");
  var target = document.getElementById("run-progress");
  if (!box || !target || !window.fetch) { return; }
  var words = JSON.parse(box.getAttribute("data-words") || "{}");
  var phases = words.phases || {}, triggers = words.triggers || {};
  var status = box.getAttribute("data-status");            // idle | waiting | running | ...
  var shown = {id: box.getAttribute("data-run"), status: box.getAttribute("data-run-status")};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function draw(run) {
    var parts = [];
    if (!run) {
      parts.push(el("p", {"class": "muted"}, ["Never ran."]));
    } else {
      var line = ["Run " + run.id + " (" + (triggers[run.trigger] || run.trigger) + "): ", el("b", {}, [run.status])];
      if (run.message) { line.push(" · " + run.message); }
      parts.push(el("p", {}, line));
      var steps = run.progress || {};
      var order = (words.order || []).filter(function (k) { return k in steps; });
      order = order.concat(Object.keys(steps).filter(function (k) { return order.indexOf(k) < 0; }));
      order.forEach(function (phase) {
        var p = steps[phase];
        parts.push(el("div", {"class": "phase small"}, [
          el("span", {"class": "phase-name"}, [phases[phase] || phase.replace(/_/g, " ")]), " ",
          el("progress", {max: String(p.total || p.done || 1), value: String(p.done)}), " ",
          el("span", {"class": "phase-count"}, [p.done + (p.total ? "/" + p.total : "")])]));
      });
    }
    target.replaceChildren.apply(target, parts);
  }

  function update(sync) {
    var run = sync.last_run;
    var statusEl = document.getElementById("status");
    if (statusEl) { statusEl.textContent = sync.status; }
    if (run && (String(run.id) !== shown.id || run.status !== shown.status || run.status === "running")) {
      var isNew = String(run.id) !== shown.id;
      draw(run);
      if (isNew) {
        var waiting = document.getElementById("run-waiting");
        if (waiting) { waiting.hidden = true; }
      }
      if (run.status !== "running" && (isNew || shown.status === "running")) {
        document.getElementById("run-finished").hidden = false;
      }
      shown = {id: String(run.id), status: run.status};
      status = sync.status;
    } else if (status !== "waiting") {
      status = sync.status;                  // still waiting: the old run is shown until a new one starts
    }
    box.setAttribute("data-status", status);
  }

  function poll() {
    if (document.hidden) { return schedule(); }
    fetch(box.getAttribute("data-api"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (sync) { if (sync) { update(sync); } })
      .catch(function () { /* the next poll tries again */ })
      .then(schedule);
  }

  function schedule() {
    window.setTimeout(poll, status === "running" || status === "waiting" ? 2000 : 15000);
  }

  schedule();
}());
