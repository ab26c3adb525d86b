// The bulkmail dashboard: ES modules, no dependencies, no build step. Every call goes to the management
// API on the same origin (`bulkmail serve`, or `bulkmail dashboard`, which signs and forwards it).
// Shared helpers are in ui.js; a feature's views live in a module of their own that exports `routes`.
import {
  ApiError, api, badge, build, clearErrors, every, field, h, main, number, pageHead, progressBar, showErrors, svg, when,
} from "./ui.js";
import { templatePicker, routes as templateRoutes } from "./templates.js";
import { routes as reportRoutes } from "./report.js";
import { audienceOf, audiencePicker, routes as audienceRoutes } from "./audience.js";

const FINAL = new Set(["completed", "cancelled", "failed"]);
const POLL_MS = 1500;          // one GetItem per poll: a campaign's counters
const TRACE_EVERY_MS = 15000;
const MAX_LIVE_SAMPLES = 2400;  // an hour of polls
let leaveView = () => {};      // stops the current view's timers

// --- views --------------------------------------------------------------------------------------
function campaignsView() {
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load more");
  const byId = new Map();
  let pages = 1;
  let nextToken = null;

  const headings = ["Campaign", "Status", "Progress", "Sent", "Failed", "Skipped", "Recipients", "Created"];
  main.replaceChildren(
    pageHead("Campaigns", h("a", { class: "button primary", href: "#/new" }, "New campaign")),
    status,
    h("div", { class: "table-wrap" }, h("table", { class: "campaigns" },
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))), rows)),
    more);

  function render() {
    const campaigns = [...byId.values()].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    rows.replaceChildren(...campaigns.map((c) => h("tr", { "data-campaign": c.campaign_id },
      h("td", {}, h("a", { href: `#/campaigns/${encodeURIComponent(c.campaign_id)}` }, c.campaign_name || c.campaign_id),
        h("div", { class: "muted small" }, c.campaign_id)),
      h("td", {}, badge(c.status)),
      h("td", {}, progressBar(c, `${c.campaign_name || c.campaign_id} progress`)),
      h("td", { class: "num" }, number(c.sent_count)),
      h("td", { class: "num" }, number(c.failed_count)),
      h("td", { class: "num" }, number(c.skipped_count)),
      h("td", { class: "num" }, number(c.total_contacts)),
      h("td", { class: "small" }, when(c.created_at)))));
    status.textContent = campaigns.length ? "" : "No campaigns yet.";
    more.hidden = !nextToken;
  }

  // The list is a table scan: refresh the pages already shown, newest first once loaded.
  async function refresh() {
    try {
      let token = null;
      for (let page = 0; page < pages; page += 1) {
        const query = new URLSearchParams({ limit: "100" });
        if (token) query.set("next_token", token);
        const answer = await api("GET", `/campaigns?${query}`);
        answer.campaigns.forEach((c) => byId.set(c.campaign_id, c));
        token = answer.next_token;
        if (!token) break;
      }
      nextToken = token;
      render();
    } catch (error) {
      status.textContent = `Could not load campaigns: ${error.message}`;
    }
  }
  more.addEventListener("click", () => { pages += 1; refresh(); });
  return every(POLL_MS * 2, refresh);
}

