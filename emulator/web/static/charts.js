/* Draws a panels model (emulator/telemetry/panels.py) with uPlot: one section per group (the
 * account, each function, mapping, queue, stream, API stage), one chart per panel, and under
 * each chart the line totals (counts) or peaks (levels) as text. Shared by the live dashboard
 * and report.html; it draws what the model holds and computes no figure of its own. */
(function (global) {
  "use strict";

  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#bcbd22", "#7f7f7f", "#393b79", "#637939"];
  const LIMIT_COLOURS = ["#444", "#999"];
  const GROUP_RANK = {client: 0, account: 1, function: 2, mapping: 3, queue: 4, stream: 5, api: 6, tuning: 7};
  const HEIGHT = 190;

  function formatValue(value, unit) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    const abs = Math.abs(value);
    let text;
    if (abs >= 1e6) text = (value / 1e6).toFixed(2) + "M";
    else if (abs >= 1e4) text = (value / 1e3).toFixed(1) + "k";
    else if (Number.isInteger(value)) text = String(value);
    else text = value.toFixed(abs >= 100 ? 0 : abs >= 1 ? 2 : 3);
    const units = {Milliseconds: " ms", Seconds: " s", Bytes: " B"};
    return text + (units[unit] || "");
  }

  function lineSummary(line, unit) {
    if (line.total !== undefined && line.total !== null) return formatValue(line.total, "Count") + " in all";
    return "max " + formatValue(line.max, unit);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  class PanelView {
    constructor(container, panel, t) {
      this.panel = panel;
      this.signature = PanelView.signature(panel);
      this.box = element("div", "panel");
      this.box.dataset.panel = panel.id;
      this.box.appendChild(element("div", "panel-title", panel.title + (panel.unit && panel.unit !== "Count" && panel.unit !== "None" ? " (" + panel.unit.toLowerCase() + ")" : "")));
      this.plotBox = element("div", "plot");
      this.box.appendChild(this.plotBox);
      this.totals = element("div", "totals");
      this.box.appendChild(this.totals);
      container.appendChild(this.box);
      this.plot = new uPlot(this.options(), this.data(panel, t), this.plotBox);
      this.plotBox.dataset.points = String(this.plot.data[0].length);
      this.writeTotals(panel);
    }

    static signature(panel) {
      return panel.kind + "|" + (panel.x ? "x" : "t") + "|" + panel.lines.map((l) => l.label + ":" + l.role).join(",");
    }

    width() {
      return Math.max(280, Math.floor(this.box.clientWidth || 420) - 4);
    }

    options() {
      const panel = this.panel;
      let colour = 0, limit = 0;
      const stepped = panel.kind === "bars" && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({align: 1}) : undefined;
      const series = [{}].concat(panel.lines.map((line) => {
        const isLimit = line.role === "limit";
        const stroke = isLimit ? LIMIT_COLOURS[limit++ % LIMIT_COLOURS.length] : PALETTE[colour++ % PALETTE.length];
        return {label: line.label, stroke: stroke, width: isLimit ? 1.5 : 1.25, dash: isLimit ? [6, 4] : undefined,
                spanGaps: false, paths: isLimit ? undefined : stepped, points: stepped && !isLimit ? {show: false} : {size: 4},
                value: (u, v) => formatValue(v, panel.unit)};
      }));
      return {
        width: this.width(), height: HEIGHT, series: series, legend: {show: true, live: true},
        cursor: {drag: {x: true, y: false}},
        scales: {x: {time: !panel.x}, y: {range: (u, min, max) => [Math.min(0, min || 0), max > 0 ? max * 1.08 : 1]}},
        axes: [panel.x ? {label: panel.xLabel || ""} : {}, {size: 70, values: (u, splits) => splits.map((v) => formatValue(v, panel.unit))}],
      };
    }

    data(panel, t) {
      return [panel.x || t].concat(panel.lines.map((line) => line.values));
    }

    update(panel, t) {
      this.panel = panel;
      this.plot.setData(this.data(panel, t));
      this.plotBox.dataset.points = String(this.plot.data[0].length);
      this.writeTotals(panel);
    }

    resize() {
      this.plot.setSize({width: this.width(), height: HEIGHT});
    }

    writeTotals(panel) {
      this.totals.textContent = "";
      for (const line of panel.lines) {
        if (line.role === "limit") continue;
        const item = element("span", "total", line.label + ": " + lineSummary(line, panel.unit));
        item.dataset.label = line.label;
        if (line.total !== undefined && line.total !== null) item.dataset.total = String(line.total);
        if (line.max !== undefined && line.max !== null) item.dataset.max = String(line.max);
        item.dataset.points = String(line.values.filter((v) => v !== null).length);
        this.totals.appendChild(item);
      }
    }

    destroy() {
      this.plot.destroy();
      this.box.remove();
    }
  }

  class Board {
    constructor(root) {
      this.root = root;
      this.sections = new Map();  // "group:subject" -> {box, grid, views: Map(panel id -> PanelView)}
      global.addEventListener("resize", () => this.resize());
    }

    render(model) {
      const groups = model.groups.slice().sort((a, b) =>
        (GROUP_RANK[a.group] ?? 9) - (GROUP_RANK[b.group] ?? 9) || (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
      const seen = new Set();
      for (const group of groups) {
        const key = group.group + ":" + group.subject;
        seen.add(key);
        let section = this.sections.get(key);
        if (!section) {
          section = this.addSection(group, key);
        }
        this.root.appendChild(section.box);  // keeps the sorted order
        const t = group.t || model.t;  // a group may have its own axis (the generator's seconds)
        const live = new Set();
        for (const panel of group.panels) {
          live.add(panel.id);
          let view = section.views.get(panel.id);
          if (view && view.signature !== PanelView.signature(panel)) {
            view.destroy();
            view = undefined;
          }
          if (!view) {
            view = new PanelView(section.grid, panel, t);
            section.views.set(panel.id, view);
          } else {
            view.update(panel, t);
          }
          section.grid.appendChild(view.box);
        }
        for (const [id, view] of section.views) {
          if (!live.has(id)) { view.destroy(); section.views.delete(id); }
        }
      }
      for (const [key, section] of this.sections) {
        if (!seen.has(key)) { for (const view of section.views.values()) view.destroy(); section.box.remove(); this.sections.delete(key); }
      }
    }

    addSection(group, key) {
      const box = element("section", "group group-" + group.group);
      box.dataset.group = key;
      box.appendChild(element("h2", null, group.title));
      const grid = element("div", "grid");
      box.appendChild(grid);
      const section = {box: box, grid: grid, views: new Map()};
      this.sections.set(key, section);
      return section;
    }

    resize() {
      for (const section of this.sections.values()) for (const view of section.views.values()) view.resize();
    }

    /* What is drawn, for tests and scripts: panel id -> {points, lines: {label: {total, max, points}}}. */
    state() {
      const out = {};
      for (const section of this.sections.values()) {
        for (const [id, view] of section.views) {
          const data = view.plot.data;
          const lines = {};
          view.panel.lines.forEach((line, i) => {
            const drawn = data[i + 1] || [];
            lines[line.label] = {total: line.total ?? null, max: line.max ?? null,
                                 points: drawn.filter((v) => v !== null && v !== undefined).length};
          });
          out[id] = {points: data[0].length, lines: lines};
        }
      }
      return out;
    }
  }

  global.EmulatorCharts = {Board: Board, formatValue: formatValue};
})(window);
