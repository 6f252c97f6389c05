// Review page: resolve the current item with one key press (its label's key), move with j/k or the
// arrow keys, click a label with the mouse. Each resolution goes to the JSON API; the card is marked
// resolved, a row joins "Recently resolved" and the next unresolved item becomes current. Without
// JavaScript the same buttons submit the form to the page itself.
(function () {
  "use strict";

  const root = document.getElementById("review-page");
  if (!root) return;
  const cards = Array.from(root.querySelectorAll(".review-card"));
  let current = -1;

  function typing(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function select(index, scroll) {
    if (index < 0 || index >= cards.length) return;
    if (current >= 0) {
      cards[current].classList.remove("current");
      cards[current].removeAttribute("aria-current");
    }
    current = index;
    const card = cards[current];
    card.classList.add("current");
    card.setAttribute("aria-current", "true");
    if (scroll) {
      card.scrollIntoView({ block: "nearest" });
      card.focus({ preventScroll: true });
    }
  }

  function nextOpen(from) {
    for (let i = from + 1; i < cards.length; i += 1) if (!cards[i].classList.contains("resolved")) return i;
    for (let i = 0; i <= from && i < cards.length; i += 1) if (!cards[i].classList.contains("resolved")) return i;
    return -1;
  }

  function status(card, text, kind) {
    const el = card.querySelector(".resolve-status");
    el.textContent = text;
    el.className = "resolve-status " + kind;
  }

  function cell(text, dir) {
    const td = document.createElement("td");
    if (dir) td.dir = "auto";
    td.textContent = text;
    return td;
  }

  function addResolvedRow(resolution, button) {
    const tbody = document.getElementById("resolved-rows");
    if (!tbody) return;
    const empty = tbody.querySelector(".none-yet");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    row.appendChild(cell(String(resolution.item)));
    const labelCell = cell("");
    const chip = document.createElement("span");
    chip.className = "label-chip";
    chip.dir = "auto";
    chip.style.background = button.dataset.labelColor;
    chip.textContent = resolution.label;
    labelCell.appendChild(chip);
    if (resolution.note) {
      const note = document.createElement("div");
      note.className = "muted";
      note.dir = "auto";
      note.textContent = resolution.note;
      labelCell.appendChild(note);
    }
    row.appendChild(labelCell);
    row.appendChild(cell(resolution.reviewer));
    const when = cell("");
    const time = document.createElement("time");
    time.dateTime = resolution.created_at;
    time.textContent = "just now";
    when.appendChild(time);
    row.appendChild(when);
    tbody.insertBefore(row, tbody.firstChild);
  }

  async function resolve(card, button) {
    if (card.dataset.busy === "1") return;
    card.dataset.busy = "1";
    const note = card.querySelector("input[name=note]");
    status(card, "Resolving as " + button.dataset.labelName + "…", "");
    let response;
    let body = null;
    try {
      response = await fetch(card.dataset.resolveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify({ label: Number(button.value), note: note ? note.value : "" }),
      });
      body = await response.json().catch(() => null);
    } catch (err) {
      card.dataset.busy = "0";
      status(card, "Could not reach the server; try again.", "failed");
      return;
    }
    card.dataset.busy = "0";
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      status(card, message, "failed");
      return;
    }
    card.classList.add("resolved");
    card.dataset.resolvedLabel = body.label;
    card.querySelectorAll(".resolve-button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    status(card, "Resolved as " + body.label + " by " + body.reviewer + ".", "ok");
    addResolvedRow(body, button);
    const index = cards.indexOf(card);
    const next = nextOpen(index);
    if (next >= 0) select(next, true);
    else document.getElementById("review-done").hidden = false;
  }

  function buttonForKey(card, key) {
    return Array.from(card.querySelectorAll(".resolve-button")).find((b) => b.dataset.key === key) || null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (current < 0) return;
    const card = cards[current];
    if (event.key === "j" || event.key === "ArrowDown") {
      event.preventDefault();
      select(Math.min(current + 1, cards.length - 1), true);
    } else if (event.key === "k" || event.key === "ArrowUp") {
      event.preventDefault();
      select(Math.max(current - 1, 0), true);
    } else if (event.key === "n") {
      event.preventDefault();
      const note = card.querySelector("input[name=note]");
      if (note) note.focus();
    } else {
      const button = buttonForKey(card, event.key);
      if (button) {
        event.preventDefault();
        resolve(card, button);
      }
    }
  });

  cards.forEach((card, index) => {
    card.querySelector(".resolve-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const button = event.submitter && event.submitter.classList.contains("resolve-button") ? event.submitter : null;
      select(index, false);
      if (button) resolve(card, button);
    });
    card.addEventListener("click", (event) => {
      if (!event.target.closest("button, input, a")) select(index, false);
    });
  });

  if (cards.length) select(0, false);
  root.dataset.ready = "1";
})();
