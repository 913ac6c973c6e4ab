import HookgateCore
import Testing

// EventValidator (proto-spec/PROTOCOL.md "Events").

private let received = Timestamp(microseconds: 1_745_366_718_567_890)
private let receivedText = "2025-04-23T00:05:18.567890Z"

private let statusTypes: [EventType] = [.smsStatus, .mmsStatus, .whatsappStatus, .rcsStatus]
private let inboundTypes: [EventType] = [.smsInbound, .mmsInbound, .whatsappInbound, .rcsInbound]
private let channels = ["SMS", "MMS", "WHATSAPP", "RCS"]

/// What the event offers a filter: `raw` as it came, `key` as compared.
private func matchValue(_ raw: String, _ key: String) -> FilterInput {
    .value(raw: raw, key: ExactKey(key))
}

/// `SMS` for `SMS_STATUS`, ...
private func channel(of type: EventType) -> String {
    String(type.rawValue.prefix { $0 != "_" })
}

/// No member at all (as opposed to `null`).
private let absent: JSON? = Optional<JSON>.none

/// A JSON value parsed from its text: numbers such as `1.5` that have no literal form.
private func json(_ text: String) -> JSON {
    try! JSONParser.parse(text)
}

extension JSON {
    /// A copy with the member at `path` (keys joined by `.`) replaced, or removed when
    /// `value` is nil; missing objects on the way are created.
    fileprivate func setting(_ path: String, _ value: JSON?) -> JSON {
        setting(path.split(separator: ".").map(String.init)[...], value)
    }

    private func setting(_ keys: ArraySlice<String>, _ value: JSON?) -> JSON {
        guard let key = keys.first else { return value ?? .null }
        var object = objectValue ?? JSONObject()
        if keys.count == 1 {
            object[key] = value
        } else {
            object[key] = (object[key] ?? .object(JSONObject())).setting(keys.dropFirst(), value)
        }
        return .object(object)
    }
}

/// Minimal valid events: only the required fields.
private enum Minimal {
    static func message(type: String = "SMS") -> JSON {
        ["id": "m-1", "type": .string(type), "sender": "61400000001", "recipient": "61499999999"]
    }

    static func event(_ type: EventType) -> JSON {
        let name = JSON.string(type.rawValue)
        switch type {
        case .linkHit:
            return [
                "event_type": name,
                "link_hit": ["url": "https://example.com/offer", "hits": 1, "source_message": message()],
            ]
        case .optOut:
            return ["event_type": name, "opt_out": ["source": "LINK_HIT", "source_message": message()]]
        default:
            if statusTypes.contains(type) {
                return [
                    "event_type": name,
                    "status": [
                        "id": "s-1", "type": .string(channel(of: type)), "sender": "61400000001",
                        "recipient": "61499999999", "status": "DELIVERED",
                    ],
                ]
            }
            return [
                "event_type": name,
                "mo": [
                    "id": "i-1", "type": .string(channel(of: type)), "sender": "61499999999",
                    "recipient": "61400000001",
                ],
            ]
        }
    }
}

/// Full valid events: a timestamp, every optional field, and unknown fields (nested too)
/// that must be kept as they came.
private enum Full {
    static let timestamp = "2025-04-23T10:05:19.123456+10:00"
    /// As delivered: UTC, microseconds (PROTOCOL.md "Events", 4).
    static let deliveredTimestamp = "2025-04-23T00:05:19.123456Z"

