import Dispatch
import HookgateCore
import Synchronization
import Testing

// Filter matching (proto-spec/PROTOCOL.md "Filter matching" and its worked examples,
// PROTOCOL.md "Filter matching"): every case goes through EventValidator (so that the
// extraction of what each filter reads is tested too), MatchTarget.rejection(of:),
// MatcherIndex and ShardedMatcher, which must all agree.

private let received = Timestamp(microseconds: 1_745_366_718_567_890)  // 2025-04-23T00:05:18.567890Z
private let created = Timestamp(microseconds: 1_744_592_372_758_190)  // 2025-04-14T00:59:32.758190Z

/// The account's own number: `status.sender`, `mo.recipient`, `source_message.sender`.
private let account = "61400000001"
/// The other party: `status.recipient`, `mo.sender`, `source_message.recipient`.
private let person = "61499999999"
private let ref = "order-42"
private let campaign = "camp-7"

/// The seed's event families, spelled out here rather than taken from EventType.family.
private enum Family {
    case status, inbound, linkHit, optOut

    init(_ type: EventType) {
        switch type.rawValue {
        case "LINK_HIT": self = .linkHit
        case "OPT_OUT": self = .optOut
        case let name where name.hasSuffix("_STATUS"): self = .status
        default: self = .inbound
        }
    }
}

/// What the event offers a filter: `raw` as it came, `key` as compared.
private func matchValue(_ raw: String, _ key: String) -> FilterInput {
    .value(raw: raw, key: ExactKey(key))
}

/// `SMS` for `SMS_STATUS` and `SMS_INBOUND`, ...
private func channel(of type: EventType) -> String {
    String(type.rawValue.prefix { $0 != "_" })
}

/// Events as a client sends them to `emit_event`.
private enum Build {
    static func message(
        sender: String = account, recipient: String = person, messageRef: String? = ref,
        campaignId: String? = campaign, extra: [(String, JSON)] = []
    ) -> JSON {
        var object: JSONObject = [
            "id": "m-1", "type": "SMS", "sender": .string(sender), "recipient": .string(recipient), "message": "Hi",
        ]
        if let messageRef { object["message_ref"] = .string(messageRef) }
        if let campaignId { object["campaign_id"] = .string(campaignId) }
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }

    static func status(
        _ type: EventType = .smsStatus, sender: String = account, status: String = "DELIVERED",
        messageRef: String? = ref, campaignId: String? = campaign
    ) -> JSON {
        var body: JSONObject = [
            "id": "s-1", "type": .string(channel(of: type)), "sender": .string(sender), "recipient": .string(person),
            "status": .string(status),
        ]
        if let messageRef { body["message_ref"] = .string(messageRef) }
        if let campaignId { body["campaign_id"] = .string(campaignId) }
        return ["event_type": .string(type.rawValue), "status": .object(body)]
    }

    static func inbound(
        _ type: EventType = .smsInbound, sender: String = person, recipient: String = account,
        lastMessage: JSON? = Build.message(), extra: [(String, JSON)] = []
    ) -> JSON {
        var body: JSONObject = [
            "id": "i-1", "type": .string(channel(of: type)), "sender": .string(sender),
            "recipient": .string(recipient), "message": "STOP",
        ]
        if let lastMessage { body["last_message"] = lastMessage }
        for (key, value) in extra { body[key] = value }
        return ["event_type": .string(type.rawValue), "mo": .object(body)]
    }

    static func linkHit(_ source: JSON = Build.message(), extra: [(String, JSON)] = []) -> JSON {
        var body: JSONObject = ["url": "https://example.com/offer", "hits": 3, "source_message": source]
        for (key, value) in extra { body[key] = value }
        return ["event_type": "LINK_HIT", "link_hit": .object(body)]
    }

    static func optOut(_ source: JSON = Build.message()) -> JSON {
        ["event_type": "OPT_OUT", "opt_out": ["source": "SMS_INBOUND", "source_message": source]]
    }

    /// Of any type, every field present, with the values above.
    static func canonical(_ type: EventType) -> JSON {
        switch Family(type) {
        case .status: return status(type)
        case .inbound: return inbound(type)
        case .linkHit: return linkHit()
        case .optOut: return optOut()
        }
    }
}

/// One event against one webhook: nil `reason` when it matches, otherwise the exact first
/// failing check that `MatchTarget.rejection(of:)` must report.
struct MatchCase: Sendable, CustomTestStringConvertible {
    let label: String
    let event: JSON
    let filter: WebhookFilter
    let disabled: Bool
    let reason: String?

    init(_ label: String, _ event: JSON, _ filter: WebhookFilter, disabled: Bool = false, _ reason: String?) {
        self.label = label
        self.event = event
        self.filter = filter
        self.disabled = disabled
        self.reason = reason
    }

    var testDescription: String { label }
}

