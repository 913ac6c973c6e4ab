extension Range<Int> {
    /// Consecutive subranges of at most `size` elements: the rows of one multi-row
    /// statement each.
    func chunks(of size: Int) -> [Range<Int>] {
        stride(from: lowerBound, to: upperBound, by: size).map { $0..<Swift.min($0 + size, upperBound) }
    }
}