    static let vendor = json(
        #"{"route":{"hops":[1,-2.5,true,null,"a",{"x":[]}],"empty":{},"note":"caf\u00e9 \ud83d\ude00"},"n":0.0475}"#)

    static func message(type: String) -> JSON {
        [
            "id": "m-1", "type": .string(type), "sender": "+61 400 000 001", "recipient": "61499999999",
            "message": "Your order shipped: https://x.co/a", "routed_via": "61400000099",
            "message_ref": "order-42", "subject": "Order", "content_urls": ["https://example.com/a.png"],
            "campaign_id": "camp-7", "x_meta": vendor, "webhook_id": "kept inside a body",
        ]
    }

    static func event(_ type: EventType) -> JSON {
        let name = JSON.string(type.rawValue)
        switch type {
        case .linkHit:
            return [
                "event_type": name, "timestamp": .string(timestamp),
                "link_hit": [
                    "url": "https://example.com/offer?utm=1", "hits": 1234, "source_message": message(type: "SMS"),
                    "x_geo": ["country": "AU", "points": [json("1.5"), json("-33.8688")]],
                ],
            ]
        case .optOut:
            return [
                "event_type": name, "timestamp": .string(timestamp),
                "opt_out": ["source": "SMS_INBOUND", "source_message": message(type: "WHATSAPP"), "x_reason": nil],
            ]
        default:
            if statusTypes.contains(type) {
                return [
                    "event_type": name, "timestamp": .string(timestamp),
                    "status": [
                        "id": "s-1", "type": .string(channel(of: type)), "message_ref": "order-42",
                        "sender": "+61 400 000 001", "recipient": "61499999999", "status": "soft_bounce",
                        "routed_via": "61400000099", "description": "Bounced", "campaign_id": "camp-7",
                        "webhook_name": "kept inside a body", "x_vendor": vendor, "price": json("0.0475"),
                        "tags": [], "flag": false, "nothing": nil,
                    ],
                ]
            }
            return [
                "event_type": name, "timestamp": .string(timestamp),
                "mo": [
                    "id": "i-1", "type": .string(channel(of: type)), "sender": "61499999999",
                    "recipient": "+61 400 000 001", "routed_via": "61400000099", "message": "STOP",
                    "subject": "Re: Order", "media": [["name": "a.jpg", "content": "aGk="]],
                    "content_type": "image/jpeg", "content": "aGk=", "last_message": message(type: "SMS"),
                    "x_vendor": vendor, "message_ref": "not read: last_message's is",
                ],
            ]
        }
    }
}

/// A valid event, the key it must give the matcher, and the timestamp it must carry.
struct ValidEventCase: Sendable, CustomTestStringConvertible {
    let label: String
    let event: JSON
    let key: EventMatchKey
    let timestamp: String

    var testDescription: String { label }