// Sent, failed and skipped recipients over time, one line each: the AdvanceCampaign samples of the execution
// history (before this page opened) joined with the counters this page polls.
const OUTCOMES = ["sent", "failed", "skipped"];
function sendsChart(samples, total, endTime) {
  const width = 960, height = 240, left = 64, right = 16, top = 12, bottom = 28;
  const t0 = samples[0].t;
  const span = Math.max(1000, endTime - t0);
  const last = samples[samples.length - 1];
  const figure = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart",
                              "aria-label": `Recipients over time, after ${Math.round((last.t - t0) / 1000)} s: `
                                            + OUTCOMES.map((o) => `${number(last[o])} ${o}`).join(", ") + ` of ${number(total)}` });
  const top_ = Math.max(1, total, ...samples.map((s) => Math.max(...OUTCOMES.map((o) => s[o]))));
  const x = (t) => left + ((t - t0) / span) * (width - left - right);
  const y = (v) => top + (1 - v / top_) * (height - top - bottom);
  for (const v of top_ >= 10 ? [0, Math.round(top_ / 2), top_] : [0, top_]) {
    figure.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }),
                  svg("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, number(Math.round(v))));
  }
  const seconds = span / 1000;
  const label = (s) => (s >= 7200 ? `${(s / 3600).toFixed(1)} h`
    : s >= 120 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(s < 10 ? 1 : 0)} s`);
  figure.append(svg("text", { x: left, y: height - 8, class: "axis" }, "0 s"),
                svg("text", { x: width - right, y: height - 8, class: "axis", "text-anchor": "end" }, label(seconds)));
  for (const outcome of OUTCOMES) {
    if (outcome !== "sent" && !last[outcome]) continue;   // a line only for an outcome that happened
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s[outcome]).toFixed(1)}`);
    points.push(`${x(endTime).toFixed(1)},${y(last[outcome]).toFixed(1)}`);
    if (outcome === "sent") {
      figure.append(svg("polygon", { class: "area", points: `${x(t0)},${y(0)} ${points.join(" ")} ${x(endTime)},${y(0)}` }));
    }
    figure.append(svg("polyline", { class: `line line-${outcome}`, "data-outcome": outcome, points: points.join(" ") }),
                  svg("text", { x: x(endTime) - 4, y: y(last[outcome]) - 6, class: `axis label-${outcome}`, "text-anchor": "end" },
                      `${outcome} ${number(last[outcome])}`));
  }
  return figure;
}