extension MatchCase {
    /// Every filter field against one event type: in force and matching, in force and not
    /// matching, absent, ignored for the family, and applied to a field the event lacks.
    static func perType(_ type: EventType) -> [MatchCase] {
        let t = type.rawValue
        let event = Build.canonical(type)
        func only(
            sender: [String] = [], status: [String] = [], messageRef: [String] = [], campaignId: [String] = []
        ) -> WebhookFilter {
            WebhookFilter(
                eventType: [type], sender: sender, status: status, messageRef: messageRef, campaignId: campaignId)
        }
        var cases: [MatchCase] = [
            MatchCase("\(t): every array empty", event, only(), nil),
            MatchCase(
                "\(t): event_type among others", event,
                WebhookFilter(eventType: [.rcsInbound, type, .linkHit]), nil),
            MatchCase(
                "\(t): event_type not subscribed", event,
                WebhookFilter(eventType: EventType.allCases.filter { $0 != type }), "event_type not subscribed"),
            MatchCase("\(t): disabled", event, only(), disabled: true, "webhook disabled"),
            MatchCase(
                "\(t): disabled, even with every filter matching", event,
                only(sender: [account], messageRef: [ref]), disabled: true, "webhook disabled"),
            // sender
            MatchCase("\(t): sender in force, matching", event, only(sender: [account]), nil),
            MatchCase(
                "\(t): sender in force, not matching", event, only(sender: ["61400000002"]),
                "sender 61400000001 not in filter.sender"),
            MatchCase("\(t): sender absent, message_ref matching", event, only(messageRef: [ref]), nil),
            // message_ref: every family has one.
            MatchCase("\(t): message_ref in force, matching", event, only(messageRef: [ref]), nil),
            MatchCase(
                "\(t): message_ref in force, not matching", event, only(messageRef: ["order-43"]),
                "message_ref order-42 not in filter.message_ref"),
            MatchCase("\(t): message_ref absent, sender matching", event, only(sender: [account]), nil),
        ]
        switch Family(type) {
        case .status:
            cases += [
                MatchCase("\(t): status in force, matching", event, only(status: ["DELIVERED"]), nil),
                MatchCase(
                    "\(t): status in force, not matching", event, only(status: ["FAILED"]),
                    "status DELIVERED not in filter.status"),
                MatchCase("\(t): status absent", event, only(sender: [account], campaignId: [campaign]), nil),
                MatchCase("\(t): campaign_id in force, matching", event, only(campaignId: [campaign]), nil),
                MatchCase(
                    "\(t): campaign_id in force, not matching", event, only(campaignId: ["camp-8"]),
                    "campaign_id camp-7 not in filter.campaign_id"),
                MatchCase("\(t): campaign_id absent", event, only(status: ["delivered"]), nil),
                MatchCase(
                    "\(t): message_ref filter, event without message_ref", Build.status(type, messageRef: nil),
                    only(messageRef: [ref]), "no message_ref for filter.message_ref"),
                MatchCase(
                    "\(t): campaign_id filter, event without campaign_id", Build.status(type, campaignId: nil),
                    only(campaignId: [campaign]), "no campaign_id for filter.campaign_id"),
                MatchCase(
                    "\(t): no message_ref or campaign_id, no filter on them",
                    Build.status(type, messageRef: nil, campaignId: nil),
                    only(sender: [account], status: ["delivered"]),
                    nil),
            ]
        case .inbound:
            cases += [
                MatchCase("\(t): status filter ignored (not matching)", event, only(status: ["FAILED"]), nil),
                MatchCase("\(t): status filter ignored (DELIVERED)", event, only(status: ["DELIVERED"]), nil),
                MatchCase(
                    "\(t): campaign_id in force, matching last_message", event, only(campaignId: [campaign]), nil),
                MatchCase(
                    "\(t): campaign_id in force, not matching", event, only(campaignId: ["camp-8"]),
                    "campaign_id camp-7 not in filter.campaign_id"),
                MatchCase("\(t): campaign_id absent", event, only(sender: [account], messageRef: [ref]), nil),
                MatchCase(
                    "\(t): message_ref filter, no last_message", Build.inbound(type, lastMessage: nil),
                    only(messageRef: [ref]), "no last_message for filter.message_ref"),
                MatchCase(
                    "\(t): campaign_id filter, no last_message", Build.inbound(type, lastMessage: nil),
                    only(campaignId: [campaign]), "no last_message for filter.campaign_id"),
                MatchCase(
                    "\(t): no last_message, no filter on it", Build.inbound(type, lastMessage: nil),
                    only(sender: [account], status: ["FAILED"]), nil),
                MatchCase(
                    "\(t): message_ref filter, last_message without message_ref",
                    Build.inbound(type, lastMessage: Build.message(messageRef: nil)), only(messageRef: [ref]),
                    "no last_message.message_ref for filter.message_ref"),
                MatchCase(
                    "\(t): campaign_id filter, last_message without campaign_id",
                    Build.inbound(type, lastMessage: Build.message(campaignId: nil)), only(campaignId: [campaign]),
                    "no last_message.campaign_id for filter.campaign_id"),
                MatchCase(
                    "\(t): sender filter reads mo.recipient, not mo.sender", event, only(sender: [person]),
                    "sender 61400000001 not in filter.sender"),
            ]
        case .linkHit, .optOut:
            cases += [
                MatchCase("\(t): status filter ignored", event, only(status: ["FAILED"]), nil),
                MatchCase("\(t): campaign_id filter ignored (not matching)", event, only(campaignId: ["camp-8"]), nil),
                MatchCase("\(t): campaign_id filter ignored (matching)", event, only(campaignId: [campaign]), nil),
                MatchCase(
                    "\(t): campaign_id filter ignored, source_message without campaign_id",
                    type == .linkHit
                        ? Build.linkHit(Build.message(campaignId: nil)) : Build.optOut(Build.message(campaignId: nil)),
                    only(campaignId: [campaign]), nil),
                MatchCase(
                    "\(t): message_ref filter, source_message without message_ref",
                    type == .linkHit
                        ? Build.linkHit(Build.message(messageRef: nil)) : Build.optOut(Build.message(messageRef: nil)),
                    only(messageRef: [ref]), "no source_message.message_ref for filter.message_ref"),
                MatchCase(
                    "\(t): sender filter reads source_message.sender, not its recipient", event,
                    only(sender: [person]), "sender 61400000001 not in filter.sender"),
            ]
        }
        return cases
    }

