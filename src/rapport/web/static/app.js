/* Rapport agent UI: CSRF for htmx, the live connection, keyboard shortcuts, the composer. */
(function () {
  "use strict";

  const body = document.body;
  const csrf = body.dataset.csrf;

  /* ---- htmx: CSRF header, errors as toasts, dedupe of live-appended messages ---------------- */

  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  function toast(text, kind) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = document.createElement("div");
    el.className = "toast" + (kind ? " " + kind : "");
    el.textContent = text;
    box.appendChild(el);
    setTimeout(() => el.remove(), 6000);
  }

  document.addEventListener("htmx:responseError", (e) => {
    const xhr = e.detail.xhr;
    toast((xhr.responseText || "").slice(0, 300) || "Error " + xhr.status, "error");
  });
  document.addEventListener("htmx:sendError", () => toast(body.dataset.offlineLabel, "error"));

  /* Forms marked data-reset empty themselves once their request succeeded (the sandbox phone). */
  document.addEventListener("htmx:afterRequest", (e) => {
    const form = e.detail.elt;
    if (!e.detail.successful || !(form instanceof HTMLFormElement) || !form.hasAttribute("data-reset")) return;
    form.reset();
    const first = form.querySelector("input:not([type=hidden]), textarea");
    if (first) first.focus();
  });

  /* A message can arrive twice (the POST answer and the live event) in any order: keep the
     copy with the most advanced delivery status, and the later one on a tie. */
  function dedupeTimeline() {
    const best = new Map();
    for (const li of document.querySelectorAll("#timeline > li[id]")) {
      const kept = best.get(li.id);
      if (!kept) { best.set(li.id, li); continue; }
      if (Number(li.dataset.rank || 0) >= Number(kept.dataset.rank || 0)) {
        kept.replaceWith(li);
        best.set(li.id, li);
      } else {
        li.remove();
      }
    }
  }

  function scrollTimeline(force) {
    const tl = document.getElementById("timeline");
    if (!tl) return;
    const nearBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 160;
    if (force || nearBottom) tl.scrollTop = tl.scrollHeight;
  }

  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail.target;
    if (target.id === "timeline") { dedupeTimeline(); scrollTimeline(true); }
    if (target.id === "conversation-pane") { scrollTimeline(true); markSelected(); setupComposer(); }
    if (target.id === "conversation-list" || target.id === "conv-more") { markSelected(); }
  });

  /* ---- the open conversation and the list --------------------------------------------------- */

  function openConversationId() {
    const el = document.getElementById("conversation");
    return el ? Number(el.dataset.conversationId) : null;
  }

  function markSelected() {
    const id = openConversationId();
    document.querySelectorAll(".conv-item").forEach((a) => {
      a.classList.toggle("selected", Number(a.dataset.conversationId) === id);
    });
  }

  let listTimer = null;
  function refreshList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(() => {
      const list = document.getElementById("conversation-list");
      const items = document.getElementById("conv-items");
      if (!list || !items || !window.htmx) return;
      const query = items.dataset.filterQuery || "";
      const scroll = items.scrollTop;
      htmx.ajax("GET", "/conversations?" + query, { target: "#conversation-list", swap: "innerHTML" })
        .then(() => { const again = document.getElementById("conv-items"); if (again) again.scrollTop = scroll; });
    }, 250);
  }

  function refreshHeader(id) {
    if (!document.getElementById("conversation-header")) return;
    htmx.ajax("GET", "/conversations/" + id + "/header", { target: "#conversation-header", swap: "innerHTML" });
  }

  /* The contact panel (earlier conversations, attributes, labels) follows an assignment live. */
  function refreshPanel(id) {
    if (!document.getElementById("contact-panel")) return;
    // Its own source element: htmx queues requests per source, and the header and list
    // refreshes (sourced from <body>) would otherwise replace this one in the queue.
    htmx.ajax("GET", "/conversations/" + id + "/panel", { source: "#contact-panel", target: "#contact-panel", swap: "outerHTML" });
  }

  async function fetchFragment(url) {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (!response.ok) return null;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    return template.content.firstElementChild;
  }

  /* Insert or refresh one message from its server-rendered fragment. Each is fetched on its own
     (a replay burst fires many at once) and put in id order; fetches may finish in any order,
     so a copy never replaces one with a more advanced delivery status. */
  async function upsertMessage(conversationId, messageId) {
    const fresh = await fetchFragment("/conversations/" + conversationId + "/messages/" + messageId).catch(() => null);
    const timeline = document.getElementById("timeline");
    if (!fresh || !timeline || openConversationId() !== conversationId) return;
    const existing = document.getElementById(fresh.id);
    if (existing) {
      if (Number(fresh.dataset.rank || 0) < Number(existing.dataset.rank || 0)) return;
      existing.replaceWith(fresh);
    } else {
      const later = Array.from(timeline.querySelectorAll("li[data-message-id]"))
        .find((li) => Number(li.dataset.messageId) > messageId);
      timeline.insertBefore(fresh, later || null);
      fresh.classList.add("fresh");
      scrollTimeline(false);
    }
    htmx.process(fresh);
  }

  function onEvent(ev) {
    const data = ev.data || {};
    const open = openConversationId();
    const here = open !== null && data.conversation_id === open;
    switch (ev.type) {
      case "message.created":
        if (here) upsertMessage(open, data.message_id);
        refreshList();
        break;
      case "message.status_changed":
        if (here) upsertMessage(open, data.message_id);
        break;
      case "conversation.assigned":
        if (here) { refreshHeader(open); refreshPanel(open); }
        refreshList();
        break;
      case "conversation.status_changed":
      case "conversation.channel_switched":
        if (here) refreshHeader(open);
        refreshList();
        break;
      case "conversation.created":
        refreshList();
        break;
      default:
        break;
    }
    document.dispatchEvent(new CustomEvent("rapport:event", { detail: ev }));
  }

  /* ---- the live connection: resume from the last event seen, never lose one ----------------- */

  const SEQ_KEY = "rapport.lastSeq";
  const status = document.getElementById("live-status");

  function setLive(live) {
    if (!status) return;
    status.classList.toggle("live", live);
    status.classList.toggle("offline", !live);
    status.title = live ? body.dataset.liveLabel : body.dataset.offlineLabel;
    body.dataset.live = live ? "true" : "false";
  }

  function lastSeq() { return Number(sessionStorage.getItem(SEQ_KEY) || 0); }
  function saveSeq(seq) { if (seq > lastSeq()) sessionStorage.setItem(SEQ_KEY, String(seq)); }

  let socket = null;
  let attempts = 0;

  function connect() {
    if (!status) return; // not signed in
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const seq = lastSeq();
    const url = proto + "//" + location.host + "/ws" + (seq ? "?after=" + seq : "");
    socket = new WebSocket(url);
    socket.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      if (ev.kind === "event") {
        if (ev.seq <= lastSeq()) return;
        saveSeq(ev.seq);
        onEvent(ev);
      } else if (ev.kind === "live") {
        saveSeq(ev.seq);
        attempts = 0;
        setLive(true);
      } else if (ev.kind === "typing") {
        showTyping(ev);
      } else if (ev.kind === "reset") {
        sessionStorage.setItem(SEQ_KEY, String(ev.seq));
        refreshList();
        const open = openConversationId();
        if (open) htmx.ajax("GET", "/conversations/" + open, { target: "#conversation-pane", swap: "innerHTML" });
      }
    };
    socket.onclose = (e) => {
      setLive(false);
      if (e.code === 4401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      attempts += 1;
      const delay = Math.min(10000, 300 * 2 ** Math.min(attempts, 6)) * (0.7 + Math.random() * 0.6);
      setTimeout(connect, delay);
    };
  }

  /* ---- typing indicators: ephemeral, both ways --------------------------------------------- */

  let typingTimer = null;
  function showTyping(ev) {
    const box = document.getElementById("typing-indicator");
    if (!box || ev.conversation_id !== openConversationId()) return;
    clearTimeout(typingTimer);
    const label = ev.who === "visitor" ? box.dataset.visitorLabel : box.dataset.agentLabel.replace("%(name)s", ev.name || "");
    box.textContent = ev.typing ? label : "";
    box.hidden = !ev.typing;
    if (ev.typing) typingTimer = setTimeout(() => { box.textContent = ""; box.hidden = true; }, (ev.ttl || 6) * 1000);
  }

  let lastPing = 0;
  function typingPing(form, on) {
    const now = Date.now();
    if (on && now - lastPing < 2500) return;
    if (!on && !lastPing) return;
    lastPing = on ? now : 0;
    const data = new URLSearchParams({ typing: on ? "true" : "false" });
    fetch("/conversations/" + form.dataset.conversationId + "/typing", {
      method: "POST", body: data, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
    }).catch(() => {});
  }

  /* ---- composer ----------------------------------------------------------------------------- */

  function newClientId() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function setupComposer() {
    const form = document.getElementById("composer");
    if (!form || form.dataset.ready) return;
    form.dataset.ready = "1";
    const text = form.querySelector("textarea");
    const route = form.querySelector("#reply-route");
    const hint = form.querySelector("#route-hint");
    const clientId = form.querySelector("input[name=client_id]");
    clientId.value = newClientId();

    function updateMode() {
      const note = form.querySelector("input[name=private]:checked").value === "true";
      form.classList.toggle("note-mode", note);
      if (route) route.disabled = note;
      text.placeholder = note ? text.dataset.placeholderNote : text.dataset.placeholderReply;
    }
    function updateHint() {
      if (!route || !hint) return;
      const opt = route.selectedOptions[0];
      const reason = opt ? opt.dataset.reason : "";
      hint.textContent = reason || "";
      hint.classList.toggle("warn", Boolean(reason));
    }
    form.addEventListener("change", (e) => {
      if (e.target.name === "private") updateMode();
      if (e.target === route) updateHint();
    });
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); htmx.trigger(form, "submit"); }
      if (e.key === "Escape") text.blur();
    });
    form.addEventListener("htmx:afterRequest", (e) => {
      if (e.detail.successful) { text.value = ""; clientId.value = newClientId(); }
    });
    const replying = () => form.querySelector("input[name=private]:checked").value !== "true";
    text.addEventListener("input", () => { if (replying()) typingPing(form, text.value.trim() !== ""); });
    text.addEventListener("blur", () => typingPing(form, false));
    form.addEventListener("submit", () => typingPing(form, false));
    updateMode();
    updateHint();
  }

  /* ---- keyboard shortcuts ------------------------------------------------------------------- */

  function typing(e) {
    const t = e.target;
    return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
  }

  let cursor = -1;
  function moveCursor(step) {
    const items = Array.from(document.querySelectorAll(".conv-item"));
    if (!items.length) return;
    if (cursor < 0) cursor = items.findIndex((a) => a.classList.contains("selected"));
    cursor = Math.max(0, Math.min(items.length - 1, cursor + step));
    items.forEach((a, i) => a.classList.toggle("cursor", i === cursor));
    items[cursor].scrollIntoView({ block: "nearest" });
    items[cursor].focus();
  }

  function clickShortcut(key) {
    const btn = document.querySelector('#conversation-header [data-shortcut="' + key + '"]');
    if (btn) btn.click();
  }

  function focusComposer(note) {
    const form = document.getElementById("composer");
    if (!form) return;
    const radio = form.querySelector('input[name=private][value="' + (note ? "true" : "false") + '"]');
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    form.querySelector("textarea").focus();
  }

  let pendingG = false;
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || typing(e)) return;
    if (pendingG) {
      pendingG = false;
      if (e.key === "i") location.href = "/conversations";
      if (e.key === "c") location.href = "/contacts";
      return;
    }
    const help = document.getElementById("help");
    switch (e.key) {
      case "j": moveCursor(1); break;
      case "k": moveCursor(-1); break;
      case "r": focusComposer(false); break;
      case "n": focusComposer(true); break;
      case "a": clickShortcut("a"); break;
      case "e": clickShortcut("e"); break;
      case "o": clickShortcut("o"); break;
      case "1": case "2": case "3": {
        const tab = document.querySelector('[data-scope-key="' + e.key + '"]');
        if (tab) tab.click(); else return;
        break;
      }
      case "/": {
        const search = document.querySelector("[data-shortcut-focus='/']");
        if (search) search.focus(); else return;
        break;
      }
      case "g": pendingG = true; setTimeout(() => { pendingG = false; }, 1200); break;
      case "?": if (help) help.showModal(); break;
      default: return;
    }
    e.preventDefault();
  });

  document.addEventListener("click", (e) => {
    const trigger = e.target.closest("[data-action=help]");
    if (trigger) document.getElementById("help").showModal();
  });

  /* ---- segment conditions: offer only the comparisons that fit the chosen field ----------- */
  function fitOps(row) {
    const field = row.querySelector("select[name=cond_field]");
    const op = row.querySelector("select[name=cond_op]");
    if (!field || !op) return;
    const chosen = field.selectedOptions[0];
    const allowed = ((chosen && chosen.dataset.ops) || "").split(" ").filter(Boolean);
    for (const option of op.options) option.hidden = allowed.length > 0 && !allowed.includes(option.value);
    if (allowed.length && !allowed.includes(op.value)) op.value = allowed[0];
  }

  document.addEventListener("change", (e) => {
    const row = e.target.closest(".condition-row");
    if (row && e.target.name === "cond_field") fitOps(row);
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".condition-row").forEach(fitOps);
  });

  document.addEventListener("DOMContentLoaded", () => {
    markSelected();
    setupComposer();
    scrollTimeline(true);
    connect();
  });
})();