function campaignView(rawId) {
  const id = decodeURIComponent(rawId);
  const path = `/campaigns/${encodeURIComponent(id)}`;
  const title = h("h1", {}, id);
  const statusBadge = h("span");
  const meta = h("p", { class: "muted" });
  const counters = h("div", { class: "counters" });
  const actionStatus = h("p", { class: "action-status", role: "status" });
  const buttons = {
    pause: h("button", { type: "button", class: "button", disabled: true }, "Pause"),   // until the status is known
    resume: h("button", { type: "button", class: "button", disabled: true }, "Resume"),
    cancel: h("button", { type: "button", class: "button danger", disabled: true }, "Cancel"),
    "resend-failed": h("button", { type: "button", class: "button", disabled: true }, "Resend to failed"),
  };
  const chart = h("div", { class: "chart-box" });
  const rate = h("p", { class: "muted small" });
  const trail = h("ol", { class: "path" });
  const failedRows = h("tbody");
  const failedNote = h("p", { class: "muted" });
  const failedTable = h("div", { class: "table-wrap", hidden: true }, h("table", {},
    h("thead", {}, h("tr", {}, ["Recipient", "Reason", "When"].map((t) => h("th", { scope: "col" }, t)))), failedRows));
  const failedMore = h("button", { type: "button", class: "button", hidden: true }, "More failed deliveries");
  const loadError = h("p", { class: "field-error", role: "alert" });

  document.title = `${id} · bulkmail`;
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← Campaigns")),
    h("div", { class: "page-head" }, title, statusBadge), meta, loadError,
    counters,
    h("p", {}, h("a", { href: `#${path}/report` }, "Opens, clicks and links: the report →")),
    h("div", { class: "actions", role: "group", "aria-label": "Campaign actions" }, Object.values(buttons), actionStatus),
    h("section", { "aria-labelledby": "sends-h" }, h("h2", { id: "sends-h" }, "Sends over time"), chart, rate),
    h("section", { "aria-labelledby": "path-h" }, h("h2", { id: "path-h" }, "Path through the workflow"), trail),
    h("section", { "aria-labelledby": "failed-h" }, h("h2", { id: "failed-h" }, "Failed deliveries"), failedNote,
      failedTable, failedMore));

  let record = null;
  let history = [];            // from the execution history: {t, processed, sent, failed, skipped}
  const live = [];             // polled here: the same
  let traceAt = 0;
  let traceStatus = null;
  let traceDone = false;       // the execution has ended: its path no longer changes
  let failedSeen = -1;
  let failedToken = null;
  let actionLeft = null;       // the status the last action left, while its note is shown

  function drawCounters() {
    const r = record;
    title.textContent = r.campaign_name || r.campaign_id;
    document.title = `${title.textContent} · bulkmail`;
    statusBadge.replaceChildren(badge(r.status));
    meta.replaceChildren(
      r.subject ? h("span", {}, "Subject: ", h("strong", {}, r.subject)) : "",
      r.from_email ? ` · from ${r.from_email}` : "",
      r.list ? ` · list ${r.list}` : "",
      r.send_at && r.status === "scheduled" ? ` · sends at ${when(r.send_at)}` : "",
      r.resend_of ? h("span", {}, " · resend of ", h("a", { href: `#/campaigns/${encodeURIComponent(r.resend_of)}` }, r.resend_of)) : "",
      r.error ? ` · ${r.error}: ${r.cause || ""}` : "");
    const card = (name, value) => h("div", { class: `counter counter-${name.toLowerCase()}${value ? " nonzero" : ""}` },
      h("span", { class: "counter-value", "data-counter": name.toLowerCase() }, number(value)), h("span", { class: "counter-name" }, name));
    counters.replaceChildren(
      card("Sent", r.sent_count), card("Failed", r.failed_count), card("Skipped", r.skipped_count),
      card("Recipients", r.total_contacts), h("div", { class: "counter counter-progress" }, progressBar(r, "Progress")));
    // Until the workflow has stored the campaign, the API answers for it from the execution alone.
    const s = r.created_at ? r.status : "starting";
    buttons.pause.disabled = !["queued", "processing"].includes(s);
    buttons.resume.disabled = s !== "paused";
    buttons.cancel.disabled = !["scheduled", "queued", "processing", "paused"].includes(s);
    buttons["resend-failed"].disabled = !(FINAL.has(s) && (r.failed_count || 0) > 0);
  }

  function drawChart() {
    const samples = [...history, ...live].sort((a, b) => a.t - b.t);
    if (record?.created_at) samples.unshift({ t: Date.parse(record.created_at), processed: 0, sent: 0, failed: 0, skipped: 0 });
    const finished = FINAL.has(record?.status);
    const end = finished && samples.length ? samples[samples.length - 1].t : Date.now();
    chart.replaceChildren(samples.length < 2 ? h("p", { class: "muted" }, "No sends yet.")
                                              : sendsChart(samples, record?.total_contacts || 0, end));
    const recent = live.filter((s) => s.t >= Date.now() - 10000);
    const parts = [];
    if (!finished && recent.length >= 2) {
      const a = recent[0], b = recent[recent.length - 1];
      parts.push(`${((b.sent - a.sent) / Math.max(0.001, (b.t - a.t) / 1000)).toFixed(1)} emails sent/s now`);
    }
    if (samples.length >= 2) {
      const a = samples[0], b = samples[samples.length - 1];
      const seconds = Math.max(0.001, (b.t - a.t) / 1000);
      parts.push(`${(b.sent / seconds).toFixed(1)} emails sent/s on average`);
    }
    rate.textContent = parts.join(" · ");
  }

  async function loadTrace() {
    traceAt = Date.now();
    traceStatus = record.status;
    try {
      const trace = await api("GET", `${path}/trace`);
      traceDone = trace.execution_status !== "RUNNING";
      history = trace.progress.map((p) => ({ t: Date.parse(p.at), processed: p.processed, sent: p.sent ?? 0,
                                             failed: p.failed ?? 0, skipped: p.skipped ?? 0 }));
      trail.replaceChildren(...trace.path.map((step) => h("li", { class: step.running ? "running" : "" },
        h("span", { class: "chip" },
          h("span", { class: "state" }, step.state),
          step.entered > 1 ? h("span", { class: "laps", title: "times entered" }, `×${step.entered}`) : "",
          h("span", { class: "took" }, step.running ? "running" : `${step.seconds.toFixed(step.seconds < 10 ? 2 : 0)} s`)))));
    } catch (error) {
      if (error.status === 409) {   // scheduled: no execution yet (and never, once cancelled)
        traceDone = FINAL.has(record.status);
        trail.replaceChildren(h("li", { class: "muted" }, "Not started."));
      }
      else trail.replaceChildren(h("li", { class: "field-error" }, `Could not load the path: ${error.message}`));
    }
  }

  // True when loaded; a campaign the workflow has not stored yet has no ledger to read (404): try again.
  async function loadFailed(append) {
    const query = new URLSearchParams({ status: "failed", limit: "50" });
    if (append && failedToken) query.set("next_token", failedToken);
    try {
      const page = await api("GET", `${path}/deliveries?${query}`);
      const rows = page.deliveries.map((d) => h("tr", {},
        h("td", {}, d.email), h("td", { class: "reason" }, d.reason || ""), h("td", { class: "small" }, when(d.updated_at))));
      if (append) failedRows.append(...rows); else failedRows.replaceChildren(...rows);
      failedToken = page.next_token;
      failedMore.hidden = !failedToken;
      failedNote.textContent = failedRows.children.length ? "" : "None.";
      failedTable.hidden = !failedRows.children.length;
      return true;
    } catch (error) {
      failedNote.textContent = error.status === 404 ? "" : `Could not load failed deliveries: ${error.message}`;
      return false;
    }
  }
  failedMore.addEventListener("click", () => loadFailed(true));

  async function poll() {
    const previous = record;
    try {
      record = await api("GET", path);
      loadError.textContent = "";
    } catch (error) {
      loadError.textContent = `Could not load the campaign: ${error.message}`;
      return;
    }
    // A campaign that had ended before this page opened has its whole story in the history.
    if (!FINAL.has(record.status) || (previous && !FINAL.has(previous.status))) {
      live.push({ t: Date.now(), processed: record.processed_count || 0, sent: record.sent_count || 0,
                  failed: record.failed_count || 0, skipped: record.skipped_count || 0 });
      if (live.length > MAX_LIVE_SAMPLES) live.shift();   // a page left open for days; the history has the rest
    }
    drawCounters();
    if (actionLeft && record.status !== actionLeft) {   // "paused → processing" is old news once the status moves on
      actionStatus.textContent = "";
      actionLeft = null;
    }
    const ending = FINAL.has(record.status) && !traceDone;   // MarkCompleted runs on after the status changes
    const stale = traceStatus !== record.status || ending || (!traceDone && Date.now() - traceAt > TRACE_EVERY_MS);
    if (stale) await loadTrace();
    if ((record.failed_count || 0) !== failedSeen && await loadFailed(false)) failedSeen = record.failed_count || 0;
    drawChart();
    if (FINAL.has(record.status) && traceStatus === record.status && traceDone) stop();
  }

  for (const [action, button] of Object.entries(buttons)) {
    button.addEventListener("click", async () => {
      if (button.dataset.busy) return;   // a double click sends one request (the API keeps one re-send too)
      if (action === "cancel" && !window.confirm("Cancel this campaign? Every recipient not yet sent is skipped.")) return;
      button.dataset.busy = "1";
      button.disabled = true;
      actionStatus.textContent = `${button.textContent}…`;
      actionStatus.className = "action-status";
      try {
        const answer = await api("POST", `${path}/${action}`);
        if (action === "resend-failed") {
          location.hash = `#/campaigns/${encodeURIComponent(answer.campaign_id)}`;
          return;
        }
        actionStatus.textContent = `${answer.previous_status} → ${answer.status}`;
        actionLeft = answer.status;
        stop();
        stop = every(POLL_MS, poll);
      } catch (error) {
        actionStatus.textContent = error.message;
        actionStatus.className = "action-status field-error";
      } finally {
        delete button.dataset.busy;   // the next poll enables it again if the status allows
      }
    });
  }

  let stop = every(POLL_MS, poll);
  return () => stop();
}

