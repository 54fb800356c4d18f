// roomgate.js: a browser client for the roomgate v1 protocol (docs/PROTOCOL.md).
// An ES module with no dependencies and no build step:
//
//   import { Roomgate } from "/roomgate.js";
//   const rg = new Roomgate({ name: "ann" });
//   rg.on("message", (m) => console.log(m.room, m.seq, m.data));
//   await rg.join("lobby");
//   await rg.publish("lobby", { text: "hi" });
//
// It speaks WebSocket (/ws, roomgate.v1) and falls back to Server-Sent Events (/events)
// plus fetch for requests when a WebSocket cannot be opened (or when asked to). It
// reconnects with exponential backoff and jitter, and resumes every room after the last
// seq it delivered, in the epoch that seq counts in: nothing twice, and across a restart
// of the gateway a `reset` event says what was lost. A publish carries an idempotency id
// and is retried until the gateway answers it. With a token (a JWT, or a function that
// fetches one), it authenticates every connection and request, and refreshes the token
// before it expires (docs/PROTOCOL.md, "Authentication").

/** @typedef {"connecting"|"open"|"reconnecting"|"closed"} RoomgateState */
/** @typedef {"websocket"|"sse"} RoomgateTransport */
/**
 * @typedef {object} RoomgateOptions
 * @property {string} [url] the gateway's https origin; default: the page's origin
 * @property {string} [name] this member's name in presence (1..64 bytes)
 * @property {"auto"|RoomgateTransport} [transport] default "auto": WebSocket, then SSE
 * @property {number} [minDelay] first reconnect delay, ms (default 250)
 * @property {number} [maxDelay] reconnect delays grow up to this, ms (default 10000)
 * @property {number} [openTimeout] a WebSocket not open by then counts as failed, ms (default 4000)
 * @property {string|(() => string|Promise<string>)} [token] a token (JWT), or a function
 *   that gets a fresh one: called at every connect and before the token in use expires
 */
/** @typedef {{room: string, seq: number, ts: number, data: any}} RoomgateMessage */
/** @typedef {{room: string, event?: "join"|"leave", user?: string, users?: string[]}} RoomgatePresence */
/** @typedef {{state: RoomgateState, transport: RoomgateTransport|null, attempt: number, delay?: number}} RoomgateStateEvent */

/** An error the gateway answered: `code` is one of docs/PROTOCOL.md's error codes. */
export class RoomgateError extends Error {
  /** @param {string} code @param {string} message @param {number} [status] */
  constructor(code, message, status) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

const randomId = () => {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
};

export class Roomgate {
  /** @param {RoomgateOptions} [opts] */
  constructor(opts = {}) {
    this.url = (opts.url || location.origin).replace(/\/$/, "");
    this.name = opts.name || "";
    this.mode = opts.transport || "auto";
    this.minDelay = opts.minDelay ?? 250;
    this.maxDelay = opts.maxDelay ?? 10000;
    this.openTimeout = opts.openTimeout ?? 4000;
    this._tokenSource = opts.token || null;
    this._tokenValue = typeof opts.token === "string" ? opts.token : "";
    this._refreshTimer = null;
    /** @type {RoomgateState} */
    this.state = "connecting";
    /** @type {RoomgateTransport|null} */
    this.transport = null;
    /** the gateway's epoch, once known */
    this.epoch = null;
    /** room -> {seq: number|null (last delivered), epoch, joined: [resolve, reject][]} */
    this.rooms = new Map();
    this._handlers = new Map();
    this._pending = new Map(); // WebSocket request id -> {frame, resolve, reject}
    this._joinIds = new Map(); // WebSocket join id -> room
    this._client = randomId();
    this._n = 0;
    this._attempt = 0;
    this._wsOpened = false; // a WebSocket opened once: later failures are outages
    this._useSse = this.mode === "sse";
    this._timer = null;
    this._connect();
  }

  /**
   * Calls fn for every event of a type: "message" (RoomgateMessage), "presence"
   * (RoomgatePresence), "state" (RoomgateStateEvent), "reset" ({room, epoch}: the
   * gateway restarted, or forgot the room; what was published before is lost to this
   * client), "gap" ({room, from, to}: messages no longer stored), "error"
   * (RoomgateError, unasked). Returns a function that removes fn.
   * @param {string} type @param {(ev: any) => void} fn @returns {() => void}
   */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {(ev: any) => void} fn */
  off(type, fn) {
    this._handlers.get(type)?.delete(fn);
  }

