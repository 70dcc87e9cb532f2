// Live updates on SimLab's pages: the same WebSockets every client uses
// (/ws/simulations/{id}, /ws/projects/{id}), authenticated with a short-lived token
// the signed-in page asks for. Loaded before Alpine.js, which reads these components.
"use strict";

const FINISHED = ["SUCCEEDED", "FAILED", "CANCELLED"];
const LABELS = {
  CREATED: "Created", QUEUED: "Queued", RUNNING: "Running",
  SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELLED: "Cancelled",
};

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function socketToken() {
  const response = await fetch("/ui/socket-token/", {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
  return (await response.json()).token;
}

// Open `path`, authenticate, hand every message to `onMessage`; reconnect (with a fresh
// token) after anything but a normal close, waiting longer each time up to 30 s.
function liveSocket(path, onMessage) {
  let delay = 1000;
  let stopped = false;
  async function connect() {
    if (stopped) return;
    let token;
    try {
      token = await socketToken();
    } catch (error) {
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token }));
    socket.onmessage = (event) => {
      delay = 1000;
      onMessage(JSON.parse(event.data));
    };
    socket.onclose = (event) => {
      if (event.code === 1000 || event.code >= 4000) return; // finished, or refused for good
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
  return { stop: () => { stopped = true; } };
}

function statusLabel(status, phase) {
  const label = LABELS[status] || status;
  return status === "RUNNING" && phase === "compiling" ? `${label} (compiling)` : label;
}

// The states a project socket reported, shared by the rows of one page.
const projectStates = {};

document.addEventListener("alpine:init", () => {
  // A page listing runs of a project: one socket feeds every liveRow on it.
  window.Alpine.data("liveProject", (projectId) => ({
    init() {
      liveSocket(`/ws/projects/${projectId}`, (message) => {
        const states = message.type === "snapshot" ? message.simulations : [message];
        for (const state of states || []) {
          if (state && state.simulation_id) {
            projectStates[state.simulation_id] = state;
            window.dispatchEvent(new CustomEvent("simlab-state", { detail: state }));
          }
        }
      });
    },
  }));

  // One row (or one run page's status): starts from what the server rendered.
  window.Alpine.data("liveRow", (id, status, progress, phase) => ({
    status, progress, phase,
    init() {
      window.addEventListener("simlab-state", (event) => {
        if (event.detail.simulation_id === id) this.apply(event.detail);
      });
    },
    apply(state) {
      this.status = state.status;
      this.progress = state.progress;
      this.phase = state.phase || "";
    },
    label() { return statusLabel(this.status, this.phase); },
    percent() { return Math.round(this.progress * 100); },
  }));

  // The size of a sweep before it is submitted: points of the grid times seeds.
  window.Alpine.data("sweepSize", () => ({
    points() {
      void this.tick; // re-read whenever a field changes
      let product = 0;
      for (let i = 0; i < 3; i++) {
        const parameter = this.$root.querySelector(`[name="axis_${i}_parameter"]`);
        const values = this.$root.querySelector(`[name="axis_${i}_values"]`);
        if (!parameter || !parameter.value || !values) continue;
        const count = values.value.split(/[,;]/).filter((v) => v.trim()).length;
        product = (product || 1) * count;
      }
      return product;
    },
    seeds() {
      const field = this.$root.querySelector('[name="seeds_per_point"]');
      return Math.max(1, parseInt(field && field.value, 10) || 1);
    },
    runs() { return this.points() * this.seeds(); },
    init() {
      // Recompute as the person types: Alpine does not see plain inputs' values.
      this.$root.addEventListener("input", () => { this.tick = (this.tick || 0) + 1; });
      this.$root.addEventListener("change", () => { this.tick = (this.tick || 0) + 1; });
    },
    tick: 0,
  }));

  // A run's own page: its socket; once finished, the page reloads to show the result.
  window.Alpine.data("liveRun", (id, status, progress, phase) => ({
    status, progress, phase,
    init() {
      if (FINISHED.includes(this.status)) return;
      liveSocket(`/ws/simulations/${id}`, (message) => {
        if (!message.simulation_id) return;
        this.status = message.status;
        this.progress = message.progress;
        this.phase = message.phase || "";
        if (FINISHED.includes(message.status)) setTimeout(() => location.reload(), 200);
      });
    },
    label() { return statusLabel(this.status, this.phase); },
    percent() { return Math.round(this.progress * 100); },
  }));
});
