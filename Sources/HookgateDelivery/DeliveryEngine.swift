import Dispatch
import HookgateCore
import HookgateStore
import Logging
import Synchronization

/// The scheduler (proto-spec/PROTOCOL.md "Delivery", docs/ARCHITECTURE.md): reads due
/// deliveries from the store webhook by webhook, as each one's hint falls due and its
/// lane has room, holds a bounded window of them in memory, sends each when its
/// webhook's token bucket and in-flight bound allow, and records every attempt's outcome:
/// delivered, a retry at a later due time, failed after the schedule, or on 410 the
/// webhook disabled.
///
/// Time comes from `clock` and work from `tick` (a timer every `tickMicroseconds`, or the
/// caller with `Options.manualTicks`), so the scheduling rules are unit-tested without a
/// timer or a socket.
///
/// `@unchecked Sendable`: every `var` below is touched only on `queue`; the in-flight
/// counters are Mutexes for `stats`; the rest is immutable.
public final class DeliveryEngine: @unchecked Sendable {
    public struct Options: Sendable {
        public var retryPolicy: RetryPolicy
        public var defaultRateLimit: Int
        public var maxInFlightPerWebhook: Int
        /// Deliveries held in memory at most (waiting for a token or in flight).
        public var window: Int
        public var tickMicroseconds: Int64
        /// No timer: the caller runs `tick()` (tests, with a clock they move).
        public var manualTicks: Bool
        /// `--disable-after`: a webhook failing for longer than this is disabled when one of
        /// its deliveries fails for good; 0 never.
        public var disableFailingAfterMicroseconds: Int64

        public init(
            retryPolicy: RetryPolicy = .default, defaultRateLimit: Int = 100, maxInFlightPerWebhook: Int = 64,
            window: Int = 4096, tickMicroseconds: Int64 = 100_000, manualTicks: Bool = false,
            disableFailingAfterMicroseconds: Int64 = 5 * 86_400_000_000
        ) {
            self.disableFailingAfterMicroseconds = disableFailingAfterMicroseconds
            self.manualTicks = manualTicks
            self.retryPolicy = retryPolicy
            self.defaultRateLimit = defaultRateLimit
            self.maxInFlightPerWebhook = maxInFlightPerWebhook
            self.window = window
            self.tickMicroseconds = tickMicroseconds
        }
    }

    private let store: any Store
    private let transport: any DeliverySending
    private let options: Options
    private let clock: any WallClock
    private let logger: Logger
    /// Called after a 410 disabled a webhook, with the webhook as stored.
    private let onWebhookDisabled: @Sendable (Webhook) -> Void
    private let queue = DispatchQueue(label: "hookgate.delivery")
    private var timer: DispatchSourceTimer?

    /// One webhook's deliveries held in memory. A class, so the engine mutates its queue
    /// in place (a struct in the dictionary would be copied on every change).
    private final class WebhookLane {
        var bucket: TokenBucket
        var inFlight = 0
        /// Waiting for a token, oldest first.
        private var waiting = FIFOQueue<DueDelivery>()

        init(bucket: TokenBucket) { self.bucket = bucket }

        var waitingCount: Int { waiting.count }

        func append(_ delivery: DueDelivery) { waiting.append(delivery) }

        func popFirst() -> DueDelivery? { waiting.popFirst() }

        /// Empties the queue; what it held.
        func removeAllWaiting() -> ArraySlice<DueDelivery> { waiting.removeAll() }
    }

