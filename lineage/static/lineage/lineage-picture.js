/* The lineage picture on a table's admin page: upstream tables on the left, the table in
 * the middle, downstream tables on the right, one column per level. Approved edges are
 * solid, pending ones dashed. Tables the user may not view are a "N hidden" box, never
 * named. The depth selector redraws the picture from the admin's picture view. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var NODE_W = 190, NODE_H = 40, GAP_X = 70, GAP_Y = 18, PAD = 20, LEGEND_H = 34, MIN_W = 620;
  var STATUSES = ["approved", "pending", "rejected"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, cls) {
    var node = el("text", { x: x, y: y, "class": cls || "" }, parent);
    node.textContent = value;
    return node;
  }

  function shorten(value, length) {
    return value.length > length ? value.slice(0, length - 1) + "\u2026" : value;
  }

  /* Place every table in a column: -level upstream, +level downstream, 0 for the root. */
  function layout(data) {
    var placed = {}, columns = {}, edges = {}, hidden = {};
    [["upstream", -1], ["downstream", 1]].forEach(function (pair) {
      var answer = data[pair[0]];
      answer.nodes.forEach(function (node) {
        if (placed[node.id]) return; // a table on both sides (a cycle) is drawn once
        var column = node.level * pair[1];
        placed[node.id] = { node: node, column: column };
        (columns[column] = columns[column] || []).push(node.id);
      });
      answer.edges.forEach(function (edge) { edges[edge.id] = edge; });
      if (answer.hidden) hidden[pair[0]] = { count: answer.hidden, sign: pair[1] };
    });
    // The hidden tables' box sits just beyond the farthest table on its side.
    Object.keys(hidden).forEach(function (side) {
      var sign = hidden[side].sign, far = 0;
      Object.keys(columns).forEach(function (column) {
        if (column * sign > far) far = column * sign;
      });
      var column = (far + 1) * sign;
      var key = "hidden-" + side;
      placed[key] = { hidden: hidden[side].count, column: column, side: side };
      (columns[column] = columns[column] || []).push(key);
    });
    var numbers = Object.keys(columns).map(Number);
    var minColumn = Math.min.apply(null, numbers), maxColumn = Math.max.apply(null, numbers);
    var rows = 0;
    numbers.forEach(function (column) {
      columns[column].sort(function (a, b) {
        var x = placed[a].node, y = placed[b].node;
        return x && y ? x.fqn.localeCompare(y.fqn) : x ? -1 : 1;
      });
      rows = Math.max(rows, columns[column].length);
    });
    var height = rows * (NODE_H + GAP_Y) - GAP_Y;
    numbers.forEach(function (column) {
      var ids = columns[column];
      var top = PAD + LEGEND_H + (height - (ids.length * (NODE_H + GAP_Y) - GAP_Y)) / 2;
      ids.forEach(function (id, index) {
        placed[id].x = PAD + (column - minColumn) * (NODE_W + GAP_X);
        placed[id].y = top + index * (NODE_H + GAP_Y);
      });
    });
    return {
      placed: placed,
      edges: Object.keys(edges).map(function (id) { return edges[id]; }),
      width: Math.max(MIN_W, 2 * PAD + (maxColumn - minColumn + 1) * (NODE_W + GAP_X) - GAP_X),
      height: 2 * PAD + LEGEND_H + height,
    };
  }

  function edgePath(from, to) {
    var x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2;
    var x2 = to.x, y2 = to.y + NODE_H / 2;
    if (to.column > from.column) {
      var bend = (x2 - x1) / 2;
      return "M" + x1 + "," + y1 + " C" + (x1 + bend) + "," + y1 + " " + (x2 - bend) + "," +
        y2 + " " + x2 + "," + y2;
    }
    // Back to an earlier column (a cycle): an arc over the top of the tables.
    var sx = from.x + NODE_W / 2, sy = from.y, ex = to.x + NODE_W / 2, ey = to.y;
    var lift = Math.min(sy, ey) - PAD - 10;
    return "M" + sx + "," + sy + " C" + sx + "," + lift + " " + ex + "," + lift + " " + ex +
      "," + ey;
  }

  function legend(svg) {
    var group = el("g", { "class": "lineage-legend", transform: "translate(" + PAD + "," + PAD + ")" }, svg);
    var x = 0;
    ["approved", "pending"].forEach(function (status) {
      el("path", {
        d: "M" + x + ",6 L" + (x + 34) + ",6",
        "class": "lineage-edge lineage-edge--" + status,
        "marker-end": "url(#lineage-arrow-" + status + ")",
      }, group);
      text(group, x + 42, 10, status, "lineage-legend-label");
      x += 120;
    });
    el("rect", { x: x, y: -2, width: 16, height: 16, rx: 3, "class": "lineage-node-box lineage-node-box--root" }, group);
    text(group, x + 22, 10, "this table", "lineage-legend-label");
    x += 110;
    el("rect", { x: x, y: -2, width: 16, height: 16, rx: 3, "class": "lineage-node-box lineage-node-box--hidden" }, group);
    text(group, x + 22, 10, "tables you may not view", "lineage-legend-label");
  }

  function draw(container, data, tableUrl) {
    var shape = layout(data);
    var svg = el("svg", {
      "class": "lineage-svg",
      width: shape.width,
      height: shape.height,
      viewBox: "0 0 " + shape.width + " " + shape.height,
      role: "img",
      "aria-label": "Lineage of " + data.upstream.nodes[0].fqn,
    });
    var defs = el("defs", {}, svg);
    STATUSES.forEach(function (status) {
      var marker = el("marker", {
        id: "lineage-arrow-" + status, viewBox: "0 0 10 10", refX: 10, refY: 5,
        markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
      }, defs);
      el("path", { d: "M0,0 L10,5 L0,10 z", "class": "lineage-arrow lineage-arrow--" + status }, marker);
    });
    legend(svg);
    var edgeLayer = el("g", { "class": "lineage-edges-layer" }, svg);
    shape.edges.forEach(function (edge) {
      var from = shape.placed[edge.upstream], to = shape.placed[edge.downstream];
      if (!from || !to) return;
      var line = el("path", {
        d: edgePath(from, to),
        "class": "lineage-edge lineage-edge--" + edge.status,
        "data-edge-id": edge.id,
        "data-status": edge.status,
        "data-origin": edge.origin,
        "marker-end": "url(#lineage-arrow-" + edge.status + ")",
      }, edgeLayer);
      el("title", {}, line).textContent = "#" + edge.id + ": " + edge.origin + ", " +
        edge.status + ", confidence " + edge.confidence;
    });
    var nodeLayer = el("g", { "class": "lineage-nodes-layer" }, svg);
    Object.keys(shape.placed).forEach(function (key) {
      var place = shape.placed[key];
      var group = el("g", { transform: "translate(" + place.x + "," + place.y + ")" }, nodeLayer);
      if (place.hidden) {
        group.setAttribute("class", "lineage-node lineage-node--hidden");
        group.setAttribute("data-hidden", place.hidden);
        el("rect", { width: NODE_W, height: NODE_H, rx: 6, "class": "lineage-node-box lineage-node-box--hidden" }, group);
        text(group, 10, 25, place.hidden + " hidden", "lineage-node-name");
        el("title", {}, group).textContent = place.hidden + " " + place.side +
          " table(s) you may not view";
        return;
      }
      var node = place.node, root = place.column === 0;
      group.setAttribute("class", "lineage-node" + (root ? " lineage-node--root" : ""));
      group.setAttribute("data-table-id", node.id);
      var link = el("a", { href: tableUrl + node.id + "/change/" }, group);
      el("rect", { width: NODE_W, height: NODE_H, rx: 6, "class": "lineage-node-box" + (root ? " lineage-node-box--root" : "") }, link);
      text(link, 10, 17, shorten(node.name, 26), "lineage-node-name");
      text(link, 10, 32, shorten([node.source_name || "manual", node.schema].filter(Boolean).join(" \u00b7 "), 30), "lineage-node-detail");
      el("title", {}, link).textContent = node.fqn + " (" + node.kind + ")";
    });
    container.replaceChildren(svg);
  }

  function summary(data) {
    var parts = ["upstream", "downstream"].map(function (side) {
      var answer = data[side];
      var tables = answer.nodes.length - 1;
      return side + ": " + tables + " table(s), " + answer.edges.length + " edge(s)" +
        (answer.hidden ? ", " + answer.hidden + " hidden" : "");
    });
    return parts.join(" \u2014 ");
  }

  function load(panel) {
    var container = panel.querySelector(".lineage-picture");
    var select = panel.querySelector(".lineage-depth");
    var note = panel.querySelector(".lineage-summary");
    container.setAttribute("data-state", "loading");
    fetch(container.dataset.url + "?depth=" + encodeURIComponent(select.value), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("the lineage could not be loaded (" + response.status + ")");
        return response.json();
      })
      .then(function (data) {
        draw(container, data, container.dataset.tableUrl);
        note.textContent = summary(data);
        container.setAttribute("data-state", "ready");
        container.setAttribute("data-depth", select.value);
      })
      .catch(function (error) {
        var message = document.createElement("p");
        message.className = "errornote";
        message.textContent = error.message;
        container.replaceChildren(message);
        container.setAttribute("data-state", "error");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".lineage-panel").forEach(function (panel) {
      panel.querySelector(".lineage-depth").addEventListener("change", function () {
        load(panel);
      });
      load(panel);
    });
  });
})();
