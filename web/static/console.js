// Agent console: state, screen pop, call controls and wrap-up over socket.io.
// Text from the server is put in with textContent only, never as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["websocket"] });
  let currentCall = null;

  const STATE_LABELS = {
    logged_out: "signed out", paused: "not ready", available: "ready", reserved: "call offered",
    on_call: "on a call", wrap_up: "wrap-up",
  };

  function notice(text) {
    const el = $("notice");
    el.textContent = text;
    el.hidden = !text;
  }

  function send(event, data) {
    return new Promise((resolve) => {
      socket.timeout(5000).emit(event, data || {}, (err, reply) => {
        if (err) { notice("The server did not answer; try again."); resolve(null); return; }
        if (!reply.ok) notice(reply.error);
        else notice("");
        resolve(reply);
      });
    });
  }

  function showState(agent) {
    const el = $("state");
    el.dataset.state = agent.state;
    el.textContent = STATE_LABELS[agent.state] || agent.state;
    if (agent.state === "paused" && agent.reason) el.textContent += " (" + agent.reason + ")";
    $("ready").disabled = !(agent.state === "paused");
    $("pause").disabled = !(agent.state === "available");
  }

  function showPop(pop) {
    currentCall = pop.call_id;
    $("idle").hidden = true;
    $("call").hidden = false;
    $("wrapup").hidden = true;
    $("wrapup").reset();
    $("call-state").textContent = "ringing";
    $("call").dataset.callId = pop.call_id;
    const customer = pop.customer;
    $("pop-name").textContent = customer ? customer.name : "Unknown caller";
    $("pop-number").textContent = pop.caller_number || "number withheld";
    $("pop-customer").hidden = !customer;
    const history = $("pop-history");
    history.replaceChildren();
    $("pop-history-title").hidden = !customer || customer.interactions.length === 0;
    if (customer) {
      $("pop-tier").textContent = customer.tier;
      $("pop-tier").className = "tier tier-" + customer.tier;
      $("pop-account").textContent = customer.account_number;
      $("pop-since").textContent = customer.customer_since.slice(0, 10);
      $("pop-tickets").textContent = String(customer.open_tickets);
      for (const past of customer.interactions) {
        const item = document.createElement("li");
        item.textContent = past.arrived_at.slice(0, 16).replace("T", " ") + " · " +
          (past.disposition || "no disposition") + (past.agent ? " · " + past.agent : "") +
          (past.notes ? " — " + past.notes : "");
        history.appendChild(item);
      }
    }
    $("answer").disabled = false;
    $("hangup").disabled = true;
  }

  function showCallState(msg) {
    if (msg.call_id !== currentCall) return;
    $("call-state").textContent = msg.state.replace("_", "-");
    if (msg.state === "answered") {
      $("answer").disabled = true;
      $("hangup").disabled = false;
    } else if (msg.state === "wrap_up") {
      $("answer").disabled = true;
      $("hangup").disabled = true;
      $("wrapup").hidden = false;
      $("disposition").focus();
    } else if (msg.state === "ended" || msg.state === "missed" || msg.state === "closed") {
      currentCall = null;
      $("call").hidden = true;
      $("idle").hidden = false;
      if (msg.state === "missed") notice("You missed a call: you are now not ready.");
      if (msg.state === "ended") notice("The caller hung up before you answered.");
    }
  }

  socket.on("connect_error", (err) => notice("Not connected: " + err.message));
  socket.on("disconnect", () => notice("Connection lost; reconnecting…"));
  socket.on("connect", () => notice(""));
  socket.on("agent_state", showState);
  // Acknowledge once the pop is on screen: the server rings the phone only then.
  socket.on("screen_pop", (pop, ack) => { showPop(pop); if (ack) ack(); });
  socket.on("call_state", showCallState);

  $("ready").addEventListener("click", () => send("ready"));
  $("pause").addEventListener("click", () => send("pause", { reason: "not ready" }));
  $("answer").addEventListener("click", () => send("answer", { call_id: currentCall }));
  $("hangup").addEventListener("click", () => send("hangup", { call_id: currentCall }));
  $("wrapup").addEventListener("submit", async (event) => {
    event.preventDefault();
    await send("disposition", {
      call_id: currentCall, disposition: $("disposition").value, notes: $("notes").value,
    });
  });
})();
