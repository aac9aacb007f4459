// Media in the transcript: a photo opens large in a dialog (Escape or a click closes it).
// Images only come from /media/<id>, served with a sniffed, inline-safe type (web/routes_media.py).
(function () {
  "use strict";
  function viewer() {
    var dialog = document.getElementById("media-viewer");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "media-viewer";
    dialog.className = "media-viewer";
    var image = document.createElement("img");
    image.alt = "Photo, large";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "media-viewer-close";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) { if (event.target === dialog || event.target === image) dialog.close(); });
    dialog.appendChild(close);
    dialog.appendChild(image);
    document.body.appendChild(dialog);
    return dialog;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.media-image");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    var dialog = viewer();
    dialog.querySelector("img").src = link.dataset.full;
    dialog.showModal();
  });
})();
