// The audience pages: contacts (browse with filters, page by page, edit one, export CSV), lists and
// segments with live counts, and the audience picker of the new-campaign form. Built on ui.js.
import { api, badge, clearErrors, every, field, h, main, number, pageHead, showErrors, when } from "./ui.js";

const COUNTS_EVERY_MS = 5000;   // lists and segments pages: counts while the page is open
const PAGE = 50;
const MAX_READS = 20;   // requests one "load" may make to fill a page of filtered contacts
const STATUSES = ["subscribed", "pending", "unsubscribed", "bounced", "complained"];
const OPS = ["eq", "neq", "in", "contains", "exists", "lt", "gt"];
const input = (name, attrs = {}) => h("input", { name, autocomplete: "off", ...attrs });
const select = (name, options, attrs = {}) => h("select", { name, ...attrs },
  options.map(([value, label]) => h("option", { value }, label)));
const enc = encodeURIComponent;

async function listIds() {
  try {
    return (await api("GET", "/lists")).lists.map((l) => l.list_id);
  } catch (error) {
    return [];
  }
}

// --- contacts -------------------------------------------------------------------------------------
function filtersFromHash() {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  return Object.fromEntries(["list", "status", "field", "value"].map((k) => [k, query.get(k) || ""]));
}

function contactsView() {
  const filters = filtersFromHash();
  const listSelect = select("list", [["", "Any list"]]);
  const form = h("form", { class: "filter-form", role: "search", novalidate: true },
    field("List", listSelect),
    field("Status", select("status", [["", "Any status"], ...STATUSES.map((s) => [s, s])])),
    field("Attribute", input("field", { placeholder: "plan" })),
    field("Value", input("value", { placeholder: "pro" }), "Contacts whose attribute equals it; empty: has the attribute."),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "button primary" }, "Filter"),
      h("button", { type: "button", class: "button", "data-action": "export" }, "Export CSV")));
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load more");
  main.replaceChildren(pageHead("Audience"), form, status,
    h("div", { class: "table-wrap" }, h("table", { class: "contacts" },
      h("thead", {}, h("tr", {}, ["Email", "Name", "Status", "Lists", "Attributes", "Updated"].map((t) => h("th", { scope: "col" }, t)))),
      rows)),
    more);
  for (const [name, value] of Object.entries(filters)) form.elements.namedItem(name).value = value;
  listIds().then((ids) => {
    listSelect.append(...ids.map((id) => h("option", { value: id }, id)));
    listSelect.value = filters.list;
  });

  let nextToken = null;
  let shown = 0;
  // The API filters after it reads, so a page may hold fewer matches than asked (even none) while there
  // are more: read on until a page's worth is shown or the contacts end (a bounded number of requests).
  async function load(reset) {
    if (reset) { rows.replaceChildren(); shown = 0; nextToken = null; }
    status.textContent = "Loading…";
    const target = shown + PAGE;
    for (let request = 0; request < MAX_READS; request += 1) {
      if (!(await loadPage())) return;
      if (shown >= target || !nextToken) break;
    }
    more.hidden = !nextToken;
    status.textContent = shown ? `${number(shown)} contact${shown === 1 ? "" : "s"} shown${nextToken ? ", more to load" : ""}.` : (nextToken ? "None yet: load more to read on." : "No contacts match.");
  }
  async function loadPage() {
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
    if (nextToken) query.set("next_token", nextToken);
    try {
      const answer = await api("GET", `/contacts?${query}`);
      rows.append(...answer.contacts.map((c) => h("tr", { "data-contact": c.email },
        h("td", {}, h("a", { href: `#/audience/contact/${enc(c.email)}` }, c.email)),
        h("td", {}, [c.first_name, c.last_name].filter(Boolean).join(" ")),
        h("td", {}, badge(c.status || "subscribed")),
        h("td", {}, (c.lists || []).join(", ")),
        h("td", { class: "small" }, Object.entries(c.attributes || {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ")),
        h("td", { class: "small" }, when(c.updated_at || c.created_at)))));
      shown += answer.contacts.length;
      nextToken = answer.next_token;
      return true;
    } catch (error) {
      status.textContent = "";
      showErrors(form, error.errors);
      return false;
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    const chosen = Object.fromEntries(["list", "status", "field", "value"].map((k) => [k, form.elements.namedItem(k).value.trim()]));
    const query = new URLSearchParams(Object.entries(chosen).filter(([, v]) => v));
    location.hash = `#/audience${query.toString() ? `?${query}` : ""}`;   // the filters are in the address: a view to share
  });
  form.querySelector("[data-action=export]").addEventListener("click", async () => {
    clearErrors(form);
    const list = form.elements.namedItem("list").value;
    try {
      const response = await fetch(`/contacts/export${list ? `?list=${enc(list)}` : ""}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `contacts${list ? `-${list}` : ""}.csv` });
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (error) {
      showErrors(form, [{ field: "$", message: `the export failed: ${error.message}` }]);
    }
  });
  more.addEventListener("click", () => load(false));
  load(true);
}

function contactView(encoded) {
  const email = decodeURIComponent(encoded);
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  main.replaceChildren(pageHead(email, h("a", { class: "button", href: "#/audience" }, "All contacts")), status);
  api("GET", `/contacts/${enc(email)}`).then((c) => {
    status.textContent = "";
    const saved = h("p", { class: "action-status", role: "status" });
    const form = h("form", { class: "contact-form", novalidate: true },
      field("First name", input("first_name", { value: c.first_name || "" })),
      field("Last name", input("last_name", { value: c.last_name || "" })),
      field("Company", input("company", { value: c.company || "" })),
      field("Status", select("status", [["subscribed", "subscribed"], ["unsubscribed", "unsubscribed"]]),
            `Now ${c.status || "subscribed"}. Bounced, complained and pending contacts stay so until they opt in again.`),
      field("Lists", input("lists", { value: (c.lists || []).join(", ") }), "Comma-separated list ids."),
      field("Attributes (JSON)", h("textarea", { name: "attributes", rows: 6 }, JSON.stringify(c.attributes || {}, null, 2)),
            "Custom fields; a null removes one."),
      h("ul", { class: "form-errors", role: "alert" }),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Save"), saved));
    form.elements.namedItem("status").value = ["subscribed", "unsubscribed"].includes(c.status) ? c.status : "unsubscribed";
    const consent = Object.entries(c.consent || {});
    main.append(form, consent.length ? h("section", { "aria-labelledby": "consent-h" }, h("h2", { id: "consent-h" }, "Consent"),
      h("dl", {}, consent.flatMap(([list, k]) => [h("dt", {}, list),
        h("dd", {}, `${k.text || ""} — asked ${when(k.requested_at)} from ${k.ip || "?"} (${k.source || "?"}), confirmed ${when(k.confirmed_at)}`)]))) : "");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const changes = {};
      for (const name of ["first_name", "last_name", "company"]) changes[name] = form.elements.namedItem(name).value.trim();
      changes.lists = form.elements.namedItem("lists").value.split(",").map((s) => s.trim()).filter(Boolean);
      const wanted = form.elements.namedItem("status").value;
      if (wanted !== (c.status || "subscribed")) changes.status = wanted;
      try {
        changes.attributes = JSON.parse(form.elements.namedItem("attributes").value || "{}");
      } catch (error) {
        showErrors(form, [{ field: "attributes", message: `is not JSON: ${error.message}` }]);
        return;
      }
      try {
        Object.assign(c, await api("PATCH", `/contacts/${enc(email)}`, changes));
        saved.textContent = "Saved.";
      } catch (error) {
        saved.textContent = "";
        showErrors(form, error.errors);
      }
    });
  }).catch((error) => { status.textContent = `Could not load the contact: ${error.message}`; });
}

// --- lists ----------------------------------------------------------------------------------------
function listsView() {
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const rows = h("tbody");
  const form = h("form", { class: "list-form", novalidate: true },
    field("List id", input("list_id", { placeholder: "newsletter" })),
    field("Name (optional)", input("name")),
    field("Description (optional)", input("description")),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Create list")));
  main.replaceChildren(pageHead("Lists"), status,
    h("div", { class: "table-wrap" }, h("table", { class: "lists" },
      h("thead", {}, h("tr", {}, ["List", "Description", "Members", "Subscribed", "Signup form", ""].map((t) => h("th", { scope: "col" }, t)))),
      rows)),
    h("section", { "aria-labelledby": "new-list-h" }, h("h2", { id: "new-list-h" }, "New list"), form));

  async function refresh() {
    try {
      const { lists } = await api("GET", "/lists");
      rows.replaceChildren(...lists.map((l) => {
        const remove = h("button", { type: "button", class: "button danger", "aria-label": `Delete list ${l.list_id}` }, "Delete");
        remove.addEventListener("click", async () => {
          if (!confirm(`Delete the list ${l.list_id}? Its contacts stay, on their other lists.`)) return;
          try { await api("DELETE", `/lists/${enc(l.list_id)}`); refresh(); } catch (error) { status.textContent = error.message; }
        });
        const snippet = `<iframe src="${location.origin}/subscribe/form/${enc(l.list_id)}" title="Subscribe to ${l.list_id}" width="400" height="320"></iframe>`;
        return h("tr", { "data-list": l.list_id },
          h("td", {}, h("a", { href: `#/audience?list=${enc(l.list_id)}` }, l.name || l.list_id), h("div", { class: "muted small" }, l.list_id)),
          h("td", {}, l.description || ""),
          h("td", { class: "num", "data-count": "members" }, number(l.members)),
          h("td", { class: "num", "data-count": "subscribed" }, number(l.subscribed)),
          h("td", {}, h("a", { href: `/subscribe/form/${enc(l.list_id)}`, target: "_blank", rel: "noopener" }, "Open"),
            h("details", {}, h("summary", {}, "Embed"), h("code", { class: "small" }, snippet))),
          h("td", {}, remove));
      }));
      status.textContent = lists.length ? "" : "No lists yet: create one, or import contacts with a lists column.";
    } catch (error) {
      status.textContent = `Could not load lists: ${error.message}`;
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const doc = Object.fromEntries(["list_id", "name", "description"]
      .map((k) => [k, form.elements.namedItem(k).value.trim()]).filter(([, v]) => v));
    try {
      await api("POST", "/lists", doc);
      form.reset();
      refresh();
    } catch (error) {
      showErrors(form, error.errors);
    }
  });
  return every(COUNTS_EVERY_MS, refresh);
}

