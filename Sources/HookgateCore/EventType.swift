/// The platform's ten event types.
public enum EventType: String, Sendable, CaseIterable, Hashable {
    case linkHit = "LINK_HIT"
    case optOut = "OPT_OUT"
    case smsStatus = "SMS_STATUS"
    case smsInbound = "SMS_INBOUND"
    case mmsStatus = "MMS_STATUS"
    case mmsInbound = "MMS_INBOUND"
    case whatsappStatus = "WHATSAPP_STATUS"
    case whatsappInbound = "WHATSAPP_INBOUND"
    case rcsStatus = "RCS_STATUS"
    case rcsInbound = "RCS_INBOUND"

    public var family: EventFamily {
        switch self {
        case .smsStatus, .mmsStatus, .whatsappStatus, .rcsStatus: return .status
        case .smsInbound, .mmsInbound, .whatsappInbound, .rcsInbound: return .inbound
        case .linkHit: return .linkHit
        case .optOut: return .optOut
        }
    }

    /// The message channel a status or inbound event's `type` must name.
    public var channel: String? {
        switch self {
        case .smsStatus, .smsInbound: return "SMS"
        case .mmsStatus, .mmsInbound: return "MMS"
        case .whatsappStatus, .whatsappInbound: return "WHATSAPP"
        case .rcsStatus, .rcsInbound: return "RCS"
        case .linkHit, .optOut: return nil
        }
    }

    /// The event type whose name is exactly `name`, byte for byte. (`init(rawValue:)`
    /// compares Unicode-canonically, so it would take a look-alike spelling.)
    public init?(exactly name: String) {
        guard let match = EventType.allCases.first(where: { $0.rawValue.hasSameBytes(as: name) }) else {
            return nil
        }
        self = match
    }

    /// The names in the platform's order, for error messages.
    public static let namesList: String = allCases.map(\.rawValue).joined(separator: ", ")
}

/// Event types grouped by the body key their payload carries.
public enum EventFamily: Sendable, Hashable, CaseIterable {
    case status
    case inbound
    case linkHit
    case optOut

    public var bodyKey: String {
        switch self {
        case .status: return "status"
        case .inbound: return "mo"
        case .linkHit: return "link_hit"
        case .optOut: return "opt_out"
        }
    }
}