    static let cases: [ValidEventCase] =
        EventType.allCases.flatMap { type -> [ValidEventCase] in
            let t = type.rawValue
            let minimalSender = matchValue("61400000001", "61400000001")
            let fullSender = matchValue("+61 400 000 001", "61400000001")
            let ref = matchValue("order-42", "order-42")
            let campaign = matchValue("camp-7", "camp-7")
            let minimalKey: EventMatchKey
            let fullKey: EventMatchKey
            if statusTypes.contains(type) {
                minimalKey = EventMatchKey(
                    eventType: type, sender: minimalSender, status: matchValue("DELIVERED", "DELIVERED"),
                    messageRef: .missing(reason: "no message_ref"), campaignId: .missing(reason: "no campaign_id"))
                fullKey = EventMatchKey(
                    eventType: type, sender: fullSender, status: matchValue("soft_bounce", "SOFT_BOUNCE"),
                    messageRef: ref, campaignId: campaign)
            } else if inboundTypes.contains(type) {
                minimalKey = EventMatchKey(
                    eventType: type, sender: minimalSender, status: .ignored,
                    messageRef: .missing(reason: "no last_message"), campaignId: .missing(reason: "no last_message"))
                fullKey = EventMatchKey(
                    eventType: type, sender: fullSender, status: .ignored, messageRef: ref, campaignId: campaign)
            } else {
                minimalKey = EventMatchKey(
                    eventType: type, sender: minimalSender, status: .ignored,
                    messageRef: .missing(reason: "no source_message.message_ref"), campaignId: .ignored)
                // The full source_message's sender is "+61 400 000 001" too.
                fullKey = EventMatchKey(
                    eventType: type, sender: fullSender, status: .ignored, messageRef: ref, campaignId: .ignored)
            }
            return [
                ValidEventCase(
                    label: "\(t) minimal", event: Minimal.event(type), key: minimalKey, timestamp: receivedText),
                ValidEventCase(
                    label: "\(t) full", event: Full.event(type), key: fullKey, timestamp: Full.deliveredTimestamp),
            ]
        } + [
            ValidEventCase(
                label: "SMS_INBOUND, last_message without message_ref or campaign_id",
                event: Minimal.event(.smsInbound).setting("mo.last_message", Minimal.message()),
                key: EventMatchKey(
                    eventType: .smsInbound, sender: matchValue("61400000001", "61400000001"), status: .ignored,
                    messageRef: .missing(reason: "no last_message.message_ref"),
                    campaignId: .missing(reason: "no last_message.campaign_id")),
                timestamp: receivedText),
            ValidEventCase(
                label: "SMS_INBOUND, null last_message is no last_message",
                event: Minimal.event(.smsInbound).setting("mo.last_message", .null),
                key: EventMatchKey(
                    eventType: .smsInbound, sender: matchValue("61400000001", "61400000001"), status: .ignored,
                    messageRef: .missing(reason: "no last_message"), campaignId: .missing(reason: "no last_message")),
                timestamp: receivedText),
            ValidEventCase(
                label: "SMS_STATUS, null message_ref and campaign_id are absent, null timestamp is stamped",
                event: Minimal.event(.smsStatus).setting("status.message_ref", .null).setting(
                    "status.campaign_id", .null
                )
                .setting("timestamp", .null),
                key: EventMatchKey(
                    eventType: .smsStatus, sender: matchValue("61400000001", "61400000001"),
                    status: matchValue("DELIVERED", "DELIVERED"), messageRef: .missing(reason: "no message_ref"),
                    campaignId: .missing(reason: "no campaign_id")),
                timestamp: receivedText),
            ValidEventCase(
                label: "MMS_STATUS, a status outside the seed's list, alphanumeric sender",
                event: Minimal.event(.mmsStatus).setting("status.status", "Queued At Carrier").setting(
                    "status.sender", "MyShop"),
                key: EventMatchKey(
                    eventType: .mmsStatus, sender: matchValue("MyShop", "MyShop"),
                    status: matchValue("Queued At Carrier", "QUEUED AT CARRIER"),
                    messageRef: .missing(reason: "no message_ref"), campaignId: .missing(reason: "no campaign_id")),
                timestamp: receivedText),
            ValidEventCase(
                label: "LINK_HIT with hits an integer literal beyond 64 bits",
                event: Minimal.event(.linkHit).setting("link_hit.hits", json("123456789012345678901234567890")),
                key: EventMatchKey(
                    eventType: .linkHit, sender: matchValue("61400000001", "61400000001"), status: .ignored,
                    messageRef: .missing(reason: "no source_message.message_ref"), campaignId: .ignored),
                timestamp: receivedText),
            ValidEventCase(
                label: "LINK_HIT with hits 0 and a WHATSAPP source_message",
                event: Minimal.event(.linkHit).setting("link_hit.hits", 0).setting(
                    "link_hit.source_message", Minimal.message(type: "WHATSAPP")),
                key: EventMatchKey(
                    eventType: .linkHit, sender: matchValue("61400000001", "61400000001"), status: .ignored,
                    messageRef: .missing(reason: "no source_message.message_ref"), campaignId: .ignored),
                timestamp: receivedText),
        ]
}

/// An event that must fail validation, naming `field`.
struct RejectedEvent: Sendable, CustomTestStringConvertible {
    let label: String
    let event: JSON?
    let field: String

    init(_ label: String, _ event: JSON?, _ field: String) {
        self.label = label
        self.event = event
        self.field = field
    }

    var testDescription: String { "\(label) -> \(field)" }

