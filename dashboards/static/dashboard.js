// OneCloud Analytics dashboards: the one script (same origin, CSP script-src 'self'). Every page works without it:
// the charts have native tooltips and a data table, realtime has a Refresh link, a new key can be selected by hand.
// Text from the server is only ever set with textContent (never as HTML), except realtime fragments, which are
// our own server-rendered, escaped HTML parsed into inert nodes.
"use strict";
(function () {
  // --- chart tooltips: hover, or focus the chart and move with the arrow keys -------------------------------------
  function setupChart(svg) {
    var box = svg.parentElement;
    var hits = Array.prototype.slice.call(svg.querySelectorAll("rect.hit"));
    if (!hits.length || !box) return;
    var tip = document.createElement("div");
    tip.className = "tip";
    tip.hidden = true;
    tip.setAttribute("role", "status");
    box.appendChild(tip);
    var active = -1;
    svg.setAttribute("tabindex", "0");
    function line(label, value) {
      var p = document.createElement("div");
      var b = document.createElement("b");
      b.textContent = label;
      p.appendChild(b);
      p.appendChild(document.createTextNode(" " + value));
      return p;
    }
    function show(i) {
      if (i < 0 || i >= hits.length) return;
      if (active >= 0) hits[active].classList.remove("active");
      active = i;
      var h = hits[i];
      h.classList.add("active");
      tip.replaceChildren(line(h.dataset.label, h.dataset.value));
      if (h.dataset.prevLabel) tip.appendChild(line(h.dataset.prevLabel, h.dataset.prev));
      if (h.dataset.note) tip.appendChild(line("Note:", h.dataset.note));
      tip.hidden = false;
      var r = h.getBoundingClientRect();
      var b = box.getBoundingClientRect();
      var x = r.left - b.left + r.width / 2;
      var left = Math.max(0, Math.min(x - tip.offsetWidth / 2, b.width - tip.offsetWidth));
      tip.style.left = left + "px";
      tip.style.top = "0px";
    }
    function hide() {
      if (active >= 0) hits[active].classList.remove("active");
      active = -1;
      tip.hidden = true;
    }
    hits.forEach(function (h, i) {
      h.addEventListener("mouseenter", function () { show(i); });
    });
    svg.addEventListener("mouseleave", hide);
    svg.addEventListener("focus", function () { show(active >= 0 ? active : hits.length - 1); });
    svg.addEventListener("blur", hide);
    svg.addEventListener("keydown", function (e) {
      var next = { ArrowLeft: active - 1, ArrowRight: active + 1, Home: 0, End: hits.length - 1 }[e.key];
      if (next === undefined) { if (e.key === "Escape") hide(); return; }
      e.preventDefault();
      show(Math.max(0, Math.min(hits.length - 1, next)));
    });
  }
  // --- realtime: refresh the marked region every 30 s while the page is visible -----------------------------------
  function setupRefresh(region) {
    var url = region.getAttribute("data-refresh");
    var seconds = parseInt(region.getAttribute("data-every") || "30", 10);
    function refresh() {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(region.id);
          if (!fresh) return;
          region.replaceChildren.apply(region, Array.prototype.map.call(fresh.childNodes, function (n) {
            return document.importNode(n, true);
          }));
          region.setAttribute("data-refreshed", String(Date.now()));
        })
        .catch(function () { region.setAttribute("data-refresh-failed", String(Date.now())); });
    }
    window.setInterval(refresh, seconds * 1000);
    var link = document.querySelector("[data-refresh-link]");
    if (link) link.hidden = true;
    var note = document.querySelector("[data-refresh-note]");
    if (note) note.hidden = false;
  }
  // --- copy buttons ----------------------------------------------------------------------------------------------
  function setupCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Copy failed: select the key and copy it"; }
      );
    });
  }
  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("svg.chart"), setupChart);
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), setupRefresh);
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), setupCopy);
    document.documentElement.setAttribute("data-js", "ready");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
