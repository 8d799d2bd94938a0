/*
 * FreshID passkey ceremonies (W3C Web Authentication Level 2, §5.1.3 create / §5.1.4 get).
 *
 * Served as /static/passkey.js; pages carry no inline script (the CSP forbids it). Markup:
 *
 *   <form method="post" data-passkey="register|authenticate">
 *     <script type="application/json" id="passkey-options">{...options JSON...}</script>
 *     <input type="hidden" name="credential">
 *     <p data-passkey-error role="alert" hidden></p>
 *     <button type="submit">Use a passkey</button>
 *   </form>
 *
 * The options JSON is what py_webauthn's options_to_json() produces (binary fields base64url).
 * On submit, or on a click on a [data-passkey-start] button, the script runs the ceremony, puts
 * the credential, serialised with base64url fields as parse_registration_credential_json /
 * parse_authentication_credential_json expect, into input[name=credential] and submits the
 * form. The server verifies everything; nothing here is trusted. Error texts can be replaced by
 * data-message-<name> attributes on the error element (name: unsupported, cancelled, exists,
 * security, notsupported, failed).
 */
(function () {
  "use strict";

  var MESSAGES = {
    unsupported: "This browser cannot use passkeys. Choose another way to continue.",
    cancelled: "The passkey request was cancelled or timed out. Try again, or choose another way.",
    exists: "This device already has a passkey for your account.",
    security: "Passkeys cannot be used on this address.",
    notsupported: "This device cannot create the kind of passkey needed here.",
    failed: "Something went wrong with the passkey. Try again, or choose another way."
  };

  function toBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBuffer(item.id);
      return copy;
    });
  }

  // Decoded by hand rather than with PublicKeyCredential.parseCreationOptionsFromJSON, which
  // not every supported browser has yet.
  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function common(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {}
    };
  }

  function registrationJSON(credential) {
    var response = credential.response;
    var result = common(credential);
    result.response = {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: response.getTransports ? response.getTransports() : []
    };
    return result;
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    var result = common(credential);
    result.response = {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null
    };
    return result;
  }

  function messageFor(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") return "cancelled";
    if (name === "InvalidStateError") return "exists";
    if (name === "SecurityError") return "security";
    if (name === "NotSupportedError") return "notsupported";
    return "failed";
  }

  function bind(form) {
    var mode = form.getAttribute("data-passkey");
    if (mode !== "register" && mode !== "authenticate") return;
    var source = form.querySelector('script[type="application/json"]#passkey-options');
    var errorBox = form.querySelector("[data-passkey-error]");
    var input = form.querySelector('input[name="credential"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = "credential";
      form.appendChild(input);
    }
    var running = false;

    function buttons() {
      return form.querySelectorAll('button, input[type="submit"]');
    }

    function setBusy(busy) {
      running = busy;
      form.setAttribute("aria-busy", busy ? "true" : "false");
      buttons().forEach(function (button) {
        button.disabled = busy;
      });
    }

    function showError(key) {
      if (!errorBox) return;
      errorBox.setAttribute("role", "alert");
      errorBox.textContent = errorBox.getAttribute("data-message-" + key) || MESSAGES[key];
      errorBox.hidden = false;
    }

    function clearError() {
      if (!errorBox) return;
      errorBox.textContent = "";
      errorBox.hidden = true;
    }

    function run() {
      if (running) return;
      clearError();
      input.value = "";
      if (!window.PublicKeyCredential || !navigator.credentials || !source) {
        showError("unsupported");
        return;
      }
      var json;
      try {
        json = JSON.parse(source.textContent);
      } catch (error) {
        showError("failed");
        return;
      }
      setBusy(true);
      var ceremony =
        mode === "register"
          ? navigator.credentials.create({ publicKey: creationOptions(json) }).then(registrationJSON)
          : navigator.credentials.get({ publicKey: requestOptions(json) }).then(authenticationJSON);
      ceremony.then(
        function (result) {
          input.value = JSON.stringify(result);
          // HTMLFormElement.submit() does not fire "submit" again, so this cannot loop.
          form.submit();
        },
        function (error) {
          setBusy(false);
          showError(messageFor(error));
        }
      );
    }

    // Every submit runs a fresh ceremony: a challenge verifies once, so a credential left in
    // the input (e.g. after "back") would be refused anyway.
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      run();
    });
    // A page restored from the back/forward cache must not stay disabled.
    window.addEventListener("pageshow", function () {
      input.value = "";
      setBusy(false);
    });
    form.querySelectorAll("[data-passkey-start]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        run();
      });
    });
  }

  function init() {
    document.querySelectorAll("form[data-passkey]").forEach(bind);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
