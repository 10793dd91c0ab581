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

  // A page that only passes a form on (the SAML answer, re-posted from our own page so the
  // browser sends our cookie with it) sends itself; without script, its button does.
  var onward = document.querySelector("form[data-autosubmit]");
  if (onward) {
    onward.submit();
  }

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
  // "Limit this token": each route line checked as it is typed (the server checks again and
  // names the line): a method or *, then a path of segments where * and ** stand alone.
  document.querySelectorAll("textarea[name=allowed_routes]").forEach(function (area) {
    var live = document.getElementById("routes-live");
    var check = function () {
      var problem = "";
      area.value.split("\n").some(function (line, i) {
        var l = line.trim();
        if (!l) { return false; }
        var parts = l.split(/\s+/);
        var bad = parts.length !== 2 || !/^(\*|[A-Za-z]+)$/.test(parts[0]) || parts[1].charAt(0) !== "/" ||
          parts[1].split("/").some(function (seg) { return seg.indexOf("*") >= 0 && seg !== "*" && seg !== "**"; });
        if (bad) { problem = "Line " + (i + 1) + ": write a method (or *) and a path, like GET /dns/**; * and ** stand for whole segments."; }
        return bad;
      });
      area.setCustomValidity(problem);
      area.setAttribute("aria-invalid", problem ? "true" : "false");
      if (live) { live.textContent = problem; }
    };
    area.addEventListener("input", check);
  });
  // Passkeys (WebAuthn). A form marked data-passkey="create" or "get" first asks its
  // data-options URL for what the browser needs (the server keeps the challenge), lets the
  // browser talk to the authenticator, then sends the browser's answer in its "credential"
  // field. The forms stay hidden where the browser has no WebAuthn (or no script runs).
  var b64 = {
    toBytes: function (text) {
      var s = text.replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) { s += "="; }
      var raw = atob(s), out = new Uint8Array(raw.length);
      for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
      return out.buffer;
    },
    fromBytes: function (buffer) {
      var bytes = new Uint8Array(buffer), raw = "";
      for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
      return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    }
  };
  var creationOptions = function (o) {
    var pk = o.publicKey;
    pk.challenge = b64.toBytes(pk.challenge);
    pk.user.id = b64.toBytes(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64.toBytes(c.id); });
    return pk;
  };
  var requestOptions = function (o) {
    var pk = o.publicKey;
    pk.challenge = b64.toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64.toBytes(c.id); });
    return pk;
  };
  var answer = function (cred) {
    var r = cred.response, out = {
      id: cred.id,
      rawId: b64.fromBytes(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: b64.fromBytes(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = b64.fromBytes(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = b64.fromBytes(r.authenticatorData);
      out.response.signature = b64.fromBytes(r.signature);
      out.response.userHandle = r.userHandle ? b64.fromBytes(r.userHandle) : null;
    }
    return JSON.stringify(out);
  };
  if (window.PublicKeyCredential && navigator.credentials) {
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      form.hidden = false;
      var status = form.querySelector("[data-passkey-status]");
      var credential = form.querySelector("input[name=credential]");
      var say = function (text) { if (status) { status.textContent = text; } };
      form.addEventListener("submit", function (event) {
        if (credential.value) { return; }
        event.preventDefault();
        var creating = form.getAttribute("data-passkey") === "create";
        var name = form.querySelector("input[name=name]");
        if (creating && name && !name.value.trim()) {
          say("Name the passkey first.");
          name.setAttribute("aria-invalid", "true");
          name.focus();
          return;
        }
        say("Follow your browser: it asks for your fingerprint, face, PIN or security key.");
        var body = new URLSearchParams();
        body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
        fetch(form.getAttribute("data-options"), { method: "POST", body: body, credentials: "same-origin" })
          .then(function (res) {
            return res.json().then(function (json) { return { res: res, json: json }; });
          })
          .then(function (got) {
            if (got.res.status === 401 && creating) {
              // Confirm it's you first: the form goes through that page and comes back.
              credential.value = "";
              HTMLFormElement.prototype.submit.call(form);
              return null;
            }
            if (!got.res.ok) { throw new Error(got.json.message || "The server refused."); }
            return creating
              ? navigator.credentials.create({ publicKey: creationOptions(got.json) })
              : navigator.credentials.get({ publicKey: requestOptions(got.json) });
          })
          .then(function (cred) {
            if (!cred) { return; }
            credential.value = answer(cred);
            say("Checking…");
            HTMLFormElement.prototype.submit.call(form);
          })
          .catch(function (e) {
            say(e && e.name === "NotAllowedError"
              ? "The passkey wasn't used: it was cancelled or took too long. Try again."
              : e && e.name === "InvalidStateError"
                ? "This device already holds one of your passkeys."
                : (e && e.message) || "That didn't work. Try again.");
          });
      });
    });
  }
})();
