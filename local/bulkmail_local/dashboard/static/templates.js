// Stored templates: the list (with the starter templates bulkmail ships), an editor that saves each change
// as a new version, a preview for a contact, and the picker the new-campaign form starts from.
import { api, clearErrors, field, h, main, pageHead, showErrors, when } from "./ui.js";

const CONTENT = ["subject", "body_html", "body"];

function templatesView() {
  const status = h("p", { class: "muted", role: "status" }, "Loading…");
  const rows = h("tbody");
  const starters = h("tbody");
  main.replaceChildren(
    pageHead("Templates", h("a", { class: "button primary", href: "#/templates/new" }, "New template")),
    status,
    h("div", { class: "table-wrap" }, h("table", { class: "templates" },
      h("thead", {}, h("tr", {}, ["Template", "Subject", "Version", "Saved", ""].map((t) => h("th", { scope: "col" }, t)))),
      rows)),
    h("h2", {}, "Starter templates"),
    h("p", { class: "muted" }, "Responsive, with a plain-text part; they pass the deliverability check. Start a campaign from one, or save one to edit it."),
    h("div", { class: "table-wrap" }, h("table", { class: "starters" },
      h("thead", {}, h("tr", {}, ["Starter", "Subject", ""].map((t) => h("th", { scope: "col" }, t)))),
      starters)));

  (async () => {
    try {
      const [stored, shipped] = await Promise.all([api("GET", "/templates"), api("GET", "/starter-templates")]);
      rows.replaceChildren(...stored.templates.map((t) => h("tr", { "data-template": t.template_id },
        h("td", {}, h("a", { href: `#/templates/${encodeURIComponent(t.template_id)}` }, t.name || t.template_id),
          h("div", { class: "muted small" }, t.template_id)),
        h("td", {}, t.subject),
        h("td", { class: "num" }, `v${t.version}`),
        h("td", { class: "small" }, when(t.created_at)),
        h("td", {}, h("a", { class: "button", href: `#/new/from/${encodeURIComponent(t.template_id)}` }, "New campaign")))));
      status.textContent = stored.templates.length ? "" : "No stored templates yet.";
      starters.replaceChildren(...shipped.templates.map((t) => {
        const saveStatus = h("span", { class: "action-status", role: "status" });
        const save = h("button", { type: "button", class: "button" }, "Save as template");
        save.addEventListener("click", async () => {
          try {
            await api("POST", "/templates", Object.fromEntries(["template_id", "name", ...CONTENT].map((k) => [k, t[k]])));
            location.hash = `#/templates/${encodeURIComponent(t.template_id)}`;
          } catch (error) {
            saveStatus.textContent = error.message;
          }
        });
        return h("tr", { "data-starter": t.template_id },
          h("td", {}, h("strong", {}, t.name)),
          h("td", { class: "small" }, t.subject),
          h("td", {}, h("a", { class: "button", href: `#/new/from/starter:${encodeURIComponent(t.template_id)}` }, "New campaign"),
            " ", save, " ", saveStatus));
      }));
    } catch (error) {
      status.textContent = `Could not load templates: ${error.message}`;
    }
  })();
}

