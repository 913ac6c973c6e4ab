import HookgateCore
import HookgateStore
import Testing

@testable import HookgateDelivery

private func at(_ n: Int64) -> Timestamp { Timestamp(microseconds: n) }

@Suite("Due hints")
struct DueHintsTests {
    /// (notes in order, the standing hint afterwards)
    static let noteCases: [([Int64], Int64)] = [
        ([5], 5),
        ([5, 3], 3),
        ([3, 5], 3),
        ([9, 4, 7, 4, 2, 8], 2),
        ([0, 0], 0),
    ]

    @Test(arguments: noteCases)
    func aHintOnlyMovesEarlier(_ notes: [Int64], _ expected: Int64) {
        var hints = DueHints()
        for time in notes { hints.note("w", at: at(time)) }
        #expect(hints.hint(for: "w") == at(expected))
        #expect(hints.count == 1)
    }

    /// (hints, now, budget, room per webhook (absent: 10), queries expected, hints left)
    static let takeCases: [([String: Int64], Int64, Int, [String: Int], [DueQuery], Set<String>)] = [
        // Only what is due, earliest first.
        (
            ["a": 3, "b": 1, "c": 9], 5, 100, [:],
            [.init(webhookID: "b", limit: 10), .init(webhookID: "a", limit: 10)], ["c"]
        ),
        // Nothing due.
        (["a": 6], 5, 100, [:], [], ["a"]),
        // The budget is shared evenly among the due webhooks.
        (
            ["a": 1, "b": 2, "c": 3], 5, 15, [:],
            [.init(webhookID: "a", limit: 5), .init(webhookID: "b", limit: 5), .init(webhookID: "c", limit: 5)], []
        ),
        // One that takes less than its share leaves the rest to the others.
        (
            ["a": 1, "b": 2, "c": 3], 5, 15, ["a": 1],
            [.init(webhookID: "a", limit: 1), .init(webhookID: "b", limit: 7), .init(webhookID: "c", limit: 7)], []
        ),
        // A budget smaller than the due webhooks: one each, earliest first; the rest wait.
        (
            ["a": 1, "b": 2, "c": 3], 5, 2, [:], [.init(webhookID: "a", limit: 1), .init(webhookID: "b", limit: 1)],
            ["c"]
        ),
        // A full lane keeps its hint and costs no budget.
        (["a": 1, "b": 2], 5, 10, ["a": 0], [.init(webhookID: "b", limit: 10)], ["a"]),
        // Room smaller than the budget.
        (["a": 1], 5, 100, ["a": 3], [.init(webhookID: "a", limit: 3)], []),
        // Due exactly now.
        (["a": 5], 5, 100, [:], [.init(webhookID: "a", limit: 10)], []),
    ]

    @Test(arguments: takeCases)
    func takingFollowsDueTimeRoomAndBudget(
        _ standing: [String: Int64], _ now: Int64, _ budget: Int, _ room: [String: Int], _ expected: [DueQuery],
        _ left: Set<String>
    ) {
        var hints = DueHints()
        for (id, time) in standing.sorted(by: { $0.key < $1.key }) { hints.note(id, at: at(time)) }
        let queries = hints.take(at: at(now), budget: budget) { room[$0] ?? 10 }
        #expect(queries == expected)
        #expect(Set(standing.keys.filter { hints.hint(for: $0) != nil }) == left)
    }

    @Test func aNoteMadeWhileAScanIsOutSurvivesItsAnswer() {
        var hints = DueHints()
        hints.note("w", at: at(1))
        let taken = hints.take(at: at(2), budget: 10) { _ in 5 }
        #expect(taken.map(\.webhookID) == ["w"])
        #expect(hints.hint(for: "w") == nil)
        hints.note("w", at: at(2))  // new deliveries while the scan is out
        hints.note("w", at: at(50))  // the scan's answer: its next retry
        #expect(hints.hint(for: "w") == at(2))
        let due = hints.hasDue(at: at(2))
        #expect(due)
    }

    @Test func aWebhookIsTakenOnceHoweverOftenItWasNoted() {
        var hints = DueHints()
        for time in stride(from: Int64(100), through: 1, by: -1) { hints.note("w", at: at(time)) }
        hints.note("v", at: at(1))
        let queries = hints.take(at: at(200), budget: 1000) { _ in 1 }
        #expect(queries.map(\.webhookID).sorted() == ["v", "w"])
        let stillDue = hints.hasDue(at: at(10_000))
        #expect(!stillDue)
        // Deferred ones come back once, too.
        for time in stride(from: Int64(100), through: 1, by: -1) { hints.note("w", at: at(time)) }
        let whileFull = hints.take(at: at(200), budget: 1000) { _ in 0 }
        #expect(whileFull.isEmpty)
        let withRoom = hints.take(at: at(200), budget: 1000) { _ in 1 }
        #expect(withRoom.map(\.webhookID) == ["w"])
        #expect(hints.count == 0)
    }

    /// Against a plain dictionary model, through many notes, takes and removals (the heap
    /// is rebuilt along the way).
    @Test func agreesWithASimpleModel() {
        var generator = SplitMix(seed: 42)
        var hints = DueHints()
        var model: [String: Int64] = [:]
        for step in 0..<20_000 {
            let id = "w\(generator.next() % 300)"
            switch generator.next() % 10 {
            case 0..<6:
                let time = Int64(generator.next() % 1000)
                hints.note(id, at: at(time))
                model[id] = min(model[id] ?? .max, time)
            case 6:
                hints.remove(id)
                model[id] = nil
            default:
                let now = Int64(generator.next() % 1000)
                let budget = Int(generator.next() % 20) + 1
                let queries = hints.take(at: at(now), budget: budget) { _ in 1 }
                let due = model.filter { $0.value <= now }.sorted { ($0.value, $0.key) < ($1.value, $1.key) }
                #expect(queries.count == min(budget, due.count), "step \(step)")
                // Earliest first: every one taken is due no later than any due one left.
                let takenTimes = queries.map { model[$0.webhookID]! }
                #expect(takenTimes == takenTimes.sorted(), "step \(step)")
                for query in queries { model[query.webhookID] = nil }
                if let latestTaken = takenTimes.last {
                    #expect(model.values.allSatisfy { $0 > now || $0 >= latestTaken }, "step \(step)")
                }
            }
            for probe in ["w0", "w1", id] { #expect(hints.hint(for: probe).map(\.microseconds) == model[probe]) }
        }
        #expect(hints.count == model.count)
    }
}

/// A small deterministic generator for the model test.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