    static let sms = EventType.smsStatus

    /// OR within an array, AND across arrays.
    static let orAndCases: [MatchCase] = [
        MatchCase(
            "OR: sender, last of three", Build.status(),
            WebhookFilter(eventType: [sms], sender: ["61400000002", "MyShop", account]), nil),
        MatchCase(
            "OR: sender, none of three", Build.status(),
            WebhookFilter(eventType: [sms], sender: ["61400000002", "MyShop", "61400000003"]),
            "sender 61400000001 not in filter.sender"),
        MatchCase(
            "OR: status, second of two", Build.status(),
            WebhookFilter(eventType: [sms], status: ["FAILED", "delivered"]),
            nil),
        MatchCase(
            "OR: status, none", Build.status(), WebhookFilter(eventType: [sms], status: ["FAILED", "READ"]),
            "status DELIVERED not in filter.status"),
        MatchCase(
            "OR: message_ref, first of two", Build.status(), WebhookFilter(eventType: [sms], messageRef: [ref, "x"]),
            nil),
        MatchCase(
            "OR: campaign_id, second of two", Build.status(),
            WebhookFilter(eventType: [sms], campaignId: ["camp-1", campaign]), nil),
        MatchCase(
            "OR: inbound message_ref in last_message, second of two", Build.inbound(),
            WebhookFilter(eventType: [.smsInbound], messageRef: ["order-1", ref]), nil),
        MatchCase(
            "AND: all four arrays hold", Build.status(),
            WebhookFilter(
                eventType: [sms], sender: [account], status: ["DELIVERED"], messageRef: [ref], campaignId: [campaign]),
            nil),
        MatchCase(
            "AND: sender holds, status does not", Build.status(),
            WebhookFilter(eventType: [sms], sender: [account], status: ["FAILED"]),
            "status DELIVERED not in filter.status"
        ),
        MatchCase(
            "AND: sender, status, message_ref hold, campaign_id does not", Build.status(),
            WebhookFilter(
                eventType: [sms], sender: [account], status: ["DELIVERED"], messageRef: [ref], campaignId: ["camp-8"]),
            "campaign_id camp-7 not in filter.campaign_id"),
        MatchCase(
            "AND: inbound, sender and message_ref hold, status ignored", Build.inbound(),
            WebhookFilter(eventType: [.smsInbound], sender: [account], status: ["FAILED"], messageRef: [ref]), nil),
        MatchCase(
            "AND: LINK_HIT, sender and message_ref hold, status and campaign_id ignored", Build.linkHit(),
            WebhookFilter(
                eventType: [.linkHit], sender: [account], status: ["FAILED"], messageRef: [ref], campaignId: ["x"]),
            nil),
        MatchCase(
            "AND: OPT_OUT, sender holds, message_ref does not", Build.optOut(),
            WebhookFilter(eventType: [.optOut], sender: [account], messageRef: ["order-43"]),
            "message_ref order-42 not in filter.message_ref"),
        MatchCase(
            "AND: a webhook taking status and inbound, status filter stops only status events", Build.inbound(),
            WebhookFilter(eventType: [sms, .smsInbound], status: ["FAILED"]), nil),
        MatchCase(
            "AND: a webhook taking status and inbound, status event stopped", Build.status(),
            WebhookFilter(eventType: [sms, .smsInbound], status: ["FAILED"]), "status DELIVERED not in filter.status"),
    ]

    /// `status` compares case-insensitively, in the filter and in the event.
    static let statusCaseCases: [MatchCase] = [
        ("DELIVERED", "delivered", true),
        ("DELIVERED", "Delivered", true),
        ("DELIVERED", "DELIVERED", true),
        ("delivered", "DELIVERED", true),
        ("DeLiVeReD", "dElIvErEd", true),
        ("delivered", "delivered", true),
        ("SOFT_BOUNCE", "soft_bounce", true),
        ("soft_bounce", "Soft_Bounce", true),
        ("QUEUED_AT_CARRIER", "queued_at_carrier", true),  // not in the seed's list: still compared
        ("delivered", "FAILED", false),
        ("DELIVERED", "UNDELIVERABLE", false),
        ("undeliverable", "delivered", false),
        ("SENT", "SENT ", false),
    ].map { event, filter, matches in
        MatchCase(
            "status \(event) against filter \(filter)", Build.status(status: event),
            WebhookFilter(eventType: [sms], status: [filter]),
            matches ? nil : "status \(event) not in filter.status")
    }