    /// Wrong values for a required string: missing, null, not a string, empty.
    static let notStrings: [(String, JSON?)] = [
        ("missing", absent), ("null", .null), ("a number", 42), ("a boolean", true), ("an array", ["a"]),
        ("an object", ["a": "b"]), ("empty", ""),
    ]

    /// Every wrong value of every required string field of the object at `path` in `base`.
    static func requiredStrings(_ label: String, _ base: JSON, _ path: String, _ fields: [String]) -> [RejectedEvent] {
        fields.flatMap { field in
            notStrings.map { wrong, value in
                RejectedEvent(
                    "\(label): \(field) \(wrong)", base.setting("\(path).\(field)", value), "event.\(path).\(field)")
            }
        }
    }

    /// Wrong values for an optional string: present but not a string.
    static func optionalStrings(_ label: String, _ base: JSON, _ path: String, _ fields: [String]) -> [RejectedEvent] {
        fields.flatMap { field in
            ([("a number", 42), ("a boolean", false), ("an array", []), ("an object", [:])] as [(String, JSON)]).map {
                wrong, value in
                RejectedEvent(
                    "\(label): \(field) \(wrong)", base.setting("\(path).\(field)", value), "event.\(path).\(field)")
            }
        }
    }

    static let messageFields = ["id", "type", "sender", "recipient"]

    static let envelope: [RejectedEvent] = {
        let valid = Minimal.event(.smsStatus)
        var cases = [
            RejectedEvent("event missing", nil, "event"),
            RejectedEvent("event null", .null, "event"),
            RejectedEvent("event a string", "SMS_STATUS", "event"),
            RejectedEvent("event a number", 1, "event"),
            RejectedEvent("event an array", [valid], "event"),
            RejectedEvent("event a boolean", true, "event"),
            RejectedEvent("event_type missing", valid.setting("event_type", absent), "event.event_type"),
            RejectedEvent("event_type null", valid.setting("event_type", .null), "event.event_type"),
            RejectedEvent("event_type a number", valid.setting("event_type", 3), "event.event_type"),
            RejectedEvent("event_type an array", valid.setting("event_type", ["SMS_STATUS"]), "event.event_type"),
            RejectedEvent("event_type an object", valid.setting("event_type", [:]), "event.event_type"),
            RejectedEvent("event_type unknown", valid.setting("event_type", "FAX_STATUS"), "event.event_type"),
            RejectedEvent("event_type lower case", valid.setting("event_type", "sms_status"), "event.event_type"),
            RejectedEvent("event_type empty", valid.setting("event_type", ""), "event.event_type"),
            RejectedEvent("event_type with a space", valid.setting("event_type", "SMS_STATUS "), "event.event_type"),
            RejectedEvent("event_type of a family only", valid.setting("event_type", "STATUS"), "event.event_type"),
            RejectedEvent("only an empty object", [:], "event.event_type"),
        ]
        for key in ["webhook_id", "webhook_name", "colour", "id", "Event_Type", "Status", "body", "timestamp_"] {
            cases.append(RejectedEvent("unknown top-level \(key)", valid.setting(key, "x"), "event.\(key)"))
        }
        cases.append(
            RejectedEvent(
                "webhook_id supplied as on a delivery",
                valid.setting("webhook_id", "fd0e6485-5b3c-4c1e-9a51-1b6f0e1c2d3a"), "event.webhook_id"))
        cases.append(
            RejectedEvent(
                "webhook_name null is still supplied", valid.setting("webhook_name", .null), "event.webhook_name"))
        // Timestamps.
        for text in [
            "yesterday", "", "2025-04-23", "2025-04-23 00:05:18Z", "2025-04-23T00:05:18", "2025-02-30T00:00:00Z",
            "2025-13-01T00:00:00Z", "2025-04-23T24:00:00Z", "2025-04-23T00:05:18.Z", "2025-04-23T00:05:18+1000",
            "2025-04-23T00:05:18Z ", "1745366718",
        ] {
            cases.append(
                RejectedEvent("timestamp \"\(text)\"", valid.setting("timestamp", .string(text)), "event.timestamp"))
        }
        for (label, value) in [
            ("a number", 1_745_366_718), ("a boolean", true), ("an array", []), ("an object", [:]),
        ] as [(String, JSON)] {
            cases.append(RejectedEvent("timestamp \(label)", valid.setting("timestamp", value), "event.timestamp"))
        }
        return cases
    }()