// "2026-12-01T09:00" in the browser's zone → "2026-12-01T09:00:00+01:00", as the API asks.
function withOffset(localValue) {
  const date = new Date(localValue);
  if (Number.isNaN(date.getTime())) return localValue;   // the API names the field
  const minutes = -date.getTimezoneOffset();
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${localValue.length === 16 ? `${localValue}:00` : localValue}${minutes >= 0 ? "+" : "-"}${pad(minutes / 60)}:${pad(minutes % 60)}`;
}

function newCampaignView(startFrom) {
  const input = (name, attrs = {}) => h("input", { name, ...attrs });
  const area = (name, attrs = {}) => h("textarea", { name, rows: 7, ...attrs });
  const idempotencyKey = crypto.randomUUID();   // a double click or a retry starts one campaign
  const submit = h("button", { type: "submit", class: "button primary" }, "Start campaign");
  const formStatus = h("p", { class: "action-status", role: "status" });
  const form = h("form", { class: "campaign-form", novalidate: true },
    field("Name", input("campaign_name", { autocomplete: "off" })),
    field("From address", input("from_email", { type: "email", placeholder: "news@example.org" })),
    field("Subject", input("subject", { placeholder: "Hello {{first_name}}" }), "Placeholders: {{first_name}}, {{last_name}}, {{company}}, {{email}}, {{unsubscribe_url}}"),
    field("Text body", area("body", { placeholder: "Dear {{first_name}}, …" })),
    field("HTML body (optional)", area("body_html", { rows: 5, placeholder: "<p>Dear {{first_name}}, …</p>" })),
    audiencePicker(),
    field("Send at (optional)", input("send_at", { type: "datetime-local" }), "Your local time; empty sends now."),
    field("Emails per second (optional)", input("max_send_rate", { type: "number", min: "0", step: "any", inputmode: "decimal" }),
          "At most your SES sending rate; the deployment's default when empty."),
    field("Publish in the public archive", input("archive", { type: "checkbox" }),
          "A web page without personal data, a \"view in browser\" link in each email, and the list's archive and feed."),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, submit, formStatus));
  const picker = templatePicker(form, startFrom, () => schedulePreview());
  form.prepend(picker.element);

  const previewAs = h("input", { name: "contact", type: "email", placeholder: "someone@example.org" });
  const testTo = h("input", { name: "to", placeholder: "me@example.org, colleague@example.org" });
  const testButton = h("button", { type: "submit", class: "button" }, "Send test");
  const testStatus = h("p", { class: "action-status", role: "status" });
  const previewForm = h("form", { class: "preview-form", novalidate: true },
    field("Preview for contact", previewAs, "A contact's email: the preview uses their name and company."),
    h("ul", { class: "form-errors", role: "alert" }));
  const testForm = h("form", { class: "test-form", novalidate: true },
    field("Send a test to", testTo, "Up to 10 addresses, comma-separated; sent as [TEST], counted nowhere."),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, testButton, testStatus));
  const previewSubject = h("p", { class: "preview-subject", "data-preview": "subject" });
  const previewText = h("pre", { class: "preview-text", "data-preview": "text" });
  const previewHtml = h("iframe", { class: "preview-html", title: "HTML preview", sandbox: "", hidden: true });

  main.replaceChildren(pageHead("New campaign"),
    h("div", { class: "two-columns" }, form,
      h("aside", { class: "preview", "aria-labelledby": "preview-h" },
        h("h2", { id: "preview-h" }, "Preview"), previewForm, previewSubject, previewText, previewHtml, testForm)));

  function campaignDocument() {
    const doc = audienceOf(form.elements.namedItem("audience").value);
    for (const name of ["campaign_name", "from_email", "subject", "body", "body_html", "send_at", "max_send_rate"]) {
      const value = form.elements.namedItem(name).value;
      if (!value.trim()) continue;
      if (name === "send_at") doc[name] = withOffset(value);
      else if (name === "max_send_rate") doc[name] = Number.isFinite(Number(value)) ? Number(value) : value;  // the API names a bad one
      else doc[name] = value;
    }
    if (form.elements.namedItem("archive").checked) doc.archive = true;
    return { ...doc, ...picker.fields() };
  }

  let contact = null;   // the chosen contact's fields the templates use
  async function chooseContact() {
    const email = previewAs.value.trim();
    contact = null;
    if (!email) return;
    try {
      const found = await api("GET", `/contacts/${encodeURIComponent(email)}`);
      contact = Object.fromEntries(["email", "first_name", "last_name", "company", "attributes"]
        .filter((k) => found[k] !== undefined).map((k) => [k, found[k]]));
    } catch (error) {
      showErrors(previewForm, error.status === 404 ? [{ field: "contact", message: `${email} is not a contact: previewing with the address only` }] : error.errors, "contact");
      contact = { email };
    }
  }

  let previewTimer = null;
  let previewSeq = 0;
  async function preview() {
    const doc = campaignDocument();
    if (!doc.campaign_name || !doc.from_email || !doc.subject || !(doc.body || doc.body_html)) {
      previewSubject.textContent = "Fill in name, from address, subject and a body to see the preview.";
      previewText.textContent = "";
      previewHtml.hidden = true;
      return;
    }
    const seq = ++previewSeq;
    try {
      const shown = await api("POST", "/campaigns/preview", { ...doc, contact: contact ?? { email: "preview@example.org", first_name: "Alex" } });
      if (seq !== previewSeq) return;   // a newer edit is already on its way
      clearErrors(form);
      previewSubject.textContent = shown.subject;
      previewText.textContent = shown.text;
      previewHtml.hidden = !shown.html;
      previewHtml.srcdoc = shown.html || "";
    } catch (error) {
      if (seq !== previewSeq) return;
      // Live: the errors appear beside their fields while the person types, without moving the focus.
      const mine = error.errors.filter((e) => String(e.field).split(".")[0] === "contact");
      showErrors(form, error.errors.filter((e) => !mine.includes(e)), null, { focus: false });
      if (mine.length) showErrors(previewForm, mine, "contact", { focus: false });
    }
  }
  const schedulePreview = () => { clearTimeout(previewTimer); previewTimer = setTimeout(preview, 350); };
  form.addEventListener("input", () => {
    submit.textContent = form.elements.namedItem("send_at").value ? "Schedule campaign" : "Start campaign";
    schedulePreview();
  });
  previewAs.addEventListener("change", async () => { clearErrors(previewForm); await chooseContact(); schedulePreview(); });
  previewForm.addEventListener("submit", async (event) => { event.preventDefault(); clearErrors(previewForm); await chooseContact(); preview(); });

  testForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(testForm);
    const to = testTo.value.split(",").map((a) => a.trim()).filter(Boolean);
    testStatus.textContent = "Sending…";
    try {
      const answer = await api("POST", "/campaigns/test", { ...campaignDocument(), to, ...(contact ? { contact } : {}) });
      testStatus.textContent = `Test sent to ${answer.sent.map((s) => s.to).join(", ")}.`;
    } catch (error) {
      testStatus.textContent = "";
      const forTest = error.errors.filter((e) => ["to", "contact"].includes(String(e.field).split(".")[0]));
      showErrors(testForm, forTest, "to");
      if (forTest.length < error.errors.length) showErrors(form, error.errors.filter((e) => !forTest.includes(e)));
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearTimeout(previewTimer);
    submit.disabled = true;
    formStatus.textContent = "Starting…";
    try {
      const answer = await api("POST", "/campaigns", campaignDocument(), { "Idempotency-Key": idempotencyKey });
      location.hash = `#/campaigns/${encodeURIComponent(answer.campaign_id)}`;
    } catch (error) {
      formStatus.textContent = "";
      showErrors(form, error.errors);
    } finally {
      submit.disabled = false;
    }
  });
  form.elements.namedItem("campaign_name").focus();
  return () => clearTimeout(previewTimer);
}