    private var lanes: [String: WebhookLane] = [:]
    /// Delivery seqs held in memory: waiting, in flight, or with an outcome not yet stored.
    private var claimed: Set<Int64> = []
    /// When each webhook may next have deliveries to take from the store.
    private var hints = DueHints()
    /// Per webhook, the last delivery taken from its due order: the next scan reads on
    /// from there instead of walking what the engine holds. Every pending delivery before
    /// it is held here, or its outcome is being stored. A path that lets go of a held
    /// delivery (a release, a shutdown cut, a lane that overflows) drops the cursor; new
    /// deliveries due earlier pull it back. Dropping one is always safe: the scan then
    /// steps over what is held, as it would without.
    private var cursors: [String: DueCursor] = [:]
    /// The earliest due time of pending deliveries made known while a scan was out (new
    /// ones, recorded retries), by webhook: the scan's snapshot may predate them, so the
    /// cursor it leaves must not pass them.
    private var dueDuringScan: [String: Timestamp] = [:]
    private var scanning = false
    /// Webhooks released (`release`) while a scan was out.
    private var releasedDuringScan: Set<String> = []
    /// Deliveries whose outcome was stored while a scan was out: the scan reads its own
    /// snapshot, which may show them still pending.
    private var recordedDuringScan: Set<Int64> = []
    private var scanRequested = false
    /// When the hints are next checked against the store's pending webhooks: they are
    /// kept exact (new deliveries, recorded retries, released lanes), and this pass only
    /// guards against a path that forgot to say so.
    private var nextResync = Timestamp(microseconds: 0)
    private var resyncing = false
    private static let resyncMicroseconds: Int64 = 60_000_000
    /// How long a failed scan's webhooks wait before they are read again.
    private static let scanRetryMicroseconds: Int64 = 1_000_000
    /// When `sendReady` runs next for lanes waiting for a token (see `wake`).
    private var wakeAt: Timestamp?
    /// Requests made by `send`, for the transport (`flushOutgoing`).
    private var outgoing: [DeliveryRequest] = []
    /// What is in flight, by delivery seq (the request's tag).
    private var sent: [Int64: (delivery: DueDelivery, at: Timestamp)] = [:]
    /// Responses from the transport's threads, for `takeResponses` on `queue`.
    private let responses = Mutex<[DeliveryResponse]>([])
    private var stopping = false
    private var records: [AttemptRecord] = []
    private var recording = false
    /// Storing outcomes failed and is being retried: attempts already made are kept, never
    /// released (they would be POSTed again), and nothing new is scanned or sent until a
    /// store succeeds.
    private var recordRetryMicroseconds: Int64 = 0
    private var storeFailing: Bool { recordRetryMicroseconds > 0 }
    private static let recordRetryFirstMicroseconds: Int64 = 50_000
    private static let recordRetryMaxMicroseconds: Int64 = 5_000_000
    private var recordFailures = RepeatLimiter()
    private var scanFailures = RepeatLimiter()
    /// Webhooks whose pending deliveries the store is cancelling (deleted, or disabled by
    /// a 410): the engine feeds it one bounded batch at a time, sparing what it has in
    /// flight, so each delivery ends once and the writer is never held for long.
    private var cancelling: Set<String> = []
    /// Webhooks a receiver answered 410 for, until their disabling is committed: none of
    /// their deliveries is read or sent meanwhile (a scan may still see them active), and
    /// an attempt out that would be retried is cancelled instead.
    private var gone: Set<String> = []
    private var cancelBatchOut = false
    private var cancelFailures = RepeatLimiter()
    /// `recover` recorded work (or a restart may have left some): the store is fed one
    /// bounded batch at a time until it says none is left.
    private var recoveryWanted = true
    private var recoveryOut = false
    private var recoveryFailures = RepeatLimiter()
    static let cancelBatchRows = 500
    static let recordBatchCount = 1000
    /// Outcomes are stored once this many are waiting, or `recordHoldMicroseconds` after
    /// the first of fewer arrived (real time, whatever the engine's clock says).
    static let recordBatchEnough = 256
    static let recordHoldMicroseconds = 5_000
    private var recordHoldScheduled = false
    static let recordBatchBytes = 1 << 20
    private var generator = SystemRandomNumberGenerator()
    private var signingKeys = SigningKeyCache()
    private let metrics: HookgateMetrics
    /// When the engine last sent an attempt or stored an outcome (readiness).
    private var lastProgress: Timestamp?
    private let inFlightTotal = Mutex(0)
    private let inFlightByWebhook = Mutex<[String: Int]>([:])

