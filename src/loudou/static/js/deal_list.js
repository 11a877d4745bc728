// Deal list: select rows for bulk actions, and confirm before disqualifying.
// Everything works without this file; it only adds select-all, the selection count
// and disabled buttons while nothing is selected. Delegated listeners survive HTMX swaps.
(() => {
  // Lets the CSS fold the bulk controls away on phones until a row is selected.
  document.documentElement.classList.add("js-bulk");
  const rowBoxes = (form) => Array.from(form.querySelectorAll('input[name="ids"]'));

  const refresh = (form) => {
    if (!form) return;
    const boxes = rowBoxes(form);
    const n = boxes.filter((b) => b.checked).length;
    const label = form.querySelector("[data-selected-count]");
    if (label) label.textContent = n ? label.dataset.some.replace("%(count)s", n) : label.dataset.none;
    form.querySelector("[data-bulkbar]")?.classList.toggle("has-selection", n > 0);
    form.querySelectorAll("[data-bulk-action]").forEach((b) => { b.disabled = n === 0; });
    const all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
  };

  document.addEventListener("change", (event) => {
    const form = event.target.closest && event.target.closest("#bulk-form");
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      rowBoxes(form).forEach((b) => { b.checked = event.target.checked; });
    }
    if (event.target.matches('[data-select-all], input[name="ids"]')) {
      event.stopPropagation();
      refresh(form);
    }
  });

  const init = () => refresh(document.getElementById("bulk-form"));
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);

  // Disqualifying needs a yes; the other actions are easy to undo.
  const confirmed = (submitter) => !submitter?.dataset.confirm || window.confirm(submitter.dataset.confirm);
  document.addEventListener("htmx:confirm", (event) => {
    const submitter = event.detail.triggeringEvent && event.detail.triggeringEvent.submitter;
    if (!submitter || !submitter.dataset.confirm) return;
    event.preventDefault();
    if (confirmed(submitter)) event.detail.issueRequest(true);
  });
  document.addEventListener("submit", (event) => {
    if (event.target.id === "bulk-form" && !window.htmx && !confirmed(event.submitter)) event.preventDefault();
  }, true);
})();

// Filters left empty stay out of the pushed URL, so bookmarks read like the filters set.
document.addEventListener("htmx:configRequest", (event) => {
  const form = event.detail.elt;
  if (!form.matches || !form.matches(".filters-panel") || !event.detail.formData) return;
  const data = event.detail.formData;
  Array.from(data.keys()).forEach((key) => {
    if (data.getAll(key).every((v) => v === "")) data.delete(key);
  });
});
