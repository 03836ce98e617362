// godwit's dashboard: the live part of the overview. Served from the binary; nothing else
// is loaded. Running job runs come from /ui/live (server-sent events) and replace the rows
// of the table marked data-live.
"use strict";
(function () {
  var table = document.querySelector("[data-live]");
  if (!table || !window.EventSource) { return; }
  var body = table.querySelector("tbody");
  var source = new EventSource("/ui/live");
  source.addEventListener("runs", function (event) {
    var runs = JSON.parse(event.data);
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (runs.length === 0) {
      var empty = document.createElement("tr");
      var cell = document.createElement("td");
      cell.colSpan = 8; cell.className = "muted"; cell.textContent = "No job run is going on.";
      empty.appendChild(cell); body.appendChild(empty);
      return;
    }
    runs.forEach(function (run) {
      var row = document.createElement("tr");
      row.dataset.run = run.id;
      // The migration, shortened, linked to its page.
      var first = document.createElement("td");
      var link = document.createElement("a");
      link.className = "code";
      link.href = "/migrations/" + encodeURIComponent(run.migration);
      link.title = run.migration;
      link.textContent = run.migration.length > 8 ? run.migration.slice(0, 8) + "\u2026" : run.migration;
      first.appendChild(link);
      row.appendChild(first);
      [run.command, run.status, run.files, run.bytes, run.rate].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      // The bar: bytes done of what the run knows it has to do (a copy: its migration's last
      // scan; else what it has found so far, its walk going on beside its transfers).
      var bar = document.createElement("td");
      if (run.found > 0) {
        var meter = document.createElement("progress");
        meter.max = run.found; meter.value = run.done;
        meter.setAttribute("aria-label", run.percent + " done");
        bar.appendChild(meter);
        bar.appendChild(document.createTextNode(" " + run.percent));
      }
      row.appendChild(bar);
      var left = document.createElement("td");
      left.textContent = run.left;
      row.appendChild(left);
      body.appendChild(row);
    });
  });
})();
