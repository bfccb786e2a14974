// The opt-out page's buttons: set or remove the beacon's opt-out flag on this origin.
// Served as a file (not inline) so the page's Content-Security-Policy can forbid inline script.
(function () {
  var KEY = "onecloud_ignore",
    status = document.getElementById("status");
  function show() {
    var out;
    try {
      out = localStorage.getItem(KEY) == "true";
    } catch (e) {
      status.textContent = "This browser blocks storage for this address, so the setting cannot be kept here.";
      return;
    }
    status.textContent = out
      ? "Opted out: visits from this browser to this address are not counted."
      : "Counted: visits from this browser to this address are counted, without identifying you.";
    document.documentElement.setAttribute("data-opted-out", out ? "true" : "false");
  }
  function set(out) {
    return function () {
      try {
        out ? localStorage.setItem(KEY, "true") : localStorage.removeItem(KEY);
      } catch (e) {}
      show();
    };
  }
  document.getElementById("opt-out").addEventListener("click", set(true));
  document.getElementById("opt-in").addEventListener("click", set(false));
  show();
})();
