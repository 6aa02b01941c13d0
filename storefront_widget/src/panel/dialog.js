/*
 * Panel part: the dialog. Styles into the shadow root, the dialog and its backdrop, the
 * focus trap (Tab cycles, Esc closes), open and close (focus back to where it was) and
 * loading what the views draw.
 */

if (ctx.root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
  var sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  ctx.root.adoptedStyleSheets = ctx.root.adoptedStyleSheets.concat(sheet);
} else {
  // Browsers before constructable stylesheets (Safari < 16.4); blocked by a strict CSP.
  ctx.root.appendChild(el("style", {text: CSS}));
}

// dir=auto on merchant texts: an English reward name reads left to right in Arabic.
var title = el("h2", {id: "lw-title", class: "title", dir: "auto"});
var closeButton = el("button", {type: "button", class: "close", onclick: close},
  [el("span", {"aria-hidden": "true", text: "×"})]);
var body = el("div", {class: "body"});
var live = el("div", {class: "sr", "aria-live": "polite", role: "status"});
var dialog = el("div", {
  class: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "lw-title",
  dir: lang === "ar" ? "rtl" : "ltr", lang: lang, tabindex: "-1", hidden: true,
  onkeydown: onKey
}, [el("div", {class: "head"}, [title, closeButton]), body, live]);
var backdrop = el("div", {class: "backdrop", hidden: true, onclick: close});
ctx.root.appendChild(backdrop);
ctx.root.appendChild(dialog);

function focusables() {
  return Array.prototype.filter.call(
    dialog.querySelectorAll("button, a[href], [tabindex='0']"),
    function (node) { return !node.disabled && node.offsetParent !== null; });
}

function onKey(event) {
  if (event.key === "Escape") {
    event.preventDefault();
    close();
  } else if (event.key === "Tab") {
    var items = focusables();
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    var active = ctx.root.activeElement;
    if (event.shiftKey && (active === first || active === dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  }
}

function open() {
  if (!dialog.hidden) return;
  var active = document.activeElement;
  opener = active === ctx.host ? ctx.launcher : active;
  dialog.hidden = false;
  backdrop.hidden = false;
  ctx.launcher.setAttribute("aria-expanded", "true");
  render();
  dialog.focus();
  refresh();
}

function close() {
  if (dialog.hidden) return;
  dialog.hidden = true;
  backdrop.hidden = true;
  fresh = null;
  notice = "";
  // A key kept for a retry belongs to this visit: reopening is a new intent.
  keys = {};
  ctx.launcher.setAttribute("aria-expanded", "false");
  var target = opener && opener.isConnected ? opener : ctx.launcher;
  if (target && target.focus) target.focus();
}

var loadError = null;

function refresh(force) {
  loadError = null;
  return Promise.all([
    ctx.catalog.then(function (loaded) { catalog = loaded || {}; }),
    // Reuse what the loader already fetched; ask again only for what is missing.
    ctx.loadProgram(!ctx.state.program),
    ctx.loadMe(force || !ctx.state.me)
  ]).then(function () { /* render below */ }, function (error) {
    loadError = error;
  }).then(render);
}

window.addEventListener("online", function () { if (!dialog.hidden && loadError) refresh(); });
