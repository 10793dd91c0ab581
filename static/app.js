// apitokens: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // A dialog the server rendered open becomes a real modal (focus kept inside, Esc closes).
  document.querySelectorAll("dialog[open]").forEach(function (d) {
    if (typeof d.showModal === "function") {
      d.close();
      d.showModal();
    }
  });

  // Copy the new token; if the clipboard is unavailable, select it so Ctrl+C works.
  var copy = document.getElementById("copy-token");
  if (copy) {
    copy.addEventListener("click", function () {
      var el = document.getElementById(copy.getAttribute("data-copy-target"));
      var text = el.textContent.trim();
      var selectIt = function () {
        var range = document.createRange();
        range.selectNodeContents(el);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { copy.textContent = "Copied"; }, selectIt);
      } else {
        selectIt();
        copy.textContent = "Selected: press Ctrl+C";
      }
    });
  }

  // Show the date field only when "Set expiration date" is chosen.
  var field = document.getElementById("exp-date-field");
  if (field) {
    var radios = document.querySelectorAll("input[name=expiration]");
    var sync = function () {
      var date = document.getElementById("expiration-date");
      field.classList.toggle("hidden", !(date && date.checked));
    };
    radios.forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  }
})();
