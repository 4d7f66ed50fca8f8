// Crossdock console: small progressive enhancements; every page works without it.
document.addEventListener("submit", (e) => {
  const msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
// Pages with <meta name="refresh-seconds"> reload themselves unless a form is being edited.
(() => {
  const m = document.querySelector('meta[name="refresh-seconds"]');
  if (!m) return;
  const s = Number(m.content) * 1000;
  let typing = false;
  document.addEventListener("input", () => { typing = true; });
  setInterval(() => { if (!typing && !document.querySelector("details[open].keep")) location.reload(); }, s);
})();