    /// Phone numbers by their digits, on both sides; other sender IDs exactly.
    static let senderFormCases: [MatchCase] = {
        let pairs: [(event: String, filter: String, matches: Bool)] = [
            ("+61 400 000 009", "61400000009", true),
            ("61400000009", "+61 400 000 009", true),
            ("+61400000009", "61 400 000 009", true),
            ("61 400 000 009", "+61400000009", true),
            ("+61400000009", "+61400000009", true),
            ("61400000009", "61400000009", true),
            ("+61 400 000 009", "+61 4000 00009", true),
            ("61400000009", "6 1 4 0 0 0 0 0 0 0 9", true),
            ("61400000009  ", "61400000009", true),  // trailing spaces fit ^\+?[0-9][0-9 ]*$
            ("+61 400 000 009", "+61 400 000 008", false),
            ("61400000009", "0061400000009", false),
            ("61400000009", "6140000000", false),
            ("61400000009", " 61400000009", false),  // a leading space: not a phone number
            ("+61400000009", "++61400000009", false),
            ("61400000009", "+61-400-000-009", false),  // dashes: a sender ID, compared exactly
            ("+61-400-000-009", "+61-400-000-009", true),
            ("+61-400-000-009", "61400000009", false),
            ("61400000009", "61400000009A", false),
            ("61400000009", "(61) 400000009", false),
            ("61400000009", "+ 61400000009", false),
            // Alphanumeric sender IDs: exact and case-sensitive.
            ("MyShop", "MyShop", true),
            ("myshop", "MyShop", false),
            ("MyShop", "myshop", false),
            ("MyShop", "MYSHOP", false),
            ("MyShop", "My Shop", false),
            ("My Shop", "My Shop", true),
            ("Shop24", "Shop24", true),
            ("Shop24", "Shop 24", false),
            ("Shop24", "shop24", false),
        ]
        return pairs.map { pair in
            MatchCase(
                "sender \(pair.event) against filter \(pair.filter)", Build.status(sender: pair.event),
                WebhookFilter(eventType: [sms], sender: [pair.filter]),
                pair.matches ? nil : "sender \(pair.event) not in filter.sender")
        }
    }()

    /// Which payload field each filter reads, with decoys in the fields it must not read.
    static let readLocationCases: [MatchCase] = [
        // Inbound: sender is mo.recipient, in any spelling.
        MatchCase(
            "inbound: mo.recipient +61 400 000 009 against 61400000009",
            Build.inbound(.mmsInbound, recipient: "+61 400 000 009"),
            WebhookFilter(eventType: [.mmsInbound], sender: ["61400000009"]), nil),
        MatchCase(
            "inbound: mo.recipient MyShop against myshop", Build.inbound(.rcsInbound, recipient: "MyShop"),
            WebhookFilter(eventType: [.rcsInbound], sender: ["myshop"]), "sender MyShop not in filter.sender"),
        MatchCase(
            "inbound: mo.sender (the person) named by the filter", Build.inbound(.whatsappInbound),
            WebhookFilter(eventType: [.whatsappInbound], sender: ["+61 499 999 999"]),
            "sender 61400000001 not in filter.sender"),
        MatchCase(
            "inbound: last_message.sender is not what sender reads",
            Build.inbound(lastMessage: Build.message(sender: "61400000005")),
            WebhookFilter(eventType: [.smsInbound], sender: ["61400000005"]), "sender 61400000001 not in filter.sender"),
        // Inbound: message_ref and campaign_id are last_message's, not the body's.
        MatchCase(
            "inbound: a message_ref on mo itself is not read",
            Build.inbound(extra: [("message_ref", "order-99")]),
            WebhookFilter(eventType: [.smsInbound], messageRef: ["order-99"]),
            "message_ref order-42 not in filter.message_ref"),
        MatchCase(
            "inbound: a campaign_id on mo itself is not read",
            Build.inbound(extra: [("campaign_id", "camp-99")]),
            WebhookFilter(eventType: [.smsInbound], campaignId: ["camp-99"]),
            "campaign_id camp-7 not in filter.campaign_id"),
        MatchCase(
            "inbound: a message_ref on mo itself does not stand in for a missing last_message",
            Build.inbound(lastMessage: nil, extra: [("message_ref", "order-99")]),
            WebhookFilter(eventType: [.smsInbound], messageRef: ["order-99"]), "no last_message for filter.message_ref"),
        MatchCase(
            "inbound: last_message.message_ref matches", Build.inbound(lastMessage: Build.message(messageRef: "r-1")),
            WebhookFilter(eventType: [.smsInbound], messageRef: ["r-1"]), nil),
        // LINK_HIT and OPT_OUT: source_message.
        MatchCase(
            "LINK_HIT: source_message.sender +61400000009 against 61 400 000 009",
            Build.linkHit(Build.message(sender: "+61400000009")),
            WebhookFilter(eventType: [.linkHit], sender: ["61 400 000 009"]), nil),
        MatchCase(
            "OPT_OUT: source_message.sender MyShop against MyShop", Build.optOut(Build.message(sender: "MyShop")),
            WebhookFilter(eventType: [.optOut], sender: ["MyShop"]), nil),
        MatchCase(
            "OPT_OUT: source_message.sender MyShop against MYSHOP", Build.optOut(Build.message(sender: "MyShop")),
            WebhookFilter(eventType: [.optOut], sender: ["MYSHOP"]), "sender MyShop not in filter.sender"),
        MatchCase(
            "LINK_HIT: a message_ref on link_hit itself is not read",
            Build.linkHit(extra: [("message_ref", "order-99")]),
            WebhookFilter(eventType: [.linkHit], messageRef: ["order-99"]),
            "message_ref order-42 not in filter.message_ref"),
        MatchCase(
            "LINK_HIT: a sender on link_hit itself is not read", Build.linkHit(extra: [("sender", "61400000005")]),
            WebhookFilter(eventType: [.linkHit], sender: ["61400000005"]), "sender 61400000001 not in filter.sender"),
        MatchCase(
            "OPT_OUT: source_message.message_ref matches", Build.optOut(Build.message(messageRef: "r-9")),
            WebhookFilter(eventType: [.optOut], messageRef: ["r-9"]), nil),
        // Status: the status object; recipient is not the sender.
        MatchCase(
            "status: status.recipient is not what sender reads", Build.status(),
            WebhookFilter(eventType: [sms], sender: [person]), "sender 61400000001 not in filter.sender"),
        MatchCase(
            "status: message_ref and campaign_id compare exactly", Build.status(messageRef: "Order-42"),
            WebhookFilter(eventType: [sms], messageRef: ["order-42"]), "message_ref Order-42 not in filter.message_ref"),
    ]

