/* Touchstream console: the few behaviours htmx attributes do not cover.
   Hand-written, no build step; runs under the console's CSP (no inline script, no eval). */
(function () {
  "use strict";

  function newToken() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // After a successful action: clear the form and give it a fresh idempotency token
  // (a resend of the same form before that is recorded once).
  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt;
    if (!evt.detail.successful || !form || !form.matches || !form.matches("form[data-reset]")) return;
    form.reset();
    var idem = form.querySelector("input[name=idem]");
    if (idem) idem.value = newToken();
  });

  // Search: Down from the box goes to the first result; Up/Down move between results.
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "ArrowDown" && evt.key !== "ArrowUp") return;
    var box = document.getElementById("q");
    var links = Array.prototype.slice.call(document.querySelectorAll("#results a.result"));
    if (!box || links.length === 0) return;
    var at = links.indexOf(document.activeElement);
    if (document.activeElement === box && evt.key === "ArrowDown") { links[0].focus(); evt.preventDefault(); return; }
    if (at < 0) return;
    evt.preventDefault();
    if (evt.key === "ArrowDown" && at < links.length - 1) links[at + 1].focus();
    else if (evt.key === "ArrowUp") (at === 0 ? box : links[at - 1]).focus();
  });

  // Screen-pop: one EventSource; each "call" event is an HTML card (escaped by the
  // server) that replaces the card of the same call or goes on top.
  function startScreenPop() {
    var state = document.getElementById("pop-state");
    var list = document.getElementById("calls");
    if (!state || !list) return;
    var source = new EventSource(state.getAttribute("data-stream"));
    source.onopen = function () { state.textContent = "Listening for calls."; };
    source.onerror = function () { state.textContent = "Connection lost; reconnecting…"; };
    source.addEventListener("signed-out", function () {
      source.close();
      window.location.assign(document.querySelector("a.brand").getAttribute("href") + "/sign-in");
    });
    source.addEventListener("call", function (evt) {
      var holder = document.createElement("template");
      holder.innerHTML = evt.data;
      var card = holder.content.firstElementChild;
      if (!card) return;
      var old = card.id ? document.getElementById(card.id) : null;
      if (old) old.replaceWith(card); else list.prepend(card);
      if (window.htmx) window.htmx.process(card);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startScreenPop);
  else startScreenPop();
})();
