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

// "ETA 3m 05s" (as the CLI writes it), or "" when none is known or the run is over.
function etaText(status, seconds) {
  if (FINISHED.includes(status) || seconds === null || seconds === undefined) return "";
  const whole = Math.max(0, Math.round(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  if (whole < 60) return `ETA ${whole}s`;
  if (whole < 3600) return `ETA ${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  return `ETA ${Math.floor(whole / 3600)}h ${pad(Math.floor((whole % 3600) / 60))}m`;
}

// The live parts of a row or a run page, from the values the server rendered
// (`flags` as stored: ",a,b,"), and how a state changes them. Flags only grow: a
// worker's progress states carry none.
function liveState(status, progress, phase, eta, flags) {
  const shown = (flags || "").split(",").filter((kind) => kind);
  return {
    status, progress, phase, eta, flags: shown, rendered: shown,
    applyState(state) {
      this.status = state.status;
      this.progress = state.progress;
      this.phase = state.phase || "";
      this.eta = state.eta_s ?? null;
      if (state.flags) this.flags = [...new Set([...this.flags, ...state.flags])];
    },
    label() { return statusLabel(this.status, this.phase); },
    percent() { return Math.round(this.progress * 100); },
    etaText() { return etaText(this.status, this.eta); },
    newFlags() { return this.flags.filter((kind) => !this.rendered.includes(kind)); },
  };
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
  window.Alpine.data("liveRow", (id, status, progress, phase, eta, flags) => ({
    ...liveState(status, progress, phase, eta, flags),
    init() {
      window.addEventListener("simlab-state", (event) => {
        if (event.detail.simulation_id === id) this.applyState(event.detail);
      });
    },
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
});

// A cluster drawn on a canvas as its particles arrive (the playground's frames, a queued
// run's growth messages): each display frame draws the new points only, and everything
// again when the view must zoom out; coloured from the first (blue) to the last of `total`
// points; it counts the frames it draws (frames/s).
const COLOUR_STEPS = 64;
const CLUSTER_COLOURS = Array.from(
  { length: COLOUR_STEPS },
  (_, step) => `hsl(${240 - (200 * step) / (COLOUR_STEPS - 1)}, 70%, 45%)`,
);

class ClusterCanvas {
  constructor(canvas, total) {
    this.canvas = canvas;
    this.reset(total);
  }
  reset(total) {
    Object.assign(this, {
      total: Math.max(total, 1), points: [], drawn: 0, extent: 0,
      frames: 0, since: performance.now(), fps: 0, pending: false,
    });
    this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
  }
  add(points) {
    for (const point of points) this.points.push(point);
  }
  // Draw at every display frame while `going()` or points are left to draw; `after` is
  // called after each.
  schedule(going, after) {
    if (this.pending) return;
    this.pending = true;
    const tick = () => {
      this.draw();
      if (after) after(this);
      if (going() || this.drawn < this.points.length) requestAnimationFrame(tick);
      else this.pending = false;
    };
    requestAnimationFrame(tick);
  }
  draw() {
    const { canvas, points } = this;
    const context = canvas.getContext("2d");
    let extent = this.extent;
    for (let i = this.drawn; i < points.length; i++) {
      extent = Math.max(extent, Math.abs(points[i][0]), Math.abs(points[i][1]));
    }
    if (this.extent === 0 || extent > this.extent) {
      // Zoom out with room to grow, and draw every particle again at the new scale.
      this.extent = Math.max(extent * 1.5, 10);
      context.clearRect(0, 0, canvas.width, canvas.height);
      this.drawn = 0;
    }
    const scale = canvas.width / (2 * this.extent);
    const size = Math.max(1, 2 * scale);
    // COLOUR_STEPS hues in arrival order: the fill style changes only between steps
    // (setting it for every point cost more than drawing).
    let step = -1;
    for (let i = this.drawn; i < points.length; i++) {
      const next = Math.min(COLOUR_STEPS - 1, Math.floor((COLOUR_STEPS * i) / this.total));
      if (next !== step) {
        step = next;
        context.fillStyle = CLUSTER_COLOURS[step];
      }
      const [x, y] = points[i];
      context.fillRect(canvas.width / 2 + x * scale, canvas.height / 2 - y * scale, size, size);
    }
    this.drawn = points.length;
    // Frames/s from the first frame drawn on (not from the wait for the run to start).
    if (this.frames === 0) this.since = performance.now();
    this.frames += 1;
    const elapsed = (performance.now() - this.since) / 1000;
    if (elapsed > 0.5) this.fps = (this.frames - 1) / elapsed;
  }
}

document.addEventListener("alpine:init", () => {
  // A run's own page: its socket (with its growing cluster's points when the page has a
  // canvas for them); once finished, the page reloads to show the result.
  window.Alpine.data("liveRun", (id, status, progress, phase, growthPoints, eta, flags) => {
    let cluster = null; // outside Alpine's reactivity (up to 10^5 points)
    return {
      ...liveState(status, progress, phase, eta, flags),
      attempt: 0, drawnPoints: 0,
      init() {
        if (FINISHED.includes(this.status)) return;
        const growth = growthPoints > 0 && this.$refs.growth;
        if (growth) cluster = new ClusterCanvas(this.$refs.growth, growthPoints);
        const path = `/ws/simulations/${id}${growth ? "?growth=1" : ""}`;
        liveSocket(path, (message) => {
          if (message.type === "growth") return this.grow(message);
          if (!message.simulation_id) return;
          this.applyState(message);
          if (FINISHED.includes(message.status)) setTimeout(() => location.reload(), 200);
        });
      },
      grow(message) {
        if (!cluster) return;
        if (message.attempt !== this.attempt || message.offset === 0) {
          this.attempt = message.attempt;
          cluster.reset(growthPoints); // a new attempt, or a reconnect: from the start
        }
        cluster.add(message.particles);
        cluster.schedule(() => false, () => { this.drawnPoints = cluster.drawn; });
      },
    };
  });

  // The playground: one interactive run at a time over /ws/compute, its frames drawn on a
  // canvas as they arrive.
  window.Alpine.data("playground", (maxParticles, organization) => {
  let cluster = null;
  return {
    algorithm: "dla", n: Math.min(50000, maxParticles), stick: 1, seed: "", organization,
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
        if (this.organization) run.organization_id = Number(this.organization);
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
      if (!cluster) cluster = new ClusterCanvas(this.$refs.canvas, this.n);
      cluster.reset(this.n);
      this.count = 0; this.progress = 0; window.simlabFps = 0;
    },
    receive(message) {
      if (message.type === "started") {
        this.state = `Running (seed ${message.seed})…`;
      } else if (message.type === "frame") {
        this.progress = message.progress;
        cluster.add(message.particles);
        this.count = cluster.points.length;
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
      // One animation loop while a run streams; the frames/s it draws is shown.
      cluster.schedule(() => this.running, (drawn) => {
        this.fps = Math.round(drawn.fps);
        window.simlabFps = drawn.fps;
      });
    },
  };
  });
});