  /**
   * Joins a room: its messages after `since` (default: from now on) reach "message";
   * `epoch`: the epoch `since` counts in (a history answer's; default: the last seen).
   * Resolves once the gateway has joined it ({room, seq, epoch}: seq is the cursor
   * delivery starts after). The room is joined again, where it left off, after every
   * reconnect.
   * @param {string} room @param {{since?: number, epoch?: string}} [opts] @returns {Promise<{room: string, seq: number, epoch: string}>}
   */
  join(room, opts = {}) {
    return new Promise((resolve, reject) => {
      let r = this.rooms.get(room);
      if (!r) {
        r = { seq: null, epoch: null, joined: [] };
        this.rooms.set(room, r);
      }
      if (opts.since !== undefined) {
        r.seq = opts.since;
        r.epoch = opts.epoch || this.epoch;
      }
      r.joined.push([resolve, reject]);
      if (this.transport === "websocket" && this.state === "open") this._wsJoin(room);
      else if (this.transport === "sse") this._sseJoin(room, opts.since !== undefined);
    });
  }

  /** Leaves a room: no message of it follows. @param {string} room @returns {Promise<void>} */
  async leave(room) {
    if (!this.rooms.delete(room)) return;
    if (this.transport === "websocket") {
      if (this.state === "open") await this._request({ type: "leave", room }).catch(() => {});
    } else if (this.transport === "sse" && this._es) {
      if (!this.rooms.size) this._sseClose();
      else if (this._stream) await this._steer({ leave: [room] }).catch(() => {});
    }
  }

  /**
   * Publishes data (any JSON value) to a joined room. Retried across reconnects under
   * one idempotency id until the gateway answers: resolves {room, seq, duplicate?}
   * (duplicate: it had been stored by an earlier try), rejects with a RoomgateError.
   * @param {string} room @param {any} data @returns {Promise<{room: string, seq: number, duplicate?: boolean}>}
   */
  publish(room, data) {
    return this._call({ type: "publish", room, data, id: `${this._client}-${++this._n}` });
  }

  /**
   * A room's stored messages after `since` (in `epoch`; default: the latest), at most
   * `limit`. `epoch` in the answer is what its seqs count in; `reset` says `since` was
   * of another epoch (the messages start at the room's first).
   * @param {string} room @param {{since?: number, epoch?: string, limit?: number}} [opts]
   * @returns {Promise<{room: string, epoch: string, last_seq: number, more: boolean, reset?: boolean, messages: RoomgateMessage[], gap?: {from: number, to: number}}>}
   */
  history(room, opts = {}) {
    return this._call({ type: "history", room, since: opts.since, epoch: opts.epoch, limit: opts.limit });
  }

  /** The names of a presence room's members. @param {string} room @returns {Promise<string[]>} */
  async presence(room) {
    return (await this._call({ type: "presence", room })).users;
  }

  /** Closes the connection for good; pending requests are rejected. */
  close() {
    this._setState("closed");
    clearTimeout(this._timer);
    clearTimeout(this._refreshTimer);
    this._ws?.close(1000);
    this._ws = null;
    this._sseClose();
    for (const p of this._pending.values()) p.reject(new RoomgateError("closed", "the client was closed"));
    this._pending.clear();
  }

  // ---- tokens -----------------------------------------------------------------------

  /** The token to connect with: a fresh one from the token function, or the one given. */
  async _token() {
    if (typeof this._tokenSource === "function") this._tokenValue = String((await this._tokenSource()) || "");
    return this._tokenValue;
  }

  /** Seconds until the token in use expires (its exp claim), or null. */
  _tokenTtl() {
    try {
      const p = this._tokenValue.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const exp = JSON.parse(atob(p)).exp;
      return typeof exp === "number" ? exp - Date.now() / 1000 : null;
    } catch (e) {
      return null;
    }
  }

  /** With a token function: a new token before this one expires (WebSocket: `auth`; an
   * SSE stream is reopened when the gateway ends it with `expired`). */
  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    const ttl = this._tokenTtl();
    if (typeof this._tokenSource !== "function" || ttl === null || this.transport !== "websocket") return;
    const lead = Math.min(30, Math.max(1, ttl / 5));
    this._refreshTimer = setTimeout(() => this._refresh(), Math.max(0, ttl - lead) * 1000);
  }