    /// The first failing check, in the order disabled, event_type, sender, status,
    /// message_ref, campaign_id.
    static let reasonOrderCases: [MatchCase] = {
        let allWrong = WebhookFilter(
            eventType: [.mmsStatus], sender: ["61400000002"], status: ["FAILED"], messageRef: ["order-43"],
            campaignId: ["camp-8"])
        func filter(
            types: [EventType] = [sms], sender: String = "61400000002", status: String = "FAILED",
            messageRef: String = "order-43", campaignId: String = "camp-8"
        ) -> WebhookFilter {
            WebhookFilter(
                eventType: types, sender: [sender], status: [status], messageRef: [messageRef],
                campaignId: [campaignId])
        }
        return [
            MatchCase(
                "order: everything fails, disabled first", Build.status(), allWrong, disabled: true, "webhook disabled"),
            MatchCase("order: then event_type", Build.status(), allWrong, "event_type not subscribed"),
            MatchCase("order: then sender", Build.status(), filter(), "sender 61400000001 not in filter.sender"),
            MatchCase(
                "order: then status", Build.status(), filter(sender: account), "status DELIVERED not in filter.status"),
            MatchCase(
                "order: then message_ref", Build.status(), filter(sender: account, status: "DELIVERED"),
                "message_ref order-42 not in filter.message_ref"),
            MatchCase(
                "order: then campaign_id", Build.status(),
                filter(sender: account, status: "DELIVERED", messageRef: ref),
                "campaign_id camp-7 not in filter.campaign_id"),
            MatchCase(
                "order: none fails", Build.status(),
                filter(sender: account, status: "DELIVERED", messageRef: ref, campaignId: campaign), nil),
            MatchCase(
                "order: a missing message_ref before a failing campaign_id",
                Build.status(messageRef: nil), filter(sender: account, status: "DELIVERED"),
                "no message_ref for filter.message_ref"),
            MatchCase(
                "order: inbound, status ignored, message_ref reported",
                Build.inbound(), filter(types: [.smsInbound], sender: account),
                "message_ref order-42 not in filter.message_ref"),
            MatchCase(
                "order: inbound without last_message, message_ref before campaign_id",
                Build.inbound(lastMessage: nil), filter(types: [.smsInbound], sender: account),
                "no last_message for filter.message_ref"),
            MatchCase(
                "order: inbound, sender before the missing last_message",
                Build.inbound(lastMessage: nil), filter(types: [.smsInbound]), "sender 61400000001 not in filter.sender"
            ),
            MatchCase(
                "order: LINK_HIT, campaign_id ignored after message_ref holds",
                Build.linkHit(), filter(types: [.linkHit], sender: account, messageRef: ref), nil),
            MatchCase(
                "order: OPT_OUT disabled and unsubscribed", Build.optOut(), filter(types: [.linkHit]), disabled: true,
                "webhook disabled"),
        ]
    }()

    static let all: [MatchCase] =
        EventType.allCases.flatMap(perType) + orAndCases + statusCaseCases + senderFormCases + readLocationCases
        + reasonOrderCases
}

private func webhook(_ filter: WebhookFilter, disabled: Bool = false) -> Webhook {
    let webhook = Webhook.create(
        WebhookDefinition(name: "Hook", url: "https://example.com/hook", filter: filter), at: created)
    return disabled ? webhook.settingState(.disabled, reason: "disabled by disable_webhook", at: created) : webhook
}

@Suite("Filter matching")
struct FilterMatchingTests {
    @Test func everyFamilyAndTypeHasCases() {
        for type in EventType.allCases {
            #expect(MatchCase.all.contains { $0.label.hasPrefix("\(type.rawValue): ") })
        }
    }

