// iobox dashboard: the only script. Refreshes previews and the overview; everything else is plain HTML.
"use strict";

// <img data-refresh="N">: fetch the picture again every N seconds (no-store, so never a cached one).
for (const img of document.querySelectorAll("img[data-refresh]")) {
  const every = Math.max(1, Number(img.dataset.refresh) || 5) * 1000;
  const url = img.getAttribute("src");
  let last = null;
  setInterval(async () => {
    try {
      const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) return;
      const blob = URL.createObjectURL(await r.blob());
      img.src = blob;
      if (last) URL.revokeObjectURL(last);
      last = blob;
    } catch (e) {
      // The box may be restarting; try again at the next tick.
    }
  }, every);
}

// <div data-reload="N">: reload the page every N seconds (the overview's live figures).
const reload = document.querySelector("[data-reload]");
if (reload) {
  setTimeout(() => location.reload(), Math.max(10, Number(reload.dataset.reload) || 30) * 1000);
}
