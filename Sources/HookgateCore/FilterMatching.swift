/// A filter value compared byte for byte. (Swift's `String` equality and hashing are
/// Unicode-canonical: "Café" written precomposed and decomposed would be one value, and
/// proto-spec/PROTOCOL.md says other sender IDs compare exactly.)
public struct ExactKey: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) { self.text = text }

    public static func == (lhs: ExactKey, rhs: ExactKey) -> Bool { lhs.text.hasSameBytes(as: rhs.text) }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { text }
}

/// What an event offers one filter: the value it compares, nothing (the filter does not
/// apply to the event's family), or a missing field (the filter applies, so it fails).
public enum FilterInput: Sendable, Equatable {
    /// The platform does not apply this filter to the event's family.
    case ignored
    /// The filter applies but the event lacks the field; `reason` says which
    /// (`no last_message`, `no message_ref`).
    case missing(reason: String)
    /// `raw` as the event carries it; `key` normalised for comparison.
    case value(raw: String, key: ExactKey)
}

/// The part of an event that filters read, normalised once per event.
public struct EventMatchKey: Sendable, Equatable {
    public var eventType: EventType
    public var sender: FilterInput
    public var status: FilterInput
    public var messageRef: FilterInput
    public var campaignId: FilterInput

    public init(
        eventType: EventType, sender: FilterInput, status: FilterInput, messageRef: FilterInput,
        campaignId: FilterInput
    ) {
        self.eventType = eventType
        self.sender = sender
        self.status = status
        self.messageRef = messageRef
        self.campaignId = campaignId
    }
}

/// Comparison rules for filter values (proto-spec/PROTOCOL.md "Filter matching").
public enum FilterValue {
    /// A phone number (`^\+?[0-9][0-9 ]*$`) compares by its digits alone; any other
    /// sender ID exactly. Both forms share one key space: a phone number's key is all
    /// digits, and a sender ID that is all digits is a phone number.
    public static func senderKey(_ value: String) -> ExactKey { ExactKey(senderText(value)) }

    static func senderText(_ value: String) -> String {
        var digits: [UInt8] = []
        digits.reserveCapacity(value.utf8.count)
        var sawDigit = false
        for (i, byte) in value.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "+") where i == 0:
                continue
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits.append(byte)
                sawDigit = true
            case UInt8(ascii: " ") where sawDigit:
                continue
            default:
                return value
            }
        }
        return sawDigit ? String(decoding: digits, as: UTF8.self) : value
    }

    /// Status values compare case-insensitively (`delivered` matches `DELIVERED`).
    public static func statusKey(_ value: String) -> ExactKey { ExactKey(value.uppercased()) }
}

/// A webhook's filter prepared for matching: normalised sets, plus what a dry run reports.
/// A class, so that the index's buckets share one copy per webhook.
public final class MatchTarget: Sendable, Equatable {
    public let id: String
    public let name: String
    public let enabled: Bool
    public let eventTypes: Set<EventType>
    public let senders: Set<ExactKey>
    public let statuses: Set<ExactKey>
    public let messageRefs: Set<ExactKey>
    public let campaignIds: Set<ExactKey>

    public init(_ webhook: Webhook) {
        id = webhook.id
        name = webhook.definition.name
        enabled = webhook.state == .active
        let filter = webhook.definition.filter
        eventTypes = Set(filter.eventType)
        senders = Set(filter.sender.map(FilterValue.senderKey))
        statuses = Set(filter.status.map(FilterValue.statusKey))
        messageRefs = Set(filter.messageRef.map(ExactKey.init))
        campaignIds = Set(filter.campaignId.map(ExactKey.init))
    }

    public static func == (lhs: MatchTarget, rhs: MatchTarget) -> Bool {
        lhs.id == rhs.id && lhs.name == rhs.name && lhs.enabled == rhs.enabled && lhs.eventTypes == rhs.eventTypes
            && lhs.senders == rhs.senders && lhs.statuses == rhs.statuses && lhs.messageRefs == rhs.messageRefs
            && lhs.campaignIds == rhs.campaignIds
    }

    /// Nil when the event matches; otherwise the first failing check, in the order
    /// disabled, event_type, sender, status, message_ref, campaign_id.
    public func rejection(of event: EventMatchKey) -> String? {
        if !enabled { return "webhook disabled" }
        if !eventTypes.contains(event.eventType) { return "event_type not subscribed" }
        return rejectionAfterEventType(of: event)
    }

    /// The checks after `enabled` and `event_type`, for candidates an index already
    /// selected by those.
    func rejectionAfterEventType(of event: EventMatchKey) -> String? {
        if let reason = Self.check(event.sender, senders, "sender") { return reason }
        if let reason = Self.check(event.status, statuses, "status") { return reason }
        if let reason = Self.check(event.messageRef, messageRefs, "message_ref") { return reason }
        return Self.check(event.campaignId, campaignIds, "campaign_id")
    }

    private static func check(_ input: FilterInput, _ accepted: Set<ExactKey>, _ name: String) -> String? {
        guard !accepted.isEmpty else { return nil }
        switch input {
        case .ignored: return nil
        case .missing(let reason): return "\(reason) for filter.\(name)"
        case .value(let raw, let key): return accepted.contains(key) ? nil : "\(name) \(raw) not in filter.\(name)"
        }
    }
}
