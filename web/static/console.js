// Agent console: state, screen pop, call controls, wrap-up, click to dial and callbacks over socket.io.
// Text from the server is put in with textContent only, never as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["websocket"] });
  let currentCall = null;
  let currentCustomer = null; // the customer on screen: the pop's, then the last one's
  let dialFor = null; // the customer whose number was picked for the dial form

  const STATE_LABELS = {
    logged_out: "signed out", paused: "not ready", available: "ready", reserved: "call offered",
    dialling: "dialling", on_call: "on a call", wrap_up: "wrap-up",
  };
  const CALL_LABELS = { dialling: "calling the customer", wrap_up: "wrap-up", unreached: "not reached" };

  function notice(text) {
    const el = $("notice");
    el.textContent = text;
    el.hidden = !text;
  }

  function send(event, data) {
    return new Promise((resolve) => {
      socket.timeout(5000).emit(event, data || {}, (err, reply) => {
        if (err) { notice("The server did not answer; try again."); resolve(null); return; }
        if (!reply.ok) notice(reply.id === "dial-refused" ? "Not dialled: " + reply.reason : reply.error);
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
    $("dial-button").disabled = !(agent.state === "paused" || agent.state === "available");
  }

  function phoneButton(number, onPick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "pop-phone";
    button.textContent = number;
    button.addEventListener("click", () => onPick(number));
    return button;
  }

  function showOutbound(pop) {
    const out = pop.outbound;
    $("pop-outbound").hidden = !out;
    if (!out) return;
    $("pop-outbound").textContent = out.callback_id
      ? "Callback" + (out.note ? ": " + out.note : "")
      : "Outbound call to " + out.number;
  }

  function showOffer(customer) {
    const offer = customer && customer.offer;
    $("pop-offer").hidden = !offer;
    if (!offer) return;
    $("pop-offer-title").textContent = offer.title;
    $("pop-offer-why").textContent = offer.why;
  }

  function showCustomer(customer) {
    $("pop-tier").textContent = customer.tier;
    $("pop-tier").className = "tier tier-" + customer.tier;
    $("pop-account").textContent = customer.account_number;
    $("pop-since").textContent = customer.customer_since.slice(0, 10);
    $("pop-tickets").textContent = String(customer.open_tickets);
    $("pop-phones").replaceChildren(...customer.phones.map((n) => phoneButton(n, (picked) => {
      $("callback-number").value = picked;
    })));
    const history = $("pop-history");
    for (const past of customer.interactions) {
      const item = document.createElement("li");
      item.textContent = past.arrived_at.slice(0, 16).replace("T", " ") + " · " +
        (past.disposition || "no disposition") + (past.agent ? " · " + past.agent : "") +
        (past.notes ? " — " + past.notes : "");
      history.appendChild(item);
    }
  }

  function showPop(pop) {
    currentCall = pop.call_id;
    currentCustomer = pop.customer;
    $("idle").hidden = true;
    $("call").hidden = false;
    $("wrapup").hidden = true;
    $("wrapup").reset();
    $("call-state").textContent = pop.direction === "outbound" ? "calling your phone" : "ringing";
    $("call").dataset.callId = pop.call_id;
    $("call").dataset.direction = pop.direction;
    const customer = pop.customer;
    showOutbound(pop);
    $("pop-name").textContent = customer ? customer.name : "Unknown caller";
    $("pop-number").textContent = pop.caller_number || "number withheld";
    $("pop-customer").hidden = !customer;
    $("pop-history").replaceChildren();
    $("pop-history-title").hidden = !customer || customer.interactions.length === 0;
    if (customer) showCustomer(customer);
    showOffer(customer);
    $("callback-form").hidden = !customer;
    $("callback-form").reset();
    $("callback-number").value = pop.caller_number || "";
    $("answer").disabled = false;
    $("hangup").disabled = true;
  }

  function showIdle() {
    currentCall = null;
    $("call").hidden = true;
    $("idle").hidden = false;
    $("last-customer").hidden = !currentCustomer;
    if (!currentCustomer) return;
    $("last-name").textContent = currentCustomer.name;
    const customerId = currentCustomer.id;
    $("last-phones").replaceChildren(...currentCustomer.phones.map((n) => {
      const item = document.createElement("li");
      item.appendChild(phoneButton(n, (picked) => {
        $("dial-number").value = picked;
        dialFor = { number: picked, customer_id: customerId };
        $("dial-number").focus();
      }));
      return item;
    }));
  }

  function showCallState(msg) {
    if (msg.call_id !== currentCall) return;
    $("call-state").textContent = CALL_LABELS[msg.state] || msg.state;
    if (msg.state === "answered" || msg.state === "dialling") {
      $("answer").disabled = true;
      $("hangup").disabled = false;
    } else if (msg.state === "wrap_up" || msg.state === "unreached") {
      $("answer").disabled = true;
      $("hangup").disabled = true;
      $("wrapup").hidden = false;
      if (msg.state === "unreached") notice("Not reached: " + msg.reason + ".");
      $("disposition").focus();
    } else if (msg.state === "ended" || msg.state === "missed" || msg.state === "closed") {
      showIdle();
      if (msg.state === "missed") notice("You missed a call: you are now not ready." +
        (msg.reason ? " (" + msg.reason + ")" : ""));
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
  $("dial").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("dial-number").value.trim();
    const picked = dialFor && dialFor.number === number ? dialFor.customer_id : undefined;
    const reply = await send("dial", picked ? { number, customer_id: picked } : { number });
    if (reply && reply.ok) $("dial").reset();
  });
  $("callback-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const when = new Date($("callback-when").value);
    if (Number.isNaN(when.getTime())) { notice("When: choose a date and time."); return; }
    const reply = await send("schedule_callback", {
      number: $("callback-number").value.trim(), due_at: when.toISOString(),
      note: $("callback-note").value, customer_id: currentCustomer ? currentCustomer.id : undefined,
    });
    if (reply && reply.ok) {
      notice("Callback scheduled for " + when.toLocaleString() + ".");
      $("callback-form").reset();
    }
  });
})();
