import HookgateCore

/// Deliveries per webhook and state, for `stats`.
struct DeliveryCounts {
    /// The five states' counts inline: a dictionary per webhook would cost far more
    /// memory with 100,000 webhooks.
    struct ByState: Equatable {
        private var values = (0, 0, 0, 0, 0)

        subscript(state: DeliveryState) -> Int {
            get {
                switch state {
                case .pending: return values.0
                case .inFlight: return values.1
                case .delivered: return values.2
                case .failed: return values.3
                case .cancelled: return values.4
                }
            }
            set {
                switch state {
                case .pending: values.0 = newValue
                case .inFlight: values.1 = newValue
                case .delivered: values.2 = newValue
                case .failed: values.3 = newValue
                case .cancelled: values.4 = newValue
                }
            }
        }

        static func == (lhs: ByState, rhs: ByState) -> Bool {
            DeliveryState.allCases.allSatisfy { lhs[$0] == rhs[$0] }
        }

        var dictionary: [DeliveryState: Int] {
            Dictionary(uniqueKeysWithValues: DeliveryState.allCases.map { ($0, self[$0]) })
        }
    }

    private var byWebhook: [String: ByState] = [:]
    private var all = ByState()

    mutating func add(webhookID: String, state: DeliveryState, _ count: Int) {
        byWebhook[webhookID, default: ByState()][state] += count
        all[state] += count
    }

    var totals: [DeliveryState: Int] { all.dictionary }

    func byState(webhookID: String) -> [DeliveryState: Int] { (byWebhook[webhookID] ?? ByState()).dictionary }

    /// Loads the counts the database keeps (migration 4's `delivery_counts`).
    mutating func load(_ connection: SQLiteConnection) throws(StoreError) {
        var loaded = DeliveryCounts()
        try connection.query("SELECT webhook_id, state, count FROM delivery_counts") { row in
            if let state = DeliveryState(rawValue: row.text(1)) {
                loaded.add(webhookID: row.text(0), state: state, Int(row.integer(2)))
            }
        }
        self = loaded
    }
}

/// Changes to the counts made by one transaction: written in it, so the stored counts
/// always match the rows, and applied to memory once it has committed.
struct CountChanges {
    private(set) var changes: [ExactKey: DeliveryCounts.ByState] = [:]
    /// The webhooks given new pending deliveries (`created`), and the earliest due time
    /// among them: what `Store.observeNewDeliveries` announces.
    private(set) var newDeliveries: [String: Timestamp] = [:]

    var isEmpty: Bool { changes.isEmpty }

    mutating func add(webhookID: String, state: DeliveryState, _ count: Int) {
        changes[ExactKey(webhookID), default: DeliveryCounts.ByState()][state] += count
    }

    /// A new pending delivery, due at `due`.
    mutating func created(webhookID: String, due: Int64) {
        add(webhookID: webhookID, state: .pending, 1)
        if let earliest = newDeliveries[webhookID], earliest.microseconds <= due { return }
        newDeliveries[webhookID] = Timestamp(microseconds: due)
    }

    /// Moves `count` deliveries of a webhook from pending to `state`.
    mutating func end(webhookID: String, as state: DeliveryState, _ count: Int = 1) {
        add(webhookID: webhookID, state: .pending, -count)
        add(webhookID: webhookID, state: state, count)
    }

    func write(_ connection: SQLiteConnection) throws(StoreError) {
        for (key, byState) in changes {
            for state in DeliveryState.allCases where byState[state] != 0 {
                try connection.query(
                    """
                    INSERT INTO delivery_counts (webhook_id, state, count) VALUES (?, ?, ?)
                    ON CONFLICT (webhook_id, state) DO UPDATE SET count = count + excluded.count
                    """, [.text(key.text), .text(state.rawValue), .integer(Int64(byState[state]))])
            }
        }
    }

    func apply(to counts: inout DeliveryCounts) {
        for (key, byState) in changes {
            for state in DeliveryState.allCases where byState[state] != 0 {
                counts.add(webhookID: key.text, state: state, byState[state])
            }
        }
    }
}
