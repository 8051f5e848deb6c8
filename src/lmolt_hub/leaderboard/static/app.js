// lmolt-hub leaderboard page: reads leaderboard.json, renders a sortable, filterable table.
// Every value from the data is written with textContent (never innerHTML), so a model
// named "<script>..." is shown as text and never parsed as markup.
"use strict";

(function () {
  const DIRECTION_SHORT = { caption2smiles: "L\u2192M", smiles2caption: "M\u2192L" };
  const state = { doc: null, sortKey: "rank", sortDir: "asc" };
  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "\u2013";
    if (typeof value !== "number") return String(value);
    const abs = Math.abs(value);
    return abs >= 100 ? value.toFixed(1) : abs >= 10 ? value.toFixed(2) : value.toFixed(3);
  }

  function group() {
    const d = $("filter-direction").value;
    return d === "all" ? "overall" : d;
  }

  function shownDirections() {
    const d = $("filter-direction").value;
    return d === "all" ? state.doc.directions : [d];
  }

  // Column definitions: key, header, how to read a sortable value and an optional CI from a row.
  function columns() {
    const g = group();
    const cols = [
      { key: "rank", label: "Rank", value: (r) => r.rank[g] ?? null, numeric: true, integer: true },
      { key: "kind", label: "Kind", value: (r) => r.kind, text: true },
      { key: "model", label: "Model", value: (r) => r.model, text: true },
      { key: "method", label: "Method", value: (r) => r.method ?? "", text: true },
      { key: "fusion", label: "Fusion", value: (r) => r.fusion ?? "", text: true },
      {
        key: "aggregate",
        label: "Aggregate",
        value: (r) => (r.aggregate[g] ? r.aggregate[g].value : null),
        ci: (r) => (r.aggregate[g] ? r.aggregate[g].ci : null),
        numeric: true,
        group: "aggregate",
      },
    ];
    for (const d of shownDirections()) {
      for (const m of state.doc.metrics[d] || []) {
        cols.push({
          key: d + "." + m.key,
          label: m.label + (m.higher_is_better ? " \u2191" : " \u2193"),
          value: (r) => (r.results[d] && r.results[d][m.key] !== undefined ? r.results[d][m.key] : null),
          ci: (r) => (r.confidence_intervals[d] ? r.confidence_intervals[d][m.key] : null),
          numeric: true,
          group: d,
        });
      }
      cols.push({
        key: d + ".win_rate",
        label: "Win rate \u2191",
        value: (r) => (r.win_rate && r.win_rate[d] !== undefined ? r.win_rate[d] : null),
        numeric: true,
        group: d,
      });
    }
    return cols;
  }

  function filteredRows() {
    const kind = $("filter-kind").value;
    const method = $("filter-method").value;
    const fusion = $("filter-fusion").value;
    const text = $("filter-text").value.trim().toLowerCase();
    const dirs = shownDirections();
    return state.doc.rows.filter(
      (r) =>
        (kind === "all" || r.kind === kind) &&
        (method === "all" || (r.method ?? "") === method) &&
        (fusion === "all" || (r.fusion ?? "none") === fusion) &&
        (!text || r.model.toLowerCase().includes(text)) &&
        dirs.some((d) => r.results[d] && Object.keys(r.results[d]).length > 0)
    );
  }

  function compare(a, b, col) {
    const va = col.value(a);
    const vb = col.value(b);
    // Missing values sort last in both directions.
    if (va === null || va === "") return vb === null || vb === "" ? 0 : 1;
    if (vb === null || vb === "") return -1;
    const c = col.numeric ? va - vb : String(va).localeCompare(String(vb));
    return state.sortDir === "asc" ? c : -c;
  }

  function renderHead(cols) {
    const thead = $("leaderboard").tHead;
    thead.replaceChildren();
    const groups = el("tr");
    let i = 0;
    while (i < cols.length) {
      const g = cols[i].group || "";
      let span = 0;
      while (i + span < cols.length && (cols[i + span].group || "") === g) span++;
      const th = el("th", g ? (DIRECTION_SHORT[g] ? DIRECTION_SHORT[g] + " " + g : g) : "", "group");
      th.colSpan = span;
      groups.appendChild(th);
      i += span;
    }
    thead.appendChild(groups);
    const tr = el("tr");
    for (const col of cols) {
      const th = el("th", null, col.text ? "text" : "");
      th.dataset.col = col.key;
      if (col.key === state.sortKey) th.setAttribute("aria-sort", state.sortDir === "asc" ? "ascending" : "descending");
      const button = el("button", col.label);
      button.type = "button";
      button.addEventListener("click", () => {
        if (state.sortKey === col.key) state.sortDir = state.sortDir === "asc" ? "desc" : "asc";
        else {
          state.sortKey = col.key;
          // Text and ranks ascend first; metrics start with the best value on top.
          state.sortDir = col.text || col.key === "rank" ? "asc" : "desc";
        }
        render();
      });
      th.appendChild(button);
      tr.appendChild(th);
    }
    thead.appendChild(tr);
  }

  function renderBody(cols, rows) {
    const tbody = $("leaderboard").tBodies[0];
    tbody.replaceChildren();
    for (const row of rows) {
      const tr = el("tr");
      tr.dataset.rowId = row.id;
      tr.dataset.kind = row.kind;
      for (const col of cols) {
        const value = col.value(row);
        const shown = col.integer && value !== null ? String(value) : col.numeric ? fmt(value) : value;
        const td = el("td", shown, col.text ? "text" : "");
        td.dataset.col = col.key;
        if (col.key === "model") {
          td.classList.add("model");
          td.title = row.citation ? row.model + " \u2014 " + row.citation : row.model + " @ " + (row.revision || "");
          if (row.copy_of) {  // the same weights (content hash) as an earlier row's model
            td.appendChild(el("span", "copy of " + row.copy_of, "ci"));
          }
        }
        if (col.key === "kind") {
          td.classList.add("kind-" + row.kind);
          const spot = row.verification && row.verification.spot_check;
          if (spot) {
            td.appendChild(el("span", "spot-checked", "ci"));
            td.title = "outputs of " + Object.values(spot.ids || {}).flat().length + " pairs regenerated and matched";
          }
        }
        const ci = col.ci ? col.ci(row) : null;
        if (ci && ci[0] !== null && ci[1] !== null) td.appendChild(el("span", "[" + fmt(ci[0]) + ", " + fmt(ci[1]) + "]", "ci"));
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
  }

  function render() {
    const cols = columns();
    if (!cols.some((c) => c.key === state.sortKey)) {
      state.sortKey = "rank"; // the sorted column went away with the direction filter
      state.sortDir = "asc";
    }
    const sortCol = cols.find((c) => c.key === state.sortKey);
    // Ranks are per kind, so sorting by rank keeps the kinds apart (verified first).
    const byKind = (a, b) => (state.sortKey === "rank" ? (a.kind === b.kind ? 0 : a.kind === "verified" ? -1 : 1) : 0);
    const rows = filteredRows().sort(
      (a, b) => byKind(a, b) || compare(a, b, sortCol) || a.model.localeCompare(b.model)
    );
    renderHead(cols);
    renderBody(cols, rows);
    $("row-count").textContent = rows.length + " of " + state.doc.rows.length + " rows";
  }

  function fillSelect(id, values) {
    const select = $(id);
    for (const v of values) {
      const option = el("option", v);
      option.value = v;
      select.appendChild(option);
    }
  }

  function init(doc) {
    state.doc = doc;
    const methods = [...new Set(doc.rows.map((r) => r.method ?? ""))].filter(Boolean).sort();
    const fusions = [...new Set(doc.rows.map((r) => r.fusion ?? "none"))].sort();
    fillSelect("filter-method", methods);
    fillSelect("filter-fusion", fusions);
    for (const id of ["filter-direction", "filter-kind", "filter-method", "filter-fusion"]) {
      $(id).addEventListener("change", render);
    }
    $("filter-text").addEventListener("input", render);
    const agg = doc.aggregate;
    const base = agg.baseline || {};
    $("aggregate-description").textContent =
      agg.name + " v" + agg.version + ": " + agg.description + " Baselines: reported = " +
      JSON.stringify(base.reported) + ", verified = " + JSON.stringify(base.verified) + ".";
    // Only plain PNG file names next to the page are used as image sources.
    for (const key of ["figure1", "figure2"]) {
      const name = String((doc.plots || {})[key] || "");
      if (/^[\w.-]+\.png$/.test(name)) $(key).src = name;
    }
    $("footer").textContent =
      "leaderboard.json format " + doc.format_version + "; " + doc.inputs.verified.length +
      " accepted submission(s). Reported numbers: " +
      [...new Set(doc.rows.filter((r) => r.citation).map((r) => r.citation))].join("; ");
    $("status").textContent = "";
    render();
    document.body.dataset.ready = "true";
  }

  fetch("leaderboard.json", { cache: "no-store" })
    .then((response) => {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then(init)
    .catch((err) => {
      const status = $("status");
      status.className = "error";
      status.textContent =
        "Could not load leaderboard.json (" + err.message + "). Serve this folder over HTTP, e.g. " +
        "`python -m http.server` in it, or `lmolt-hub serve` for a local Hub root.";
      document.body.dataset.ready = "error";
    });
})();
