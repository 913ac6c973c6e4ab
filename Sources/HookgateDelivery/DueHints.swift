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

    /// Takes the webhooks due at `now`, earliest hint first, and shares `budget` among
    /// them evenly (a webhook that can take less than its share leaves the rest to the
    /// others), so every due webhook gets some of the window and their lanes send side by
    /// side. `room(id)` is how many deliveries the webhook can take now: 0 leaves its hint
    /// standing (its lane is full; it is looked at again later). A webhook given a share
    /// is queried for it and its hint removed; one the budget did not reach keeps its hint.
    mutating func take(at now: Timestamp, budget: Int, room: (String) -> Int) -> [DueQuery] {
        guard budget > 0 else { return [] }
        var candidates: [(entry: (at: Timestamp, id: String), room: Int)] = []
        var deferred: [(at: Timestamp, id: String)] = []
        var seen: Set<String> = []
        // At most `budget` webhooks can get a delivery each.
        while candidates.count < budget, let top = heap.first, top.at <= now {
            pop()
            guard earliest[top.id] == top.at, seen.insert(top.id).inserted else { continue }
            let available = room(top.id)
            if available > 0 { candidates.append((top, available)) } else { deferred.append(top) }
        }
        var limits = Array(repeating: 0, count: candidates.count)
        var left = budget
        while left > 0 {
            let open = candidates.indices.filter { limits[$0] < candidates[$0].room }
            guard !open.isEmpty else { break }
            let share = max(1, left / open.count)
            for index in open where left > 0 {
                let add = min(share, candidates[index].room - limits[index], left)
                limits[index] += add
                left -= add
            }
        }
        var queries: [DueQuery] = []
        for (index, candidate) in candidates.enumerated() {
            if limits[index] > 0 {
                earliest[candidate.entry.id] = nil
                queries.append(DueQuery(webhookID: candidate.entry.id, limit: limits[index]))
            } else {
                deferred.append(candidate.entry)
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
