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

// The playground: one interactive run at a time over /ws/compute, its frames drawn on a
// canvas as they arrive (new particles only; everything again when the view must zoom out).
document.addEventListener("alpine:init", () => {
  window.Alpine.data("playground", (maxParticles) => {
  // Particles and drawing state stay out of Alpine's reactivity (10^5 points).
  const view = { points: [], drawn: 0, extent: 0, frames: 0, since: 0, pending: false };
  return {
    algorithm: "dla", n: Math.min(50000, maxParticles), stick: 1, seed: "",
    running: false, state: "Ready.", progress: 0, count: 0, fps: 0,
    socket: null,
    async open() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) return this.socket;
      const token = await socketToken();
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/compute`);
      await new Promise((resolve, reject) => {
        socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token }));
        socket.onmessage = (event) => {
          const message = JSON.parse(event.data);
          if (message.type === "ready") resolve();
          else if (message.type === "error") reject(new Error(message.error.message));
        };
        socket.onclose = () => reject(new Error("The connection closed."));
      });
      socket.onmessage = (event) => this.receive(JSON.parse(event.data));
      socket.onclose = () => { this.running = false; this.socket = null; };
      this.socket = socket;
      return socket;
    },
    async start() {
      this.reset();
      this.state = "Connecting…";
      try {
        const socket = await this.open();
        const parameters = { n_particles: this.n };
        if (this.algorithm === "dla") parameters.sticking_probability = this.stick;
        const run = { type: "run", algorithm: this.algorithm, parameters };
        if (this.seed !== "") run.seed = Number(this.seed);
        socket.send(JSON.stringify(run));
        this.running = true;
        this.state = "Starting…";
      } catch (error) {
        this.state = `Could not start: ${error.message}`;
      }
    },
    stop() {
      if (this.socket) this.socket.send(JSON.stringify({ type: "cancel" }));
    },
    reset() {
      Object.assign(view, { points: [], drawn: 0, extent: 0, frames: 0, since: performance.now() });
      this.count = 0; this.progress = 0; window.simlabFps = 0;
      const canvas = this.$refs.canvas;
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    },
    receive(message) {
      if (message.type === "started") {
        this.state = `Running (seed ${message.seed})…`;
      } else if (message.type === "frame") {
        this.progress = message.progress;
        for (const p of message.particles) view.points.push(p);
        this.count = view.points.length;
        this.schedule();
      } else if (message.type === "result") {
        this.running = false; this.progress = 1;
        this.state = `Done: ${this.count} particles.`;
        this.schedule();
      } else if (message.type === "cancelled") {
        this.running = false;
        this.state = message.reason === "time_limit" ? "Stopped: time limit." : "Stopped.";
      } else if (message.type === "error") {
        this.running = false;
        this.state = message.error.message;
      }
    },
    schedule() {
      // One animation loop while a run streams: each display frame draws what arrived
      // since the last one, and counts itself (the frames/s shown).
      if (view.pending) return;
      view.pending = true;
      const tick = () => {
        this.draw();
        if (this.running || view.drawn < view.points.length) requestAnimationFrame(tick);
        else view.pending = false;
      };
      requestAnimationFrame(tick);
    },
    draw() {
      const canvas = this.$refs.canvas;
      const context = canvas.getContext("2d");
      let extent = view.extent;
      for (let i = view.drawn; i < view.points.length; i++) {
        const [x, y] = view.points[i];
        extent = Math.max(extent, Math.abs(x), Math.abs(y));
      }
      if (view.extent === 0 || extent > view.extent) {
        // Zoom out with room to grow, and draw every particle again at the new scale.
        view.extent = Math.max(extent * 1.5, 10);
        context.clearRect(0, 0, canvas.width, canvas.height);
        view.drawn = 0;
      }
      const scale = canvas.width / (2 * view.extent);
      const size = Math.max(1, 2 * scale);
      const total = Math.max(this.n, 1);
      for (let i = view.drawn; i < view.points.length; i++) {
        const [x, y] = view.points[i];
        context.fillStyle = `hsl(${240 - (200 * i) / total}, 70%, 45%)`;
        context.fillRect(canvas.width / 2 + x * scale, canvas.height / 2 - y * scale, size, size);
      }
      view.drawn = view.points.length;
      view.frames += 1;
      const elapsed = (performance.now() - view.since) / 1000;
      if (elapsed > 0.5) {
        this.fps = Math.round(view.frames / elapsed);
        window.simlabFps = view.frames / elapsed;
      }
    },
  };
  });
});
