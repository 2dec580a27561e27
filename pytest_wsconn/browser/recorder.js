// pytest-wsconn: reports what each WebSocket of this page does to the test (window.__wsconnRecord,
// a Playwright binding). Installed before the page's own scripts run; the page's code sees the
// browser's WebSocket, subclassed only to listen. Plain JS, no build step.
(() => {
  "use strict";
  const Native = window.WebSocket;
  if (!Native || Native.__wsconnRecorded) {
    return;
  }
  let sockets = 0;
  const record = (event) => {
    const report = window.__wsconnRecord;
    if (typeof report === "function") {
      report(event).catch(() => {}); // the test may be gone; the page must not break
    }
  };
  class RecordedWebSocket extends Native {
    constructor(url, protocols) {
      const socket = ++sockets;
      try {
        super(url, protocols);
      } catch (error) {
        record({ kind: "blocked", socket, url: String(url), text: `${error.name}: ${error.message}` });
        throw error;
      }
      record({ kind: "connecting", socket, url: this.url });
      this.addEventListener("open", () => record({ kind: "open", socket }));
      this.addEventListener("error", () => record({ kind: "error", socket }));
      this.addEventListener("close", (event) =>
        record({ kind: "close", socket, code: event.code, reason: event.reason }),
      );
    }
  }
  // A CSP connect-src block sends no request and fires no close: only this event tells.
  document.addEventListener("securitypolicyviolation", (event) => {
    if (/^wss?:/.test(event.blockedURI) && event.effectiveDirective === "connect-src") {
      record({ kind: "csp", url: event.blockedURI, text: `${event.effectiveDirective} '${event.originalPolicy}'` });
    }
  });
  Object.defineProperty(RecordedWebSocket, "__wsconnRecorded", { value: true });
  window.WebSocket = RecordedWebSocket;
})();