    static let bodies: [RejectedEvent] = EventType.allCases.flatMap { type -> [RejectedEvent] in
        let t = type.rawValue
        let valid = Minimal.event(type)
        let bodyKey =
            statusTypes.contains(type)
            ? "status" : inboundTypes.contains(type) ? "mo" : type == .linkHit ? "link_hit" : "opt_out"
        var cases = [
            RejectedEvent("\(t): body missing", valid.setting(bodyKey, absent), "event.\(bodyKey)"),
            RejectedEvent("\(t): body null", valid.setting(bodyKey, .null), "event.\(bodyKey)"),
            RejectedEvent("\(t): body a string", valid.setting(bodyKey, "DELIVERED"), "event.\(bodyKey)"),
            RejectedEvent("\(t): body an array", valid.setting(bodyKey, [[:]]), "event.\(bodyKey)"),
            RejectedEvent("\(t): body a number", valid.setting(bodyKey, 7), "event.\(bodyKey)"),
        ]
        for other in ["status", "mo", "link_hit", "opt_out"] where other != bodyKey {
            cases.append(
                RejectedEvent(
                    "\(t): another family's body \(other) beside its own", valid.setting(other, [:]), "event.\(other)"))
            cases.append(
                RejectedEvent(
                    "\(t): another family's body \(other) instead of its own",
                    valid.setting(bodyKey, absent).setting(other, Minimal.event(.smsStatus)["status"]), "event.\(other)"
                ))
        }
        return cases
    }

    static let statusFields: [RejectedEvent] = statusTypes.flatMap { type -> [RejectedEvent] in
        let valid = Minimal.event(type)
        var cases = requiredStrings(type.rawValue, valid, "status", ["id", "type", "sender", "recipient", "status"])
        cases += optionalStrings(type.rawValue, valid, "status", ["message_ref", "campaign_id"])
        for other in channels + ["sms", "Sms", " SMS", "SMS ", "\(channel(of: type))_STATUS", "EMAIL"]
        where other != channel(of: type) {
            cases.append(
                RejectedEvent(
                    "\(type.rawValue): type \(other)", valid.setting("status.type", .string(other)), "event.status.type"
                ))
        }
        return cases
    }

    static let inboundFields: [RejectedEvent] = inboundTypes.flatMap { type -> [RejectedEvent] in
        let t = type.rawValue
        let valid = Minimal.event(type)
        var cases = requiredStrings(t, valid, "mo", ["id", "type", "sender", "recipient"])
        for other in channels + ["sms", "Mms", "\(channel(of: type))_INBOUND"] where other != channel(of: type) {
            cases.append(
                RejectedEvent("\(t): type \(other)", valid.setting("mo.type", .string(other)), "event.mo.type"))
        }
        let withLast = valid.setting("mo.last_message", Minimal.message())
        cases += requiredStrings("\(t) last_message", withLast, "mo.last_message", messageFields)
        cases += optionalStrings("\(t) last_message", withLast, "mo.last_message", ["message_ref", "campaign_id"])
        cases += [
            RejectedEvent(
                "\(t): last_message a string", valid.setting("mo.last_message", "m-1"), "event.mo.last_message"),
            RejectedEvent("\(t): last_message an array", valid.setting("mo.last_message", []), "event.mo.last_message"),
            RejectedEvent(
                "\(t): last_message empty", valid.setting("mo.last_message", [:]), "event.mo.last_message.id"),
        ]
        return cases
    }

