// Live parts of a page: an element with data-live="URL" has its content replaced by URL's answer (an HTML
// fragment the server renders) every data-every seconds, while the page is visible.
"use strict";
for (const element of document.querySelectorAll("[data-live]")) {
  const every = Math.max(1, Number(element.dataset.every || 5)) * 1000;
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(element.dataset.live, { credentials: "same-origin" });
      if (response.ok) element.innerHTML = await response.text();
    } catch (error) {
      // The server went away for a moment: keep what is shown, try again next time.
    }
  };
  setInterval(refresh, every);
}