function templateView(templateId) {
  const id = templateId ? decodeURIComponent(templateId) : null;
  const input = (name, attrs = {}) => h("input", { name, autocomplete: "off", ...attrs });
  const area = (name, rows) => h("textarea", { name, rows });
  const submit = h("button", { type: "submit", class: "button primary" }, id ? "Save as a new version" : "Save template");
  const formStatus = h("p", { class: "action-status", role: "status" });
  const form = h("form", { class: "template-form", novalidate: true },
    field("Template id", input("template_id", id ? { value: id, readonly: true } : { placeholder: "monthly-news" }),
          "Letters, digits, '_' and '-'; campaigns name it."),
    field("Name (optional)", input("name")),
    field("Subject", input("subject"), "Placeholders: {{first_name}}, {{last_name}}, {{company}}, {{email}}, {{campaign_name}}, {{unsubscribe_url}}"),
    field("HTML body", area("body_html", 12)),
    field("Text body (optional)", area("body", 7), "Made from the HTML when empty."),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, submit, formStatus));

  const versions = h("ol", { class: "versions", reversed: true });
  const previewAs = h("input", { name: "contact", type: "email", placeholder: "someone@example.org" });
  const previewForm = h("form", { class: "preview-form", novalidate: true },
    field("Preview for", previewAs, "A contact's address; the saved version is rendered with their values."),
    h("ul", { class: "form-errors", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Preview")));
  const previewSubject = h("p", { class: "preview-subject", "data-preview": "subject" });
  const previewText = h("pre", { class: "preview-text", "data-preview": "text" });
  const previewHtml = h("iframe", { class: "preview-html", title: "HTML preview", sandbox: "", hidden: true });

  main.replaceChildren(pageHead(id ? `Template ${id}` : "New template"),
    h("div", { class: "two-columns" }, form,
      h("aside", { class: "preview", "aria-labelledby": "preview-h" },
        h("h2", { id: "preview-h" }, "Preview"), previewForm, previewSubject, previewText, previewHtml,
        h("h2", {}, "Versions"), versions)));

  function fill(template) {
    for (const name of ["name", ...CONTENT]) form.elements.namedItem(name).value = template[name] ?? "";
    versions.replaceChildren(...(template.versions ?? []).map((v) => h("li", { "data-version": v.version },
      `v${v.version} · ${when(v.created_at)} · ${v.subject}`)));
  }
  async function load() {
    if (!id) return;
    try {
      fill(await api("GET", `/templates/${encodeURIComponent(id)}`));
    } catch (error) {
      formStatus.textContent = `Could not load the template: ${error.message}`;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const doc = {};
    for (const name of ["template_id", "name", ...CONTENT]) {
      const value = form.elements.namedItem(name).value;
      if (value.trim()) doc[name] = value;
    }
    try {
      const saved = id ? await api("PUT", `/templates/${encodeURIComponent(id)}`, doc) : await api("POST", "/templates", doc);
      formStatus.textContent = `Saved version ${saved.version}.`;
      if (!id) location.hash = `#/templates/${encodeURIComponent(saved.template_id)}`;
      else load();
    } catch (error) {
      showErrors(form, error.errors);
    }
  });

  previewForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(previewForm);
    const email = previewAs.value.trim() || "preview@example.org";
    let contact = { email };
    try {
      const found = await api("GET", `/contacts/${encodeURIComponent(email)}`);
      contact = Object.fromEntries(["email", "first_name", "last_name", "company", "attributes"]
        .filter((k) => found[k] !== undefined).map((k) => [k, found[k]]));
    } catch (error) { /* not a contact: previewed with the address only */ }
    try {
      const shown = await api("POST", `/templates/${encodeURIComponent(id ?? form.elements.namedItem("template_id").value)}/preview`, { contact });
      previewSubject.textContent = shown.subject;
      previewText.textContent = shown.text;
      previewHtml.hidden = !shown.html;
      previewHtml.srcdoc = shown.html || "";
    } catch (error) {
      showErrors(previewForm, error.errors, "contact");
    }
  });
  load();
}

// The new-campaign form's "Start from": a stored template (the campaign names it and its version, the form's
// fields override it) or a starter (its content is copied into the form). `startFrom`: "id" or "starter:id".
export function templatePicker(form, startFrom, onChange) {
  const select = h("select", { name: "template_id" }, h("option", { value: "" }, "Nothing: write it here"));
  let version = null;
  let starters = [];
  async function pick(value) {
    version = null;
    let content = null;
    if (value.startsWith("starter:")) {
      content = starters.find((s) => `starter:${s.template_id}` === value);
    } else if (value) {
      content = await api("GET", `/templates/${encodeURIComponent(value)}`);
      version = content.version;
    }
    if (content) for (const name of CONTENT) form.elements.namedItem(name).value = content[name] ?? "";
    onChange();
  }
  const picked = () => pick(select.value).catch((error) => showErrors(form, error.errors, "template_id", { focus: false }));
  select.addEventListener("change", picked);
  (async () => {
    let stored, shipped;
    try {
      [stored, shipped] = await Promise.all([api("GET", "/templates"), api("GET", "/starter-templates")]);
    } catch (error) {
      showErrors(form, [{ field: "template_id", message: `templates are not available: ${error.message}` }], null, { focus: false });
      return;
    }
    starters = shipped.templates;
    select.append(
      h("optgroup", { label: "Stored templates" }, stored.templates.map((t) =>
        h("option", { value: t.template_id }, `${t.name || t.template_id} (v${t.version})`))),
      h("optgroup", { label: "Starter templates" }, starters.map((t) =>
        h("option", { value: `starter:${t.template_id}` }, t.name))));
    if (startFrom) {
      select.value = decodeURIComponent(startFrom);
      await picked();
    }
  })();
  return {
    element: field("Start from a template", select, "Fills subject and bodies; what you change here overrides the template."),
    // What the campaign document gets: the stored template and the version it was started from.
    fields: () => (select.value && !select.value.startsWith("starter:") ? { template_id: select.value, template_version: version } : {}),
  };
}

export const routes = [
  [/^#\/templates$/, templatesView, "templates"],
  [/^#\/templates\/new$/, () => templateView(null), "templates"],
  [/^#\/templates\/([^/]+)$/, templateView, "templates"],
];
