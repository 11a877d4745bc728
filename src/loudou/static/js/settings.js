// Settings: drag-and-drop stage order (SortableJS) and "copy" buttons for secrets shown once.
// Without JavaScript the up/down buttons reorder stages and secrets can be selected by hand.

// A list with data-sortable="#form" posts its rows' order through that form on drop; the
// form's hidden stage_id inputs are rewritten in the new order and HTMX swaps the panel.
const initSortable = (root) => {
  if (!window.Sortable) return;
  root.querySelectorAll("[data-sortable]").forEach((list) => {
    if (list.dataset.sortableReady) return;
    list.dataset.sortableReady = "1";
    window.Sortable.create(list, {
      handle: ".drag",
      draggable: "tr[data-stage-id]",
      animation: 150,
      // Mouse/touch events instead of native drag and drop: the same on phones, tablets
      // and desktop browsers, and scriptable in browser tests.
      forceFallback: true,
      onEnd: (event) => {
        if (event.oldIndex === event.newIndex) return;
        const form = document.querySelector(list.dataset.sortable);
        if (!form) return;
        form.querySelectorAll('input[name="stage_id"]').forEach((input) => input.remove());
        list.querySelectorAll("tr[data-stage-id]").forEach((row) => {
          const input = document.createElement("input");
          input.type = "hidden";
          input.name = "stage_id";
          input.value = row.dataset.stageId;
          form.appendChild(input);
        });
        form.requestSubmit();
      },
    });
  });
};

document.addEventListener("DOMContentLoaded", () => {
  initSortable(document);
  if (window.htmx) window.htmx.onLoad(initSortable);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    button.classList.add("btn-ok");
    setTimeout(() => button.classList.remove("btn-ok"), 1500);
  });
});