    static let linkHitFields: [RejectedEvent] = {
        let valid = Minimal.event(.linkHit)
        var cases = requiredStrings("LINK_HIT", valid, "link_hit", ["url"])
        for (label, value) in [
            ("missing", absent), ("null", .null), ("1.5", json("1.5")), ("\"3\"", "3"), ("1e3", json("1e3")),
            ("3.0", json("3.0")), ("true", true), ("an array", [1]), ("an object", [:]),
        ] as [(String, JSON?)] {
            cases.append(
                RejectedEvent("LINK_HIT: hits \(label)", valid.setting("link_hit.hits", value), "event.link_hit.hits"))
        }
        for (label, value) in [("missing", absent), ("null", .null), ("a string", "m-1"), ("an array", [])]
            as [(String, JSON?)]
        {
            cases.append(
                RejectedEvent(
                    "LINK_HIT: source_message \(label)", valid.setting("link_hit.source_message", value),
                    "event.link_hit.source_message"))
        }
        cases += requiredStrings("LINK_HIT source_message", valid, "link_hit.source_message", messageFields)
        cases += optionalStrings(
            "LINK_HIT source_message", valid, "link_hit.source_message", ["message_ref", "campaign_id"])
        return cases
    }()

    static let optOutFields: [RejectedEvent] = {
        let valid = Minimal.event(.optOut)
        var cases = requiredStrings("OPT_OUT", valid, "opt_out", ["source"])
        for (label, value) in [("missing", absent), ("null", .null), ("a string", "m-1"), ("a number", 1)]
            as [(String, JSON?)]
        {
            cases.append(
                RejectedEvent(
                    "OPT_OUT: source_message \(label)", valid.setting("opt_out.source_message", value),
                    "event.opt_out.source_message"))
        }
        cases += requiredStrings("OPT_OUT source_message", valid, "opt_out.source_message", messageFields)
        cases += optionalStrings(
            "OPT_OUT source_message", valid, "opt_out.source_message", ["message_ref", "campaign_id"])
        return cases
    }()

    /// Several faults: the first in PROTOCOL.md's order (event_type, top-level keys in the
    /// order sent, timestamp, body, the body's fields in table order, last_message last).
    static let order: [RejectedEvent] = {
        let status = Minimal.event(.smsStatus)
        let inbound = Minimal.event(.smsInbound)
        let linkHit = Minimal.event(.linkHit)
        return [
            RejectedEvent(
                "order: unknown event_type before an unknown key",
                status.setting("event_type", "FAX").setting("colour", "x"),
                "event.event_type"),
            RejectedEvent(
                "order: an unknown key before a bad timestamp",
                status.setting("timestamp", "yesterday").setting("colour", "x"), "event.colour"),
            RejectedEvent(
                "order: keys in the order sent, unknown first",
                ["event_type": "SMS_STATUS", "colour": "x", "mo": [:], "status": status["status"] ?? .null],
                "event.colour"),
            RejectedEvent(
                "order: keys in the order sent, other body first",
                ["event_type": "SMS_STATUS", "mo": [:], "colour": "x", "status": status["status"] ?? .null], "event.mo"),
            RejectedEvent(
                "order: a bad timestamp before a missing body",
                status.setting("status", absent).setting("timestamp", 5), "event.timestamp"),
            RejectedEvent(
                "order: status id before recipient",
                status.setting("status.id", absent).setting("status.recipient", absent), "event.status.id"),
            RejectedEvent(
                "order: status type before sender",
                status.setting("status.type", "MMS").setting("status.sender", absent), "event.status.type"),
            RejectedEvent(
                "order: status before message_ref",
                status.setting("status.status", "").setting("status.message_ref", 1), "event.status.status"),
            RejectedEvent(
                "order: mo recipient before a bad last_message",
                inbound.setting("mo.last_message", [:]).setting("mo.recipient", absent), "event.mo.recipient"),
            RejectedEvent(
                "order: link_hit url before hits",
                linkHit.setting("link_hit.url", absent).setting("link_hit.hits", "3"), "event.link_hit.url"),
            RejectedEvent(
                "order: link_hit hits before source_message",
                linkHit.setting("link_hit.hits", json("1.5")).setting("link_hit.source_message", absent),
                "event.link_hit.hits"),
            RejectedEvent(
                "order: source_message id before sender",
                linkHit.setting("link_hit.source_message.sender", 1).setting("link_hit.source_message.id", absent),
                "event.link_hit.source_message.id"),
        ]
    }()