    public init(
        store: any Store, transport: any DeliverySending, options: Options, clock: any WallClock = SystemWallClock(),
        logger: Logger, metrics: HookgateMetrics = .disabled, onWebhookDisabled: @escaping @Sendable (Webhook) -> Void
    ) {
        self.metrics = metrics
        self.store = store
        self.transport = transport
        self.options = options
        self.clock = clock
        self.logger = logger
        self.onWebhookDisabled = onWebhookDisabled
    }

    /// Attempts in flight now, for `stats`.
    public var inFlight: Int { inFlightTotal.withLock { $0 } }

    public func inFlight(webhookID: String) -> Int { inFlightByWebhook.withLock { $0[webhookID] ?? 0 } }

    public func start() {
        store.observeNewDeliveries { [weak self] ids in self?.deliveriesCreated(ids) }
        loadCancellations()
        queue.async {
            self.resync()
            guard !self.options.manualTicks else { return }
            let timer = DispatchSource.makeTimerSource(queue: self.queue)
            let interval = DispatchTimeInterval.microseconds(Int(self.options.tickMicroseconds))
            timer.schedule(deadline: .now(), repeating: interval)
            timer.setEventHandler { [weak self] in self?.tickOnQueue() }
            timer.resume()
            self.timer = timer
        }
    }

