// apitokens: small enhancements. Every page works without this file.
(function () {
  "use strict";

  // A dialog the server rendered open becomes a real modal: focus moves into it and stays
  // there. Escape cancels what may be cancelled (it follows the dialog's Cancel link, which
  // brings focus back to the control that opened it); the new token's dialog can't be
  // escaped, so nobody loses the token by a stray key: only "OK, I've copied token" closes it.
  document.querySelectorAll("dialog[open]").forEach(function (d) {
    if (typeof d.showModal === "function") {
      d.close();
      d.showModal();
    }
    d.addEventListener("cancel", function (event) {
      event.preventDefault();
      var cancel = d.querySelector("[data-cancel]");
      if (cancel) {
        window.location.assign(cancel.getAttribute("href"));
      }
    });
  });

  // A refused form: its error summary takes focus, which scrolls it into view, so the person
  // sees why without looking for it (GOV.UK's pattern; the summary links to each field).
  var summary = document.querySelector("[data-error-summary]");
  if (summary && !document.querySelector("dialog[open]")) {
    summary.focus();
    summary.scrollIntoView({ block: "center" });
  } else if (location.hash.length > 1 && !document.querySelector("dialog[open]")) {
    // Back from a dialog: focus returns to the control that opened it (named by the fragment).
    var opener = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (opener) {
      opener.focus();
    }
  }

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