    static let all = envelope + bodies + statusFields + inboundFields + linkHitFields + optOutFields + order
}

@Suite("EventValidator")
struct EventValidationTests {
    @Test(arguments: ValidEventCase.cases)
    func acceptsAndKeepsTheBody(_ valid: ValidEventCase) throws {
        let input = try #require(valid.event.objectValue)
        let event = try EventValidator.event(valid.event, receivedAt: received)
        let typeName = try #require(input["event_type"]?.stringValue)
        #expect(event.type.rawValue == typeName)
        #expect(event.matchKey == valid.key)
        let bodyKey = try #require(input.keys.first { $0 != "event_type" && $0 != "timestamp" })
        #expect(Set(event.payload.keys) == ["event_type", "timestamp", bodyKey])
        #expect(event.payload["event_type"] == .string(typeName))
        #expect(event.payload["timestamp"] == .string(valid.timestamp))
        // The body as it came: unknown fields, nested ones, nulls and number literals included.
        #expect(event.payload[bodyKey] == input[bodyKey])
    }

    @Test func fullEventsKeepUnknownNestedFields() throws {
        let event = try EventValidator.event(Full.event(.smsStatus), receivedAt: received)
        let body = try #require(event.payload["status"]?.objectValue)
        #expect(body["x_vendor"] == Full.vendor)
        #expect(body["x_vendor"]?["route"]?["hops"] == json(#"[1,-2.5,true,null,"a",{"x":[]}]"#))
        #expect(body["price"] == json("0.0475"))
        #expect(body["webhook_name"] == "kept inside a body")
        #expect(body["nothing"] == .null)
        #expect(body["tags"] == [])
        let inbound = try EventValidator.event(Full.event(.rcsInbound), receivedAt: received)
        let lastMessage = try #require(inbound.payload["mo"]?["last_message"]?.objectValue)
        #expect(lastMessage["x_meta"] == Full.vendor)
        #expect(lastMessage["webhook_id"] == "kept inside a body")
        #expect(inbound.payload["mo"]?["media"] == [["name": "a.jpg", "content": "aGk="]])
        let linkHit = try EventValidator.event(Full.event(.linkHit), receivedAt: received)
        #expect(linkHit.payload["link_hit"]?["x_geo"] == ["country": "AU", "points": [json("1.5"), json("-33.8688")]])
        #expect(linkHit.payload["link_hit"]?["hits"] == 1234)
        let optOut = try EventValidator.event(Full.event(.optOut), receivedAt: received)
        #expect(optOut.payload["opt_out"]?["x_reason"] == .null)
    }

    /// A present timestamp is delivered in UTC with microseconds, as the platform sends it
    /// (PROTOCOL.md "Events", 4): the offset converted, digits beyond microseconds dropped.
    @Test(arguments: [
        ("2025-04-23T00:05:18.567890Z", "2025-04-23T00:05:18.567890Z"),
        ("2025-04-23t00:05:18z", "2025-04-23T00:05:18.000000Z"),
        ("2025-04-23T10:05:18+10:00", "2025-04-23T00:05:18.000000Z"),
        ("2025-04-22T19:05:18.5-05:00", "2025-04-23T00:05:18.500000Z"),
        ("2025-04-23T00:05:18.123456789Z", "2025-04-23T00:05:18.123456Z"),
        ("2025-04-23T00:05:18.1Z", "2025-04-23T00:05:18.100000Z"),
        ("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00.000000Z"),
        ("2024-02-29T23:59:59.999999+00:00", "2024-02-29T23:59:59.999999Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"),
    ])
    func deliversAValidTimestampInUTCWithMicroseconds(_ text: String, _ delivered: String) throws {
        let timestamps = try EventType.allCases.map { type in
            try EventValidator.event(Minimal.event(type).setting("timestamp", .string(text)), receivedAt: received)
                .payload["timestamp"]
        }
        #expect(timestamps == Array(repeating: .string(delivered), count: EventType.allCases.count))
    }

