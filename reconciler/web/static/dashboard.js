// The dashboard's few behaviours: confirm before an action, the live timeline (SSE from
// /api/v1/events, with the session cookie), tiles reloaded by htmx when a run ends, the
// log detail panel and the proposals list. Everything is served by the reconciler itself.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function timeline() {
    var list = document.getElementById("timeline");
    var live = document.getElementById("live");
    if (!list || !window.EventSource) return;
    var source = new EventSource("/api/v1/events");
    source.onopen = function () { live.textContent = "live"; live.dataset.state = "open"; };
    source.onerror = function () { live.textContent = "reconnecting…"; live.dataset.state = "error"; };
    var types = ["RunStarted", "RunSucceeded", "RunNoop", "RunPlanned", "RunFailed", "RunCancelled",
                 "GuardTripped", "DriftDetected", "SyncDecision", "ProposalDecided"];
    types.forEach(function (type) {
      source.addEventListener(type, function (message) {
        var ev = JSON.parse(message.data);
        var item = document.createElement("li");
        item.className = "ev " + ev.type;
        item.appendChild(text("time", ev.at.replace("T", " ").slice(0, 19) + " UTC "));
        item.appendChild(text("b", ev.type + " "));
        var link = text("a", ev.kind + "/" + ev.name);
        link.href = "/objects/" + encodeURIComponent(ev.kind) + "/" + encodeURIComponent(ev.namespace) + "/" +
          encodeURIComponent(ev.name);
        item.appendChild(link);
        item.appendChild(document.createTextNode(" " + (ev.message || "")));
        var empty = list.querySelector(".empty");
        if (empty) empty.remove();
        list.insertBefore(item, list.firstChild);
        while (list.children.length > 100) list.removeChild(list.lastChild);
        if (type !== "RunStarted") document.body.dispatchEvent(new CustomEvent("runended"));
      });
    });
    window.addEventListener("beforeunload", function () { source.close(); });
  }

  function logDetail() {
    var data = document.getElementById("entries");
    var panel = document.getElementById("detail");
    if (!data || !panel) return;
    var entries = JSON.parse(data.textContent);
    document.querySelectorAll("tr[data-entry]").forEach(function (row) {
      row.addEventListener("click", function () {
        document.querySelectorAll("tr.sel").forEach(function (r) { r.classList.remove("sel"); });
        row.classList.add("sel");
        panel.replaceChildren(text("pre", JSON.stringify(entries[Number(row.dataset.entry)], null, 2)));
      });
    });
  }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  function proposals() {
    var box = document.getElementById("proposals");
    if (!box) return;
    fetch("/api/v1/proposals", { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : [];
    }).then(function (body) {
      var items = Array.isArray(body) ? body : (body.proposals || body.items || []);
      if (!items.length) return;
      box.replaceChildren();
      items.forEach(function (p) {
        var card = document.createElement("div");
        card.className = "proposal";
        card.dataset.testid = "proposal";
        card.appendChild(text("h3", (p.object || p.target || "") + " " + (p.key || p.field || p.id)));
        card.appendChild(text("pre", "file: " + JSON.stringify(p.fileValue !== undefined ? p.fileValue : p.file, null, 2) +
          "\nspec: " + JSON.stringify(p.specValue !== undefined ? p.specValue : p.spec, null, 2)));
        if (box.dataset.admin === "true" && (p.status || "pending") === "pending") {
          ["accept", "reject"].forEach(function (verb) {
            var button = text("button", verb === "accept" ? "Accept" : "Reject");
            button.addEventListener("click", function () {
              if (!window.confirm(button.textContent + " this proposal?")) return;
              fetch("/api/v1/proposals/" + encodeURIComponent(p.id) + "/" + verb, {
                method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }
              }).then(function () { window.location.reload(); });
            });
            card.appendChild(button);
          });
        } else {
          card.appendChild(text("p", p.state || p.status || ""));
        }
        box.appendChild(card);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { timeline(); logDetail(); proposals(); });
})();
