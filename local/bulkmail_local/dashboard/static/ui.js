// What every dashboard view shares: building DOM (text, never markup), calling the API, forms that show
// each API error beside its field, and the page heading. A view module exports `routes` (see app.js).

const SVG = "http://www.w3.org/2000/svg";
export const main = document.getElementById("main");

// --- DOM ----------------------------------------------------------------------------------------
export function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));   // text, never markup
  }
  return el;
}
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
export const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

export const number = (n) => (n ?? 0).toLocaleString("en");
export const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" }) : "");
export const badge = (status) => h("span", { class: `badge badge-${status}` }, status);

export function progressBar(record, label) {
  const total = record.total_contacts || 0;
  const done = record.processed_count || 0;
  const bar = h("progress", { max: total || 1, value: total ? done : (record.status === "completed" ? 1 : 0),
                              "aria-label": label });
  return h("div", { class: "progress" }, bar,
           h("span", { class: "progress-text" }, total ? `${Math.round((done / total) * 100)} %` : "–"));
}

// --- the API ------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join("; "));
    this.status = status;
    this.errors = errors;
  }
}

export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (typeof body === "string") init.body = body;
  else if (body !== undefined) init.body = JSON.stringify(body);
  // JSON even with no body: the local servers refuse a change sent as anything a page of another site could send.
  if (method !== "GET" && !init.headers["Content-Type"]) init.headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, [{ field: "$", message: `cannot reach the API (${error.message})` }]);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = { message: text.slice(0, 300) };   // API Gateway's own errors are not always JSON
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.errors ?? [{ field: "$", message: data?.message ?? `HTTP ${response.status}` }]);
  }
  return data;
}

// Runs `task` now and then every `ms` until stopped; a failing task reports its own error.
export function every(ms, task) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    await task();
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// --- forms: a label, the input, and the place its API error goes --------------------------------
export function field(label, input, hint) {
  const id = `field-${input.name}`;
  input.id = id;
  input.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return h("div", { class: "field" },
    h("label", { for: id }, label), input,
    hint && h("p", { class: "hint", id: `${id}-hint` }, hint),
    h("p", { class: "field-error", id: `${id}-error`, "data-error-for": input.name }));
}

export function clearErrors(form) {
  form.querySelectorAll("[data-error-for]").forEach((slot) => { slot.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
  const general = form.querySelector(".form-errors");
  if (general) general.replaceChildren();
}

// The API names the field of each problem ("subject", "send_at", "contact", "$"): show each beside it.
export function showErrors(form, errors, fallbackField, { focus = true } = {}) {
  clearErrors(form);
  const general = [];
  let first = null;
  for (const error of errors) {
    const name = String(error.field).split(".")[0];
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`)
      ?? (fallbackField && form.querySelector(`[data-error-for="${CSS.escape(fallbackField)}"]`));
    if (!slot) { general.push(error.field === "$" ? error.message : `${error.field}: ${error.message}`); continue; }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${error.message}` : error.message;
    const input = form.elements.namedItem(slot.dataset.errorFor);
    if (input) { input.setAttribute("aria-invalid", "true"); first ??= input; }
  }
  const box = form.querySelector(".form-errors");
  if (box) box.replaceChildren(...general.map((message) => h("li", {}, message)));
  if (focus) first?.focus();
}

// --- views ---------------------------------------------------------------------------------------
export function pageHead(title, ...extra) {
  document.title = `${title} · bulkmail`;
  return h("div", { class: "page-head" }, h("h1", {}, title), ...extra);
}
