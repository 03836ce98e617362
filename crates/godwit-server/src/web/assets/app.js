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
      [run.migration, run.command, run.status, run.files, run.bytes, run.rate].forEach(function (text) {
        var cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      });
      // The bar: bytes done of what is found so far (the walk goes on beside the copy).
      var bar = document.createElement("td");
      if (run.found > 0) {
        var meter = document.createElement("progress");
        meter.max = run.found; meter.value = run.done;
        meter.setAttribute("aria-label", run.percent + " of what is found so far");
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
