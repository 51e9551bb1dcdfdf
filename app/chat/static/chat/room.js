// Room page client: live messages over a WebSocket, with reconnection and catch-up.
//
// The protocol is described in app/README.md. Message text only ever reaches the
// page through textContent, never as HTML. After every (re)connection the client
// asks for the messages it missed (chat.catchup after the newest id it has), so
// a server restart loses nothing from the reader's view; while connected, the
// server itself pushes any message a broadcast failed to bring (after a Redis
// restart, say) as ordinary chat.message frames, which land in id order here.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const list = document.getElementById("messages");
  const stateLine = document.getElementById("connection-state");
  const errorLine = document.getElementById("chat-error");
  const emptyNote = document.getElementById("no-messages");
  const form = document.getElementById("message-form");
  const input = document.getElementById("message-input");

  // Reconnection delay: doubles from MIN to MAX, with jitter so that clients
  // cut off by the same restart do not all come back at the same moment.
  const MIN_DELAY_MS = 500;
  const MAX_DELAY_MS = 30000;
  // After a 1012 (service restart; 4012 from daphne, which cannot send 1012)
  // the server asked us to go elsewhere: come
  // back at once, spread over this much time so that the clients of one server
  // do not all land on the others in the same instant, and start the backoff
  // afresh in case the next attempt fails.
  const RESTART_JITTER_MS = 1000;
  // Pause between catch-up pages, to stay under the server's rate limit.
  const CATCHUP_PAGE_DELAY_MS = 250;
  // After a 4429 (this user holds too many sockets) wait this long, with jitter,
  // before trying again, and do not let a tab switch or "online" cut it short.
  const TOO_MANY_DELAY_MS = 60000;
  // A connection that stays open this long has a working session (a 4401 right
  // after opening means the session is gone).
  const SESSION_PROVEN_MS = 5000;

  const seen = new Set();
  let newestId = 0;
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let holdOff = false;
  let sessionRetried = false;

  function formatTime(iso) {
    const moment = new Date(iso);
    return Number.isNaN(moment.getTime()) ? iso : moment.toLocaleString();
  }

  function setState(state, text) {
    stateLine.dataset.state = state;
    stateLine.textContent = text;
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function isNearBottom() {
    return list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  }

  function renderMessage(frame) {
    const item = document.createElement("li");
    item.className = "message";
    item.dataset.messageId = String(frame.id);
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = frame.author;
    const time = document.createElement("time");
    time.dateTime = frame.sent_at;
    time.textContent = formatTime(frame.sent_at);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = frame.text;
    item.append(author, " ", time, text);
    return item;
  }

  function addMessage(frame) {
    if (!Number.isInteger(frame.id) || seen.has(frame.id)) {
      return;
    }
    seen.add(frame.id);
    newestId = Math.max(newestId, frame.id);
    const follow = isNearBottom();
    // Keep id order: replays and messages from other servers may interleave.
    let before = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.messageId) < frame.id) {
        break;
      }
      before = node;
    }
    list.insertBefore(renderMessage(frame), before);
    emptyNote.hidden = true;
    if (follow) {
      list.scrollTop = list.scrollHeight;
    }
  }

  function handleError(frame) {
    if (frame.code === "catchup_truncated") {
      // More was missed than one reply holds: ask for the next page.
      setTimeout(() => send({ type: "chat.catchup", after: newestId }), CATCHUP_PAGE_DELAY_MS);
      return;
    }
    showError(frame.message || frame.code);
  }

  function showSignedOut() {
    stateLine.dataset.state = "closed";
    stateLine.textContent = "Your session has ended: ";
    const link = document.createElement("a");
    link.href = config.loginUrl;
    link.textContent = "log in again";
    stateLine.append(link, ".");
  }

  function goToLogin() {
    showSignedOut();
    window.location.assign(config.loginUrl);
  }

  function sessionEnded(reason) {
    // "session ended" may be a password change in this very browser, which got a
    // new session cookie: try once more before sending the reader to the login page.
    if (reason === "session ended" && !sessionRetried) {
      sessionRetried = true;
      setState("waiting", "Checking your session…");
      retryTimer = setTimeout(connect, Math.random() * RESTART_JITTER_MS);
      return;
    }
    goToLogin();
  }

  function waitAfterTooMany() {
    holdOff = true;
    attempt = 0;
    const delay = TOO_MANY_DELAY_MS / 2 + Math.random() * (TOO_MANY_DELAY_MS / 2);
    setState(
      "waiting",
      `Too many chat connections open for your account (close a tab). Retrying in ${Math.ceil(delay / 1000)} s…`,
    );
    retryTimer = setTimeout(() => {
      holdOff = false;
      connect();
    }, delay);
  }

  function scheduleReconnect() {
    const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    setState("waiting", `Disconnected. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    retryTimer = setTimeout(connect, delay);
  }

  function reconnectAfterRestart() {
    attempt = 0;
    setState("waiting", "The server is restarting. Reconnecting…");
    retryTimer = setTimeout(connect, Math.random() * RESTART_JITTER_MS);
  }

  function connect() {
    retryTimer = null;
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setState("connecting", attempt === 0 ? "Connecting…" : "Reconnecting…");
    socket = new WebSocket(scheme + window.location.host + config.socketPath);

    const opened = socket;
    socket.addEventListener("open", () => {
      attempt = 0;
      setState("open", "Connected");
      showError("");
      send({ type: "chat.catchup", after: newestId });
      setTimeout(() => {
        if (socket === opened) {
          sessionRetried = false;
        }
      }, SESSION_PROVEN_MS);
    });

    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "chat.message") {
        addMessage(frame);
      } else if (frame.type === "error") {
        handleError(frame);
      }
    });

    socket.addEventListener("close", (event) => {
      socket = null;
      if (event.code === config.closeCodes.unauthenticated) {
        sessionEnded(event.reason);
      } else if (event.code === config.closeCodes.tooManySockets) {
        waitAfterTooMany();
      } else if (event.code === config.closeCodes.invalidRoom) {
        setState("closed", "This room name is not valid.");
      } else if (
        event.code === config.closeCodes.serviceRestart ||
        event.code === config.closeCodes.serviceRestartPrivate
      ) {
        reconnectAfterRestart();
      } else {
        scheduleReconnect();
      }
    });
  }

  function reconnectNow() {
    if (retryTimer !== null && !holdOff) {
      clearTimeout(retryTimer);
      connect();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      return;
    }
    if (send({ type: "chat.message", text })) {
      input.value = "";
      showError("");
    } else {
      showError("Not connected: your message is kept here, send it once connected.");
    }
    input.focus();
  });

  // Enter sends, Shift+Enter starts a new line.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Back online or back to the tab: no need to wait for the backoff.
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      reconnectNow();
    }
  });

  for (const item of list.querySelectorAll("[data-message-id]")) {
    const id = Number(item.dataset.messageId);
    seen.add(id);
    newestId = Math.max(newestId, id);
    const time = item.querySelector("time");
    time.textContent = formatTime(time.dateTime);
  }
  list.scrollTop = list.scrollHeight;
  connect();
})();
