/* OneCloud Analytics beacon: readable source. The served file is collector/static/script.js,
 * built from this one with `make beacon` (terser); both are committed so tests need no npm.
 *
 * <script defer data-domain="www.onecloud.example" src="https://collector.example/js/script.js"></script>
 * data-api="URL"   endpoint (default: the script's own origin + /api/event)
 * data-hash        hash-based routing: the route lives in location.hash
 * data-allow-local also report pages on localhost / 127.x / [::1] / file:
 * data-outbound    report clicks on links to other hosts as "Outbound Link: Click"
 * data-downloads   report clicks on links to files as "File Download"
 *
 * Privacy: no cookie, no identifier, nothing stored except the visitor's own opt-out flag
 * (localStorage "onecloud_ignore" = "true"), set by the opt-out page or by visiting any page
 * of the site with "#onecloud-opt-out" (and removed with "#onecloud-opt-in"). With the flag,
 * with Global Privacy Control on, or when storage is blocked, nothing is sent.
 */
(function (w, d) {
  // The host page must never see an error from us: every entry point is wrapped.
  function safe(f) {
    return function (x) {
      try {
        f(x);
      } catch (e) {}
    };
  }
  safe(function () {
    var loc = w.location,
      nav = w.navigator,
      hist = w.history,
      // Reading localStorage throws when storage is blocked: the beacon then stays silent.
      store = w.localStorage,
      KEY = "onecloud_ignore",
      el = d.currentScript,
      data = el.dataset, // the script tag's data-* attributes; a present flag is on
      domain = data.domain || loc.hostname,
      api = data.api || new URL("/api/event", el.src).href,
      hashMode = "hash" in data,
      cur, // the URL of the page view being measured
      route, // its path (plus fragment in hash mode): a change is a new page view
      engaged, // engaged milliseconds not yet reported
      since, // when the current engaged stretch began, 0 while not engaged
      depth,
      sentDepth,
      choice = loc.hash.split(KEY + "=")[1];

    // The opt-out handshake: the collector's /opt-out page links to the site with
    // "#onecloud_ignore=true" (or "=false"), so the flag lands in this site's own storage
    // (storage is per origin: what the collector's page stores is not visible here).
    if (choice) choice == "true" ? store.setItem(KEY, choice) : store.removeItem(KEY);

    // "" is the host of file: URLs; "[" starts an IPv6 literal such as [::1].
    if (!("allowLocal" in data) && /^(localhost|127\.|\[|$)/.test(loc.hostname)) return;

    function send(name, extra) {
      // Read at every send, so opting out in another tab takes effect at once.
      if (nav.globalPrivacyControl || store.getItem(KEY) == "true") return;
      var body = Object.assign({ n: name, u: cur, d: domain, r: d.referrer || null }, extra);
      if (hashMode) body.h = 1;
      body = JSON.stringify(body);
      // text/plain keeps this a "simple" request: no CORS preflight.
      if (!(nav.sendBeacon && nav.sendBeacon(api, body)))
        fetch(api, { method: "POST", body: body, keepalive: true })["catch"](function () {});
    }

    function now() {
      return performance.now();
    }

    // Engaged time runs only while the page is visible and the window has focus.
    function tick() {
      var t = now();
      if (since) engaged += t - since;
      since = !d.hidden && d.hasFocus() ? t : 0;
    }

    function scroll() {
      var pct = Math.min(100, ((w.scrollY + w.innerHeight) * 100) / d.documentElement.scrollHeight) | 0;
      if (pct > depth) depth = pct;
    }

    // Report only something new: the first report always (sentDepth starts below any depth),
    // then 3 s more or a deeper scroll.
    function engagement() {
      tick();
      scroll();
      if (engaged >= 3e3 || depth > sentDepth) {
        send("engagement", { e: engaged | 0, sd: depth });
        engaged = 0;
        sentDepth = depth;
      }
    }

    function key() {
      return loc.pathname + (hashMode ? loc.hash : "");
    }

    function pageview() {
      cur = loc.href;
      route = key();
      engaged = depth = since = 0;
      sentDepth = -1;
      tick();
      send("pageview");
    }

    var navigate = safe(function () {
      if (key() != route) {
        engagement();
        pageview();
      }
    });

    function on(target, type, f) {
      target.addEventListener(type, safe(f));
    }

    ["pushState", "replaceState"].forEach(function (name) {
      var orig = hist[name];
      hist[name] = function () {
        // The page's own call and its result (or its exception) stay untouched.
        var result = orig.apply(this, arguments);
        navigate();
        return result;
      };
    });
    on(w, "popstate", navigate);
    if (hashMode) on(w, "hashchange", navigate);
    on(d, "visibilitychange", function () {
      return d.hidden ? engagement() : tick();
    });
    on(w, "pagehide", engagement);
    // During "blur" the document already reports no focus, so tick() stops the clock.
    on(w, "focus", tick);
    on(w, "blur", tick);
    on(w, "scroll", scroll);

    var outbound = "outbound" in data,
      downloads = "downloads" in data;
    on(d, "click", function (e) {
        var a = e.target.closest("a");
        // Only the event name and the page it happened on: never the link's URL.
        // (mailto:, tel: and javascript: links have no host.)
        if (a && a.host)
          downloads && /\.(pdf|xlsx?|docx?|pptx?|csv|zip|gz|exe|dmg|mp[34])$/i.test(a.pathname)
            ? send("File Download")
            : outbound && a.host != loc.host && send("Outbound Link: Click");
      });

    pageview();
  })();
})(window, document);