  async _refresh() {
    if (this.state === "closed" || this.transport !== "websocket") return;
    try {
      const token = await this._token();
      await this._request({ type: "auth", token });
      this._scheduleRefresh();
    } catch (err) {
      this._emit("error", err instanceof RoomgateError ? err : new RoomgateError("unauthorized", String(err)));
    }
  }

  // ---- shared -----------------------------------------------------------------------

  _emit(type, ev) {
    for (const fn of this._handlers.get(type) || []) {
      try {
        fn(ev);
      } catch (e) {
        console.error(e);
      }
    }
  }

  _setState(state, extra = {}) {
    if (this.state === "closed") return;
    this.state = state;
    this._emit("state", { state, transport: this.transport, attempt: this._attempt, ...extra });
  }

  _connect() {
    if (this.state === "closed") return;
    if (this._useSse) this._sseConnect();
    else this._wsConnect();
  }

  _reconnect() {
    if (this.state === "closed") return;
    clearTimeout(this._timer);
    const delay = Math.round(Math.min(this.maxDelay, this.minDelay * 2 ** this._attempt) * (0.5 + Math.random() / 2));
    this._attempt++;
    this._setState("reconnecting", { delay });
    this._timer = setTimeout(() => this._connect(), delay);
  }

  /** Where a room's delivery stands; false when m is one already delivered. */
  _deliver(m) {
    const r = this.rooms.get(m.room);
    if (!r) return false;
    if (r.seq !== null && r.epoch === this.epoch && m.seq <= r.seq) return false;
    r.seq = m.seq;
    r.epoch = this.epoch;
    return true;
  }

  /** One event from the gateway, the same JSON on both transports. */
  _event(m) {
    const r = this.rooms.get(m.room);
    switch (m.type) {
      case "message":
        if (this._deliver(m)) this._emit("message", { room: m.room, seq: m.seq, ts: m.ts, data: m.data });
        break;
      case "reset":
        this.epoch = m.epoch;
        if (r) {
          r.seq = 0;
          r.epoch = m.epoch;
        }
        this._emit("reset", { room: m.room, epoch: m.epoch });
        break;
      case "gap":
        if (r && (r.seq === null || r.seq < m.to)) r.seq = m.to;
        this._emit("gap", { room: m.room, from: m.from, to: m.to });
        break;
      case "presence":
        this._emit("presence", m.users ? { room: m.room, users: m.users } : { room: m.room, event: m.event, user: m.user });
        break;
    }
  }

  /** The gateway joined a room; cursor: where delivery starts after, when the gateway
   * says so (SSE), or null (WebSocket: after our `since`, or live after `seq`). */
  _joined(room, seq, epoch, cursor) {
    const r = this.rooms.get(room);
    if (!r) return;
    if (cursor !== null) r.seq = cursor;
    else if (r.seq === null) r.seq = seq;
    // a cursor of another epoch: the `reset` that follows moves it
    r.epoch = epoch;
    for (const [resolve] of r.joined.splice(0)) resolve({ room, seq: r.seq, epoch });
  }