// --- segments -------------------------------------------------------------------------------------
function conditionRow() {
  const row = h("div", { class: "condition", role: "group", "aria-label": "Condition" },
    input("match_field", { placeholder: "field (plan, status, …)", "aria-label": "Field" }),
    select("match_op", OPS.map((o) => [o, o]), { "aria-label": "Operator" }),
    input("match_value", { placeholder: "value (in: a, b)", "aria-label": "Value" }));
  const remove = h("button", { type: "button", class: "button", "aria-label": "Remove condition" }, "×");
  remove.addEventListener("click", () => row.remove());
  row.append(remove);
  return row;
}

function conditionValue(op, text) {
  if (op === "exists") return true;
  if (op === "in") return text.split(",").map((s) => s.trim()).filter(Boolean).map(typed);
  return typed(text.trim());
}
const typed = (text) => (text !== "" && Number.isFinite(Number(text)) ? Number(text) : text);

function segmentsView() {
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const rows = h("tbody");
  const conditions = h("div", { class: "conditions" }, conditionRow());
  const addCondition = h("button", { type: "button", class: "button" }, "Add condition");
  addCondition.addEventListener("click", () => conditions.append(conditionRow()));
  const form = h("form", { class: "segment-form", novalidate: true },
    field("Segment id", input("segment_id", { placeholder: "pro-users" })),
    field("Lists", input("lists", { placeholder: "newsletter, customers" }), "Comma-separated: contacts on any of them."),
    h("fieldset", {}, h("legend", {}, "Conditions (all must hold)"), conditions, addCondition,
      h("p", { class: "field-error", "data-error-for": "match" })),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Create segment")));
  main.replaceChildren(pageHead("Segments"), status,
    h("div", { class: "table-wrap" }, h("table", { class: "segments" },
      h("thead", {}, h("tr", {}, ["Segment", "Lists", "Conditions", "Recipients now", ""].map((t) => h("th", { scope: "col" }, t)))),
      rows)),
    h("section", { "aria-labelledby": "new-segment-h" }, h("h2", { id: "new-segment-h" }, "New segment"), form));

  async function refresh() {
    try {
      const { segments } = await api("GET", "/segments");
      const counts = await Promise.all(segments.map((s) => api("GET", `/segments/${enc(s.segment_id)}/count`).catch(() => null)));
      rows.replaceChildren(...segments.map((s, i) => {
        const remove = h("button", { type: "button", class: "button danger", "aria-label": `Delete segment ${s.segment_id}` }, "Delete");
        remove.addEventListener("click", async () => {
          if (!confirm(`Delete the segment ${s.segment_id}?`)) return;
          try { await api("DELETE", `/segments/${enc(s.segment_id)}`); refresh(); } catch (error) { status.textContent = error.message; }
        });
        const count = counts[i];
        return h("tr", { "data-segment": s.segment_id },
          h("td", {}, s.segment_id),
          h("td", {}, (s.lists || []).join(", ")),
          h("td", { class: "small" }, (s.match || []).map((m) => `${m.field} ${m.op} ${m.op === "exists" ? "" : JSON.stringify(m.value)}`).join(" and ")),
          h("td", { class: "num", "data-count": "recipients", title: count ? `${count.read_units} read units` : "" }, count ? number(count.count) : "?"),
          h("td", {}, remove));
      }));
      status.textContent = segments.length ? "" : "No segments yet.";
    } catch (error) {
      status.textContent = `Could not load segments: ${error.message}`;
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const match = [...conditions.querySelectorAll(".condition")].map((row) => {
      const get = (name) => row.querySelector(`[name=${name}]`).value;
      return { field: get("match_field").trim(), op: get("match_op"), value: conditionValue(get("match_op"), get("match_value")) };
    }).filter((m) => m.field);
    const doc = {
      segment_id: form.elements.namedItem("segment_id").value.trim(),
      lists: form.elements.namedItem("lists").value.split(",").map((s) => s.trim()).filter(Boolean),
      match,
    };
    try {
      await api("POST", "/segments", doc);
      form.reset();
      conditions.replaceChildren(conditionRow());
      refresh();
    } catch (error) {
      // match[0].value and the like: beside the conditions, naming the one at fault
      showErrors(form, error.errors.map((e) => (String(e.field).startsWith("match")
        ? { field: "match", message: `${e.field}: ${e.message}` } : e)));
    }
  });
  return every(COUNTS_EVERY_MS, refresh);
}

// --- the new-campaign form's audience -------------------------------------------------------------
// A select of everyone subscribed, each list and each segment; `audienceOf(value)` is the campaign's part.
export function audiencePicker() {
  const picker = h("select", { name: "audience" }, h("option", { value: "" }, "Everyone subscribed"));
  Promise.all([api("GET", "/lists").catch(() => ({ lists: [] })), api("GET", "/segments").catch(() => ({ segments: [] }))])
    .then(([{ lists }, { segments }]) => {
      picker.append(
        h("optgroup", { label: "Lists" }, lists.map((l) => h("option", { value: `list:${l.list_id}` }, `${l.name || l.list_id} (${number(l.subscribed)} subscribed)`))),
        h("optgroup", { label: "Segments" }, segments.map((s) => h("option", { value: `segment:${s.segment_id}` }, s.segment_id))));
    });
  return h("div", {}, field("Audience", picker, "Only subscribed contacts are mailed: of the list, or matching the segment."),
    h("p", { class: "field-error", "data-error-for": "list" }), h("p", { class: "field-error", "data-error-for": "segment" }));
}

export function audienceOf(value) {
  const [kind, ...rest] = String(value || "").split(":");
  return kind === "list" || kind === "segment" ? { [kind]: rest.join(":") } : {};
}

export const routes = [
  [/^#\/audience(\?.*)?$/, contactsView, "audience"],
  [/^#\/audience\/contact\/(.+)$/, contactView, "audience"],
  [/^#\/lists$/, listsView, "lists"],
  [/^#\/segments$/, segmentsView, "segments"],
];
