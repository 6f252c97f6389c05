/* The labeling page (templates/labeling/label.html): keys, the prefetched next item, an outbox.
 *
 * State: `current` (the item on screen), `ahead` (items the reviewer holds behind it, prefetched) and
 * `outbox` (submits, skips, undos and top-ups, sent one at a time, in order). A key press never waits for
 * the network: the submit goes into the outbox and the prefetched item is shown at once. Every answer
 * lists the items the server holds for this reviewer after that request; reconcile() merges it with what
 * the page shows and has still to send. A failed send stays first in the outbox until Retry: nothing is
 * dropped silently. With ?prefetch=0 the page holds one item and waits for each answer (the baseline).
 */
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("label-config").textContent);
  const itemBox = document.getElementById("label-item");
  const loadingBox = document.getElementById("label-loading");
  const emptyBox = document.getElementById("label-empty");
  const notices = document.getElementById("label-notices");
  const overlay = document.getElementById("keys-overlay");
  const noteInput = document.getElementById("label-note");
  const unclearBox = document.getElementById("label-unclear");
  const skipForm = document.getElementById("skip-form");
  const skipReason = document.getElementById("skip-reason");
  const syncStatus = document.getElementById("label-sync");
  const field = (name) => itemBox.querySelector(`[data-field="${name}"]`);
  const stat = (name) => document.querySelector(`.label-stats [data-field="${name}"]`);
  const labelsById = new Map(config.labels.map((label) => [label.id, label]));
  const labelsByKey = new Map(config.labels.filter((label) => label.key).map((label) => [label.key, label]));
  const EMPTY_POLL_MS = 30000;
  const MAX_SECONDS = 86400;

  // Key press -> next item painted, in ms: read by benchmarks/label_page_latency.py and curious reviewers.
  const timings = [];
  window.looplineTimings = timings;

  const state = {
    current: null,
    ahead: [],
    outbox: [],
    sending: false,
    failed: null,
    lastSubmit: null,
    waiting: null,
    today: config.labeled_today,
    session: 0,
    sessionStart: performance.now(),
    remaining: config.held.remaining,
  };
  window.looplineState = state;

  // --- rendering ---------------------------------------------------------------------------------

  function stalenessText(staleness) {
    const ranked = staleness.ranked_by_version ? `ranked by model v${staleness.ranked_by_version}` : "not ranked by a model";
    const since = staleness.labels_since_training;
    return `${ranked} · ${since} label${since === 1 ? "" : "s"} since`;
  }

  function renderItem(entry) {
    const { item, suggestion } = entry;
    itemBox.dataset.itemId = String(item.id);
    field("item-id").textContent = `#${item.id}`;
    field("language").textContent = item.language ? ` · ${item.language}` : "";
    field("random").hidden = !item.is_random_pick;
    field("overlap").hidden = !(item.overlap_target > 1);
    field("overlap-target").textContent = String(item.overlap_target);
    field("staleness").textContent = stalenessText(entry.staleness);
    const text = field("text");
    text.textContent = item.text; // never innerHTML: the text is data
    text.scrollTop = 0;
    field("suggestion").hidden = !suggestion;
    field("no-suggestion").hidden = Boolean(suggestion);
    if (suggestion) {
      field("suggestion-label").textContent = suggestion.label_name;
      field("suggestion-confidence").textContent =
        suggestion.confidence === null ? "" : `${Math.round(suggestion.confidence * 100)}%`;
      field("suggestion-version").textContent = suggestion.version ? `v${suggestion.version}` : "";
    }
    for (const button of itemBox.querySelectorAll(".label-button")) {
      button.classList.toggle("suggested", Boolean(suggestion) && Number(button.dataset.labelId) === suggestion.label);
    }
    noteInput.value = "";
    unclearBox.checked = false;
    skipForm.hidden = true;
    itemBox.hidden = false;
    loadingBox.hidden = true;
    emptyBox.hidden = true;
  }

  function renderNoItem() {
    itemBox.hidden = true;
    const idle = state.outbox.length === 0 && !state.sending && !state.failed;
    emptyBox.hidden = !idle;
    loadingBox.hidden = idle;
  }

  function renderProgress() {
    stat("today").textContent = String(state.today);
    stat("session").textContent = String(state.session);
    stat("remaining").textContent = String(state.remaining);
    const hours = (performance.now() - state.sessionStart) / 3_600_000;
    stat("pace").textContent = state.session > 0 ? String(Math.round(state.session / hours)) : "–";
  }

  function renderSync() {
    const pending = state.outbox.length;
    syncStatus.dataset.pending = String(pending);
    syncStatus.classList.toggle("failed", Boolean(state.failed));
    syncStatus.textContent = state.failed ? "Not saved yet: see the message above" : pending ? `Saving… (${pending})` : "All saved";
  }

  function notice(text, { error = false, retry = null } = {}) {
    const li = document.createElement("li");
    li.className = error ? "error" : "info";
    li.setAttribute("role", error ? "alert" : "status");
    const span = document.createElement("span");
    span.textContent = text;
    li.append(span);
    const actions = document.createElement("span");
    if (retry) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "native-keys";
      button.textContent = "Retry";
      button.addEventListener("click", () => {
        li.remove();
        retry();
      });
      actions.append(button);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "native-keys";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => li.remove());
    actions.append(" ", close);
    li.append(actions);
    notices.append(li);
    if (!error && !retry) setTimeout(() => li.remove(), 8000);
    return li;
  }

  // The key press (t0, the event's timestamp) to the frame that shows the next item.
  function recordTiming(t0, kind, itemId, prefetched) {
    requestAnimationFrame(() =>
      setTimeout(() => timings.push({ kind, item: itemId, ms: performance.now() - t0, prefetched }), 0),
    );
  }

  function show(entry, waiting = null, prefetched = false) {
    state.current = entry;
    if (!entry) {
      renderNoItem();
      return;
    }
    entry.shownAt = performance.now();
    renderItem(entry);
    if (waiting) recordTiming(waiting.t0, waiting.kind, entry.item.id, prefetched);
  }

  // Put the next held item on screen; without one, wait for the outbox's answer to bring it.
  function advance(t0, kind) {
    const next = state.ahead.shift() || null;
    state.waiting = next || t0 === null ? null : { t0, kind };
    show(next, next && t0 !== null ? { t0, kind } : null, true);
  }

  // --- talking to the server ---------------------------------------------------------------------

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
    }
    return { status: response.status, ok: response.ok, data };
  }

  const pendingItems = () => new Set(state.outbox.filter((a) => a.entry).map((a) => a.entry.item.id));
  const heldList = (first, second) => [first, second].filter((entry) => entry && entry.item);
  const lostText = (id) => `Item #${id} is no longer yours: another reviewer took it after your lease lapsed or was given back.`;

  function enqueue(action) {
    state.outbox.push(action);
    renderSync();
    if (!state.current) renderNoItem();
    pump();
  }

  function topUp() {
    if (!state.outbox.some((action) => action.kind === "next")) enqueue({ kind: "next", entry: null });
  }

  function send(action) {
    const prefetch = config.prefetch;
    if (action.kind === "next") return post(config.urls.next, { prefetch });
    if (action.kind === "undo") {
      const id = action.submit.annotationId;
      if (id === null) return Promise.resolve(refused("that label was never saved, so there is nothing to undo."));
      return post(config.urls.undo.replace(/\/0\/undo$/, `/${id}/undo`), { prefetch });
    }
    if (!action.entry.lease) return Promise.resolve(refused("the item was not given back to you."));
    const url = action.kind === "submit" ? config.urls.annotations : config.urls.skip;
    return post(url, { ...action.body, lease: action.entry.lease.id, prefetch });
  }

  function refused(message) {
    return { status: 409, ok: false, data: { error: { message } } };
  }

  async function pump() {
    if (state.sending || state.failed || state.outbox.length === 0) return;
    const action = state.outbox[0];
    state.sending = true;
    let answer = null;
    try {
      answer = await send(action);
    } catch (error) {
      answer = { status: 0, ok: false, data: { error: { message: "the network request failed" } } };
    }
    state.sending = false;
    if (answer.ok || [400, 404, 409].includes(answer.status)) {
      state.outbox.shift();
      if (answer.ok) settled(action, answer);
      else refusedBy(action, answer);
    } else {
      failed(action, answer);
    }
    renderSync();
    if (!state.current && state.ahead.length === 0) renderNoItem();
    pump();
  }

  function describe(action) {
    if (action.kind === "submit") return `your label “${labelsById.get(Number(action.body.label)).name}” for item #${action.entry.item.id}`;
    if (action.kind === "skip") return `your skip of item #${action.entry.item.id}`;
    return "your undo";
  }

  // A server or network failure: keep the action first in the outbox, stop, and offer a retry.
  function failed(action, answer) {
    const why = answer.status ? `the server answered ${answer.status}` : answer.data.error.message;
    const text =
      action.kind === "next"
        ? `Could not fetch the next item (${why}).`
        : `Not saved yet: ${describe(action)} (${why}). It stays queued on this page; Retry sends it again.`;
    state.failed = action;
    notice(text, {
      error: true,
      retry: () => {
        state.failed = null;
        renderSync();
        pump();
      },
    });
  }

  // A definite refusal (400/404/409): the action cannot succeed as sent. Say so, then resynchronise.
  function refusedBy(action, answer) {
    const message = (answer.data && answer.data.error && answer.data.error.message) || `HTTP ${answer.status}`;
    if (action.kind === "submit") {
      notice(`Not saved: ${describe(action)}. ${message}`, { error: true });
      if (state.lastSubmit === action) state.lastSubmit = null;
    } else if (action.kind === "skip") {
      notice(`Not saved: ${describe(action)}. ${message}`, { error: true });
    } else if (action.kind === "undo") {
      notice(`Could not undo: ${message}`, { error: true });
      if (state.current === action.entry) advance(null, "undo");
    } else {
      notice(`Could not fetch the next item: ${message}`, { error: true });
      return;
    }
    topUp();
  }

  function settled(action, answer) {
    const data = answer.data;
    if (action.kind === "submit") {
      action.annotationId = data.id;
      action.counted = true;
      state.today += 1;
      state.session += 1;
      reconcile(heldList(data.next, data.prefetched), data.remaining);
    } else if (action.kind === "skip") {
      reconcile(heldList(data.next, data.prefetched), data.remaining);
    } else if (action.kind === "undo") {
      action.entry.lease = data.lease;
      if (action.submit.counted) {
        state.today -= 1;
        state.session -= 1;
      }
      reconcile(heldList(data, data.prefetched), data.remaining);
    } else if (answer.status === 204) {
      reconcile([], null);
    } else {
      reconcile(heldList(data, data.prefetched), data.remaining);
    }
  }

  // Merge the server's list of held items (oldest first) with the page's own view.
  //
  // An answer lists what the server holds after *that* request, not after the ones still in the outbox.
  // Those can give items back and lease them again: an undo releases the items held behind the undone
  // one, and the next request's top-up leases them anew (new lease ids). The page may already show such
  // an item, so an item missing from an answer is only gone for good when nothing is left to send: until
  // then it stays on screen (a key press on it is kept, and is sent with the lease a later answer names).
  function reconcile(entries, remaining) {
    if (typeof remaining === "number") state.remaining = remaining;
    const held = new Map(entries.map((entry) => [entry.item.id, entry]));
    const pending = pendingItems();
    const final = state.outbox.length === 0;
    // The lease the server holds for an item is the one the next action on it must name, queued ones too.
    const queued = state.outbox.map((action) => action.entry);
    for (const entry of [state.current, ...state.ahead, ...queued]) {
      const fresh = entry && held.get(entry.item.id);
      if (fresh) entry.lease = fresh.lease;
    }
    const current = state.current;
    if (final && current && !pending.has(current.item.id) && !held.has(current.item.id)) {
      notice(`${lostText(current.item.id)} Here is the next one.`);
      state.current = null;
    }
    if (final) state.ahead = state.ahead.filter((entry) => held.has(entry.item.id));
    const known = (id) => pending.has(id) || (state.current && state.current.item.id === id) || state.ahead.some((e) => e.item.id === id);
    for (const entry of entries) {
      if (!known(entry.item.id)) {
        state.ahead.push({ lease: entry.lease, item: entry.item, suggestion: entry.suggestion, staleness: entry.staleness });
      }
    }
    if (!state.current) {
      const waiting = state.waiting;
      state.waiting = null;
      show(state.ahead.shift() || null, waiting, false);
    }
    renderProgress();
  }

  // --- actions -----------------------------------------------------------------------------------

  function pick(labelId, t0) {
    const entry = state.current;
    if (!entry || !labelsById.has(labelId)) return;
    const spent = Math.min(MAX_SECONDS, (performance.now() - entry.shownAt) / 1000);
    const body = {
      item: entry.item.id,
      label: String(labelId),
      note: noteInput.value.trim(),
      unclear: unclearBox.checked,
      seconds_spent: Math.round(spent * 100) / 100,
      client_key: newKey(),
    };
    if (entry.suggestion) {
      body.suggested_label = entry.suggestion.label;
      body.suggested_confidence = entry.suggestion.confidence;
      body.suggested_by_version = entry.suggestion.version;
    }
    const action = { kind: "submit", entry, body, annotationId: null, counted: false };
    state.lastSubmit = action;
    enqueue(action);
    advance(t0, "submit");
  }

  function acceptSuggestion(t0) {
    const entry = state.current;
    if (!entry) return;
    if (!entry.suggestion) {
      notice("This item has no model suggestion: pick a label with its key.");
      return;
    }
    pick(entry.suggestion.label, t0);
  }

  function openSkip() {
    if (!state.current) return;
    skipForm.hidden = false;
    skipReason.value = "";
    skipReason.focus();
  }

  function closeSkip() {
    skipForm.hidden = true;
    skipReason.blur();
  }

  function confirmSkip(t0) {
    const entry = state.current;
    if (!entry) return;
    const reason = skipReason.value.trim();
    closeSkip();
    enqueue({ kind: "skip", entry, body: { reason } });
    advance(t0, "skip");
  }

  function undo(t0) {
    const last = state.lastSubmit;
    if (!last) {
      notice("Nothing to undo: only your latest submission on this page can be undone, once.");
      return;
    }
    state.lastSubmit = null;
    if (state.current) state.ahead.unshift(state.current);
    // A fresh entry: the submit may still be waiting in the outbox with the old lease.
    const again = { item: last.entry.item, suggestion: last.entry.suggestion, staleness: last.entry.staleness, lease: null };
    enqueue({ kind: "undo", entry: again, submit: last });
    state.waiting = null;
    show(again, { t0, kind: "undo" }, true);
    noteInput.value = last.body.note;
    unclearBox.checked = last.body.unclear;
  }

  function toggleKeys(open) {
    overlay.hidden = !open;
    if (open) overlay.querySelector("button").focus();
  }

  // --- heartbeats and polling --------------------------------------------------------------------

  async function heartbeat() {
    for (const entry of [state.current, ...state.ahead]) {
      if (!entry || !entry.lease || pendingItems().has(entry.item.id)) continue;
      const leaseId = entry.lease.id;
      let answer;
      try {
        answer = await post(config.urls.heartbeat.replace("00000000-0000-0000-0000-000000000000", leaseId));
      } catch (_) {
        continue; // offline for a moment: leases outlive several missed beats
      }
      if (!entry.lease || entry.lease.id !== leaseId || pendingItems().has(entry.item.id)) continue;
      if (answer.ok) {
        entry.lease.expires_at = answer.data.expires_at;
      } else if ((answer.status === 404 || answer.status === 409) && state.outbox.length === 0 && !state.failed) {
        // With requests still to send, a refused beat may only mean an undo gave the lease back and a
        // later answer brings the new one: reconcile() decides once the outbox is empty.
        lost(entry);
      }
    }
  }

  function lost(entry) {
    if (entry === state.current) {
      notice(`${lostText(entry.item.id)} Here is the next one.`);
      advance(null, "lost");
    } else {
      state.ahead = state.ahead.filter((other) => other !== entry);
    }
    topUp();
  }

  // --- events ------------------------------------------------------------------------------------

  function typing(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    if (element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
    return element.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(element.type);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) {
      if (event.key === "Escape") {
        if (event.target === skipReason) closeSkip();
        else event.target.blur();
        event.preventDefault();
      }
      return;
    }
    if (!overlay.hidden) {
      if (event.key === "?" || event.key === "Escape") {
        toggleKeys(false);
        event.preventDefault();
      }
      return;
    }
    if (event.target.closest && event.target.closest(".native-keys") && (event.key === "Enter" || event.key === " ")) return;
    if (event.repeat) return; // a held key must not label item after item
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === "?") toggleKeys(true);
    else if (labelsByKey.has(key)) pick(labelsByKey.get(key).id, event.timeStamp);
    else if (key === "Enter") acceptSuggestion(event.timeStamp);
    else if (key === "s") openSkip();
    else if (key === "u") undo(event.timeStamp);
    else return;
    event.preventDefault();
  });

  skipForm.addEventListener("submit", (event) => {
    event.preventDefault();
    confirmSkip(event.timeStamp);
  });

  document.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.classList.contains("label-button")) {
      target.blur();
      pick(Number(target.dataset.labelId), event.timeStamp);
      return;
    }
    const action = target.dataset.action;
    if (action === "skip") openSkip();
    else if (action === "skip-cancel") closeSkip();
    else if (action === "undo") {
      target.blur();
      undo(event.timeStamp);
    } else if (action === "keys") toggleKeys(overlay.hidden);
    else if (action === "refresh") topUp();
  });

  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) toggleKeys(false);
  });

  window.addEventListener("beforeunload", (event) => {
    if (state.outbox.some((action) => action.kind !== "next")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  setInterval(heartbeat, config.heartbeat_seconds * 1000);
  setInterval(() => {
    if (!state.current && state.ahead.length === 0 && state.outbox.length === 0 && !state.failed) topUp();
  }, EMPTY_POLL_MS);
  setInterval(renderProgress, 15000);

  // Start: show what the server rendered (an item already held), then top up to the prefetch.
  const first = config.held.next;
  if (first) {
    state.ahead = heldList(config.held.prefetched);
    show({ lease: first.lease, item: first.item, suggestion: first.suggestion, staleness: first.staleness });
  } else {
    state.waiting = null;
    show(null);
  }
  renderProgress();
  renderSync();
  topUp();
})();
