import HookgateCore
import HookgateStore

/// When each webhook may next have deliveries the scheduler can take from the store: the
/// scheduler reads a webhook's pending deliveries only once its hint falls due, so a
/// webhook with nothing due costs nothing, however long its backlog.
///
/// A hint only ever moves earlier while it stands (`note`); taking a webhook for a scan
/// removes its hint, and the scan notes what it found (more now, a retry's due time, or
/// nothing). A note made while a scan is out therefore survives the scan's answer.
struct DueHints {
    /// The standing hint of each webhook.
    private var earliest: [String: Timestamp] = [:]
    /// Min-heap on time. An entry whose time is not its webhook's standing hint is stale
    /// and skipped; the heap is rebuilt when stale entries outnumber the live ones.
    private var heap: [(at: Timestamp, id: String)] = []

    var count: Int { earliest.count }

    func hint(for id: String) -> Timestamp? { earliest[id] }

    /// `id` may have work from `time` on; an earlier standing hint is kept.
    mutating func note(_ id: String, at time: Timestamp) {
        if let standing = earliest[id], standing <= time { return }
        earliest[id] = time
        push((time, id))
        if heap.count > 2 * earliest.count + 64 { rebuild() }
    }

    mutating func remove(_ id: String) { earliest[id] = nil }

    /// Whether some webhook's hint is due at `now`.
    mutating func hasDue(at now: Timestamp) -> Bool {
        dropStaleTop()
        guard let top = heap.first else { return false }
        return top.at <= now
    }

    /// Takes the webhooks due at `now`, earliest hint first, while `budget` lasts.
    /// `room(id)` is how many deliveries the webhook can take now: 0 leaves its hint
    /// standing (its lane is full; it is looked at again later), more makes a query for
    /// up to that many (capped by what is left of the budget) and removes the hint.
    mutating func take(at now: Timestamp, budget: Int, room: (String) -> Int) -> [DueQuery] {
        var queries: [DueQuery] = []
        var left = budget
        var deferred: [(at: Timestamp, id: String)] = []
        var seen: Set<String> = []
        while left > 0, let top = heap.first, top.at <= now {
            pop()
            guard earliest[top.id] == top.at, seen.insert(top.id).inserted else { continue }
            let limit = min(room(top.id), left)
            if limit > 0 {
                earliest[top.id] = nil
                queries.append(DueQuery(webhookID: top.id, limit: limit))
                left -= limit
            } else {
                deferred.append(top)
            }
        }
        for entry in deferred { push(entry) }
        return queries
    }

    // MARK: - The heap

    private mutating func dropStaleTop() {
        while let top = heap.first, earliest[top.id] != top.at { pop() }
    }

    private mutating func rebuild() {
        heap = earliest.map { (at: $0.value, id: $0.key) }
        guard heap.count > 1 else { return }
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    private mutating func push(_ entry: (at: Timestamp, id: String)) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].at < heap[parent].at else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count, heap[left + 1].at < heap[left].at { smallest = left + 1 }
            guard heap[smallest].at < heap[parent].at else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
