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

  /* A reply box drawn again (outerHTML swap) is set up once it has settled in the page. */
  document.addEventListener("htmx:afterSettle", () => setupComposer());

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

  /* A timeline event (assignment, status, channel switch) drawn live, in event order. */
  async function upsertEvent(conversationId, seq) {
    const fresh = await fetchFragment("/conversations/" + conversationId + "/events?seq=" + seq).catch(() => null);
    const timeline = document.getElementById("timeline");
    if (!fresh || !timeline || openConversationId() !== conversationId) return;
    if (document.getElementById(fresh.id)) return;
    /* An event explains the message it came with (a switch, then the message on the new
       channel): it goes before the first message that is not older than it. */
    const stamp = (li) => Date.parse((li.querySelector("time") || {}).getAttribute?.("datetime") || "") || 0;
    const at = stamp(fresh);
    const later = Array.from(timeline.querySelectorAll("li[data-message-id]")).find((li) => stamp(li) >= at);
    timeline.insertBefore(fresh, later || null);
    fresh.classList.add("fresh");
    scrollTimeline(false);
    htmx.process(fresh);
  }

  /* The agent is writing in the reply box: it has the focus or holds text. */
  function writingIn(form) {
    return form.contains(document.activeElement) ||
      Array.from(form.querySelectorAll("textarea, input[type=text]:not([name=subject])"))
        .some((el) => el.value.trim() !== "");
  }

  /* A customer message may change the default channel or open a reply window: the reply box
     is drawn again, unless the agent is writing in it, when the event comes or when the new
     box arrives (the agent may have started typing while it was on its way). */
  async function refreshComposer(id) {
    const form = document.getElementById("composer");
    if (!form || writingIn(form)) return;
    const fresh = await fetchFragment("/conversations/" + id + "/composer").catch(() => null);
    const current = document.getElementById("composer");
    if (!fresh || current !== form || openConversationId() !== id || writingIn(form)) return;
    form.replaceWith(fresh);
    htmx.process(fresh);
    setupComposer();
  }

  function reloadConversation(id) {
    if (!document.getElementById("conversation-pane")) return;
    htmx.ajax("GET", "/conversations/" + id, { target: "#conversation-pane", swap: "innerHTML" });
  }

  function onEvent(ev) {
    const data = ev.data || {};
    const open = openConversationId();
    const here = open !== null && data.conversation_id === open;
    switch (ev.type) {
      case "message.created":
        if (here) upsertMessage(open, data.message_id);
        if (here && data.direction === "incoming") refreshComposer(open);
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
        if (here) { refreshHeader(open); upsertEvent(open, ev.seq); }
        refreshList();
        break;
      case "conversation.merged":
      case "conversation.split":
        /* Messages moved in or out: the open conversation is drawn again from the server. */
        if (here) reloadConversation(open);
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

  /* SMS length as handsets count it (3GPP TS 23.038, the same rules as channels/sms/policy.py):
     GSM-7 160 septets alone, 153 per concatenated segment, extension characters take two;
     anything else UCS-2, 70 units alone, 67 per segment; a character never straddles two. */
  function smsNotes(text, form) {
    const basic = form.dataset.gsm7Basic || "", ext = form.dataset.gsm7Extension || "";
    let costs = [];
    let gsm = true;
    for (const ch of text) {
      if (basic.includes(ch)) costs.push(1);
      else if (ext.includes(ch)) costs.push(2);
      else { gsm = false; break; }
    }
    if (!gsm) costs = Array.from(text, (ch) => (ch.codePointAt(0) > 0xffff ? 2 : 1));
    const [single, multi] = gsm ? [160, 153] : [70, 67];
    const total = costs.reduce((a, b) => a + b, 0);
    let segments = 0;
    if (total > 0 && total <= single) segments = 1;
    else if (total > single) {
      segments = 1;
      let room = multi;
      for (const cost of costs) {
        if (cost > room) { segments += 1; room = multi; }
        room -= cost;
      }
    }
    return { chars: Array.from(text).length, encoding: gsm ? "GSM-7" : "UCS-2", segments };
  }

  function fillTemplate(body, fields, values) {
    const map = new Map(fields.map((f, i) => [f, values[i]]));
    return body.replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, (m, name) => (map.get(name) ? map.get(name) : m));
  }

  function setupComposer() {
    const form = document.getElementById("composer");
    if (!form || form.dataset.ready) return;
    form.dataset.ready = "1";
    const text = form.querySelector("textarea");
    const route = form.querySelector("#reply-route");
    const hint = form.querySelector("#route-hint");
    const counter = form.querySelector("#reply-counter");
    const send = form.querySelector("#reply-send");
    const subject = form.querySelector("#reply-subject");
    const clientId = form.querySelector("input[name=client_id]");
    clientId.value = newClientId();

    const isNote = () => form.querySelector("input[name=private]:checked").value === "true";
    const option = () => (route && route.selectedOptions[0]) || null;

    function activePicker() {
      const opt = option();
      if (isNote() || !opt || opt.dataset.needsTemplate !== "true") return null;
      return form.querySelector('.template-picker[data-inbox-id="' + opt.dataset.inboxId + '"]');
    }

    function renderVariables(picker) {
      const select = picker.querySelector(".template-select");
      const chosen = select.selectedOptions[0];
      const box = picker.querySelector(".template-vars");
      picker.querySelector("input[name=template_language]").value = chosen ? chosen.dataset.language : "";
      box.textContent = "";
      const fields = chosen && chosen.dataset.fields ? chosen.dataset.fields.split(",") : [];
      fields.forEach((name) => {
        const label = document.createElement("label");
        label.className = "template-var";
        const span = document.createElement("span");
        span.textContent = box.dataset.label.replace("%(name)s", "{{" + name + "}}");
        const input = document.createElement("input");
        input.type = "text";
        input.name = "template_vars";
        input.required = true;
        input.dataset.field = name;
        label.append(span, input);
        box.appendChild(label);
      });
      updatePreview(picker);
    }

    function updatePreview(picker) {
      const chosen = picker.querySelector(".template-select").selectedOptions[0];
      const inputs = Array.from(picker.querySelectorAll("input[name=template_vars]"));
      const body = chosen ? chosen.dataset.body : "";
      const fields = inputs.map((i) => i.dataset.field);
      picker.querySelector(".preview-text").textContent = fillTemplate(body, fields, inputs.map((i) => i.value.trim()));
      return inputs.every((i) => i.value.trim() !== "");
    }

    function updateCounter() {
      const opt = option();
      const channel = opt && !isNote() ? opt.dataset.channel : "";
      const max = opt && !isNote() ? Number(opt.dataset.maxLength || 0) : 0;
      let words = "";
      let over = false;
      if (channel === "sms" && text.value) {
        const n = smsNotes(text.value, form);
        const label = n.segments === 1 ? form.dataset.labelSegmentsOne : form.dataset.labelSegments;
        words = label.replace("%(chars)s", n.chars).replace("%(encoding)s", n.encoding).replace("%(segments)s", n.segments);
      }
      if (max && Array.from(text.value).length > max && !activePicker()) {
        over = true;
        words = form.dataset.labelTooLong.replace("%(max)s", max);
      }
      counter.textContent = words;
      counter.classList.toggle("warn", over);
      return !over;
    }

    function update() {
      const note = isNote();
      const opt = option();
      form.classList.toggle("note-mode", note);
      if (route) route.disabled = note;
      const picker = activePicker();
      form.querySelectorAll(".template-picker").forEach((p) => {
        const on = p === picker;
        p.hidden = !on;
        p.disabled = !on;
        if (on && !p.dataset.ready) { p.dataset.ready = "1"; renderVariables(p); }
      });
      const email = !note && opt && opt.dataset.channel === "email";
      subject.hidden = !email;
      subject.querySelector("input").disabled = !email;
      text.disabled = Boolean(picker);
      text.required = !picker;
      text.placeholder = note ? text.dataset.placeholderNote : picker ? text.dataset.placeholderTemplate : text.dataset.placeholderReply;
      const reason = !note && opt ? [opt.dataset.reason, opt.dataset.window].filter(Boolean).join(" · ") : "";
      hint.textContent = reason;
      hint.classList.toggle("warn", Boolean(opt && opt.dataset.reason) && !note);
      const fits = updateCounter();
      const filled = picker ? updatePreview(picker) : true;
      send.disabled = !note && (!opt || opt.disabled || !fits || !filled);
    }

    /* Next (or previous) channel that can take a reply, for the keyboard. */
    function cycleRoute(step) {
      if (!route || isNote()) return;
      const usable = Array.from(route.options).filter((o) => !o.disabled);
      if (usable.length < 2) return;
      const at = usable.indexOf(route.selectedOptions[0]);
      usable[(at + step + usable.length) % usable.length].selected = true;
      update();
    }
    form.cycleRoute = cycleRoute;

    form.addEventListener("change", (e) => {
      if (e.target.classList.contains("template-select")) renderVariables(e.target.closest(".template-picker"));
      update();
    });
    form.addEventListener("input", (e) => {
      if (e.target.name === "template_vars") update();
    });
    text.addEventListener("input", () => { updateCounter(); update(); });
    form.addEventListener("keydown", (e) => {
      if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
        e.preventDefault();
        cycleRoute(e.key === "ArrowDown" ? 1 : -1);
      }
    });
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); if (!send.disabled) htmx.trigger(form, "submit"); }
      if (e.key === "Escape") text.blur();
    });
    form.addEventListener("htmx:afterRequest", (e) => {
      if (!e.detail.successful || e.detail.elt !== form) return;
      text.value = "";
      clientId.value = newClientId();
      form.querySelectorAll("input[name=template_vars]").forEach((i) => { i.value = ""; });
      update();
    });
    text.addEventListener("input", () => { if (!isNote()) typingPing(form, text.value.trim() !== ""); });
    text.addEventListener("blur", () => typingPing(form, false));
    form.addEventListener("submit", () => typingPing(form, false));
    update();
  }

  /* ---- merge and split ---------------------------------------------------------------------- */

  function splitMode(on) {
    const bar = document.getElementById("split-bar");
    const toggle = document.querySelector("#reshape [data-action=split-mode]");
    const timeline = document.getElementById("timeline");
    if (!bar || !timeline) return;
    bar.hidden = !on;
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    timeline.classList.toggle("selecting", on);
    timeline.querySelectorAll("li[data-message-id]").forEach((li) => {
      if (on) { li.tabIndex = 0; li.setAttribute("aria-checked", li.classList.contains("picked") ? "true" : "false"); li.setAttribute("role", "checkbox"); }
      else { li.removeAttribute("tabindex"); li.removeAttribute("aria-checked"); li.removeAttribute("role"); li.classList.remove("picked"); }
    });
    if (on) { const first = timeline.querySelector("li[data-message-id]"); if (first) first.focus(); }
    updateSplit();
  }

  function updateSplit() {
    const bar = document.getElementById("split-bar");
    if (!bar) return;
    bar.querySelectorAll("input[name=message_ids]").forEach((i) => i.remove());
    const picked = Array.from(document.querySelectorAll("#timeline li.picked[data-message-id]"));
    picked.forEach((li) => {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "message_ids";
      input.value = li.dataset.messageId;
      bar.appendChild(input);
    });
    const count = document.getElementById("split-count");
    const reshape = document.getElementById("reshape");
    count.textContent = picked.length ? reshape.dataset.labelSelected.replace("%(num)s", picked.length) : "";
    document.getElementById("split-submit").disabled = picked.length === 0;
  }

  function togglePicked(li) {
    li.classList.toggle("picked");
    li.setAttribute("aria-checked", li.classList.contains("picked") ? "true" : "false");
    updateSplit();
  }

  function selecting() {
    const timeline = document.getElementById("timeline");
    return Boolean(timeline && timeline.classList.contains("selecting"));
  }

  document.addEventListener("click", (e) => {
    const action = e.target.closest("#reshape [data-action], #merge-dialog [data-action]");
    if (action) {
      const what = action.dataset.action;
      if (what === "merge") document.getElementById("merge-dialog").showModal();
      if (what === "merge-cancel") document.getElementById("merge-dialog").close();
      if (what === "split-mode") splitMode(!selecting());
      if (what === "split-cancel") splitMode(false);
      return;
    }
    if (!selecting()) return;
    const li = e.target.closest("#timeline li[data-message-id]");
    if (li && !e.target.closest("a, button")) togglePicked(li);
  });

  document.addEventListener("keydown", (e) => {
    if (!selecting()) return;
    const li = e.target.closest && e.target.closest("#timeline li[data-message-id]");
    if (e.key === "Escape") { e.preventDefault(); splitMode(false); return; }
    if (!li) return;
    if (e.key === " " || e.key === "x") { e.preventDefault(); togglePicked(li); }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const all = Array.from(document.querySelectorAll("#timeline li[data-message-id]"));
      const next = all[all.indexOf(li) + (e.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
    }
    if (e.key === "Enter") { e.preventDefault(); const submit = document.getElementById("split-submit"); if (!submit.disabled) submit.click(); }
  }, true);

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
      case "c": {
        const form = document.getElementById("composer");
        if (form && form.cycleRoute) form.cycleRoute(1); else return;
        break;
      }
      case "m": {
        const btn = document.querySelector("#reshape [data-action=merge]");
        if (btn && !btn.disabled) btn.click(); else return;
        break;
      }
      case "s": {
        const btn = document.querySelector("#reshape [data-action=split-mode]");
        if (btn) btn.click(); else return;
        break;
      }
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