    @Test(arguments: MatchCase.all)
    func matchesAsTheRulesSay(_ matchCase: MatchCase) throws {
        let event = try EventValidator.event(matchCase.event, receivedAt: received)
        let key = event.matchKey
        let hook = webhook(matchCase.filter, disabled: matchCase.disabled)
        let target = MatchTarget(hook)
        #expect(target.rejection(of: key) == matchCase.reason)
        let expected = matchCase.reason == nil ? [hook.id] : []

        var index = MatcherIndex()
        index.upsert(target)
        var found: [MatchTarget] = []
        index.matches(key, into: &found)
        #expect(found.map(\.id) == expected, "MatcherIndex")

        let loaded = ShardedMatcher(shardCount: 4)
        loaded.load([hook])
        #expect(loaded.match([key]).map { $0.map(\.id) } == [expected], "ShardedMatcher.load")

        let applied = ShardedMatcher(shardCount: 1)
        applied.apply(.upsert(target))
        #expect(applied.match([key, key]).map { $0.map(\.id) } == [expected, expected], "ShardedMatcher.apply")

        let explanation = loaded.explain(key, rejectionLimit: 10)
        #expect(explanation.matches.map(\.id) == expected)
        #expect(
            explanation.rejections.map { [$0.webhookID, $0.reason] } == matchCase.reason.map { [[hook.id, $0]] } ?? [])
        #expect(explanation.rejectionsTotal == (matchCase.reason == nil ? 0 : 1))
    }

    /// The same cases, all at once in one index: each event finds exactly the webhooks
    /// whose case says it matches, among all the others.
    @Test func oneIndexHoldingEveryCaseAgrees() throws {
        let cases = MatchCase.all
        let hooks = cases.map { webhook($0.filter, disabled: $0.disabled) }
        let keys = try cases.map { try EventValidator.event($0.event, receivedAt: received).matchKey }
        var index = MatcherIndex()
        for hook in hooks { index.upsert(MatchTarget(hook)) }
        let matcher = ShardedMatcher(shardCount: 4)
        matcher.load(hooks)
        let sharded = matcher.match(keys)
        for (i, key) in keys.enumerated() {
            let scan = hooks.filter { MatchTarget($0).rejection(of: key) == nil }.map(\.id)
            var found: [MatchTarget] = []
            index.matches(key, into: &found)
            #expect(found.map(\.id).sorted() == scan.sorted(), "\(cases[i].label)")
            #expect(sharded[i].map(\.id).sorted() == scan.sorted(), "\(cases[i].label)")
            // Its own webhook is among them exactly when the case says it matches.
            #expect(scan.contains(hooks[i].id) == (cases[i].reason == nil), "\(cases[i].label)")
        }
    }

    /// "Any other sender ID compares exactly": a look-alike that Swift's String equality
    /// calls equal (Unicode canonical equivalence) is a different sender ID.
    @Test(arguments: [
        ("\u{212A}Shop", "KShop"),  // KELVIN SIGN, canonically equivalent to K
        ("Caf\u{E9}", "Cafe\u{301}"),  // precomposed and decomposed é
        ("Ohm\u{2126}", "Ohm\u{3A9}"),  // OHM SIGN and GREEK CAPITAL LETTER OMEGA
    ])
    func senderIDsCompareExactlyNotByCanonicalEquivalence(_ eventSender: String, _ filterSender: String) throws {
        let key = try EventValidator.event(Build.status(sender: eventSender), receivedAt: received).matchKey
        let hook = webhook(WebhookFilter(eventType: [.smsStatus], sender: [filterSender]))
        #expect(MatchTarget(hook).rejection(of: key) == "sender \(eventSender) not in filter.sender")
        var index = MatcherIndex()
        index.upsert(MatchTarget(hook))
        var found: [MatchTarget] = []
        index.matches(key, into: &found)
        #expect(found.isEmpty)
    }

    @Test func keysTellMissingFieldsFromIgnoredFilters() throws {
        let linkHit = try EventValidator.event(Build.linkHit(), receivedAt: received).matchKey
        #expect(linkHit.status == .ignored)
        #expect(linkHit.campaignId == .ignored)
        #expect(linkHit.sender == matchValue(account, account))
        #expect(linkHit.messageRef == matchValue(ref, ref))
        let inbound = try EventValidator.event(
            Build.inbound(recipient: "+61 400 000 001", lastMessage: nil), receivedAt: received
        ).matchKey
        #expect(inbound.sender == matchValue("+61 400 000 001", account))
        #expect(inbound.status == .ignored)
        #expect(inbound.messageRef == .missing(reason: "no last_message"))
        #expect(inbound.campaignId == .missing(reason: "no last_message"))
        let status = try EventValidator.event(
            Build.status(status: "soft_bounce", messageRef: nil), receivedAt: received
        )
        .matchKey
        #expect(status.status == matchValue("soft_bounce", "SOFT_BOUNCE"))
        #expect(status.messageRef == .missing(reason: "no message_ref"))
        #expect(status.campaignId == matchValue(campaign, campaign))
    }

    @Test(arguments: [
        ("61400000009", "61400000009"), ("+61400000009", "61400000009"), ("+61 400 000 009", "61400000009"),
        ("6 1", "61"), ("0", "0"), ("+0", "0"), ("1  ", "1"),
        ("MyShop", "MyShop"), ("myshop", "myshop"), ("+", "+"), ("", ""), (" 61", " 61"), ("++61", "++61"),
        ("+ 61", "+ 61"), ("61-400", "61-400"), ("61\t400", "61\t400"), ("6１", "6１"),
        ("61400000009\n", "61400000009\n"),
    ])
    func senderKeysAreDigitsForPhoneNumbersOnly(_ value: String, _ key: String) {
        #expect(FilterValue.senderKey(value) == ExactKey(key))
        #expect(FilterValue.senderKey(value).text.utf8.elementsEqual(key.utf8))
    }

    // MARK: Property: the sharded index against a plain scan

    @Test func shardedMatcherAgreesWithAPlainScanUnderRandomChanges() throws {
        var fuzz = Fuzz(seed: 0x5EED_1234_ABCD_0001)
        var webhooks: [String: Webhook] = [:]
        var ids: [String] = []
        for _ in 0..<3_000 {
            let hook = fuzz.webhook()
            webhooks[hook.id] = hook
            ids.append(hook.id)
        }
        let keys = try (0..<3_000).map { _ in try EventValidator.event(fuzz.event(), receivedAt: received).matchKey }
        #expect(Set(keys.map(\.eventType)) == Set(EventType.allCases))

        let matcher = ShardedMatcher(shardCount: 4)
        matcher.load(Array(webhooks.values))
        #expect(matcher.count == 3_000)
        let before = compare(matcher, webhooks, keys, stage: "loaded")

        // Random changes, applied to both.
        var removed: [Webhook] = []
        for step in 0..<2_000 {
            let now = created.adding(microseconds: Int64(step + 1))
            let roll = fuzz.int(100)
            if roll < 8 || ids.isEmpty {
                let hook = fuzz.webhook()
                webhooks[hook.id] = hook
                ids.append(hook.id)
                matcher.apply(.upsert(MatchTarget(hook)))
                continue
            }
            if roll < 12, !removed.isEmpty {
                // A removed webhook comes back under its old id.
                let hook = removed.removeLast()
                webhooks[hook.id] = hook
                ids.append(hook.id)
                matcher.apply(.upsert(MatchTarget(hook)))
                continue
            }
            if roll < 14 {
                matcher.apply(.remove(id: fuzz.uuid()))  // an id nobody has: nothing changes
                continue
            }
            let position = fuzz.int(ids.count)
            let id = ids[position]
            let hook = webhooks[id]!
            let changed: Webhook?
            switch roll {
            case 14..<50: changed = hook.replacing(with: fuzz.definition(), at: now)
            case 50..<65: changed = hook.settingState(.disabled, reason: "disabled by disable_webhook", at: now)
            case 65..<80: changed = hook.settingState(.active, reason: nil, at: now)
            case 80..<95: changed = nil
            default: changed = hook  // the same again
            }
            if let changed {
                webhooks[id] = changed
                matcher.apply(.upsert(MatchTarget(changed)))
            } else {
                webhooks[id] = nil
                ids.swapAt(position, ids.count - 1)
                ids.removeLast()
                removed.append(hook)
                matcher.apply(.remove(id: id))
            }
        }
        #expect(matcher.count == webhooks.count)
        let after = compare(matcher, webhooks, keys, stage: "after changes")

        // The data exercised every path: matches and each kind of rejection.
        for stats in [before, after] {
            #expect(stats.matches > 50_000, "matches: \(stats.matches)")
            for kind in [
                "webhook disabled", "event_type not subscribed", "sender ", "status ", "message_ref ", "campaign_id ",
                "no message_ref for", "no campaign_id for", "no last_message for filter.message_ref",
                "no last_message for filter.campaign_id", "no last_message.message_ref for",
                "no last_message.campaign_id for", "no source_message.message_ref for",
            ] {
                #expect(stats.reasonKinds.contains { $0.hasPrefix(kind) }, "no rejection \(kind)")
            }
        }
    }
}

