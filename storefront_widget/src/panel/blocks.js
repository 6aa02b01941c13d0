/*
 * Panel part: building blocks. Nodes from tag, properties and children (text only through
 * textContent), the catalog lookups t/tn with English as the per-string fallback, money,
 * dates, the merchant's own texts, and links limited to http(s).
 */

function el(tag, props, children) {
  var node = document.createElement(tag);
  Object.keys(props || {}).forEach(function (name) {
    var value = props[name];
    if (value === null || value === undefined || value === false) return;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  });
  (children || []).forEach(function (child) {
    if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}

function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, function (all, name) {
    return values && values[name] !== undefined ? values[name] : all;
  });
}

function t(key, values) {
  var own = catalog[key];
  return fill(typeof own === "string" ? own : EN[key], values);
}

function tn(key, n, values) {
  var forms = catalog[key] && typeof catalog[key] === "object" ? catalog[key] : EN[key];
  var category = plurals.select(n);
  var form = forms[category] || forms.other ||
    EN[key][new Intl.PluralRules("en").select(n)] || EN[key].other;
  var all = {n: numbers.format(n)};
  Object.keys(values || {}).forEach(function (name) { all[name] = values[name]; });
  return fill(form, all);
}

function currency() {
  return (ctx.state.program && ctx.state.program.program.currency) || ctx.data.currency || "USD";
}

function money(amount) {
  try {
    return new Intl.NumberFormat(lang, {style: "currency", currency: currency()})
      .format(Number(amount));
  } catch (error) {
    return numbers.format(Number(amount)) + " " + currency();
  }
}

function date(iso) { return dates.format(new Date(iso)); }

// Merchant texts in the shopper's language when the merchant wrote them, else as set.
function texts() {
  var widget = (ctx.state.program && ctx.state.program.widget) || {};
  return (widget.texts && widget.texts[lang]) || {};
}

function merchantText(group, id, fallback) {
  var own = texts()[group];
  return (own && own[String(id)]) || fallback;
}

function safeLink(url, fallback) {
  try {
    var parsed = new URL(url || fallback, document.baseURI);
    return /^https?:$/.test(parsed.protocol) ? parsed.href : fallback;
  } catch (error) {
    return fallback;
  }
}
