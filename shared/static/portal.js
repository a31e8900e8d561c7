// The configuration wizard: plain DOM and fetch over the portal's JSON API (no build step, no framework).
(() => {
  "use strict";

  const app = document.getElementById("app");
  const csrf = app.dataset.csrf;
  const canWrite = app.dataset.canWrite === "true";
  const $ = (id) => document.getElementById(id);
  const LANGUAGES = { en: "English", es: "Español", "pt-BR": "Português (Brasil)" };
  const CHANNELS = { sms: "SMS", email: "Email", both: "SMS and email", email_if_no_mobile: "Email when there is no mobile" };
  const state = { endpoints: [], numbers: [], region: null };

  // --- plumbing ------------------------------------------------------------------------------------------------

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`/api/portal/${path}`, init);
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (response.status === 401) {
      window.location.assign("/api/portal");
    }
    if (!response.ok) {
      const error = new Error((data && data.message) || `The request failed (HTTP ${response.status}).`);
      error.status = response.status;
      error.body = data || {};
      throw error;
    }
    return data;
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function say(text, kind = "ok") {
    const box = $("message");
    box.textContent = text;
    box.className = `message ${kind}`;
    box.hidden = false;
  }

  function sayError(error) {
    const next = error.body && error.body.next_step ? ` ${error.body.next_step}` : "";
    say(`${error.message}${next}`, "error");
  }

  function quiet() {
    $("message").hidden = true;
  }

  async function guarded(work) {
    quiet();
    try {
      await work();
    } catch (error) {
      sayError(error);
    }
  }

  function showStep(step) {
    for (const panel of document.querySelectorAll(".step-panel")) panel.hidden = panel.id !== `step-${step}`;
    for (const tab of document.querySelectorAll(".step-tab")) {
      if (tab.dataset.step === String(step)) tab.setAttribute("aria-current", "step");
      else tab.removeAttribute("aria-current");
    }
    quiet();
    const loaders = { 1: loadStep1, 2: loadStep2, 3: loadRecords };
    const panel = $(`step-${step}`);
    panel.setAttribute("aria-busy", "true");
    guarded(loaders[step]).finally(() => panel.setAttribute("aria-busy", "false"));
    $(`step-${step}-title`).focus();
  }

  function whenText(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  // --- Step 1: region, FHIR base URLs, licence -----------------------------------------------------------------

  async function loadStep1() {
    await Promise.all([loadRegion(), loadEndpoints(), loadLicence()]);
  }

  async function loadRegion() {
    const region = await api("GET", "region");
    state.region = region.region;
    $("region-chosen").hidden = !region.chosen;
    $("region-choice").hidden = region.chosen;
    $("region-name").textContent = region.region || "";
    const select = $("region");
    select.replaceChildren(...region.available.map((name) =>
      el("option", { value: name, selected: name === region.default, text: name })));
    select.disabled = !canWrite;
  }

  async function loadEndpoints() {
    state.endpoints = (await api("GET", "endpoints")).endpoints;
    const rows = state.endpoints.map((endpoint) => el("tr", {},
      el("td", { text: endpoint.display_name }),
      el("td", {}, el("code", { text: endpoint.base_url })),
      el("td", { text: endpoint.environment }),
      el("td", { text: endpoint.departments.join(", ") || "none" }),
      el("td", {}, ...(canWrite ? [
        el("button", { type: "button", class: "secondary small", text: "Edit",
          "aria-label": `Edit ${endpoint.display_name}`, onclick: () => editEndpoint(endpoint) }),
        el("button", { type: "button", class: "secondary small", text: "Remove",
          "aria-label": `Remove ${endpoint.display_name}`, onclick: () => removeEndpoint(endpoint) }),
      ] : []))));
    document.querySelector("#endpoints tbody").replaceChildren(...rows);
    $("no-endpoints").hidden = state.endpoints.length > 0;
    const fallbacks = state.endpoints.filter((endpoint) => endpoint.patient_link);
    $("patient-link-notices").replaceChildren(...fallbacks.map((endpoint) =>
      el("p", { class: "bad", text: `${endpoint.display_name}: ${endpoint.patient_link.message}` })));
    $("patient-link-notices").hidden = fallbacks.length === 0;
  }

  async function loadLicence() {
    const licence = await api("GET", "licence");
    const text = $("licence-state");
    text.textContent = licence.message;
    text.className = licence.licensed ? "ok" : "bad";
  }

  function endpointForm() {
    return {
      base_url: $("base-url").value.trim(),
      environment: document.querySelector("input[name=environment]:checked").value,
      display_name: $("display-name").value.trim(),
      departments: $("departments").value.split(",").map((item) => item.trim()).filter(Boolean),
      organizer: $("organizer").value.trim(),
    };
  }

  function showChecks(passed, failed) {
    const items = passed.map((check) => el("li", { text: check.label }));
    if (failed) items.push(el("li", { class: "failed", text: failed }));
    $("checks").replaceChildren(el("ul", { class: "checks" }, ...items));
  }

  async function validateEndpoint() {
    quiet();
    const form = endpointForm();
    try {
      const report = await api("POST", "endpoints/validate", { base_url: form.base_url, environment: form.environment });
      showChecks(report.checks);
      say(`The FHIR base URL is valid (FHIR ${report.fhir_version}).`);
    } catch (error) {
      showChecks([], error.message);
      sayError(error);
    }
  }

  async function saveEndpoint(event) {
    event.preventDefault();
    await guarded(async () => {
      const form = endpointForm();
      const editing = $("endpoint-id").value;
      if (!state.region && !editing) await api("PUT", "region", { region: $("region").value });
      if (editing) await api("PUT", `endpoints/${editing}`, form);
      else await api("POST", "endpoints", form);
      resetEndpointForm();
      await loadStep1();
      say(editing ? "Saved your changes." : "Added the FHIR base URL. Add another, or go on to SMS.");
    });
  }

  function editEndpoint(endpoint) {
    $("endpoint-id").value = endpoint.id;
    $("base-url").value = endpoint.base_url;
    $("base-url").readOnly = true;
    document.querySelector(`input[name=environment][value=${endpoint.environment}]`).checked = true;
    $("display-name").value = endpoint.display_name;
    $("departments").value = endpoint.departments.join(", ");
    $("organizer").value = endpoint.organizer;
    $("endpoint-form-title").textContent = `Edit ${endpoint.display_name}`;
    $("cancel-edit").hidden = false;
    $("validate").hidden = true;
    $("base-url").focus();
  }

  function resetEndpointForm() {
    $("endpoint-form").reset();
    $("endpoint-id").value = "";
    $("base-url").readOnly = false;
    $("endpoint-form-title").textContent = "Add a FHIR base URL";
    $("cancel-edit").hidden = true;
    $("validate").hidden = false;
    $("checks").replaceChildren();
  }

  // Removing a URL also deletes its providers' Microsoft links: the server says how many, the admin confirms.
  async function removeEndpoint(endpoint) {
    await guarded(async () => {
      let preview;
      try {
        await api("DELETE", `endpoints/${endpoint.id}`);
      } catch (error) {
        if (error.status !== 409 || error.body.error !== "confirmation_required") throw error;
        preview = error.body;
      }
      if (preview) showRemoval(endpoint, preview);
      else await removed(endpoint, 0);
    });
  }

  function showRemoval(endpoint, preview) {
    const links = preview.provider_links;
    const box = el("div", { class: "card notice", id: "remove-confirm", role: "alertdialog",
      "aria-labelledby": "remove-confirm-title", "aria-describedby": "remove-confirm-text" },
      el("h3", { id: "remove-confirm-title", text: `Remove ${endpoint.display_name}?` }),
      el("p", { id: "remove-confirm-text", text: preview.message }),
      el("button", { type: "button", id: "remove-confirm-yes", class: "danger",
        text: links ? `Remove and delete ${links} provider link${links === 1 ? "" : "s"}` : "Remove",
        onclick: () => guarded(async () => {
          const done = await api("DELETE", `endpoints/${endpoint.id}?confirm=true`);
          box.remove();
          await removed(endpoint, done.provider_links_deleted);
        }) }),
      el("button", { type: "button", id: "remove-confirm-no", class: "secondary", text: "Cancel",
        onclick: () => { box.remove(); say(`Kept ${endpoint.display_name}.`); } }));
    const existing = $("remove-confirm");
    if (existing) existing.remove();
    $("endpoints").before(box);
    $("remove-confirm-no").focus();
  }

  async function removed(endpoint, links) {
    await loadEndpoints();
    say(`Removed ${endpoint.display_name}${links ? ` and ${links} provider link${links === 1 ? "" : "s"}` : ""}.`);
  }

  // --- Step 2: consents, numbers, SMS configuration ------------------------------------------------------------

  async function loadStep2() {
    $("number-progress-box").hidden = true;
    const [consents] = await Promise.all([api("GET", "sms/consents"), loadEndpoints()]);
    showConsents(consents);
    await loadNumbers();
  }

  function showConsents(consents) {
    $("consent-send").checked = consents.consent_send;
    $("consent-attendees").checked = consents.consent_attendees;
    const recorded = [consents.consent_send_at, consents.consent_attendees_at].filter(Boolean).map(whenText);
    const who = consents.consent_send_by_you && consents.consent_attendees_by_you ? ", given by you" : "";
    $("consent-record").textContent = consents.complete
      ? `Both consents are recorded (${recorded.join(" and ")}${who}).`
      : "SMS stays off until both consents are given.";
    const email = consents.email || {};
    $("email-domain").textContent = email.domain || "none";
    $("email-verification").textContent = email.text || "";
  }

  async function saveConsents() {
    await guarded(async () => {
      const consents = await api("PUT", "sms/consents", {
        consent_send: $("consent-send").checked, consent_attendees: $("consent-attendees").checked,
      });
      showConsents(consents);
      say("Saved your consent.");
    });
  }

  async function loadNumbers() {
    state.numbers = (await api("GET", "sms/numbers")).numbers;
    const rows = state.numbers.map((number) => el("tr", {},
      el("td", {}, el("code", { text: number.number || "(reserving…)" })),
      el("td", {}, el("span", { class: `badge ${number.status === "failed" ? "bad" : number.status === "provisioned" ? "ok" : ""}`,
        text: number.status === "failed" ? `failed: ${number.error}` : number.progress.label })),
      el("td", {}, verificationCell(number)),
      el("td", { text: number.what_to_do || (number.linked_endpoints.length ? "" : "Link it to a FHIR base URL below.") })));
    document.querySelector("#numbers tbody").replaceChildren(...rows);
    $("no-numbers").hidden = state.numbers.length > 0;
    showSmsConfig();
  }

  function verificationCell(number) {
    if (number.status !== "provisioned" || number.managed === false) return document.createTextNode(number.verification || "");
    if (!canWrite) return document.createTextNode(number.verification);
    const select = el("select", { "aria-label": `Toll-free verification of ${number.number}` },
      ...["unverified", "pending", "verified"].map((value) =>
        el("option", { value, selected: value === number.verification, text: value })));
    select.addEventListener("change", () => guarded(async () => {
      await api("PUT", `sms/numbers/${number.id}`, { verification: select.value });
      await loadNumbers();
      say(`Recorded: toll-free verification ${select.value}.`);
    }));
    return select;
  }

  async function generateNumber() {
    quiet();
    const button = $("generate");
    button.disabled = true;
    $("number-progress-box").hidden = false;
    try {
      let number = await api("POST", "sms/numbers", { country: $("country").value });
      let transient = 0;
      while (number.status === "searching" || number.status === "purchasing") {
        showProgress(number);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        try {
          number = await api("POST", `sms/numbers/${number.id}/advance`);
          transient = 0;
        } catch (error) {
          if (error.status < 500 || ++transient > 5) throw error;
        }
      }
      showProgress(number);
      if (number.status === "failed") say(`${number.error} ${number.what_to_do}`, "error");
      else say(`Your new number ${number.number} is provisioned. Link it to a FHIR base URL below.`);
      await loadNumbers();
    } catch (error) {
      $("number-progress-label").textContent = "";
      sayError(error);
    } finally {
      button.disabled = !canWrite;
    }
  }

  function showProgress(number) {
    $("number-progress").value = number.progress.step;
    const detail = number.number && number.status === "purchasing" ? ` (${number.number})` : "";
    $("number-progress-label").textContent =
      `Step ${number.progress.step} of ${number.progress.of}: ${number.status === "failed" ? number.error : number.progress.label}${detail}`;
  }

  function smsFieldset(endpoint) {
    const id = (name) => `${name}-${endpoint.id}`;
    const provisioned = state.numbers.filter((number) => number.status === "provisioned");
    const [quietFrom, quietTo] = endpoint.quiet_hours ? endpoint.quiet_hours.split("-") : ["", ""];
    const field = (label, control) => el("div", {}, el("label", { for: control.id, text: label }), control);
    const numberSelect = el("select", { id: id("sms-number") },
      el("option", { value: "", text: "Not linked (no SMS)" }),
      ...provisioned.map((number) => el("option", { value: number.number, selected: number.number === endpoint.sms_number, text: number.number })));
    const box = el("div", { class: "sms-endpoint" },
      el("h4", { text: `${endpoint.display_name} · ${endpoint.environment} environment` }),
      el("div", { class: "row" },
        field("Send by", el("select", { id: id("channel") }, ...Object.entries(CHANNELS).map(([code, name]) =>
          el("option", { value: code, selected: code === (endpoint.channel || "sms"), text: name })))),
        field("Phone number", numberSelect),
        field("Default language", el("select", { id: id("language") }, ...Object.entries(LANGUAGES).map(([code, name]) =>
          el("option", { value: code, selected: code === endpoint.default_language, text: name })))),
        field("Time zone", el("input", { id: id("time-zone"), value: endpoint.time_zone }))),
      el("div", { class: "check" }, el("input", { type: "checkbox", id: id("confirmations"), checked: endpoint.confirmations_on }),
        el("label", { for: id("confirmations"), text: "Send a confirmation when an appointment is booked" })),
      el("div", { class: "row" },
        field("Reminders, minutes before the start (comma separated)", el("input", { id: id("reminders"),
          value: endpoint.reminder_offsets.join(", "), inputmode: "numeric" })),
        field("Quiet hours from", el("input", { id: id("quiet-from"), type: "time", value: quietFrom })),
        field("Quiet hours until", el("input", { id: id("quiet-to"), type: "time", value: quietTo }))),
      el("button", { type: "button", id: id("save-sms"), text: "Save SMS settings",
        "aria-label": `Save SMS settings of ${endpoint.display_name}`, onclick: () => saveSms(endpoint) }));
    for (const control of box.querySelectorAll("input, select, button")) control.disabled = !canWrite;
    return box;
  }

  function showSmsConfig() {
    const boxes = state.endpoints.map(smsFieldset);
    $("sms-config").replaceChildren(...(boxes.length ? boxes : [el("p", { class: "muted", text: "Add a FHIR base URL in Step 1 first." })]));
  }

  async function saveSms(endpoint) {
    const value = (name) => $(`${name}-${endpoint.id}`).value.trim();
    const quietHours = value("quiet-from") && value("quiet-to") ? `${value("quiet-from")}-${value("quiet-to")}` : "";
    const offsets = value("reminders").split(",").map((item) => item.trim()).filter(Boolean).map(Number);
    await guarded(async () => {
      await api("PUT", `endpoints/${endpoint.id}/sms`, {
        sms_number: value("sms-number"), channel: value("channel"), confirmations_on: $(`confirmations-${endpoint.id}`).checked,
        reminder_offsets: offsets, quiet_hours: quietHours, default_language: value("language"),
        time_zone: value("time-zone"),
      });
      await loadStep2();
      say(`Saved the SMS settings of ${endpoint.display_name}.`);
    });
  }

  // --- Step 3: integration records -----------------------------------------------------------------------------

  const RECORD_FIELDS = [
    ["provider_launch_url", "Provider launch URL"],
    ["patient_launch_url", "Patient launch URL"],
    ["redirect_uri", "Redirect URI"],
    ["client_id", "Client ID"],
    ["scopes", "Scopes"],
    ["fhir_base_url", "FHIR base URL"],
  ];

  async function copy(text, what) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = el("textarea", { class: "visually-hidden" });
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    say(`Copied the ${what}.`);
  }

  function recordCard(record) {
    const title = `${record.display_name} · ${record.environment} environment`;
    const list = el("dl", { class: "record" });
    for (const [key, label] of RECORD_FIELDS) {
      // The Copy button sits in the dd: a dl may hold only dt and dd (screen readers announce it as a list).
      list.append(el("dt", { text: label }), el("dd", {}, el("code", { "data-field": key, text: record[key] }),
        el("button", { type: "button", class: "copy secondary", text: "Copy", "aria-label": `Copy ${label} of ${title}`,
          onclick: () => copy(record[key], label) })));
    }
    const all = RECORD_FIELDS.map(([key, label]) => `${label}: ${record[key]}`).join("\n")
      + "\n\nCerner-side steps:\n" + record.cerner_steps.map((step, index) => `${index + 1}. ${step}`).join("\n");
    return el("div", { class: "card record-card", "data-endpoint": record.endpoint_id },
      el("h3", { text: title }), list,
      el("h4", { text: "What to enter on the Cerner side" }),
      el("ol", {}, ...record.cerner_steps.map((step) => el("li", { text: step }))),
      el("button", { type: "button", class: "secondary", text: "Copy the whole record", onclick: () => copy(all, `record of ${title}`) }));
  }

  async function loadRecords() {
    const { records } = await api("GET", "records");
    $("records").replaceChildren(...(records.length ? records.map(recordCard)
      : [el("p", { class: "muted", text: "Add a FHIR base URL in Step 1 to get its integration records." })]));
  }

  // --- wiring --------------------------------------------------------------------------------------------------

  for (const button of document.querySelectorAll("[data-step]")) button.addEventListener("click", () => showStep(button.dataset.step));
  for (const button of document.querySelectorAll("[data-goto]")) button.addEventListener("click", () => showStep(button.dataset.goto));
  $("validate").addEventListener("click", validateEndpoint);
  $("endpoint-form").addEventListener("submit", saveEndpoint);
  $("cancel-edit").addEventListener("click", resetEndpointForm);
  $("save-consents").addEventListener("click", saveConsents);
  $("generate").addEventListener("click", generateNumber);
  $("finish").addEventListener("click", () => say("Configuration complete. Sign in any time to view these records or change settings."));
  for (const control of document.querySelectorAll("#endpoint-form input, #endpoint-form button, #consents-card input, #consents-card button, #generate-box select, #generate-box button")) {
    control.disabled = !canWrite;
  }
  $("step-1").setAttribute("aria-busy", "true");
  guarded(loadStep1).finally(() => $("step-1").setAttribute("aria-busy", "false"));
})();
