// Types of liandong-miniprogram (the implementation is plain CommonJS in index.js).

/** The parts of WeChat's `wx` the tracker uses. */
export interface WxLike {
  request(options: {
    url: string;
    method: 'POST';
    header: Record<string, string>;
    data: unknown;
    dataType?: 'json';
    success(res: { statusCode: number; data: unknown; header?: Record<string, string> }): void;
    fail(err: { errMsg?: string }): void;
  }): unknown;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: unknown): void;
  onAppShow?(cb: (options: LaunchOptions) => void): void;
  offAppShow?(cb: (options: LaunchOptions) => void): void;
  onAppHide?(cb: () => void): void;
  offAppHide?(cb: () => void): void;
  getLaunchOptionsSync?(): LaunchOptions;
  getEnterOptionsSync?(): LaunchOptions;
}

/** What WeChat passes on launch and show. */
export interface LaunchOptions {
  path?: string;
  scene?: number;
  query?: Record<string, string>;
}

export interface Rejection {
  index: number;
  event_id?: string | null;
  error: string;
  /** 403: refused because of the key (a client key sending a server-only type or a unionid). */
  status?: number;
}

export interface TrackerOptions {
  wx: WxLike;
  /** liandong's base URL, e.g. https://liandong.example.com (add it to the MP's request domains). */
  serverUrl: string;
  /** A `client` key: it ships inside the app, so it may only send client-observable events. */
  key: string;
  /** Flush when this many events are queued (default 20). */
  flushAt?: number;
  /** Flush this often, in ms (default 5000). */
  flushIntervalMs?: number;
  /** Events per request, 1 to 100 (default 100). */
  maxBatch?: number;
  /** Events kept in wx storage at most; the oldest are dropped and counted beyond (default 1000). */
  maxQueue?: number;
  /** The wx storage key of the queue (default liandong_queue). */
  storageKey?: string;
  /** First retry delay, doubled per failure up to retryMaxMs, with jitter (default 1000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Events tracked before identify() wait this long for it, then are dropped (default 10 min). */
  identityTimeoutMs?: number;
  /** Send the unionid given to identify() (default false: a client key is refused any unionid). */
  sendUnionid?: boolean;
  /** Per-event rejections of an accepted request (they are not retried). */
  onRejected?(rejected: Rejection[], batch: unknown[]): void;
  setTimeout?(fn: () => void, ms: number): unknown;
  clearTimeout?(handle: unknown): void;
  /** The clock, ms since the epoch (default Date.now). */
  now?(): number;
  /** Randomness in [0, 1) for the retry jitter (default Math.random). */
  random?(): number;
  /** Event ids (default: a UUID v4 from Math.random; the Mini Program has no crypto.randomUUID). */
  uuid?(): string;
  logger?: { warn(message: string): void };
}

export interface TrackerStats {
  /** Events waiting in the queue (wx storage). */
  queued: number;
  /** Events dropped because the queue was full or they were never identified. */
  dropped: number;
  /** Events the server accepted. */
  sent: number;
  /** Events the server rejected one by one (reported, not retried). */
  rejected: number;
  /** Events dropped after a 4xx answer that retrying cannot change. */
  discarded: number;
}

export interface Tracker {
  /** Listens to app show/hide, records the landing (mp.visit), starts the flush timer and sends what the last launch left. */
  start(): void;
  /** Clears the timers and the listeners; the queue stays in wx storage. */
  stop(): void;
  /** Queues an event (its event_id and occurred_at are set now); returns its event_id. */
  track(
    type: string,
    props?: Record<string, unknown>,
    extra?: { source?: string | Record<string, unknown>; scene?: number; context?: Record<string, unknown> },
  ): string;
  /** Who the user is, after the app's own login (code2Session on your server). */
  identify(ids: { mp_openid: string; unionid?: string }): void;
  /** Wraps Page options so every show records mp.page_view (opt-in, page by page). */
  page<T extends object>(pageOptions: T, meta?: { category?: string }): T;
  /** Sends what can be sent now; resolves when done or waiting for a retry. */
  flush(): Promise<void>;
  stats(): TrackerStats;
}

export function createTracker(options: TrackerOptions): Tracker;
export function sourceOf(query: Record<string, string> | undefined): string | Record<string, string> | undefined;
export const VERSION: string;