private struct CompareStats: Sendable {
    var matches = 0
    var reasonKinds: Set<String> = []
    var matchMismatches: [String] = []
    var explainMismatches: [String] = []

    mutating func merge(_ other: CompareStats) {
        matches += other.matches
        reasonKinds.formUnion(other.reasonKinds)
        matchMismatches += other.matchMismatches
        explainMismatches += other.explainMismatches
    }
}

/// A rejection without the event's value: `sender ` for `sender 614... not in filter.sender`.
private func kind(of reason: String) -> String {
    for name in ["sender ", "status ", "message_ref ", "campaign_id "] where reason.hasPrefix(name) { return name }
    return reason
}

/// Checks `match` for every event, and `explain` for every tenth, against a plain scan of
/// `webhooks` with `MatchTarget.rejection(of:)`.
private func compare(
    _ matcher: ShardedMatcher, _ webhooks: [String: Webhook], _ keys: [EventMatchKey], stage: String
) -> CompareStats {
    let targets = webhooks.values.map(MatchTarget.init).sorted { $0.id < $1.id }
    let found = matcher.match(keys)
    #expect(found.count == keys.count)
    guard found.count == keys.count else { return CompareStats() }
    // Only a webhook subscribed to the event's type can pass the scan's first checks: the
    // plain scan of most events looks at those alone. The sampled events go through every
    // webhook, and through the dry run with varying limits.
    var subscribed: [EventType: [MatchTarget]] = [:]
    for target in targets {
        for type in target.eventTypes { subscribed[type, default: []].append(target) }
    }
    let candidates = subscribed
    let limits = [0, 1, 7, 100, 10_000]
    let chunks = 8
    let results = Mutex<[CompareStats]>([])
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        var stats = CompareStats()
        for i in stride(from: chunk, to: keys.count, by: chunks) {
            let key = keys[i]
            let explains = i % 10 == 0
            var expected: [String] = []
            var rejections: [[String]] = []
            for target in explains ? targets : candidates[key.eventType] ?? [] {
                if let reason = target.rejection(of: key) {
                    guard explains else { continue }
                    rejections.append([target.id, reason])
                    stats.reasonKinds.insert(kind(of: reason))
                } else {
                    expected.append(target.id)
                }
            }
            stats.matches += expected.count

            let got = found[i].map(\.id)
            if got.sorted() != expected {
                stats.matchMismatches.append(
                    "event \(i) \(key): got \(got.count), expected \(expected.count); "
                        + "extra \(Array(Set(got).subtracting(expected).prefix(3))), "
                        + "missing \(Array(Set(expected).subtracting(got).prefix(3)))")
            }

            guard explains else { continue }
            let limit = limits[(i / 10) % limits.count]
            let explanation = matcher.explain(key, rejectionLimit: limit)
            let explained = explanation.rejections.map { [$0.webhookID, $0.reason] }
            let problems = [
                explanation.matches.map(\.id) == expected ? nil : "matches differ",
                explanation.rejectionsTotal == targets.count - expected.count
                    ? nil : "rejectionsTotal \(explanation.rejectionsTotal) != \(targets.count - expected.count)",
                explained == Array(rejections.prefix(limit)) ? nil : "rejections differ",
                explained.count == min(limit, rejections.count) ? nil : "rejections not limited to \(limit)",
                explained.map { $0[0] } == explained.map({ $0[0] }).sorted() ? nil : "rejections not sorted by id",
            ].compactMap { $0 }
            if !problems.isEmpty { stats.explainMismatches.append("event \(i) limit \(limit): \(problems)") }
        }
        results.withLock { $0.append(stats) }
    }
    var stats = CompareStats()
    for part in results.withLock({ $0 }) { stats.merge(part) }
    #expect(
        stats.matchMismatches.isEmpty,
        "\(stage): \(stats.matchMismatches.count) events match differently; first: \(stats.matchMismatches.prefix(3))")
    #expect(
        stats.explainMismatches.isEmpty,
        "\(stage): \(stats.explainMismatches.count) dry runs differ; first: \(stats.explainMismatches.prefix(3))")
    return stats
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small, seedable, deterministic generator.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random webhooks and events drawn from small pools, so that they often meet.
private struct Fuzz {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    static let phones = ["61400000001", "61400000002", "447507222200"]
    /// `61 400 000 001`
    static func grouped(_ digits: String) -> String {
        let characters = Array(digits)
        var out = String(characters[0..<2])
        var i = 2
        while i < characters.count {
            out += " " + String(characters[i..<min(i + 3, characters.count)])
            i += 3
        }
        return out
    }
    static let senders =
        phones.flatMap { [$0, "+" + $0, "+" + grouped($0), grouped($0)] } + ["MyShop", "myshop", "MYSHOP", "Shop24"]
    static let statuses = ["DELIVERED", "FAILED", "SENT", "SOFT_BOUNCE", "READ"]
    static let messageRefs = ["order-1", "order-2", "order-3", "Order-1"]
    static let campaignIds = ["c1", "c2", "c3"]

