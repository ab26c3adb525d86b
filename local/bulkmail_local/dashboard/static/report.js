// A campaign's report: deliveries, opens and clicks (unique and total), per link and per hour.
// GET /campaigns/{id}/report, polled while the view is open; the CSV is the same report.
import { ApiError, api, every, h, main, number } from "./ui.js";

const POLL_MS = 5000;  // a Query of the campaign's counters per poll
const percent = (rate) => (rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`);

function reportView(rawId) {
  const id = decodeURIComponent(rawId);
  const path = `/campaigns/${encodeURIComponent(id)}`;
  const title = h("h1", {}, `Report: ${id}`);
  const meta = h("p", { class: "muted" });
  const counters = h("div", { class: "counters" });
  const links = h("tbody");
  const hours = h("tbody");
  const loadError = h("p", { class: "field-error", role: "alert" });
  const table = (label, columns, body) => h("div", { class: "table-wrap" }, h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), body));

  document.title = `Report ${id} · bulkmail`;
  main.replaceChildren(
    h("p", {}, h("a", { href: `#${path}` }, "← Campaign")),
    h("div", { class: "page-head" }, title,
      h("a", { class: "button", href: `${path}/report?format=csv`, download: `${id}-report.csv` }, "Download CSV")),
    meta, loadError, counters,
    h("section", { "aria-labelledby": "links-h" }, h("h2", { id: "links-h" }, "Links"),
      table("Clicks per link", ["Link", "Unique clicks", "Clicks"], links)),
    h("section", { "aria-labelledby": "hours-h" }, h("h2", { id: "hours-h" }, "Over time (UTC hours)"),
      table("Deliveries, opens and clicks per hour", ["Hour", "Delivered", "Unique opens", "Opens", "Unique clicks", "Clicks"], hours)));

  function draw(r) {
    title.textContent = `Report: ${r.campaign_name || r.campaign_id}`;
    const t = r.tracking;
    meta.textContent = [
      t.opens ? "opens tracked" : "opens not tracked",
      t.clicks ? "clicks tracked" : "clicks not tracked",
      t.privacy_mode ? "privacy mode: counted, tied to nobody" : "",
      `open rate ${percent(r.open_rate)}`, `click rate ${percent(r.click_rate)}`,
    ].filter(Boolean).join(" · ");
    const card = (name, key) => h("div", { class: `counter${r[key] ? " nonzero" : ""}` },
      h("span", { class: "counter-value", "data-report": key }, number(r[key])), h("span", { class: "counter-name" }, name));
    counters.replaceChildren(
      card("Sent", "sent"), card("Delivered", "delivered"), card("Unique opens", "opens_unique"), card("Opens", "opens"),
      card("Unique clicks", "clicks_unique"), card("Clicks", "clicks"), card("Bounces", "bounces"),
      card("Complaints", "complaints"), card("Unsubscribes", "unsubscribes"));
    links.replaceChildren(...(r.links.length ? r.links.map((l) => h("tr", {},
      h("td", {}, h("a", { href: l.url, rel: "noopener noreferrer", target: "_blank" }, l.url)),
      h("td", { class: "num" }, number(l.clicks_unique)), h("td", { class: "num" }, number(l.clicks))))
      : [h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No clicks yet."))]));
    hours.replaceChildren(...(r.curves.length ? r.curves.map((p) => h("tr", {},
      h("td", {}, p.hour.replace("T", " ") + ":00"),
      ...["delivered", "opens_unique", "opens", "clicks_unique", "clicks"].map((k) => h("td", { class: "num" }, number(p[k])))))
      : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing yet."))]));
  }

  return every(POLL_MS, async () => {
    try {
      draw(await api("GET", `${path}/report`));
      loadError.textContent = "";
    } catch (error) {
      loadError.textContent = error instanceof ApiError ? error.message : String(error);
    }
  });
}

// [pattern, view, nav]: spread into app.js's routes.
export const routes = [
  [/^#\/campaigns\/([^/]+)\/report$/, reportView, "campaigns"],
];