function contactsView() {
  const file = h("input", { name: "file", type: "file", accept: ".csv,text/csv" });
  const importButton = h("button", { type: "submit", class: "button primary" }, "Import");
  const importForm = h("form", { class: "import-form", novalidate: true },
    field("CSV file", file, "Header row: email, first_name, last_name, company, lists (lists separated by ;). Existing contacts are updated."),
    h("div", { class: "actions" }, importButton));
  const report = h("div", { class: "import-report", "aria-live": "polite" });

  const email = h("input", { name: "email", type: "email", autocomplete: "off" });
  const lookupForm = h("form", { class: "lookup-form", role: "search", novalidate: true },
    field("Email", email), h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Find contact")));
  const found = h("div", { class: "contact-card", "aria-live": "polite" });

  main.replaceChildren(pageHead("Contacts"),
    h("section", { "aria-labelledby": "import-h" }, h("h2", { id: "import-h" }, "Import from CSV"), importForm, report),
    h("section", { "aria-labelledby": "find-h" }, h("h2", { id: "find-h" }, "Find a contact"), lookupForm, found));

  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(importForm);
    report.replaceChildren();
    if (!file.files.length) { showErrors(importForm, [{ field: "file", message: "choose a CSV file" }]); return; }
    importButton.disabled = true;
    try {
      const text = await file.files[0].text();
      const answer = await api("POST", "/contacts/import", text, { "Content-Type": "text/csv" });
      report.append(h("p", { class: "ok" }, `Imported ${number(answer.imported)} contact${answer.imported === 1 ? "" : "s"}.`));
      if (answer.rejected.length) {
        report.append(h("p", { class: "field-error" }, `${number(answer.rejected.length)} row${answer.rejected.length === 1 ? "" : "s"} rejected:`),
          h("div", { class: "table-wrap" }, h("table", { class: "rejected" },
            h("thead", {}, h("tr", {}, ["Line", "Email", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, answer.rejected.map((r) => h("tr", {},
              h("td", { class: "num" }, r.line), h("td", {}, r.email ?? ""), h("td", { class: "reason" }, r.error)))))));
      }
    } catch (error) {
      showErrors(importForm, error.errors, "file");   // header problems name a column: they belong to the file
    } finally {
      importButton.disabled = false;
    }
  });

  lookupForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(lookupForm);
    found.replaceChildren();
    const address = email.value.trim();
    if (!address) { showErrors(lookupForm, [{ field: "email", message: "type the contact's email address" }]); return; }
    try {
      const c = await api("GET", `/contacts/${encodeURIComponent(address)}`);
      const row = (name, value) => (value ? [h("dt", {}, name), h("dd", {}, value)] : []);
      found.append(h("dl", {},
        row("Email", c.email), row("Status", badge(c.status || "subscribed")),
        row("Name", [c.first_name, c.last_name].filter(Boolean).join(" ")), row("Company", c.company),
        row("Lists", (c.lists || []).join(", ")), row("Suppressed", when(c.suppressed_at)),
        row("Why", Object.entries(c.suppression || {}).map(([k, v]) => `${k}: ${v}`).join(", ")),
        row("Added", when(c.created_at)), row("Updated", when(c.updated_at))));
    } catch (error) {
      showErrors(lookupForm, error.errors, "email");
    }
  });
}

// --- routing ------------------------------------------------------------------------------------
// [pattern, view, nav]: a view gets the pattern's groups and returns a function that stops its timers.
const routes = [
  ...audienceRoutes,
  [/^#?\/?$/, campaignsView, "campaigns"],
  [/^#\/campaigns\/([^/]+)$/, campaignView, "campaigns"],
  [/^#\/new(?:\/from\/([^/]+))?$/, newCampaignView, "new"],
  [/^#\/contacts$/, contactsView, "contacts"],
  ...templateRoutes,
  ...reportRoutes,
];

function route() {
  leaveView();
  leaveView = () => {};
  const hash = location.hash || "#/";
  for (const [pattern, view, nav] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    leaveView = view(...match.slice(1)) || (() => {});
    return;
  }
  main.replaceChildren(pageHead("Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the campaigns")));
}

window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
route();
