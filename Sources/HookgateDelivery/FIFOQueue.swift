/// A first-in, first-out queue over an array whose pops do not move the rest: it reads
/// from `head` on, and drops what was read once it is empty or half of the storage.
struct FIFOQueue<Element> {
    private var items: [Element] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }

    mutating func append(_ item: Element) { items.append(item) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let first = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return first
    }

    /// Empties the queue; what it held.
    mutating func removeAll() -> ArraySlice<Element> {
        defer {
            items.removeAll()
            head = 0
        }
        return items[head...]
    }
}