    @Test(arguments: EventType.allCases)
    func stampsAMissingOrNullTimestampWithTheReceivedTime(_ type: EventType) throws {
        let missing = try EventValidator.event(Minimal.event(type), receivedAt: received)
        #expect(missing.payload["timestamp"] == .string(receivedText))
        let null = try EventValidator.event(Minimal.event(type).setting("timestamp", .null), receivedAt: received)
        #expect(null.payload["timestamp"] == .string(receivedText))
        let other = try EventValidator.event(
            Minimal.event(type), receivedAt: Timestamp(microseconds: 1_744_592_372_758_190))
        #expect(other.payload["timestamp"] == "2025-04-14T00:59:32.758190Z")
    }

    @Test(arguments: RejectedEvent.all)
    func rejects(_ rejected: RejectedEvent) {
        do throws(ProtocolError) {
            let event = try EventValidator.event(rejected.event, receivedAt: received)
            Issue.record("accepted: \(event.payload)")
        } catch {
            #expect(error.code == .validation)
            #expect(error.field == rejected.field)
            #expect(error.message.hasPrefix("\(rejected.field): "), "message: \(error.message)")
        }
    }

    @Test func rejectionsCoverEveryTypeAndField() {
        let fields = Set(RejectedEvent.all.map(\.field))
        for field in [
            "event", "event.event_type", "event.webhook_id", "event.webhook_name", "event.timestamp", "event.mo",
            "event.status", "event.link_hit", "event.opt_out", "event.status.id", "event.status.type",
            "event.status.sender", "event.status.recipient", "event.status.status", "event.status.message_ref",
            "event.status.campaign_id", "event.mo.id", "event.mo.type", "event.mo.sender", "event.mo.recipient",
            "event.mo.last_message", "event.mo.last_message.id", "event.mo.last_message.sender",
            "event.link_hit.url", "event.link_hit.hits", "event.link_hit.source_message",
            "event.link_hit.source_message.sender", "event.link_hit.source_message.message_ref",
            "event.opt_out.source", "event.opt_out.source_message", "event.opt_out.source_message.recipient",
        ] {
            #expect(fields.contains(field), "\(field)")
        }
    }

    @Test func messagesNameTheRule() throws {
        func message(_ event: JSON?) -> String? {
            do throws(ProtocolError) {
                _ = try EventValidator.event(event, receivedAt: received)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(message(nil) == "event: required")
        #expect(
            message(Minimal.event(.smsStatus).setting("status.recipient", absent)) == "event.status.recipient: required"
        )
        #expect(message(Minimal.event(.smsStatus).setting("webhook_id", "x")) == "event.webhook_id: unknown field")
        #expect(
            message(Minimal.event(.linkHit).setting("link_hit.hits", json("1.5")))
                == "event.link_hit.hits: must be an integer")
        #expect(
            message(Minimal.event(.smsStatus).setting("status.type", "MMS"))
                == #"event.status.type: must be SMS for SMS_STATUS, not "MMS""#)
        #expect(
            message(Minimal.event(.smsStatus).setting("mo", [:]))
                == "event.mo: not allowed for SMS_STATUS, whose body is status")
        #expect(
            message(Minimal.event(.smsStatus).setting("status.sender", 5)) == "event.status.sender: must be a string")
        #expect(
            message(Minimal.event(.smsStatus).setting("status.sender", "")) == "event.status.sender: must not be empty")
        #expect(
            message(Minimal.event(.optOut).setting("opt_out.source_message", absent))
                == "event.opt_out.source_message: required")
    }
}
