// The live alert feed: server-sent events from /api/alerts/stream, newest rows on top.
(function () {
  var table = document.getElementById("alerts");
  var body = table.querySelector("tbody");
  var status = document.getElementById("feed-status");
  var params = new URLSearchParams({ after: table.dataset.last || "0" });
  if (table.dataset.level) params.set("level", table.dataset.level);
  if (table.dataset.agency) params.set("agency", table.dataset.agency);
  var cell = function (text) { var td = document.createElement("td"); td.textContent = text || ""; return td; };
  var source = new EventSource("/api/alerts/stream?" + params.toString());
  source.onopen = function () { status.textContent = "live"; };
  source.onerror = function () { status.textContent = "reconnecting…"; };
  source.addEventListener("alert", function (e) {
    var a = JSON.parse(e.data);
    var tr = document.createElement("tr");
    tr.dataset.seq = a.seq;
    tr.className = "new";
    tr.appendChild(cell(a.fired_at));
    tr.appendChild(cell(a.kind));
    var level = cell(a.level); level.className = "level-" + a.level; tr.appendChild(level);
    var td = document.createElement("td");
    if (a.dossier_id) {
      var link = document.createElement("a");
      link.href = "/dossiers/" + encodeURIComponent(a.dossier_id);
      link.textContent = a.dossier_id;
      td.appendChild(link);
    }
    tr.appendChild(td);
    tr.appendChild(cell(a.official_id));
    tr.appendChild(cell(a.agency));
    tr.appendChild(cell(a.due_at));
    body.insertBefore(tr, body.firstChild);
  });
})();
