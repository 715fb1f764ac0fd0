// The console's chat: posts a message, reads the turn's Server-Sent Events from the
// response body, and shows each as text (textContent only: nothing the model or a tool
// wrote is ever parsed as HTML).
"use strict";
(function () {
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-text");
  const log = document.getElementById("chat-log");
  const csrf = document.querySelector('meta[name="csrf"]').content;
  let session = sessionStorage.getItem("steward-chat");
  if (!session) {
    session = "console-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    sessionStorage.setItem("steward-chat", session);
  }
  function line(cls, text) {
    const p = document.createElement("p");
    p.className = cls;
    p.textContent = text;
    log.appendChild(p);
    p.scrollIntoView({ block: "end" });
    return p;
  }
  function show(kind, data, live) {
    if (kind === "token") {
      if (!live.answer) live.answer = line("say", "");
      live.answer.textContent += data.text;
    } else if (kind === "proposed" && data.tool !== "respond") {
      line("step", "→ " + data.tool + " " + JSON.stringify(data.arguments));
    } else if (kind === "result") {
      const what = data.result ? data.result.summary : (data.error ? data.error.message : data.status);
      line("step", data.status + ": " + what);
    } else if (kind === "approval") {
      line("step", "waits for approval " + data.approval.id + " (see Approvals)");
    } else if (kind === "answer") {
      if (!live.answer || live.answer.textContent.trim() !== data.text.trim()) line("say", data.text);
      live.answer = null;
    } else if (kind === "invalid" || kind === "error") {
      line("step", data.message);
    }
  }
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    line("you", text);
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const r = await fetch("/console/chat/" + session + "/messages", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ text: text }),
      });
      if (!r.ok) {
        line("step", "refused: " + r.status);
        return;
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", kind = "", live = {};
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const l = buffer.slice(0, cut).replace(/\r$/, "");
          buffer = buffer.slice(cut + 1);
          if (l.startsWith("event: ")) kind = l.slice(7);
          else if (l.startsWith("data: ")) show(kind, JSON.parse(l.slice(6)), live);
        }
      }
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
})();
