// Loudou — small page helpers. HTMX carries the CSRF token on every request it makes.
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
});

// Swap 4xx answers too, so forms re-render with their errors and toasts appear.
document.addEventListener("DOMContentLoaded", () => {
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "4..", swap: true, error: false },
      { code: "5..", swap: false, error: true },
    ];
  }
});

// Toasts fade away on their own.
const fadeToasts = () => {
  document.querySelectorAll("#toasts .toast:not([data-timed])").forEach((toast) => {
    toast.dataset.timed = "1";
    setTimeout(() => toast.remove(), 6000);
  });
};
document.addEventListener("htmx:afterSettle", fadeToasts);
document.addEventListener("DOMContentLoaded", fadeToasts);

// Any element with data-confirm asks before its form is submitted.
document.addEventListener("submit", (event) => {
  const msg = event.target.dataset && event.target.dataset.confirm;
  if (msg && !window.confirm(msg)) event.preventDefault();
});
