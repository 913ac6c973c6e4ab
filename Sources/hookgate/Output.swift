import Foundation
import HookgateClient
import HookgateCore

/// Writes answers as a table for people or as the protocol's JSON for programs.
struct Output: Sendable {
    let format: OutputFormat
    var now: Timestamp = SystemWallClock().now()

    init(format: OutputFormat) { self.format = format }

    /// A whole answer: the protocol's line as JSON, else `table()` as columns.
    func answer(_ json: JSONObject, table: () -> TextTable) {
        switch format {
        case .json: line(JSONWriter.string(.object(json)))
        case .table: line(table().rendered, terminated: false)
        }
    }

    /// Items of a list, one JSON line each, or one table.
    func items(_ items: [JSONObject], table: () -> TextTable) {
        switch format {
        case .json: for item in items { line(JSONWriter.string(.object(item))) }
        case .table: line(table().rendered, terminated: false)
        }
    }

    func line(_ text: String, terminated: Bool = true) {
        FileHandle.standardOutput.write(Data((terminated ? text + "\n" : text).utf8))
    }

    func error(_ text: String) {
        FileHandle.standardError.write(Data("error: \(text)\n".utf8))
    }

    /// A time as people read it in a table: "3m ago".
    func time(_ timestamp: Timestamp?) -> String {
        timestamp.map { RelativeTime.describe($0, now: now) } ?? "-"
    }
}

/// Aligned columns: a header row, then the rows, each column as wide as its widest cell.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: [String]) { self.header = header }

    mutating func add(_ row: [String]) { rows.append(row) }

    var rendered: String {
        let all = [header] + rows
        let widths = header.indices.map { column in
            all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0
        }
        var text = ""
        for row in all {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }

    /// Field and value rows, for one resource.
    static func fields(_ pairs: [(String, String)]) -> TextTable {
        var table = TextTable(["FIELD", "VALUE"])
        for (field, value) in pairs { table.add([field, value]) }
        return table
    }
}
