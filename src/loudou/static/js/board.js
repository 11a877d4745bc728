// Loudou — the pipeline board. Dropping a card on another column posts the card's own
// "move to…" form through HTMX, so a drag and a choice in the select take the same path
// and the server decides: the moved card (200), the stage dialog (422), a refreshed card
// (409) or nothing (404). A refused drag puts the card back where it was.
(() => {
  "use strict";

  // Filters and the pipeline switcher apply as soon as a choice is made.
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select")) form.requestSubmit();
    });
  });

  const board = document.getElementById("board");
  if (!board || !window.Sortable || !window.htmx) return;

  // Where each dragged card came from, until the server has answered.
  const origins = new WeakMap();

  const putBack = (card) => {
    const origin = origins.get(card);
    if (!origin) return;
    origins.delete(card);
    const next = origin.next && origin.next.parentNode === origin.list ? origin.next : null;
    origin.list.insertBefore(card, next);
  };

  const resetSelect = (card) => {
    const select = card.querySelector("select[name=stage_id]");
    if (select) select.value = "";
  };

  const toast = (message) => {
    const box = document.getElementById("toasts");
    if (!box || !message) return;
    const item = document.createElement("div");
    item.className = "toast toast-error";
    item.setAttribute("role", "alert");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(() => item.remove(), 6000);
  };

  const move = (card, stageId) => {
    const form = card.querySelector("form.card-move");
    const select = form && form.querySelector("select[name=stage_id]");
    if (!select || !select.querySelector(`option[value="${stageId}"]`)) {
      putBack(card);
      return;
    }
    select.value = stageId;
    htmx.trigger(form, "change");
  };

  // One Sortable per column, all in one group: cards move between the columns of this
  // board only. forceFallback drags a clone that follows the pointer: the same on every
  // browser, and synthetic mouse events (browser tests) drive it reliably. On touch
  // screens a short press starts a drag, so swiping still scrolls the board.
  const group = `board-${board.dataset.pipelineId}`;
  board.querySelectorAll(".col-cards").forEach((list) => {
    Sortable.create(list, {
      group,
      draggable: ".card",
      filter: "select, option, input, button, textarea",
      preventOnFilter: false,
      forceFallback: true,
      fallbackOnBody: true,
      fallbackTolerance: 4,
      delay: 200,
      delayOnTouchOnly: true,
      animation: 120,
      ghostClass: "card-ghost",
      dragClass: "card-drag",
      scroll: true,
      bubbleScroll: true,
      onStart: (event) => {
        origins.set(event.item, { list: event.from, next: event.item.nextElementSibling });
        document.body.classList.add("is-dragging");
      },
      onMove: (event) => {
        board.querySelectorAll(".col.is-drop-target").forEach((col) => col.classList.remove("is-drop-target"));
        const col = event.to.closest(".col");
        if (col && event.to !== event.from) col.classList.add("is-drop-target");
      },
      onEnd: (event) => {
        document.body.classList.remove("is-dragging");
        board.querySelectorAll(".col.is-drop-target").forEach((col) => col.classList.remove("is-drop-target"));
        // Within a column the order is the server's (time in stage): undo a reorder.
        if (event.to === event.from) {
          putBack(event.item);
          return;
        }
        move(event.item, event.to.dataset.stageId);
      },
    });
  });

  const cardOf = (detail) => {
    const elt = detail && detail.requestConfig ? detail.requestConfig.elt : detail && detail.elt;
    return elt && elt.closest ? elt.closest(".card") : null;
  };

  // A refused move (dialog, conflict, error) puts a dragged card back before anything is
  // swapped, so a refreshed card replaces it in its own column.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const card = cardOf(event.detail);
    if (card && event.detail.xhr.status !== 200) {
      putBack(card);
      resetSelect(card);
    }
  });

  document.body.addEventListener("htmx:afterRequest", (event) => {
    const card = cardOf(event.detail);
    if (!card) return;
    if (!event.detail.successful || event.detail.xhr.status !== 200) {
      putBack(card);
      resetSelect(card);
    } else {
      origins.delete(card);
    }
  });

  document.body.addEventListener("htmx:sendError", (event) => {
    const card = cardOf(event.detail);
    if (card) {
      putBack(card);
      resetSelect(card);
    }
    toast(board.dataset.errorNetwork);
  });

  // Every card belongs in the column of its stage: after a move by the select, a
  // refreshed card moved by someone else, or a page of cards that repeats one already
  // shown (the first one shown stays).
  const settle = () => {
    const seen = new Set();
    board.querySelectorAll(".card").forEach((card) => {
      if (seen.has(card.id)) {
        card.remove();
        return;
      }
      seen.add(card.id);
      const list = card.parentElement;
      if (list && list.dataset.stageId === card.dataset.stageId) return;
      const target = board.querySelector(`.col-cards[data-stage-id="${card.dataset.stageId}"]`);
      if (target) target.prepend(card);
      else card.remove();
    });
  };
  document.body.addEventListener("htmx:afterSettle", settle);

  // A card moved from the keyboard (its select, or the dialog): focus follows the card to
  // its new column instead of falling back to the top of the page.
  let followFocus = null;
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const card = cardOf(event.detail);
    const target = event.detail.target;
    if (card && card.contains(document.activeElement)) followFocus = card.id;
    else if (event.detail.elt.closest("dialog") && target && target.classList.contains("card")) followFocus = target.id;
    else followFocus = null;
  });
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (!followFocus || !event.detail.xhr || event.detail.xhr.status !== 200) return;
    const card = document.getElementById(followFocus);
    const title = card && card.querySelector(".card-title");
    if (!title) return;
    followFocus = null;
    title.focus();
  });

  // The stage dialog: opened as a modal when the server sends it, removed when closed.
  const slot = document.getElementById("board-dialog");
  const openDialog = () => {
    const dialog = slot && slot.querySelector("dialog");
    if (!dialog || dialog.open) return;
    dialog.addEventListener("close", () => dialog.remove(), { once: true });
    dialog.showModal();
    const first = dialog.querySelector("[aria-invalid=true]") || dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  };
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target === slot) openDialog();
  });
  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-close-dialog]");
    const dialog = close && close.closest("dialog");
    if (dialog) {
      event.preventDefault();
      dialog.close();
    }
  });
})();
