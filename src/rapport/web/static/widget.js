/* Rapport website chat widget. One tag embeds it:
 *   <script src="https://HOST/widget.js" data-inbox="PUBLIC_TOKEN" async></script>
 * Dependency-free, no build step; styles live in a Shadow DOM so the page and the widget never
 * restyle each other. API: Rapport.identify({...}), open(), close(), on(event, fn), reset().
 * Calls made before this file loads can be queued: (window.Rapport = window.Rapport || {q: []})
 *   .q.push(["identify", {user_id: "42", user_hash: "..."}]).
 */
(function () {
  "use strict";
  if (window.Rapport && window.Rapport.version) return;
  var script = document.currentScript || document.querySelector("script[data-inbox][src*='widget.js']");
  if (!script || !script.dataset.inbox) return;
  var INBOX = script.dataset.inbox;
  var ORIGIN = new URL(script.src, location.href).origin;
  var API = ORIGIN + "/widget/api/" + encodeURIComponent(INBOX);
  var WS_URL = ORIGIN.replace(/^http/, "ws") + "/widget/ws/" + encodeURIComponent(INBOX);
  var KEY = "rapport:" + INBOX;
  var queued = (window.Rapport && window.Rapport.q) || [];

  var TEXT = {
    en: {
      open: "Open chat", close: "Close chat", title: "Chat with us", send: "Send",
      placeholder: "Write a message…", attach: "Attach a file (image or PDF)",
      greeting: "Hi! How can we help you today?", online: "We usually reply in a few minutes",
      away: "Nobody is online right now", closed: "We're closed right now",
      backAt: "We're back {when}.",
      offline: "Leave your email and we'll answer there. Your conversation stays right here too.",
      email: "Your email", save: "Save", thanks: "Thanks! We'll reply to {email}.",
      typing: "{name} is typing…", someone: "Someone", sending: "Sending…", sent: "Sent",
      seen: "Seen", failed: "Not sent. Tap to retry.", you: "You", start: "Start the chat",
      name: "Your name", phone: "Your phone", required: "Please fill in this field.",
      offlineNet: "Connection lost. Reconnecting…", tooBig: "That file is too large.",
      badType: "Send an image (PNG, JPEG, GIF, WebP) or a PDF.", unread: "{n} new messages",
      file: "File", newMessage: "New message from {name}"
    },
    es: {
      open: "Abrir el chat", close: "Cerrar el chat", title: "Chatea con nosotros", send: "Enviar",
      placeholder: "Escribe un mensaje…", attach: "Adjuntar un archivo (imagen o PDF)",
      greeting: "¡Hola! ¿En qué podemos ayudarte?", online: "Solemos responder en unos minutos",
      away: "Ahora mismo no hay nadie conectado", closed: "Ahora mismo estamos cerrados",
      backAt: "Volvemos {when}.",
      offline: "Déjanos tu email y te responderemos allí. La conversación también sigue aquí.",
      email: "Tu email", save: "Guardar", thanks: "¡Gracias! Te responderemos a {email}.",
      typing: "{name} está escribiendo…", someone: "Alguien", sending: "Enviando…", sent: "Enviado",
      seen: "Visto", failed: "No enviado. Toca para reintentar.", you: "Tú", start: "Empezar el chat",
      name: "Tu nombre", phone: "Tu teléfono", required: "Rellena este campo, por favor.",
      offlineNet: "Sin conexión. Reconectando…", tooBig: "El archivo es demasiado grande.",
      badType: "Envía una imagen (PNG, JPEG, GIF, WebP) o un PDF.", unread: "{n} mensajes nuevos",
      file: "Archivo", newMessage: "Nuevo mensaje de {name}"
    }
  };
  var LANG = (navigator.languages && navigator.languages[0] || navigator.language || "en").slice(0, 2).toLowerCase();
  if (!TEXT[LANG]) LANG = "en";
  function t(key, vars) {
    return TEXT[LANG][key].replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] != null ? vars[k] : ""; });
  }

  /* ---- state kept in the browser: the visitor token, the last event seen, unsent messages ---- */

  function load() { try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; } }
  var saved = load();
  var state = {
    token: saved.token || null, seq: saved.seq || 0, pending: saved.pending || [],
    conversation: null, config: null, details: {}, open: false, unread: 0,
    messages: {}, arrived: {}, socket: null, attempts: 0, lastTyping: 0, identified: false
  };
  function persist() {
    try {
      localStorage.setItem(KEY, JSON.stringify({ token: state.token, seq: state.seq, pending: state.pending }));
    } catch (e) { /* private mode: the chat still works for this page */ }
  }

  var listeners = {};
  function emit(name, detail) {
    (listeners[name] || []).forEach(function (fn) { try { fn(detail); } catch (e) { console.error(e); } });
  }

  /* ---- HTTP ---------------------------------------------------------------------------------- */

  function request(method, path, body, isForm) {
    var headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body && !isForm) headers["Content-Type"] = "application/json";
    return fetch(API + path, {
      method: method, headers: headers, mode: "cors", credentials: "omit",
      body: body ? (isForm ? body : JSON.stringify(body)) : undefined
    }).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!r.ok) { var err = new Error((data && data.detail) || r.statusText); err.status = r.status; throw err; }
        return data;
      });
    });
  }

  /* ---- the DOM, inside a shadow root ----------------------------------------------------------- */

  var host = document.createElement("div");
  host.setAttribute("data-rapport-widget", "");
  var root = host.attachShadow({ mode: "open" });
  var CSS = [
    ":host{all:initial;position:relative;z-index:2147483000;--rp:#3559e0;--rp-on:#fff;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1d2433}",
    "*{box-sizing:border-box}",
    ".launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:60px;height:60px;border-radius:50%;border:0;background:var(--rp);color:var(--rp-on);cursor:pointer;box-shadow:0 8px 24px rgba(16,24,40,.25);display:grid;place-items:center;transition:transform .15s}",
    ".launcher:hover{transform:scale(1.05)}.launcher svg{width:28px;height:28px;fill:currentColor}",
    ".left .launcher{right:auto;left:20px}.left .panel{right:auto;left:20px}",
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#d92d20;color:#fff;font-size:12px;font-weight:700;line-height:20px}",
    ".panel{position:fixed;bottom:92px;right:20px;z-index:2147483000;width:380px;height:min(620px,calc(100vh - 112px));background:#fff;border-radius:16px;box-shadow:0 20px 50px rgba(16,24,40,.28);display:flex;flex-direction:column;overflow:hidden}",
    ".panel[hidden],[hidden]{display:none!important}",
    "header{background:var(--rp);color:var(--rp-on);padding:16px 16px 14px;display:flex;gap:12px;align-items:center}",
    ".avatar{width:40px;height:40px;border-radius:50%;background:rgba(255,255,255,.25);display:grid;place-items:center;font-weight:700;flex:none;object-fit:cover;overflow:hidden}",
    "header h2{margin:0;font-size:16px;font-weight:650}header p{margin:2px 0 0;font-size:13px;opacity:.9;display:flex;align-items:center;gap:6px}",
    ".dot{width:8px;height:8px;border-radius:50%;background:#fbbf24;display:inline-block}.dot.online{background:#4ade80}",
    ".x{margin-left:auto;background:none;border:0;color:inherit;width:36px;height:36px;border-radius:8px;cursor:pointer;font-size:22px;line-height:1}",
    ".x:hover{background:rgba(255,255,255,.15)}",
    "button:focus-visible,a:focus-visible,textarea:focus-visible,input:focus-visible{outline:2px solid #1d4ed8;outline-offset:2px}",
    ".banner{background:#fffaeb;border-bottom:1px solid #fde68a;padding:10px 14px;font-size:13.5px;color:#7a2e0e}",
    ".banner p{margin:0 0 8px}.row{display:flex;gap:6px}",
    "input,textarea{font:inherit;color:#1d2433;border:1px solid #d0d5dd;border-radius:10px;padding:8px 10px;background:#fff;width:100%}",
    ".btn{border:0;border-radius:10px;padding:8px 14px;background:var(--rp);color:var(--rp-on);font:inherit;font-weight:600;cursor:pointer;white-space:nowrap}",
    ".btn:disabled{opacity:.5;cursor:default}",
    "ol{list-style:none;margin:0;padding:16px 14px;overflow-y:auto;flex:1;display:flex;flex-direction:column;gap:4px;background:#f8f9fb}",
    "li{display:flex;gap:8px;align-items:flex-end;max-width:85%}li.mine{align-self:flex-end;flex-direction:row-reverse}",
    "li .avatar{width:28px;height:28px;font-size:12px;background:#e0e7ff;color:#3730a3}li .spacer{width:28px;flex:none}",
    ".bubble{padding:9px 12px;border-radius:16px;background:#fff;border:1px solid #e4e7ec;overflow-wrap:anywhere;white-space:pre-wrap}",
    "li.mine .bubble{background:var(--rp);color:var(--rp-on);border-color:transparent;border-bottom-right-radius:4px}",
    "li.theirs .bubble{border-bottom-left-radius:4px}",
    ".who{font-size:12px;color:#667085;margin:8px 0 2px 36px}",
    ".meta{font-size:11.5px;color:#667085;margin-top:2px;text-align:right}li.theirs .meta{text-align:left}",
    "li>div{display:flex;flex-direction:column;min-width:0}",
    ".bubble a{color:inherit;text-decoration:underline}.bubble img{display:block;max-width:220px;max-height:200px;border-radius:10px;margin-top:4px}",
    ".bubble.media{padding:3px;background:transparent!important;border-color:#e4e7ec!important}.media img{margin:0}",
    ".failed .bubble{background:#fef3f2;color:#912018;border:1px solid #fda29b;cursor:pointer}",
    ".greet{align-self:flex-start;max-width:85%}",
    ".typing{padding:0 16px 6px;font-size:12.5px;color:#667085;min-height:20px;background:#f8f9fb}",
    "form.compose{display:flex;gap:6px;align-items:flex-end;padding:10px;border-top:1px solid #e4e7ec}",
    "form.compose textarea{resize:none;max-height:120px;min-height:42px}",
    ".icon{background:none;border:0;width:40px;height:42px;border-radius:10px;cursor:pointer;color:#475467;flex:none}",
    ".icon:hover{background:#f2f4f7}.icon svg{width:22px;height:22px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ".prechat{padding:16px;display:grid;gap:10px;border-top:1px solid #e4e7ec}.prechat label{display:grid;gap:4px;font-size:13px;font-weight:600}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    ".net{background:#f2f4f7;color:#475467;font-size:12.5px;text-align:center;padding:4px}",
    ".foot{font-size:11px;color:#98a2b3;text-align:center;padding:0 0 6px}",
    "@media (max-width:480px){.panel{inset:0;width:auto;height:auto;bottom:0;right:0;left:0;top:0;border-radius:0}.open .launcher{display:none}}",
    "@media (prefers-reduced-motion:reduce){.launcher{transition:none}}"
  ].join("");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (attrs[k] == null) return;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function svg(path) {
    var wrap = el("span", { "aria-hidden": "true" });
    wrap.innerHTML = '<svg viewBox="0 0 24 24">' + path + "</svg>"; // constant markup, no data
    return wrap.firstChild;
  }

  var ui = {};
  function build() {
    var frame = el("div", { class: "frame" });
    ui.frame = frame;
    ui.badge = el("span", { class: "badge", hidden: "" });
    ui.launcher = el("button", { class: "launcher", type: "button", "aria-label": t("open"), "aria-expanded": "false", onclick: toggle },
      [svg('<path d="M4 5h16v11H8l-4 4z"/>'), ui.badge]);
    ui.avatar = el("span", { class: "avatar", "aria-hidden": "true", text: "" });
    ui.title = el("h2", { id: "rp-title", text: t("title") });
    ui.dot = el("span", { class: "dot", "aria-hidden": "true" });
    ui.availability = el("span", { text: "" });
    ui.close = el("button", { class: "x", type: "button", "aria-label": t("close"), onclick: close, text: "×" });
    ui.banner = el("div", { class: "banner", hidden: "" });
    ui.net = el("div", { class: "net", role: "status", hidden: "", text: t("offlineNet") });
    ui.log = el("ol", { role: "log", "aria-live": "polite", "aria-labelledby": "rp-title" });
    ui.typing = el("div", { class: "typing", "aria-live": "polite" });
    ui.text = el("textarea", { id: "rp-text", rows: "1", placeholder: t("placeholder"), "aria-label": t("placeholder") });
    ui.file = el("input", { type: "file", class: "sr", tabindex: "-1", "aria-hidden": "true", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf" });
    ui.attach = el("button", { class: "icon", type: "button", "aria-label": t("attach"), title: t("attach"), onclick: function () { ui.file.click(); } },
      [svg('<path d="M21 11l-8.5 8.5a5 5 0 01-7-7L14 4a3.5 3.5 0 015 5l-8.5 8.5a2 2 0 01-3-3L15 7"/>')]);
    ui.send = el("button", { class: "btn", type: "submit", text: t("send") });
    ui.compose = el("form", { class: "compose", onsubmit: onSubmit }, [ui.attach, ui.file, ui.text, ui.send]);
    ui.prechat = el("form", { class: "prechat", hidden: "", onsubmit: onPrechat, novalidate: "" });
    ui.alert = el("div", { class: "sr", role: "alert" });
    ui.panel = el("section", { class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "rp-title", hidden: "" }, [
      el("header", {}, [ui.avatar, el("div", {}, [ui.title, el("p", {}, [ui.dot, ui.availability])]), ui.close]),
      ui.net, ui.banner, ui.log, ui.typing, ui.prechat, ui.compose, ui.alert
    ]);
    frame.appendChild(ui.panel);
    frame.appendChild(ui.launcher);
    // A constructed stylesheet is not an inline style: sites whose Content-Security-Policy
    // forbids inline styles still show the widget styled. Old browsers get a <style>.
    if ("adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", { text: CSS }));
    }
    root.appendChild(frame);
    ui.text.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); onSubmit(e); }
    });
    ui.text.addEventListener("input", function () { grow(); typingPing(ui.text.value.trim() !== ""); });
    ui.text.addEventListener("blur", function () { typingPing(false); });
    ui.file.addEventListener("change", function () { if (ui.file.files[0]) sendFile(ui.file.files[0]); ui.file.value = ""; });
    ui.panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.stopPropagation(); close(); } });
    document.addEventListener("visibilitychange", markRead);
    document.body.appendChild(host);
  }

  function grow() { ui.text.style.height = "auto"; ui.text.style.height = Math.min(120, ui.text.scrollHeight) + "px"; }
  function announce(text) { ui.alert.textContent = ""; setTimeout(function () { ui.alert.textContent = text; }, 30); }

  /* ---- look and availability from the inbox's settings ------------------------------------------ */

  function onColour(hex) {
    var n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    var light = (0.299 * r + 0.587 * g + 0.114 * b) > 160;
    host.style.setProperty("--rp", hex);
    host.style.setProperty("--rp-on", light ? "#1d2433" : "#ffffff");
  }

  function applyConfig(config) {
    state.config = config;
    onColour(config.colour);
    ui.frame.classList.toggle("left", config.position === "left");
    ui.title.textContent = config.name || t("title");
    ui.avatar.textContent = "";
    if (config.avatar_url) ui.avatar.appendChild(el("img", { src: config.avatar_url, alt: "", class: "avatar" }));
    else ui.avatar.textContent = (config.name || "R").trim().charAt(0).toUpperCase();
    renderAvailability();
    renderGreeting();
    renderPrechat();
  }

  function whenText(iso) {
    var d = new Date(iso);
    try {
      return d.toLocaleString(LANG, { weekday: "long", hour: "numeric", minute: "2-digit" });
    } catch (e) { return d.toLocaleString(); }
  }

  function renderAvailability() {
    var a = state.config.availability;
    ui.dot.classList.toggle("online", a.status === "online");
    ui.availability.textContent = t(a.status === "online" ? "online" : a.status);
    ui.banner.textContent = "";
    if (a.status === "online") { ui.banner.hidden = true; return; }
    var lines = [];
    if (a.status === "closed" && a.next_open) lines.push(t("backAt", { when: whenText(a.next_open) }));
    lines.push(state.config.offline_message || t("offline"));
    ui.banner.appendChild(el("p", { text: lines.join(" ") }));
    if (state.details.email) {
      ui.banner.appendChild(el("p", { text: t("thanks", { email: state.details.email }) }));
    } else {
      var input = el("input", { type: "email", required: "", autocomplete: "email", "aria-label": t("email"), placeholder: t("email") });
      ui.banner.appendChild(el("form", { class: "row", onsubmit: function (e) {
        e.preventDefault();
        if (!input.value.trim() || !input.checkValidity()) { input.focus(); return; }
        ready.then(function () { return request("POST", "/details", { email: input.value.trim() }); })
          .then(function (s) { state.details = s.details || {}; renderAvailability(); announce(t("thanks", { email: state.details.email })); });
      } }, [input, el("button", { class: "btn", type: "submit", text: t("save") })]));
    }
    ui.banner.hidden = false;
  }

  function renderGreeting() {
    if (ui.greeting) ui.greeting.remove();
    var text = state.config.greeting || t("greeting");
    ui.greeting = el("li", { class: "theirs greet" }, [el("div", {}, [el("div", { class: "bubble", text: text })])]);
    ui.log.insertBefore(ui.greeting, ui.log.firstChild);
  }

  function missingPrechat() {
    if (state.conversation || !state.config) return [];
    return state.config.pre_chat.filter(function (f) { return !state.details[f.name]; });
  }

  function renderPrechat() {
    var fields = missingPrechat();
    ui.prechat.textContent = "";
    var needsForm = fields.some(function (f) { return f.required; });
    ui.prechat.hidden = !needsForm;
    ui.compose.hidden = needsForm;
    if (!needsForm) return;
    fields.forEach(function (f) {
      var type = f.name === "email" ? "email" : f.name === "phone" ? "tel" : "text";
      ui.prechat.appendChild(el("label", {}, [document.createTextNode(t(f.name) + (f.required ? " *" : "")),
        el("input", { name: f.name, type: type, autocomplete: f.name === "phone" ? "tel" : f.name, required: f.required ? "" : null })]));
    });
    ui.prechat.appendChild(el("button", { class: "btn", type: "submit", text: t("start") }));
  }

  function onPrechat(e) {
    e.preventDefault();
    var body = {}, bad = null;
    Array.prototype.forEach.call(ui.prechat.querySelectorAll("input"), function (input) {
      body[input.name] = input.value.trim();
      if ((input.required && !body[input.name]) || !input.checkValidity()) bad = bad || input;
    });
    if (bad) { announce(t("required")); bad.focus(); return; }
    request("POST", "/details", body).then(function (s) {
      state.details = s.details || {};
      renderPrechat();
      renderAvailability();
      ui.text.focus();
    });
  }

  /* ---- messages --------------------------------------------------------------------------------- */

  var URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;

  function linkify(text) {
    var frag = document.createDocumentFragment(), last = 0, match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text))) {
      frag.appendChild(document.createTextNode(text.slice(last, match.index)));
      var href = match[0].indexOf("www.") === 0 ? "https://" + match[0] : match[0], safe = null;
      try { safe = new URL(href); } catch (e) { safe = null; }
      if (safe && (safe.protocol === "https:" || safe.protocol === "http:")) {
        frag.appendChild(el("a", { href: safe.href, target: "_blank", rel: "noopener noreferrer nofollow", text: match[0] }));
      } else {
        frag.appendChild(document.createTextNode(match[0]));
      }
      last = match.index + match[0].length;
    }
    frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function initials(name) {
    return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map(function (p) { return p[0]; }).join("").toUpperCase();
  }

  function statusText(m) {
    if (m.failed) return t("failed");
    if (m.local) return t("sending");
    return m.status === "read" ? t("seen") : t("sent");
  }

  function bubbleFor(m) {
    var bubble = el("div", { class: "bubble" + (m.content ? "" : " media") });
    if (m.content) bubble.appendChild(linkify(m.content));
    (m.attachments || []).forEach(function (a) {
      if (/^image\//.test(a.content_type)) {
        bubble.appendChild(el("a", { href: a.url, target: "_blank", rel: "noopener noreferrer" }, [el("img", { src: a.url, alt: a.filename, loading: "lazy" })]));
      } else {
        bubble.appendChild(el("a", { href: a.url, target: "_blank", rel: "noopener noreferrer", download: a.filename, text: "📄 " + a.filename }));
      }
    });
    return bubble;
  }

  function render(m) {
    var key = m.id ? "m" + m.id : "c" + m.client_id;
    var existing = ui.log.querySelector('[data-key="' + key + '"]') || (m.client_id && ui.log.querySelector('[data-key="c' + m.client_id + '"]'));
    if (!m.id && !existing && state.arrived[m.client_id]) return; // the stored message came first
    var li = el("li", { class: (m.mine ? "mine" : "theirs") + (m.failed ? " failed" : ""), "data-key": key });
    var who = m.sender ? m.sender.name : "";
    if (!m.mine) {
      li.appendChild(m.sender && m.sender.avatar_url ? el("img", { class: "avatar", src: m.sender.avatar_url, alt: "" }) : el("span", { class: "avatar", "aria-hidden": "true", text: initials(who || (state.config && state.config.name)) }));
    }
    var body = el("div", {}, [bubbleFor(m)]);
    var time = new Date(m.created_at || Date.now()).toLocaleTimeString(LANG, { hour: "numeric", minute: "2-digit" });
    body.appendChild(el("div", { class: "meta", text: m.mine ? time + " · " + statusText(m) : (who ? who + " · " : "") + time }));
    li.appendChild(body);
    if (m.failed) li.addEventListener("click", function () { retry(m.client_id); });
    if (existing) { ui.log.replaceChild(li, existing); return; }
    ui.log.appendChild(li);
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function upsert(m) {
    if (m.client_id) { removePending(m.client_id); state.arrived[m.client_id] = true; }
    var known = state.messages[m.id];
    state.messages[m.id] = m;
    render(m);
    if (!known && !m.mine) {
      emit("message", m);
      if (!state.open || document.hidden) {
        state.unread += 1;
        showUnread();
        if (m.sender) announce(t("newMessage", { name: m.sender.name }));
      }
      ackSoon();
    }
  }

  function showUnread() {
    ui.badge.hidden = state.unread === 0;
    ui.badge.textContent = String(state.unread);
    ui.launcher.setAttribute("aria-label", state.unread ? t("open") + " — " + t("unread", { n: state.unread }) : t("open"));
    emit("unread", state.unread);
  }

  function loadHistory() {
    return request("GET", "/messages").then(function (page) {
      state.conversation = page.conversation_id;
      page.messages.forEach(upsert);
      state.unread = 0;
      showUnread();
      renderPrechat();
      state.pending.forEach(function (p) { render({ client_id: p.client_id, content: p.content, mine: true, local: true }); });
    });
  }

  /* ---- receipts: delivered when shown, read when the visitor sees it -------------------------- */

  var ackTimer = null, acked = { delivered: 0, read: 0 };
  function ackSoon() { clearTimeout(ackTimer); ackTimer = setTimeout(function () { ack("delivered"); markRead(); }, 400); }
  function newestTheirs() {
    var ids = Object.keys(state.messages).map(Number).filter(function (id) { return !state.messages[id].mine; });
    return ids.length ? Math.max.apply(null, ids) : 0;
  }
  function ack(status) {
    var upTo = newestTheirs();
    if (!upTo || upTo <= acked[status]) return;
    acked[status] = upTo;
    request("POST", "/receipts", { status: status, up_to: upTo }).catch(function () { acked[status] = 0; });
  }
  function markRead() {
    if (state.open && !document.hidden) { ack("read"); state.unread = 0; showUnread(); }
  }

  /* ---- sending: the client id makes retries safe; unsent messages survive a reload ------------ */

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function removePending(id) {
    var before = state.pending.length;
    state.pending = state.pending.filter(function (p) { return p.client_id !== id; });
    if (state.pending.length !== before) persist();
  }

  function onSubmit(e) {
    e.preventDefault();
    var text = ui.text.value.trim();
    if (!text) return;
    ui.text.value = "";
    grow();
    typingPing(false);
    var item = { client_id: newId(), content: text };
    state.pending.push(item);
    persist();
    render({ client_id: item.client_id, content: text, mine: true, local: true });
    deliver(item, 0);
  }

  function deliver(item, tries) {
    ready.then(function () { return request("POST", "/messages", item); }).then(function (res) {
      render({ client_id: item.client_id, content: item.content, mine: true, status: "sent" });
      haveConversation(res.conversation_id);
    }).catch(function (err) {
      if (err.status && err.status < 500 && err.status !== 429 && err.status !== 401) {
        render({ client_id: item.client_id, content: item.content, mine: true, failed: true });
        return;
      }
      if (err.status === 401) { state.token = null; ready = session(); }
      setTimeout(function () { deliver(item, tries + 1); }, backoff(tries));
    });
  }

  function retry(clientId) {
    var item = state.pending.filter(function (p) { return p.client_id === clientId; })[0];
    if (item) { render({ client_id: clientId, content: item.content, mine: true, local: true }); deliver(item, 0); }
  }

  function sendFile(file) {
    var limit = state.config ? state.config.max_upload_bytes : 0;
    if (limit && file.size > limit) { announce(t("tooBig")); return; }
    if (state.config && state.config.accepted_types.indexOf(file.type) < 0) { announce(t("badType")); return; }
    var id = newId();
    render({ client_id: id, content: "📎 " + file.name, mine: true, local: true });
    var form = new FormData();
    form.append("client_id", id);
    form.append("file", file, file.name);
    ready.then(function () { return request("POST", "/attachments", form, true); })
      .then(function (res) { haveConversation(res.conversation_id); })
      .catch(function (err) {
        render({ client_id: id, content: "📎 " + file.name, mine: true, failed: true });
        announce(err.status === 413 ? t("tooBig") : err.status === 415 ? t("badType") : t("failed"));
      });
  }

  /* ---- the live connection: resume from the last event seen, back off when the server is away -- */

  function backoff(n) { return Math.min(30000, 500 * Math.pow(2, Math.min(n, 6))) * (0.7 + Math.random() * 0.6); }

  function haveConversation(id) {
    if (!id || id === state.conversation) { if (!state.socket) connect(); return; }
    state.conversation = id;
    renderPrechat();
    connect();
  }

  function connect() {
    if (!state.conversation || !state.token) return;
    if (state.socket) { state.socket.onclose = null; state.socket.close(); }
    var ws = new WebSocket(WS_URL);
    state.socket = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", token: state.token, after: state.seq || null })); };
    ws.onmessage = function (msg) {
      var ev = JSON.parse(msg.data);
      if (ev.kind === "live") {
        var fresh = !state.seq;
        state.attempts = 0;
        ui.net.hidden = true;
        if (ev.seq > state.seq) { state.seq = ev.seq; persist(); }
        // No event seen yet, so nothing to resume from: a reply stored between the first message
        // and this socket came before "live"; the history has it.
        if (fresh) request("GET", "/messages").then(function (page) { page.messages.forEach(upsert); }).catch(function () { /* next reconnect */ });
        state.pending.forEach(function (p) { deliver(p, 0); });
      } else if (ev.kind === "event") {
        if (ev.seq <= state.seq) return;
        state.seq = ev.seq;
        persist();
        onEvent(ev);
      } else if (ev.kind === "typing") {
        showTyping(ev);
      }
    };
    ws.onclose = function (e) {
      state.socket = null;
      if (e.code === 4401 || e.code === 4403) return;
      ui.net.hidden = false;
      state.attempts += 1;
      setTimeout(connect, backoff(state.attempts));
    };
  }

  function onEvent(ev) {
    var id = ev.data.message_id;
    if (ev.type === "message.created" && id) {
      request("GET", "/messages/" + id).then(upsert).catch(function () { /* a note or gone */ });
    } else if (ev.type === "message.status_changed" && state.messages[id]) {
      state.messages[id].status = ev.data.status;
      render(state.messages[id]);
    }
  }

  var typingTimer = null;
  function showTyping(ev) {
    clearTimeout(typingTimer);
    ui.typing.textContent = ev.typing ? t("typing", { name: ev.name || t("someone") }) : "";
    if (ev.typing) typingTimer = setTimeout(function () { ui.typing.textContent = ""; }, (ev.ttl || 6) * 1000);
  }

  function typingPing(on) {
    var ws = state.socket, now = Date.now();
    if (!ws || ws.readyState !== 1) return;
    if (on && now - state.lastTyping < 2500) return;
    if (!on && !state.lastTyping) return;
    state.lastTyping = on ? now : 0;
    ws.send(JSON.stringify({ type: "typing", typing: on }));
  }

  /* ---- start-up, identity and the public API ---------------------------------------------------- */

  function session() {
    return request("POST", "/session", { token: state.token, locale: LANG }).then(function (s) {
      var changed = s.token !== state.token;
      state.token = s.token;
      state.details = s.details || {};
      state.identified = s.identified;
      if (changed) { state.seq = 0; }
      persist();
      return s;
    });
  }

  function refreshConfig() {
    return request("GET", "/config").then(applyConfig).catch(function () { /* keep the last one */ });
  }

  function reloadConversation(s) {
    state.messages = {};
    Array.prototype.slice.call(ui.log.querySelectorAll("li:not(.greet)")).forEach(function (li) { li.remove(); });
    state.conversation = s.conversation_id;
    return loadHistory().then(connect);
  }

  function identify(data) {
    return ready.then(function () { return request("POST", "/identify", data || {}); }).then(function (s) {
      state.identified = true;
      state.details = s.details || state.details;
      emit("identified", { conversation_id: s.conversation_id });
      if (s.conversation_id !== state.conversation) return reloadConversation(s);
    }).catch(function (err) { emit("error", { action: "identify", status: err.status }); throw err; });
  }

  function open() {
    if (state.open) return;
    state.open = true;
    ui.panel.hidden = false;
    ui.frame.classList.add("open");
    ui.launcher.setAttribute("aria-expanded", "true");
    var first = ui.prechat.hidden ? ui.text : ui.prechat.querySelector("input");
    setTimeout(function () { (first || ui.text).focus(); }, 30);
    refreshConfig();
    markRead();
    emit("open");
  }
  function close() {
    if (!state.open) return;
    state.open = false;
    ui.panel.hidden = true;
    ui.frame.classList.remove("open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
    emit("close");
  }
  function toggle() { if (state.open) close(); else open(); }

  function reset() {
    try { localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
    if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
    state.token = null; state.seq = 0; state.pending = []; state.conversation = null;
    ready = session().then(reloadConversation);
    return ready;
  }

  var api = {
    version: 1,
    identify: identify,
    open: open,
    close: close,
    toggle: toggle,
    reset: reset,
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); return api; },
    off: function (name, fn) { listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; }); return api; }
  };
  window.Rapport = api;

  build();
  var ready = session();
  ready.then(function (s) {
    state.conversation = s.conversation_id;
    return Promise.all([refreshConfig(), loadHistory()]);
  }).then(function () {
    connect();
    state.pending.forEach(function (p) { deliver(p, 0); });
    setInterval(function () { if (state.open) refreshConfig(); }, 60000);
    emit("ready");
  }).catch(function (err) { emit("error", { action: "start", status: err.status }); });
  queued.forEach(function (call) { if (api[call[0]]) api[call[0]].apply(null, call.slice(1)); });
})();
