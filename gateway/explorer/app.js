// trustreg registry explorer: a single page over the gateway's JSON API
// (docs/API.md). No build step and nothing loaded from elsewhere. Pages are
// named by the URL's hash, so each one can be linked:
//   #/                          frameworks and cluster summary
//   #/search?q=TEXT             entities and frameworks by DID or name
//   #/entity/DID                keys, accreditations received and granted, history
//   #/framework/ID              roots, recognitions, accreditations
//   #/ask?entity=&framework=&action=&resource=&at=&as_of=   a trust question and its chain
//   #/status-lists?issuer=      status lists and a one-entry check
//   #/live                      the change feed as it happens (GET /v1/watch)
//   #/health                    the node's view of the cluster
// Every value from the registry is put in the page as text (textContent),
// never as markup.
"use strict";

(() => {
  const main = document.getElementById("main");
  const indexNote = document.getElementById("index-note");
  let stopPage = () => {}; // ends what the current page keeps open (a watch stream)
  // generation counts the pages shown (route): a page's answer that
  // arrives after the reader moved on to another page is dropped (api
  // throws stale), so it never writes into the page now shown.
  let generation = 0;
  const stale = new Error("a later page replaced this one");
  const ignoreStale = (e) => { if (e !== stale) throw e; };

  // h builds an element: h("a", {href: "#/"}, "text", child, ...).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    append(el, children);
    return el;
  }
  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const svgNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    append(el, children);
    return el;
  }

  // api GETs a gateway path and answers {ok, status, body, index}; a
  // problem document's detail is in body.detail. It throws stale when
  // another page was shown meanwhile.
  async function api(path, accept) {
    const g = generation;
    let r;
    try {
      r = await fetch(path, {headers: {Accept: accept || "application/json"}});
    } catch (e) {
      if (g !== generation) throw stale;
      return {ok: false, status: 0, body: {detail: "the node did not answer: " + e.message}};
    }
    const type = r.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await r.json().catch(() => ({})) : await r.text();
    if (g !== generation) throw stale;
    const index = r.headers.get("X-Trustreg-Index");
    if (index) indexNote.textContent = "Registry index " + index + " when last read.";
    return {ok: r.ok, status: r.status, body, index};
  }
  const enc = encodeURIComponent;
  const problem = (res) => h("p", {class: "error", role: "alert"},
    res.status ? res.status + ": " : "", (res.body && res.body.detail) || (res.body && res.body.title) || "the node could not answer");

  // when shows a commit time to the second.
  const when = (t) => String(t || "").replace(/\.\d+Z$/, "Z").replace("T", " ");
  // day shows a time at midnight UTC as its date; the zero time, which an
  // event in force from the start carries, as "the start".
  const day = (t) => (!t ? "" : String(t).startsWith("0001-01-01") ? "the start" : String(t).replace("T00:00:00Z", ""));
  const window_ = (from, until) => (day(from) || "always") + " → " + (until ? day(until) : "open-ended");
  const statusTag = (st) => h("span", {class: "status status-" + String(st).replace(/[^a-z_]/g, "")}, String(st).replace(/_/g, " "));
  const entityLink = (did, label) => h("a", {href: "#/entity/" + enc(did), class: label ? null : "did"}, label || did);
  const frameworkLink = (id, label) => h("a", {href: "#/framework/" + enc(id)}, label || id);
  const askHref = (p) => "#/ask?" + new URLSearchParams(Object.entries(p).filter(([, v]) => v)).toString();
  function facts(pairs) {
    const dl = h("dl", {class: "facts"});
    for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== "") dl.append(h("dt", {}, k), h("dd", {}, v));
    return dl;
  }
  function table(caption, columns, rows) {
    const t = h("table", {class: "responsive"}, h("caption", {class: "visually-hidden"}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c)))));
    const tb = h("tbody");
    for (const r of rows) tb.append(h("tr", {}, r.map((cell, i) => h("td", {"data-label": columns[i]}, cell))));
    t.append(tb);
    return h("div", {class: "table-wrap"}, t);
  }
  function page(title, ...children) {
    main.replaceChildren(h("h1", {id: "page-title"}, title), ...children);
    document.title = title + " · trustreg registry explorer";
  }

  // Reason codes in words (docs/API.md, "Trust decisions").
  const reasons = {
    active: "every link of the chain up to the root was in force",
    never_authorized: "no accreditation gives this entity this action and resource",
    not_yet_valid: "the entity's accreditation had not started yet",
    expired: "the entity's accreditation had ended",
    suspended: "the entity's accreditation was suspended",
    revoked: "the entity's accreditation was revoked",
    chain_broken: "a link above the entity, or its root, was not in force",
    unknown_framework: "the registry had no such framework",
  };

  // ---- pages ----

  async function home() {
    page("Trust registry", h("p", {class: "lead"},
      "Accreditation frameworks kept by this registry. Search for a college or accreditor by its DID or name above, ",
      "or ask whether an entity was authorized at a date."));
    const [fw, st] = await Promise.all([api("/v1/frameworks?limit=100"), api("/v1/status")]);
    main.append(h("h2", {}, "Frameworks"));
    if (!fw.ok) return main.append(problem(fw));
    if (fw.body.items.length === 0) main.append(h("p", {}, "No framework is registered yet."));
    main.append(h("ul", {class: "cards", id: "frameworks"}, fw.body.items.map((f) => h("li", {class: "card"},
      h("h3", {}, frameworkLink(f.id, f.name || f.id)),
      h("p", {class: "did"}, f.id),
      f.description ? h("p", {}, f.description) : null,
      h("p", {class: "meta"}, "Chains up to " + f.maxChainLength + " links · created at index " + f.createdIndex)))));
    if (fw.body.next) main.append(h("p", {}, "More frameworks: search by name to narrow the list."));
    main.append(h("h2", {}, "Cluster"));
    main.append(st.ok ? healthSummary(st.body) : problem(st));
  }

  function healthSummary(st) {
    const leader = (st.members || []).find((m) => m.leader);
    return facts([
      ["This node", h("span", {class: "did"}, st.node_id)],
      ["Role", st.state],
      ["Leader", leader ? h("span", {class: "did"}, leader.id) : "none known"],
      ["Members", String((st.members || []).length)],
      ["Registry index", String(st.applied_index)],
      ["Feature level", String(st.feature_level)],
    ]);
  }

  async function search(params) {
    const q = (params.get("q") || "").trim();
    document.getElementById("q").value = q;
    page("Search: " + q);
    if (!q) return main.append(h("p", {}, "Type part of a name or a DID in the search box."));
    const [ents, fws] = await Promise.all([api("/v1/entities?limit=50&q=" + enc(q)), api("/v1/frameworks?limit=50&q=" + enc(q))]);
    const results = h("div", {id: "results"});
    main.append(results);
    if (q.startsWith("did:")) {
      results.append(h("p", {}, "Open the entity ", entityLink(q), " (a DID is shown even when it is not registered by name)."));
    }
    results.append(h("h2", {}, "Entities"));
    if (!ents.ok) results.append(problem(ents));
    else if (ents.body.items.length === 0) results.append(h("p", {}, "No registered entity has that in its DID or name."));
    else results.append(h("ul", {class: "cards"}, ents.body.items.map((e) => h("li", {class: "card"},
      h("h3", {}, entityLink(e.id, e.name || e.id)), h("p", {class: "did"}, e.id),
      e.metadata && e.metadata.country ? h("p", {class: "meta"}, "Country: " + e.metadata.country) : null))));
    if (ents.ok && ents.body.next) results.append(h("p", {class: "meta"}, "Only the first matches are shown: make the search longer."));
    results.append(h("h2", {}, "Frameworks"));
    if (!fws.ok) results.append(problem(fws));
    else if (fws.body.items.length === 0) results.append(h("p", {}, "No framework has that in its id or name."));
    else results.append(h("ul", {class: "cards"}, fws.body.items.map((f) => h("li", {class: "card"},
      h("h3", {}, frameworkLink(f.id, f.name || f.id)), h("p", {class: "did"}, f.id)))));
  }

  function keyRows(keys) {
    return (keys || []).map((k) => [h("code", {}, k.kid || "(no kid)"), [k.kty, k.crv].filter(Boolean).join(" "), k.alg || ""]);
  }

  function accreditationRows(items, other) {
    return items.map((a) => [
      frameworkLink(a.framework),
      a.action,
      h("span", {}, a.resources.join(", ")),
      window_(a.validFrom, a.validUntil),
      statusTag(a.status),
      entityLink(a[other]),
      h("a", {href: askHref({entity: a.subject, framework: a.framework, action: a.action, resource: a.resources[0]})}, "Chain"),
    ]);
  }

  async function entity(did) {
    page("Entity");
    const [ent, rec, gra, his] = await Promise.all([
      api("/v1/entities/" + enc(did)),
      api("/v1/entities/" + enc(did) + "/accreditations?direction=received&limit=100"),
      api("/v1/entities/" + enc(did) + "/accreditations?direction=granted&limit=100"),
      api("/v1/entities/" + enc(did) + "/history?limit=100"),
    ]);
    const title = main.querySelector("h1");
    if (ent.ok) {
      title.textContent = ent.body.name || did;
      main.append(facts([
        ["DID", h("span", {class: "did"}, did)],
        ["Registered", ent.body.registered ? "yes, at index " + ent.body.createdIndex : "no (a did:key speaks for itself)"],
        ["Legal name", ent.body.metadata && ent.body.metadata.legalName],
        ["Country", ent.body.metadata && ent.body.metadata.country],
        ["Homepage", ent.body.metadata && ent.body.metadata.homepage],
        ["Keys bound by", ent.body.keysBoundBy && ent.body.keysBoundBy.startsWith("did:") ? entityLink(ent.body.keysBoundBy) : ent.body.keysBoundBy],
      ]));
      main.append(h("h2", {}, "Keys"));
      main.append(ent.body.keys && ent.body.keys.length ? table("Keys", ["Key id", "Type", "Algorithm"], keyRows(ent.body.keys))
        : h("p", {}, did.startsWith("did:key:") ? "No keys recorded: a did:key's one key is the DID itself." : "No keys."));
    } else {
      title.textContent = did;
      main.append(ent.status === 404 ? h("p", {}, "This DID is not registered; what the registry holds about it is below.") : problem(ent));
    }
    const cols = (other) => ["Framework", "Action", "Resources", "Valid", "Status now", other, "Chain graph"];
    main.append(h("h2", {id: "received"}, "Accreditations received"));
    if (!rec.ok) main.append(problem(rec));
    else main.append(rec.body.items.length ? table("Accreditations received", cols("Accreditor"), accreditationRows(rec.body.items, "accreditor")) : h("p", {}, "None."));
    main.append(h("h2", {id: "granted"}, "Accreditations granted"));
    if (!gra.ok) main.append(problem(gra));
    else main.append(gra.body.items.length ? table("Accreditations granted", cols("Subject"), accreditationRows(gra.body.items, "subject")) : h("p", {}, "None."));
    main.append(h("h2", {}, "History"));
    if (!his.ok) main.append(problem(his));
    else main.append(his.body.items.length ? table("History", ["Index", "Time", "Operation", "Signed by", "Result"], his.body.items.map((o) => [
      String(o.index), when(o.time), o.op || "", h("span", {}, (o.signers || []).map((d) => entityLink(d))), o.result && o.result.accepted ? "accepted" : "refused",
    ])) : h("p", {}, "No operations."));
  }

  async function framework(id) {
    page("Framework");
    const [fw, accs] = await Promise.all([api("/v1/frameworks/" + enc(id)), api("/v1/accreditations?limit=100&framework=" + enc(id))]);
    if (!fw.ok) return main.append(problem(fw));
    const f = fw.body;
    main.querySelector("h1").textContent = f.name || f.id;
    main.append(facts([["Id", h("span", {class: "did"}, f.id)], ["Description", f.description], ["URL", f.url],
      ["Longest chain", f.maxChainLength + " links"], ["Created", "index " + f.createdIndex + ", " + when(f.createdAt)]]));
    main.append(h("h2", {}, "Root accreditors"));
    main.append(f.roots.length ? table("Root accreditors", ["Accreditor", "Status changes"], f.roots.map((r) => [entityLink(r.accreditor),
      h("span", {}, r.events.map((e) => [statusTag(e.status), " from " + day(e.effectiveAt) + " (index " + e.index + ") "]))])) : h("p", {}, "None."));
    if (f.recognitions.length) {
      main.append(h("h2", {}, "Recognized frameworks"));
      main.append(table("Recognitions", ["Recognized", "Resources", "Status changes"], f.recognitions.map((r) => [h("code", {}, r.recognized),
        (r.resources || []).join(", ") || "all", h("span", {}, r.events.map((e) => [statusTag(e.status), " from " + day(e.effectiveAt) + " "]))])));
    }
    main.append(h("h2", {}, "Accreditations"));
    if (!accs.ok) return main.append(problem(accs));
    main.append(accs.body.items.length ? table("Accreditations", ["Accreditor", "Subject", "Action", "Resources", "Valid", "Status now", "Chain graph"],
      accs.body.items.map((a) => [entityLink(a.accreditor), entityLink(a.subject), a.action, a.resources.join(", "), window_(a.validFrom, a.validUntil),
        statusTag(a.status), h("a", {href: askHref({entity: a.subject, framework: a.framework, action: a.action, resource: a.resources[0]})}, "Chain")])) : h("p", {}, "None."));
  }

  // ---- the trust question, with time travel, and its chain ----

  function field(name, label, value, hint, attrs) {
    return h("div", {}, h("label", {for: "ask-" + name}, label, hint ? h("span", {class: "hint", id: "ask-" + name + "-hint"}, hint) : null),
      h("input", Object.assign({id: "ask-" + name, name, value: value || "", "aria-describedby": hint ? "ask-" + name + "-hint" : null}, attrs || {})));
  }

  async function ask(params) {
    page("Was it authorized?");
    const p = (k) => params.get(k) || "";
    const form = h("form", {class: "ask", id: "ask-form"},
      field("entity", "Entity (DID)", p("entity"), null, {required: true, spellcheck: "false"}),
      field("framework", "Framework", p("framework"), null, {required: true, spellcheck: "false", list: "ask-frameworks"}),
      h("div", {}, h("label", {for: "ask-action"}, "Action"), h("select", {id: "ask-action", name: "action"},
        ["issue", "accredit"].map((a) => h("option", {value: a, selected: (p("action") || "issue") === a}, a)))),
      field("resource", "Resource", p("resource"), "e.g. a credential type; empty: any", {spellcheck: "false"}),
      field("at", "At (valid time)", p("at"), "a date (2024-06-01) or RFC 3339; empty: now"),
      field("as_of", "As the registry knew it at index", p("as_of"), "empty: the latest index", {inputmode: "numeric", pattern: "[0-9]*"}),
      h("div", {}, h("button", {type: "submit"}, "Ask")),
      h("datalist", {id: "ask-frameworks"}));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = {};
      for (const [k, v] of new FormData(form)) if (String(v).trim()) q[k] = String(v).trim();
      location.hash = askHref(q);
    });
    main.append(h("p", {class: "lead"}, "Ask whether an entity was authorized for an action and resource at a date, as the registry ",
      "knew it at an index: the answer gives the reason code and the chain of accreditations up to the root, each link's status at that date."), form);
    api("/v1/frameworks?limit=100").then((fw) => {
      if (fw.ok) form.querySelector("datalist").append(...fw.body.items.map((f) => h("option", {value: f.id}, f.name)));
    }, ignoreStale);
    if (!p("entity") || !p("framework")) return;
    const q = new URLSearchParams();
    for (const k of ["entity", "framework", "action", "resource", "at", "as_of"]) if (p(k)) q.set(k, p(k));
    const res = await api("/v1/trust?" + q.toString());
    // The answer comes first, the form to change the question after it.
    const out = h("section", {id: "answer", "aria-live": "polite", "aria-labelledby": "answer-title"});
    main.insertBefore(out, form);
    form.before(h("h2", {}, "Change the question"));
    out.append(h("h2", {id: "answer-title"}, "Answer"));
    if (!res.ok) return out.append(problem(res));
    const d = res.body;
    out.append(h("div", {class: "verdict " + (d.authorized ? "yes" : "no"), id: "verdict"},
      h("strong", {}, d.authorized ? "AUTHORIZED" : "NOT AUTHORIZED"),
      h("p", {}, "Reason: ", h("code", {id: "reason"}, d.reason), " — " + (reasons[d.reason] || d.reason) + "."),
      h("p", {}, "At " + d.at + (p("at") ? "" : " (now)") + ", as the registry knew it at index " + d.index + (p("as_of") ? "" : " (the latest)") + ".")));
    if (!d.chain || d.chain.length === 0) {
      out.append(h("p", {}, "No chain: nothing links this entity to a root of the framework for this question."));
      return;
    }
    out.append(h("h3", {}, "Accreditation chain (" + d.chain.length + (d.chain.length === 1 ? " link" : " links") + " up to the root)"));
    const names = await entityNames([d.root, ...d.chain.map((l) => l.subject)]);
    out.append(chainGraph(d, names), chainText(d, names));
    if (!p("at")) {
      out.append(h("p", {}, "Time travel: ", h("a", {href: askHref(Object.assign(Object.fromEntries(q), {at: "2024-06-01"}))}, "ask the same at 2024-06-01"),
        ", or give a date and an index below."));
    }
  }

  // entityNames looks up the registered names of DIDs (unregistered ones
  // have none).
  async function entityNames(dids) {
    const names = {};
    await Promise.all([...new Set(dids)].map(async (did) => {
      const r = await api("/v1/entities/" + enc(did));
      if (r.ok && r.body.name) names[did] = r.body.name;
    }));
    return names;
  }

  const shorten = (did, n) => (did.length <= n ? did : did.slice(0, n - 12) + "…" + did.slice(-11));

  // chainGraph draws the chain from the root (top) down to the entity:
  // one box per DID, one arrow per accreditation with its action, status
  // and validity window written beside it.
  function chainGraph(d, names) {
    const links = d.chain.slice().reverse(); // root's link first
    const nodes = [links[0].accreditor, ...links.map((l) => l.subject)];
    const boxH = 62, gap = 60, w = 360, x = 8, bw = w - 16;
    const height = nodes.length * boxH + links.length * gap + 8;
    const title = "Accreditation chain: " + nodes.map((n, i) => (names[n] || n) + (i < links.length ? " accredits (" + links[i].status + ")" : "")).join(" ");
    const svg = s("svg", {class: "chain-graph", id: "chain-graph", viewBox: `0 0 ${w} ${height}`, role: "img", "aria-label": title});
    svg.append(s("defs", {}, s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "12", markerHeight: "12",
      markerUnits: "userSpaceOnUse", orient: "auto-start-reverse"}, s("path", {d: "M0,0 L10,5 L0,10 z", fill: "#1b1f24"}))));
    nodes.forEach((did, i) => {
      const y = 4 + i * (boxH + gap);
      const role = i === 0 ? "ROOT ACCREDITOR" : i === nodes.length - 1 ? "ENTITY ASKED ABOUT" : "ACCREDITOR";
      svg.append(s("g", {class: "node"}, s("title", {}, (names[did] ? names[did] + ": " : "") + did),
        s("rect", {x, y, width: bw, height: boxH, rx: 6, fill: i === nodes.length - 1 ? "#e8f0fb" : "#f4f6f8", stroke: "#4a5561"}),
        s("text", {x: x + 10, y: y + 16, "font-size": 10, class: "role", fill: "#4a5561"}, role),
        names[did] ? s("text", {x: x + 10, y: y + 34, "font-size": 13, class: "role", fill: "#1b1f24"}, shorten(names[did], 42))
          : s("text", {x: x + 10, y: y + 34, "font-size": 12, class: "unnamed", fill: "#4a5561"}, "no registered name"),
        s("text", {x: x + 10, y: y + 52, "font-size": 11, fill: "#1b1f24"}, shorten(did, 46))));
      if (i < links.length) {
        const l = links[i], y1 = y + boxH, y2 = y + boxH + gap;
        const ok = l.status === "active";
        const colour = ok ? "#136c2e" : "#a1161f";
        svg.append(s("g", {class: "link"}, s("title", {}, "accreditation " + l.accreditation),
          s("line", {x1: 40, y1: y1 + 2, x2: 40, y2: y2 - 2, stroke: colour, "stroke-width": 3, "stroke-dasharray": ok ? "" : "6 4", "marker-end": "url(#arrow)"}),
          s("text", {x: 56, y: y1 + 24, "font-size": 12, fill: colour, "font-weight": "700"}, l.action + " · " + l.status.replace(/_/g, " ").toUpperCase()),
          s("text", {x: 56, y: y1 + 42, "font-size": 11, fill: "#1b1f24"}, "valid " + window_(l.validFrom, l.validUntil))));
      }
    });
    return svg;
  }

  // chainText says what the graph shows, link by link, for screen readers
  // and for copying.
  function chainText(d, names) {
    const links = d.chain.slice().reverse();
    return h("ol", {class: "chain-text", id: "chain-links"}, links.map((l) => h("li", {},
      entityLink(l.accreditor, names[l.accreditor]), " accredits ", entityLink(l.subject, names[l.subject]),
      " to " + l.action + " " + l.resources.join(", ") + " — ", statusTag(l.status),
      ", valid " + window_(l.validFrom, l.validUntil) + " (accreditation ", h("code", {}, l.accreditation), ")")));
  }

  // ---- status lists ----

  async function statusLists(params) {
    const issuer = params.get("issuer") || "";
    page("Status lists");
    const filter = h("form", {class: "ask", id: "issuer-form"},
      field("issuer", "Issuer (DID)", issuer, "empty: every issuer", {spellcheck: "false"}),
      h("div", {}, h("button", {type: "submit"}, "Show lists")));
    filter.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = filter.querySelector("input").value.trim();
      location.hash = "#/status-lists" + (v ? "?issuer=" + enc(v) : "");
    });
    main.append(h("p", {class: "lead"}, "Issuers publish W3C Bitstring Status Lists through the registry to revoke or suspend the credentials they issued."), filter);
    const res = await api("/v1/status-lists?limit=100" + (issuer ? "&issuer=" + enc(issuer) : ""));
    if (!res.ok) return main.append(problem(res));
    main.append(h("h2", {}, "Lists"));
    main.append(res.body.items.length ? table("Status lists", ["Issuer", "List", "Purposes", "Entries", "Versions", "Whole list"],
      res.body.items.map((l) => [entityLink(l.issuer), h("code", {}, l.id), l.purposes.join(", "), String(l.entries), String(l.versions),
        h("a", {href: "/v1/status-lists/" + enc(l.issuer) + "/" + enc(l.id) + "/record"}, "JSON")])) : h("p", {}, "No status list is published" + (issuer ? " by this issuer." : " yet.")));

    main.append(h("h2", {}, "Check one entry"));
    main.append(h("p", {class: "notice", id: "privacy"}, h("strong", {}, "Privacy: "),
      "checking one entry tells this registry node which index you ask about, and so which credential is being checked. ",
      "Fetching the whole list (the links above) does not: a verifier who cares reads the entry from the whole list itself."));
    const first = res.body.items[0] || {};
    const check = h("form", {class: "ask", id: "entry-form"},
      field("list-issuer", "Issuer (DID)", issuer || first.issuer, null, {required: true, spellcheck: "false", name: "issuer"}),
      field("list-id", "List", first.id, null, {required: true, name: "list"}),
      field("list-index", "Index", "", null, {required: true, inputmode: "numeric", pattern: "[0-9]+", name: "index"}),
      h("div", {}, h("button", {type: "submit"}, "Check entry")));
    const out = h("div", {id: "entry", "aria-live": "polite"});
    check.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(check);
      api("/v1/status-lists/" + enc(f.get("issuer").trim()) + "/" + enc(f.get("list").trim()) + "/entries/" + enc(f.get("index").trim())).then((r) => {
        out.replaceChildren(r.ok ? facts([["Status", String(r.body.status)], ["Purpose", r.body.purpose],
          ["Credential valid", statusTag(r.body.valid ? "yes" : "no")], ["Message", r.body.message]]) : problem(r));
      }, ignoreStale);
    });
    main.append(check, out);
  }

  // ---- live changes ----

  const liveBacklog = 20; // operations shown from before the page opened

  async function live() {
    page("Live changes");
    const state = h("p", {id: "live-state", role: "status"}, "Connecting…");
    const feed = h("ol", {class: "feed", id: "feed", "aria-live": "polite", "aria-relevant": "additions"});
    main.append(h("p", {class: "lead"}, "Each operation as this node applies it (the watch stream, GET /v1/watch), newest first."), state, feed);
    const st = await api("/v1/status");
    // Operations up to the index applied when the page opened are the
    // backlog; later ones are marked new as they arrive.
    const opening = st.ok ? st.body.applied_index : 0;
    const since = Math.max(0, opening - liveBacklog);
    const es = new EventSource("/v1/watch?since=" + since);
    let opened = false;
    stopPage = () => es.close();
    es.onopen = () => { opened = true; state.textContent = "Connected: new operations appear below as they are applied."; };
    es.onerror = () => { state.textContent = opened ? "Disconnected; reconnecting…" : "Could not connect to the watch stream; retrying…"; };
    es.addEventListener("operation", (ev) => {
      let o;
      try { o = JSON.parse(ev.data); } catch { return; }
      const pl = o.payload || {};
      const what = pl.id || pl.subject || pl.accreditation || pl.list || pl.framework || "";
      const item = h("li", {class: o.index > opening ? "new" : null, "data-index": String(o.index)},
        h("span", {class: "op"}, o.op), what ? [" ", h("code", {}, what)] : null,
        o.index > opening ? [" ", h("span", {class: "status status-active"}, "new")] : null,
        h("div", {class: "meta"}, "index " + o.index + " · " + when(o.time) + " · signed by ",
          (o.signers || []).map((d, i) => [i ? ", " : "", entityLink(d, shorten(d, 32))])));
      feed.prepend(item);
      while (feed.children.length > 200) feed.lastChild.remove();
    });
  }

  // ---- health ----

  async function health() {
    page("Cluster health");
    const [hz, rz, st] = await Promise.all([api("/healthz", "text/plain"), api("/readyz", "text/plain"), api("/v1/status")]);
    main.append(facts([
      ["Live (/healthz)", statusTag(hz.ok ? "yes" : "no")],
      ["Ready (/readyz)", rz.ok ? statusTag("yes") : h("span", {}, statusTag("no"), " ", (rz.body && rz.body.detail) || "")],
    ]));
    if (!st.ok) return main.append(problem(st));
    main.append(healthSummary(st.body));
    main.append(facts([["Term", String(st.body.term)], ["Commit index (raft)", String(st.body.commit_index)],
      ["Applied index (raft)", String(st.body.raft_applied_index)], ["Build feature level", String(st.body.build_feature_level)],
      ["Genesis", h("code", {}, st.body.genesis)]]));
    main.append(h("h2", {}, "Members"));
    main.append(table("Members", ["Member", "Vote", "Leader"], (st.body.members || []).map((m) => [h("code", {}, m.id), m.suffrage, m.leader ? "leader" : ""])));
  }

  // ---- routing ----

  // route shows the page the URL's hash names; it reports whether the
  // page was drawn (false: another route replaced it first).
  async function route() {
    stopPage();
    stopPage = () => {};
    const g = ++generation;
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, qs] = hash.split("?");
    const params = new URLSearchParams(qs || "");
    const parts = path.split("/");
    const section = parts[1] || "";
    for (const a of document.querySelectorAll("nav a")) {
      const target = a.getAttribute("href").slice(2);
      if (target === section || (target === "" && ["", "framework"].includes(section))) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const arg = decodeURIComponent(parts.slice(2).join("/"));
    main.setAttribute("aria-busy", "true");
    try {
      switch (section) {
        case "": await home(); break;
        case "search": await search(params); break;
        case "entity": await entity(arg); break;
        case "framework": await framework(arg); break;
        case "ask": await ask(params); break;
        case "status-lists": await statusLists(params); break;
        case "live": await live(); break;
        case "health": await health(); break;
        default: page("Not found", h("p", {}, "No such page. ", h("a", {href: "#/"}, "Start from the frameworks.")));
      }
    } catch (e) {
      if (e === stale) return false;
      main.append(h("p", {class: "error", role: "alert"}, "The page could not be shown: " + e.message));
    }
    if (g !== generation) return false;
    main.removeAttribute("aria-busy");
    main.dataset.page = section || "home";
    main.dataset.ready = String(Date.now());
    return true;
  }

  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = document.getElementById("q").value.trim();
    location.hash = "#/search?q=" + enc(q);
  });
  window.addEventListener("hashchange", () => {
    route().then((shown) => { if (shown) main.focus({preventScroll: false}); });
  });
  route();
})();
