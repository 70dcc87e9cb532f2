// The assistant's chat: questions posted through the compute proxy, answers read as
// server-sent events from the response body as they stream; a broken stream is resumed
// from the last event seen (Last-Event-ID), Stop cancels the answer. Uses csrfToken()
// from live.js.
"use strict";

const ASSISTANT = "/api/v1/compute/assistant";

// Each server-sent event of a response body: {id, event, data} to `onEvent`, until the
// body ends; returns the id of the last event read.
async function readEvents(response, lastId, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return lastId;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = {};
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      if (fields.data === undefined) continue;
      lastId = Number(fields.id || lastId);
      onEvent({ id: lastId, event: fields.event, data: JSON.parse(fields.data) });
    }
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

document.addEventListener("alpine:init", () => {
  window.Alpine.data("chat", (conversationId, organizationId) => ({
    conversation: conversationId, organization: organizationId,
    text: "", busy: false, state: "",
    async post(path, body) {
      return fetch(`${ASSISTANT}${path}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    async failure(response) {
      try {
        return (await response.json()).error.message;
      } catch (error) {
        return `HTTP ${response.status}`;
      }
    },
    async send() {
      const question = this.text.trim();
      if (!question || this.busy) return;
      this.busy = true;
      this.state = "Thinking…";
      try {
        if (this.conversation === null) {
          const made = await this.post("/conversations", { organization_id: this.organization });
          if (!made.ok) throw new Error(await this.failure(made));
          this.conversation = (await made.json()).id;
          history.replaceState(null, "", `/assistant/${this.conversation}/`);
        }
        this.add("user").append(element("p", "text", question));
        this.text = "";
        const answer = this.add("assistant");
        const response = await this.post(`/conversations/${this.conversation}/messages`, {
          content: question,
        });
        if (!response.ok) throw new Error(await this.failure(response));
        const turn = response.headers.get("X-Turn-Id");
        await this.follow(response, turn, answer);
      } catch (error) {
        this.state = error.message;
      } finally {
        this.busy = false;
      }
    },
    add(role) {
      const item = element("li", `message ${role}`);
      this.$refs.log.append(item);
      return item;
    },
    // Read the answer; if the stream breaks before its last event, ask for the rest.
    async follow(response, turn, answer) {
      const view = { answer, text: null, tools: {}, finished: false };
      let lastId = 0;
      for (let attempt = 0; ; attempt++) {
        try {
          lastId = await readEvents(response, lastId, (event) => this.show(event, view));
        } catch (error) {
          // The connection broke: resumed below.
        }
        if (view.finished || attempt >= 5) break;
        this.state = "Reconnecting…";
        await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
        response = await fetch(`${ASSISTANT}/turns/${turn}/events`, {
          credentials: "same-origin",
          headers: { "Last-Event-ID": String(lastId) },
        });
        if (!response.ok) break;
      }
      if (!view.finished) this.state = "The answer was interrupted; reload the page to see it.";
    },
    show(event, view) {
      const data = event.data;
      if (event.event === "message.delta") {
        if (view.text === null) {
          view.text = element("p", "text", "");
          view.answer.append(view.text);
        }
        view.text.textContent += data.text;
        this.state = "Writing…";
      } else if (event.event === "tool.call") {
        const details = element("details", "tool");
        const summary = element("summary", "", `… ${data.name}`);
        const progress = element("span", "muted", "");
        details.append(summary, element("p", "muted", `Arguments: ${data.arguments}`));
        summary.append(" ", progress);
        view.answer.append(details);
        view.tools[data.id] = { details, summary, progress, name: data.name };
        view.text = null; // words after a tool call start a new paragraph
        this.state = `Running ${data.name}…`;
      } else if (event.event === "tool.progress" && view.tools[data.id]) {
        view.tools[data.id].progress.textContent = data.message || "";
      } else if (event.event === "tool.result" && view.tools[data.id]) {
        const tool = view.tools[data.id];
        tool.summary.textContent = `${data.ok ? "✓" : "✗"} ${tool.name}`;
        if (!data.ok) tool.details.classList.add("failed");
        tool.details.append(element("pre", "", JSON.stringify(data.result, null, 1).slice(0, 4000)));
        this.state = "Thinking…";
      } else if (event.event === "done") {
        view.finished = true;
        this.state = "";
      } else if (event.event === "error") {
        view.finished = true;
        view.answer.append(element("p", "error", data.message));
        this.state = data.code === "cancelled" ? "Stopped." : "";
      }
    },
    async stop() {
      if (this.conversation !== null) await this.post(`/conversations/${this.conversation}/cancel`);
    },
  }));
});
