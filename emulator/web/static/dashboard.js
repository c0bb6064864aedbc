/* The live dashboard: once a second, the seconds of the timeline not yet seen (and the last
 * few again: the live second and late samples change them), merged into a window of the last
 * N seconds and drawn by charts.js. The server shapes the timeline into panels
 * (GET /_emulator/dashboard/panels?since=...), in slices of at most two minutes: a long window
 * fills with a few requests in a row. This file only keeps the window. */
(function (global) {
  "use strict";

  const POLL_MS = 1000;
  const REREAD_S = 3;  // seconds read again each time: the live one and samples that land late

  class Window {
    constructor(seconds) {
      this.seconds = seconds;
      this.t = [];
      this.groups = new Map();  // "group:subject" -> {group, subject, title, panels: Map(id -> panel)}
    }

    /* Merge one answer (a panels model over [since, now]) into the window. */
    merge(model) {
      if (!model.t.length) return;
      const first = model.t[0];
      const last = model.t[model.t.length - 1];
      if (!this.t.length || first > this.t[this.t.length - 1] + 1 || last < this.t[0]) {
        this.t = [];
        for (const group of this.groups.values()) for (const panel of group.panels.values()) for (const line of panel.lines.values()) line.values = [];
      }
      // Extend the axis to `last`, one entry a second, with empty values in every line.
      const start = this.t.length ? this.t[0] : first;
      while ((this.t.length ? this.t[this.t.length - 1] : start - 1) < last) {
        this.t.push(this.t.length ? this.t[this.t.length - 1] + 1 : start);
        for (const group of this.groups.values()) for (const panel of group.panels.values()) for (const line of panel.lines.values()) line.values.push(line.counter ? 0 : null);
      }
      const offset = first - this.t[0];
      for (const group of model.groups) {
        const key = group.group + ":" + group.subject;
        let mine = this.groups.get(key);
        if (!mine) {
          mine = {group: group.group, subject: group.subject, title: group.title, panels: new Map()};
          this.groups.set(key, mine);
        }
        mine.title = group.title;
        for (const panel of group.panels) {
          let kept = mine.panels.get(panel.id);
          if (!kept) {
            kept = {id: panel.id, title: panel.title, unit: panel.unit, kind: panel.kind, lines: new Map()};
            mine.panels.set(panel.id, kept);
          }
          for (const line of panel.lines) {
            let keptLine = kept.lines.get(line.label);
            const counter = line.total !== undefined;
            if (!keptLine) {
              keptLine = {label: line.label, role: line.role, counter: counter, values: this.t.map(() => (counter ? 0 : null))};
              kept.lines.set(line.label, keptLine);
            }
            line.values.forEach((value, i) => {
              const at = offset + i;
              if (at >= 0 && at < this.t.length) keptLine.values[at] = value;
            });
          }
        }
      }
      this.trim();
    }

    trim() {
      const drop = this.t.length - this.seconds;
      if (drop <= 0) return;
      this.t.splice(0, drop);
      for (const group of this.groups.values()) for (const panel of group.panels.values()) for (const line of panel.lines.values()) line.values.splice(0, drop);
    }

    /* The window as a panels model, with each line's total (counts) or peak over it. */
    model() {
      const groups = [];
      for (const group of this.groups.values()) {
        const panels = [];
        for (const panel of group.panels.values()) {
          const lines = [];
          let data = false;
          for (const line of panel.lines.values()) {
            let total = 0, max = null;
            for (const v of line.values) {
              if (v === null) continue;
              total += v;
              max = max === null ? v : Math.max(max, v);
            }
            if (line.role !== "limit" && max !== null && (max !== 0 || !line.counter)) data = true;
            lines.push({label: line.label, role: line.role, values: line.values, max: max, total: line.counter ? total : undefined});
          }
          if (data) panels.push({id: panel.id, title: panel.title, unit: panel.unit, kind: panel.kind, lines: lines});
        }
        if (panels.length) groups.push({group: group.group, subject: group.subject, title: group.title, panels: panels});
      }
      return {t: this.t, groups: groups};
    }
  }

  class Dashboard {
    constructor(root, status) {
      this.board = new EmulatorCharts.Board(root);
      this.status = status;
      this.window = new Window(Number(new URLSearchParams(global.location.search).get("window")) || 300);
      this.paused = false;
      this.last = null;
      this.next = null;
      this.polls = 0;
    }

    async poll() {
      // The rest of a window still being filled (answers come in slices), else the new seconds.
      const since = this.next !== null ? this.next : this.last === null ? -this.window.seconds : this.last - REREAD_S;
      let wait = POLL_MS;
      try {
        const response = await fetch("/_emulator/dashboard/panels?since=" + since, {cache: "no-store"});
        if (!response.ok) throw new Error("HTTP " + response.status + ": " + (await response.text()).slice(0, 200));
        const model = await response.json();
        this.window.merge(model);
        if (model.t.length) this.last = model.t[model.t.length - 1];
        this.next = model.end !== null && model.end <= model.now ? model.end : null;
        if (this.next !== null) wait = 0;
        if (!this.paused) this.board.render(this.window.model());
        this.polls += 1;
        this.status.textContent = "live · " + new Date((model.now || 0) * 1000).toLocaleTimeString() + " (emulated time)";
        this.status.className = "status live";
      } catch (error) {
        this.status.textContent = "disconnected: " + error.message + " (retrying)";
        this.status.className = "status down";
      }
      global.setTimeout(() => this.poll(), wait);
    }

    setWindow(seconds) {
      this.window = new Window(seconds);
      this.last = null;  // read the whole window again
      this.next = null;
    }
  }

  global.addEventListener("DOMContentLoaded", () => {
    const dashboard = new Dashboard(document.getElementById("board"), document.getElementById("status"));
    global.emulatorDashboard = dashboard;
    const pick = document.getElementById("window");
    pick.value = String(dashboard.window.seconds);
    pick.addEventListener("change", () => dashboard.setWindow(Number(pick.value)));
    const pause = document.getElementById("pause");
    pause.addEventListener("click", () => {
      dashboard.paused = !dashboard.paused;
      pause.textContent = dashboard.paused ? "resume" : "pause";
    });
    dashboard.poll();
  });
})(window);