  _refuseJoin(room, err) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.rooms.delete(room);
    if (!r.joined.length) this._emit("error", err); // a rejoin after a reconnect
    for (const [, reject] of r.joined) reject(err);
  }

  /** A request over the transport in use. */
  _call(frame) {
    return this.transport === "sse" ? this._viaHttp(frame) : this._request(frame);
  }

  /** A WebSocket request frame as the HTTP API's request. */
  _viaHttp(f) {
    const path = `/rooms/${encodeURIComponent(f.room)}`;
    if (f.type === "publish") return this._http("POST", `${path}/messages?idempotency_key=${f.id}`, f.data, true);
    if (f.type === "presence") return this._http("GET", `${path}/presence`);
    const q = new URLSearchParams();
    if (f.since !== undefined) q.set("since", String(f.since));
    if (f.epoch !== undefined) q.set("epoch", f.epoch);
    if (f.limit !== undefined) q.set("limit", String(f.limit));
    return this._http("GET", `${path}/messages?${q}`);
  }

  // ---- WebSocket --------------------------------------------------------------------

  async _wsConnect() {
    this.transport = "websocket";
    let url = this.url.replace(/^http/, "ws") + "/ws";
    let ws;
    try {
      const token = await this._token();
      if (token) url += `?token=${encodeURIComponent(token)}`;
    } catch (e) {
      this._emit("error", new RoomgateError("unauthorized", `the token function failed: ${e}`));
      return this._reconnect();
    }
    if (this.state === "closed") return;
    try {
      ws = new WebSocket(url, "roomgate.v1");
    } catch (e) {
      return this._wsFailed(false);
    }
    this._ws = ws;
    let opened = false;
    const timer = setTimeout(() => {
      if (!opened) ws.close();
    }, this.openTimeout);
    ws.onopen = () => {
      clearTimeout(timer);
      opened = this._wsOpened = true;
      this._attempt = 0;
      this._setState("open");
      this._scheduleRefresh();
      this._joinIds.clear(); // joins of an earlier socket are answered by nobody
      for (const room of this.rooms.keys()) this._wsJoin(room);
      for (const p of this._pending.values()) ws.send(JSON.stringify(p.frame));
    };
    ws.onmessage = (e) => this._wsFrame(JSON.parse(e.data));
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (this._ws !== ws) return;
      this._ws = null;
      if (e.code === 4001 && typeof this._tokenSource !== "function") {
        // refused, or expired, with the only token there is: trying again cannot help
        this._emit("error", new RoomgateError("unauthorized", e.reason || "the token was refused"));
        return this.close();
      }
      this._wsFailed(opened);
    };
  }

  _wsFailed(opened) {
    if (this.state === "closed") return;
    // A WebSocket that never opened (a proxy that does not upgrade, a blocked port)
    // is not coming: SSE and fetch from now on. Once one opened, failures are outages.
    if (!opened && !this._wsOpened && this.mode === "auto") {
      this._useSse = true;
      this._attempt = 0;
      this._joinIds.clear();
      this._connect();
      const moved = [...this._pending.values()].filter((p) => p.frame.type !== "leave");
      this._pending.clear();
      for (const p of moved) this._viaHttp(p.frame).then(p.resolve, p.reject);
      return;
    }
    this._reconnect();
  }

  _wsJoin(room) {
    const r = this.rooms.get(room);
    const frame = { type: "join", room, id: `j${++this._n}` };
    this._joinIds.set(frame.id, room);
    if (this.name) frame.name = this.name;
    if (r.seq !== null) {
      frame.since = r.seq;
      if (r.epoch) frame.epoch = r.epoch;
    }
    this._ws.send(JSON.stringify(frame));
  }

  _wsFrame(m) {
    if (m.type === "joined") {
      this.epoch = m.epoch;
      this._joinIds.delete(m.id);
      return this._joined(m.room, m.seq, m.epoch, null);
    }
    const p = m.id !== undefined && m.type !== "message" ? this._pending.get(m.id) : null;
    if (m.type === "error") {
      const err = new RoomgateError(m.code, m.message);
      if (p) {
        this._pending.delete(m.id);
        return p.reject(err);
      }
      const room = this._joinIds.get(m.id);
      if (room !== undefined) {
        // a refused join: the room is unknown, or a limit is reached
        this._joinIds.delete(m.id);
        return this._refuseJoin(room, err);
      }
      if (err.code === "token_expired" && typeof this._tokenSource === "function") return this._refresh();
      return this._emit("error", err);
    }
    if (p) {
      this._pending.delete(m.id);
      const { type, id, ...rest } = m;
      return p.resolve(rest);
    }
    this._event(m);
  }

  _request(frame) {
    return new Promise((resolve, reject) => {
      if (this.state === "closed") return reject(new RoomgateError("closed", "the client was closed"));
      frame.id = frame.id || `r${++this._n}`;
      this._pending.set(frame.id, { frame, resolve, reject });
      if (this.transport === "websocket" && this.state === "open") this._ws.send(JSON.stringify(frame));
    });
  }

  // ---- Server-Sent Events and fetch -------------------------------------------------

  async _sseConnect() {
    this.transport = "sse";
    this._sseClose();
    let token = "";
    try {
      token = await this._token();
    } catch (e) {
      this._emit("error", new RoomgateError("unauthorized", `the token function failed: ${e}`));
      return this._reconnect();
    }
    if (this.state === "closed" || this._es) return;
    if (!this.rooms.size) {
      // nothing to stream yet: requests go over fetch, a join opens the stream
      this._attempt = 0;
      return this._setState("open");
    }
    const q = new URLSearchParams();
    const cursor = [];
    for (const [room, r] of this.rooms) {
      q.append("room", room);
      if (r.seq !== null) cursor.push(`${room}=${r.seq}`);
    }
    if (this.name) q.set("name", this.name);
    // Resume is in our hands, not EventSource's: the stream is reopened with backoff
    // and the cursor of every room (one EventSource has one id, and only for rooms
    // that had a message), in the URL.
    // a cursor without an epoch counts in the gateway's current one
    const epoch = this.epoch || [...this.rooms.values()].find((r) => r.epoch)?.epoch;
    if (cursor.length) q.set("last_event_id", (epoch ? `${epoch}/` : "") + cursor.join(","));
    if (token) q.set("token", token);
    const es = new EventSource(`${this.url}/events?${q}`);
    this._es = es;
    es.addEventListener("stream", (e) => {
      const s = JSON.parse(e.data);
      this._stream = s.stream;
      this.epoch = s.epoch;
      this._attempt = 0;
      this._setState("open");
      for (const [room, seq] of Object.entries(s.rooms)) this._joined(room, seq, s.epoch, seq);
      // rooms joined, or left, while this stream was being opened
      const late = [...this.rooms.keys()].filter((room) => !(room in s.rooms));
      if (late.length) this._steerJoin(late);
      const gone = Object.keys(s.rooms).filter((room) => !this.rooms.has(room));
      if (gone.length) this._steer({ leave: gone }).catch(() => {});
    });
    const on = (m) => {
      const at = m.indexOf("/");
      if (at > 0) this.epoch = m.slice(0, at);
    };
    es.addEventListener("message", (e) => {
      on(e.lastEventId);
      this._event(JSON.parse(e.data));
    });
    for (const type of ["reset", "gap", "presence"])
      es.addEventListener(type, (e) => this._event({ type, ...JSON.parse(e.data) }));
    // the token expired: a new stream, with a new token, resumes where this one ended
    es.addEventListener("expired", () => {
      if (this._es !== es) return;
      this._sseClose();
      if (typeof this._tokenSource === "function") return this._sseConnect();
      this._emit("error", new RoomgateError("token_expired", "the token expired"));
      this.close();
    });
    es.onerror = () => {
      if (this._es !== es) return;
      this._sseClose();
      this._reconnect();
    };
  }

  _sseClose() {
    this._es?.close();
    this._es = null;
    this._stream = null;
  }

  _sseJoin(room, withCursor) {
    if (!this._es) return this.state === "open" || this.state === "connecting" ? this._sseConnect() : undefined;
    // a cursor needs a new stream (the stream API joins live); so does a stream not
    // yet open: its `stream` event adds the room
    if (withCursor) {
      this._sseConnect();
      return;
    }
    if (this._stream) this._steerJoin([room]);
  }

  async _steerJoin(rooms) {
    try {
      const a = await this._steer({ join: rooms });
      for (const room of rooms) if (room in a.rooms) this._joined(room, a.rooms[room], this.epoch, a.rooms[room]);
    } catch (err) {
      if (err.code === "not_found") return; // the stream ended: its reconnect joins them
      for (const room of rooms) this._refuseJoin(room, err);
    }
  }

  _steer(body) {
    return this._http("POST", `/streams/${this._stream}/rooms`, body);
  }

  /** A fetch to the gateway; retried with backoff on network errors and 5xx when
   * retry is set (a publish carries its idempotency key). */
  async _http(method, path, body, retry = false) {
    for (let attempt = 0; ; attempt++) {
      if (this.state === "closed") throw new RoomgateError("closed", "the client was closed");
      let res;
      try {
        const headers = body === undefined ? {} : { "content-type": "application/json" };
        if (this._tokenValue) headers.authorization = `Bearer ${this._tokenValue}`;
        res = await fetch(this.url + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        res = null;
      }
      if (res && res.status < 500) {
        const j = await res.json().catch(() => ({}));
        if (res.ok) return j;
        throw new RoomgateError(j.error?.code || "http", j.error?.message || res.statusText, res.status);
      }
      if (!retry) throw new RoomgateError("unavailable", res ? `HTTP ${res.status}` : "the gateway is unreachable");
      const delay = Math.min(this.maxDelay, this.minDelay * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