    mutating func int(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &rng) }
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
    mutating func pick<T>(_ values: [T]) -> T { values[int(values.count)] }
    mutating func maybe(_ values: [String], percent: Int) -> String? { chance(percent) ? pick(values) : nil }

    mutating func randomCase(_ text: String) -> String {
        switch int(3) {
        case 0: return text.uppercased()
        case 1: return text.lowercased()
        default:
            var out = ""
            for character in text { out += chance(50) ? character.uppercased() : character.lowercased() }
            return out
        }
    }

    /// Empty half the time, else one to three values.
    mutating func array(_ make: (inout Fuzz) -> String) -> [String] {
        guard chance(50) else { return [] }
        var values: [String] = []
        for _ in 0...int(3) { values.append(make(&self)) }
        return values
    }

    mutating func uuid() -> String {
        let high = rng.next()
        let low = rng.next()
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        let all = Array(hex(high) + hex(low))
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(all[$0]) }.joined(separator: "-")
    }

    mutating func definition() -> WebhookDefinition {
        var types: [EventType] = []
        for type in EventType.allCases where chance(30) { types.append(type) }
        if types.isEmpty { types = [pick(EventType.allCases)] }
        types.shuffle(using: &rng)
        let filter = WebhookFilter(
            eventType: types,
            sender: array { $0.pick(Fuzz.senders) },
            status: array { fuzz in
                let status = fuzz.pick(Fuzz.statuses)
                return fuzz.randomCase(status)
            },
            messageRef: array { $0.pick(Fuzz.messageRefs) },
            campaignId: array { $0.pick(Fuzz.campaignIds) })
        return WebhookDefinition(name: "Hook", url: "https://example.com/hook", filter: filter)
    }

    mutating func webhook() -> Webhook {
        let hook = Webhook(
            id: uuid(), definition: definition(), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", createdAt: created,
            updatedAt: created)
        return chance(10) ? hook.settingState(.disabled, reason: "disabled by disable_webhook", at: created) : hook
    }

    mutating func message() -> JSON {
        Build.message(
            sender: pick(Fuzz.senders), recipient: pick(Fuzz.senders), messageRef: maybe(Fuzz.messageRefs, percent: 70),
            campaignId: maybe(Fuzz.campaignIds, percent: 70))
    }

    mutating func event() -> JSON {
        let type = pick(EventType.allCases)
        switch Family(type) {
        case .status:
            let status = pick(Fuzz.statuses)
            return Build.status(
                type, sender: pick(Fuzz.senders), status: randomCase(status),
                messageRef: maybe(Fuzz.messageRefs, percent: 70), campaignId: maybe(Fuzz.campaignIds, percent: 70))
        case .inbound:
            let recipient = pick(Fuzz.senders)
            return Build.inbound(type, recipient: recipient, lastMessage: chance(60) ? message() : nil)
        case .linkHit: return Build.linkHit(message())
        case .optOut: return Build.optOut(message())
        }
    }
}
