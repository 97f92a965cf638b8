// Signing in, for the pages of services that check tokens (AUTH_SECRET set). The user pastes a
// token into the form, or opens the page with #token=<token> at the end of its address; the page
// hands it once to POST /session, and the HttpOnly cookie it gets back carries it on every later
// request, the event streams included (a browser cannot put a header on an EventSource). With
// authentication off the panel stays hidden and the page works as it always did.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Resolves once the page may load its data: at once with `{auth: "off"}`, or with
 * `{auth: "on", sub, role}` when a session with a token of one of `roles` is open.
 * @param {{ roles: string[] }} options
 * @returns {Promise<{ auth: "off" } | { auth: "on", sub: string, role: string }>}
 */
export async function signedIn({ roles }) {
  const fromAddress = tokenInAddress();
  let view = await request("GET");
  if (view.auth === "off") return view;
  const panel = $("session");
  const form = /** @type {HTMLFormElement} */ ($("session-form"));
  const input = /** @type {HTMLInputElement} */ ($("token"));
  panel.hidden = false;
  if (fromAddress) view = await request("POST", fromAddress);
  return await new Promise((resolve) => {
    const settle = (view) => {
      const refused = view.signed_in && !roles.includes(view.role)
        ? `This page is for ${roles.join(" or ")}; the token is for ${view.role} ${view.sub}.`
        : "";
      if (view.signed_in && !refused) {
        showUser(view);
        resolve(view);
        return;
      }
      form.hidden = false;
      $("session-user").hidden = true;
      showError(refused || (view.error ?? ""));
      $("connection").textContent = "Not signed in";
      $("connection").dataset.state = "offline";
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        showError("Paste your access token first.");
        return;
      }
      settle(await request("POST", token));
      input.value = "";
    });
    settle(view);
  });
}

/** The session as the service sees it; with `token`, a new session for it. */
async function request(method, token) {
  try {
    const res = await fetch("/session", {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) return body;
    return { auth: "on", signed_in: false, error: body.error ?? `Sign-in refused (${res.status})` };
  } catch (err) {
    return { auth: "on", signed_in: false, error: `Could not reach the service (${err.message})` };
  }
}

/** The token of a #token=… address, which is then taken out of the address bar and history. */
function tokenInAddress() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) history.replaceState(null, "", location.pathname + location.search);
  return token ?? "";
}

function showUser(view) {
  $("session-form").hidden = true;
  $("session-heading").textContent = "Signed in";
  $("session-who").textContent = `${view.sub} (${view.role}), until ${
    new Date(view.expires_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" })
  }`;
  $("session-user").hidden = false;
  showError("");
  $("sign-out").addEventListener("click", async () => {
    await fetch("/session", { method: "DELETE" }).catch(() => {});
    location.reload();
  }, { once: true });
}

function showError(text) {
  $("token-error").textContent = text;
  $("token-error").hidden = text === "";
}