    /// Returns once the engine's queue has run a piece of work (the watchdog's probe).
    public func probe() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async { continuation.resume() }
        }
    }

    /// New deliveries for these webhooks were committed: read them without waiting for
    /// the next tick.
    private func deliveriesCreated(_ created: [String: Timestamp]) {
        queue.async {
            let now = self.clock.now()
            for (id, due) in created {
                self.hints.note(id, at: now)
                self.pullCursor(of: id, backTo: due)
            }
            self.scan()
        }
    }

    /// A pending delivery of the webhook is due at `due`: its cursor must not be past it,
    /// nor the one a scan out now leaves.
    private func pullCursor(of id: String, backTo due: Timestamp) {
        if let cursor = cursors[id], cursor > DueCursor.before(due) { cursors[id] = DueCursor.before(due) }
        if scanning { dueDuringScan[id] = min(dueDuringScan[id] ?? due, due) }
    }

    /// One round of the scheduler: what the timer runs every `tickMicroseconds`, and what
    /// a caller with `Options.manualTicks` runs itself.
    public func tick() {
        queue.async { self.tickOnQueue() }
    }

    /// What readiness asks of the engine: when it last made progress, and what it has in
    /// flight (sent, so not waiting).
    public struct Progress: Sendable {
        public var lastProgress: Timestamp?
        public var sent: Set<Int64>
    }

    public func progress() async -> Progress {
        await withCheckedContinuation { (continuation: CheckedContinuation<Progress, Never>) in
            queue.async {
                continuation.resume(returning: Progress(lastProgress: self.lastProgress, sent: Set(self.sent.keys)))
            }
        }
    }

    /// Whether the engine waits only for time or for the transport: no store call out,
    /// no outcome waiting to be stored, no response waiting to be taken (tests wait for
    /// this between ticks).
    public var isSettled: Bool {
        get async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                queue.async {
                    let settled =
                        !self.scanning && !self.resyncing && !self.recording && self.records.isEmpty
                        && !self.cancelBatchOut && !self.recoveryOut && self.responses.withLock { $0.isEmpty }
                    continuation.resume(returning: settled)
                }
            }
        }
    }

    /// A webhook changed (updated, disabled, deleted, secret rotated): what is held for
    /// it is released and scanned again with its new state.
    public func webhookChanged(id: String) {
        queue.async { self.release(webhookID: id) }
        loadCancellations()
    }

    /// Reads which webhooks the store has cancellations for, and works on them.
    private func loadCancellations() {
        store.cancellations { result in
            guard case .success(let ids) = result else { return }
            self.queue.async {
                self.cancelling.formUnion(ids)
                self.continueCancelling()
            }
        }
    }

    /// Stops sending; attempts in flight get until `grace` to finish and be recorded;
    /// everything else stays pending in the store.
    public func stop(grace: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.stopping = true
                self.timer?.cancel()
                self.timer = nil
                continuation.resume()
            }
        }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            let busy = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                queue.async {
                    continuation.resume(returning: self.inFlight > 0 || self.recording || !self.records.isEmpty)
                }
            }
            if !busy { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        transport.shutdown()
    }

    // MARK: - On `queue`

    /// Lets go of what waits for a webhook: it is scanned again with its new state.
    private func release(webhookID id: String) {
        hints.note(id, at: clock.now())
        cursors[id] = nil
        if scanning { releasedDuringScan.insert(id) }
        guard let lane = lanes[id] else { return }
        for delivery in lane.removeAllWaiting() { claimed.remove(delivery.deliverySeq) }
    }

    private func tickOnQueue() {
        continueCancelling()
        continueRecovering()
        let now = clock.now()
        if now >= nextResync { resync() }
        if hints.hasDue(at: now) { scan() }
        sendReady()
    }

    /// Notes every webhook the store has pending deliveries for, at its earliest due time.
    private func resync() {
        guard !resyncing else { return }
        resyncing = true
        nextResync = clock.now().adding(microseconds: Self.resyncMicroseconds)
        // The check covers the cursors too: every webhook is read from its start once.
        cursors.removeAll()
        store.pendingWebhooks { result in
            self.queue.async {
                self.resyncing = false
                guard case .success(let pending) = result else { return }
                for (id, due) in pending { self.hints.note(id, at: due) }
                self.scan()
            }
        }
    }

    /// How many deliveries a webhook's lane holds at most: what it can send in a few ticks.
    private func laneCapacity(rate: Int) -> Int { max(options.maxInFlightPerWebhook, rate) }

    /// Reads the deliveries of the webhooks whose hints are due, each up to its lane's
    /// room, the whole window at most. A webhook whose lane is full is not read at all:
    /// its backlog waits in the store, untouched, until the lane has room.
    private func scan() {
        guard !stopping, !storeFailing else { return }
        guard !scanning else {
            scanRequested = true
            return
        }
        let room = options.window - claimed.count
        guard room > 0 else { return }
        let now = clock.now()
        let queries = hints.take(at: now, budget: room) { id in
            guard !gone.contains(id) else { return 0 }
            // A webhook without a lane: its rate is not known yet; a first helping.
            guard let lane = lanes[id] else { return options.maxInFlightPerWebhook }
            return laneCapacity(rate: lane.bucket.rate) - lane.waitingCount
        }
        .map { query in
            var query = query
            query.after = cursors[query.webhookID]
            return query
        }
        guard !queries.isEmpty else { return }
        scanning = true
        store.dueDeliveries(now: now, for: queries, claimed: claimed) { result in
            self.queue.async { self.scanned(result, queries: queries, at: now) }
        }
    }

    private func scanned(_ result: Result<[DueWebhook], any Error>, queries: [DueQuery], at scanTime: Timestamp) {
        scanning = false
        let now = clock.now()
        switch result {
        case .failure(let error):
            let retry = now.adding(microseconds: Self.scanRetryMicroseconds)
            for query in queries { hints.note(query.webhookID, at: retry) }
            let (log, suppressed) = scanFailures.occurrence(at: now)
            if log {
                logger.error(
                    "scanning due deliveries failed",
                    metadata: ["error": "\(error)", "similar_lines_left_out": "\(suppressed)"])
            }
        case .success(let found):
            if scanFailures.isActive { _ = scanFailures.reset() }
            for webhook in found {
                // Released while the scan was out: its rows may predate the change; the
                // release noted it again, to be read afresh.
                let id = webhook.webhookID
                guard !releasedDuringScan.contains(id) else { continue }
                if let next = webhook.nextDue { hints.note(id, at: next) }
                var passable = true
                for delivery in webhook.deliveries {
                    if !take(delivery, at: now) { passable = false }
                }
                if !passable {
                    cursors[id] = nil
                } else if let last = webhook.deliveries.last {
                    var cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, deliverySeq: last.deliverySeq)
                    if let due = dueDuringScan[id] { cursor = min(cursor, DueCursor.before(due)) }
                    cursors[id] = cursor
                }
            }
        }
        dueDuringScan.removeAll()
        releasedDuringScan.removeAll()
        recordedDuringScan.removeAll()
        sendReady()
        // More may be due now (a first helping, or a budget used up): read on.
        if scanRequested || hints.hasDue(at: now) {
            scanRequested = false
            scan()
        }
    }

    /// Puts a delivery read by a scan in its webhook's lane. A row whose outcome was
    /// stored while the scan was out may show it still pending: it is not taken again.
    /// False when the delivery is left in the store, pending, for a later scan to read
    /// (the webhook's cursor must not pass it).
    private func take(_ delivery: DueDelivery, at now: Timestamp) -> Bool {
        guard !claimed.contains(delivery.deliverySeq), !recordedDuringScan.contains(delivery.deliverySeq) else {
            return true
        }
        guard !gone.contains(delivery.webhookID) else { return false }
        let rate = delivery.rateLimit > 0 ? delivery.rateLimit : options.defaultRateLimit
        let lane: WebhookLane
        if let existing = lanes[delivery.webhookID] {
            lane = existing
        } else {
            lane = WebhookLane(bucket: TokenBucket(rate: rate, now: now))
            lanes[delivery.webhookID] = lane
        }
        if lane.bucket.rate != rate { lane.bucket = TokenBucket(rate: rate, now: now) }
        guard lane.waitingCount < laneCapacity(rate: rate) else {
            // The rate went down meanwhile: the rest is read again once there is room.
            hints.note(delivery.webhookID, at: now)
            return false
        }
        lane.append(delivery)
        claimed.insert(delivery.deliverySeq)
        return true
    }

    private func sendReady() {
        let now = clock.now()
        for (id, lane) in lanes { sendReady(lane, id: id, at: now) }
        flushOutgoing()
    }

    /// Sends what the lane's bucket and in-flight bound allow now. A lane held back only
    /// by its bucket is woken when its next token is there: between ticks a bucket can
    /// fill up (it holds a tenth of a second's tokens), and tokens beyond full are lost.
    private func sendReady(_ lane: WebhookLane, id: String, at now: Timestamp) {
        guard !stopping, !storeFailing else { return }
        while lane.waitingCount > 0, lane.inFlight < options.maxInFlightPerWebhook, lane.bucket.take(at: now),
            let delivery = lane.popFirst()
        {
            send(delivery, at: now)
            lane.inFlight += 1
        }
        if lane.waitingCount == 0 && lane.inFlight == 0 && lane.bucket.isFull(at: now) {
            // An idle webhook's lane goes once its bucket has filled up again: a new lane
            // starts full, and an earlier one would let a burst past the limit. Its cursor
            // goes too, so that idle webhooks cost no memory.
            lanes[id] = nil
            cursors[id] = nil
        } else if lane.waitingCount > 0 && lane.inFlight < options.maxInFlightPerWebhook {
            wake(at: max(lane.bucket.nextToken(at: now), now.adding(microseconds: 1000)), now: now)
        }
    }

    /// Runs `sendReady` at `time` unless a wake at or before it is already set.
    private func wake(at time: Timestamp, now: Timestamp) {
        if let scheduled = wakeAt, scheduled <= time { return }
        wakeAt = time
        queue.asyncAfter(deadline: .now() + .microseconds(Int(time.microseconds - now.microseconds))) {
            guard self.wakeAt == time else { return }
            self.wakeAt = nil
            self.sendReady()
        }
    }

    private func send(_ delivery: DueDelivery, at now: Timestamp) {
        lastProgress = now
        inFlightTotal.withLock { $0 += 1 }
        inFlightByWebhook.withLock { $0[delivery.webhookID, default: 0] += 1 }
        sent[delivery.deliverySeq] = (delivery, now)
        outgoing.append(
            DeliveryRequestBuilder.request(
                for: delivery, tag: UInt64(delivery.deliverySeq), at: now, keys: signingKeys.keys(for: delivery.secrets)
            ))
    }

    /// Hands the requests gathered by `send` to the transport in one batch.
    private func flushOutgoing() {
        guard !outgoing.isEmpty else { return }
        let batch = outgoing
        outgoing.removeAll(keepingCapacity: true)
        transport.send(batch) { response in self.arrived(response) }
    }

    /// On a transport thread: responses gather until the engine's queue takes them all,
    /// one hop per batch rather than one per response.
    private func arrived(_ response: DeliveryResponse) {
        let first = responses.withLock { responses in
            responses.append(response)
            return responses.count == 1
        }
        if first { queue.async { self.takeResponses() } }
    }

    private func takeResponses() {
        let batch = responses.withLock { responses in
            defer { responses.removeAll(keepingCapacity: true) }
            return responses
        }
        for response in batch {
            guard let (delivery, sentAt) = sent.removeValue(forKey: Int64(response.tag)) else { continue }
            finished(delivery, response, sentAt: sentAt)
        }
        flushOutgoing()
    }

    private func finished(_ delivery: DueDelivery, _ response: DeliveryResponse, sentAt: Timestamp) {
        inFlightTotal.withLock { $0 -= 1 }
        inFlightByWebhook.withLock { $0[delivery.webhookID, default: 1] -= 1 }
        lanes[delivery.webhookID]?.inFlight -= 1
        if response.error == CurlTransport.shutdownMessage {
            // Cut off by shutdown: nothing to log; it stays pending and goes out again.
            claimed.remove(delivery.deliverySeq)
            cursors[delivery.webhookID] = nil
            hints.note(delivery.webhookID, at: clock.now())
            return
        }
        let now = clock.now()
        metrics.attemptDuration.recordNanoseconds(response.latencyMicroseconds * 1000)
        let attempt = delivery.attempts + 1
        var outcome: RequestOutcome
        var next: Timestamp?
        if response.isSuccess {
            outcome = .delivered
        } else if response.httpStatus == 410 {
            outcome = .cancelled
            // Once: its siblings in flight may answer 410 too, before or after the disabling
            // commits (then its cancellation is under way).
            if !gone.contains(delivery.webhookID), !cancelling.contains(delivery.webhookID) {
                disableAfterGone(delivery, at: now)
            }
        } else {
            var retryAfter: Int64?
            if let status = response.httpStatus, status == 429 || status == 503, let value = response.retryAfter {
                retryAfter = RetryAfter.delay(value, now: now)
            }
            let unit = Double.random(in: 0..<1, using: &generator)
            if let delay = options.retryPolicy.delay(afterAttempt: attempt, unit: unit, retryAfter: retryAfter) {
                outcome = .retrying
                next = now.adding(microseconds: delay)
            } else {
                outcome = .failed
            }
            // Cancelled only once the webhook's cancellation is under way: if disabling it
            // fails, a retry must not have been given up.
            if outcome == .retrying, cancelling.contains(delivery.webhookID) {
                outcome = .cancelled
                next = nil
            }
        }
        records.append(
            AttemptRecord(
                deliverySeq: delivery.deliverySeq, at: sentAt, webhookID: delivery.webhookID,
                eventID: delivery.eventID, eventType: delivery.eventType, attempt: attempt, url: delivery.url,
                httpStatus: response.httpStatus, errorClass: response.failure?.rawValue, error: response.error,
                latencyMicroseconds: response.latencyMicroseconds, userAgent: DeliveryRequestBuilder.userAgent,
                responseBody: response.responseBody, outcome: outcome, nextAttemptAt: next))
        recordPending()
        // Only this webhook's lane has a freed slot.
        if let lane = lanes[delivery.webhookID] { sendReady(lane, id: delivery.webhookID, at: now) }
    }

    /// Stores the outcomes gathered so far in one transaction; a delivery is released
    /// (can be scanned again) only once its new state is stored. When storing fails the
    /// outcomes are kept and stored again with backoff: an attempt that was made is never
    /// forgotten, so a delivery the receiver already took is not POSTed again.
    private func recordPending() {
        guard !recording, !records.isEmpty else { return }
        // A few outcomes wait a moment for more: one transaction per outcome or two would
        // write the same log and index pages to the WAL over and over.
        if records.count < Self.recordBatchEnough, !stopping, !storeFailing {
            guard !recordHoldScheduled else { return }
            recordHoldScheduled = true
            queue.asyncAfter(deadline: .now() + .microseconds(Self.recordHoldMicroseconds)) {
                self.recordHoldScheduled = false
                self.storeRecords()
            }
            return
        }
        storeRecords()
    }

    /// Stores up to a batch of the outcomes gathered, now.
    private func storeRecords() {
        guard !recording, !records.isEmpty else { return }
        recording = true
        // Bounded in count and bytes: one transaction stays short, and the lines it
        // hands to `tail_requests` readers fit well within what a reader may hold.
        var take = 0
        var bytes = 0
        while take < records.count, take < Self.recordBatchCount, bytes < Self.recordBatchBytes {
            bytes += 512 + records[take].responseBody.count + records[take].url.utf8.count
            take += 1
        }
        let batch = Array(records.prefix(take))
        records.removeFirst(take)
        store.recordAttempts(batch, disableFailingAfterMicroseconds: options.disableFailingAfterMicroseconds) {
            result in
            self.queue.async { self.recorded(batch, result) }
        }
    }

    private func recorded(_ batch: [AttemptRecord], _ result: Result<[Webhook], any Error>) {
        if case .failure(let error) = result {
            records = batch + records
            recordRetryMicroseconds = min(
                max(recordRetryMicroseconds * 2, Self.recordRetryFirstMicroseconds), Self.recordRetryMaxMicroseconds)
            let (log, suppressed) = recordFailures.occurrence(at: clock.now())
            if log {
                logger.error(
                    "recording attempts failed; kept, and stored again once the store takes them",
                    metadata: [
                        "error": "\(error)", "attempts_kept": "\(records.count)",
                        "similar_lines_left_out": "\(suppressed)",
                    ])
            }
            queue.asyncAfter(deadline: .now() + .microseconds(Int(recordRetryMicroseconds))) {
                self.recording = false
                self.recordPending()
            }
            return
        }
        recording = false
        lastProgress = clock.now()
        if storeFailing {
            recordRetryMicroseconds = 0
            let suppressed = recordFailures.reset()
            logger.notice(
                "recording attempts works again; delivery goes on",
                metadata: ["similar_lines_left_out": "\(suppressed)"])
        }
        for record in batch {
            claimed.remove(record.deliverySeq)
            if scanning { recordedDuringScan.insert(record.deliverySeq) }
            if let next = record.nextAttemptAt {
                hints.note(record.webhookID, at: next)
                pullCursor(of: record.webhookID, backTo: next)
            }
        }
        if case .success(let disabled) = result {
            for webhook in disabled {
                // Its pending deliveries wait, as for any disabled webhook, until it is
                // enabled again.
                logger.notice(
                    "webhook disabled: failing",
                    metadata: ["webhook_id": "\(webhook.id)", "reason": "\(webhook.disabledReason ?? "")"])
                metrics.webhookDisabled(reason: "failing")
                onWebhookDisabled(webhook)
                release(webhookID: webhook.id)
            }
        }
        recordPending()
        sendReady()
    }

    private func disableAfterGone(_ delivery: DueDelivery, at now: Timestamp) {
        let reason = "receiver answered 410 Gone at \(now.rfc3339)"
        let notify = onWebhookDisabled
        let logger = self.logger
        let id = delivery.webhookID
        gone.insert(id)
        store.disableWebhookAfterGone(id: id, reason: reason, at: now) { result in
            switch result {
            case .success(let webhook?):
                logger.notice("webhook disabled: 410 Gone", metadata: ["webhook_id": "\(webhook.id)"])
                self.metrics.webhookDisabled(reason: "gone")
                notify(webhook)
            case .success(nil): break
            case .failure(let error):
                logger.error("disabling after 410 failed", metadata: ["error": "\(error)"])
            }
            self.queue.async {
                // Committed (or failed, and the next 410 tries again): the store's own
                // state keeps its deliveries from being read from here on.
                self.gone.remove(id)
                if case .success(.some) = result {
                    self.cancelling.insert(id)
                    self.continueCancelling()
                }
            }
        }
        // What this engine holds for the webhook goes back to the store, to be cancelled
        // there; nothing more of it is sent.
        release(webhookID: id)
    }

    /// A recovery was recorded (`recover`): work through it in the background.
    public func recoveryStarted() {
        queue.async {
            self.recoveryWanted = true
            self.continueRecovering()
        }
    }

    /// Has the store create the next batch of a recovery's deliveries; they reach the scan
    /// as an emit's do, announced by the store.
    private func continueRecovering() {
        guard recoveryWanted, !recoveryOut, !stopping, !storeFailing else { return }
        recoveryOut = true
        store.continueRecovery(maxRows: Self.cancelBatchRows) { result in
            self.queue.async {
                self.recoveryOut = false
                switch result {
                case .success(let done):
                    if self.recoveryFailures.isActive { _ = self.recoveryFailures.reset() }
                    if done { self.recoveryWanted = false } else { self.continueRecovering() }
                case .failure(let error):
                    // Tried again at the next tick.
                    let (log, suppressed) = self.recoveryFailures.occurrence(at: self.clock.now())
                    if log {
                        self.logger.error(
                            "recovering deliveries failed",
                            metadata: ["error": "\(error)", "similar_lines_left_out": "\(suppressed)"])
                    }
                }
            }
        }
    }

    /// Cancels the next batch of a webhook's pending deliveries in the store, sparing the
    /// ones this engine has in flight or answered but not yet recorded: their attempts
    /// give them their one ending. Batches follow one another, each a short transaction,
    /// so emits go on between them.
    private func continueCancelling() {
        guard !cancelBatchOut, !stopping, !storeFailing, let id = cancelling.first else { return }
        cancelBatchOut = true
        let spared =
            sent.values.filter { $0.delivery.webhookID == id }.map(\.delivery.deliverySeq)
            + records.filter { $0.webhookID == id }.map(\.deliverySeq)
        store.cancelPending(webhookID: id, except: spared, maxRows: Self.cancelBatchRows) { result in
            self.queue.async {
                self.cancelBatchOut = false
                switch result {
                case .success(let done):
                    if done {
                        self.cancelling.remove(id)
                        // A webhook enabled again meanwhile may have new deliveries.
                        self.hints.note(id, at: self.clock.now())
                    }
                    if self.cancelFailures.isActive { _ = self.cancelFailures.reset() }
                    // Waiting only for spared attempts to be recorded: look again at the
                    // next tick rather than at once.
                    if done || spared.isEmpty { self.continueCancelling() }
                case .failure(let error):
                    // Tried again at the next tick.
                    let (log, suppressed) = self.cancelFailures.occurrence(at: self.clock.now())
                    if log {
                        self.logger.error(
                            "cancelling deliveries failed",
                            metadata: ["error": "\(error)", "similar_lines_left_out": "\(suppressed)"])
                    }
                }
            }
        }
    }
}
