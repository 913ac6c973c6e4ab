import HookgateCore
import Testing

/// A create/update request built from a valid base by overriding and removing fields.
struct WebhookRequest: Sendable, CustomTestStringConvertible {
    static let base = #"{"name":"Hook","url":"https://example.com/hook","filter":{"event_type":["SMS_STATUS"]}}"#

    let label: String
    /// A JSON object whose members replace (or are added to) the base's.
    let overrides: String
    let removing: [String]
    let allowHTTP: Bool

    init(_ label: String, _ overrides: String = "{}", removing: [String] = [], allowHTTP: Bool = false) {
        self.label = label
        self.overrides = overrides
        self.removing = removing
        self.allowHTTP = allowHTTP
    }

    var testDescription: String { label }

    func object() throws -> JSONObject {
        var object = try #require(try JSONParser.parse(Self.base).objectValue)
        let changes = try #require(try JSONParser.parse(overrides).objectValue)
        for (key, value) in changes { object[key] = value }
        for key in removing { object[key] = Optional<JSON>.none }
        return object
    }

    static let envelopeKeys: Set<String> = ["cmd", "id"]

    func validate() throws -> Result<(WebhookDefinition, warnings: [String]), ProtocolError> {
        let request = try object()
        let validator = WebhookValidator(allowHTTP: allowHTTP)
        return Result { () throws(ProtocolError) in
            try validator.definition(from: request, envelopeKeys: Self.envelopeKeys)
        }
    }
}

/// A request that must fail, the field it must name and, when given, the exact message.
struct RejectedWebhook: Sendable, CustomTestStringConvertible {
    let request: WebhookRequest
    let field: String
    let message: String?

    init(_ request: WebhookRequest, field: String, message: String? = nil) {
        self.request = request
        self.field = field
        self.message = message
    }

    var testDescription: String { "\(request.label) -> \(field)" }
}

private let name100 = String(repeating: "n", count: 100)
private let name101 = String(repeating: "n", count: 101)
private let eventTypesList =
    "LINK_HIT, OPT_OUT, SMS_STATUS, SMS_INBOUND, MMS_STATUS, MMS_INBOUND, WHATSAPP_STATUS, WHATSAPP_INBOUND, RCS_STATUS, RCS_INBOUND"

private func expectRejection(_ rejected: RejectedWebhook) throws {
    switch try rejected.request.validate() {
    case .success(let (definition, _)):
        Issue.record("accepted: \(definition)")
    case .failure(let error):
        #expect(error.code == .validation)
        #expect(error.field == rejected.field)
        #expect(error.message.hasPrefix("\(rejected.field): "), "message: \(error.message)")
        if let message = rejected.message {
            #expect(error.message == message)
        }
    }
}

private func accepted(_ request: WebhookRequest) throws -> (WebhookDefinition, warnings: [String])? {
    switch try request.validate() {
    case .success(let result): return result
    case .failure(let error):
        Issue.record("rejected: \(error)")
        return nil
    }
}

@Suite("WebhookValidator")
struct WebhookValidationTests {
    @Test func acceptsTheMinimalRequest() throws {
        let (definition, warnings) = try #require(try accepted(WebhookRequest("base")))
        #expect(
            definition
                == WebhookDefinition(
                    name: "Hook", url: "https://example.com/hook", filter: WebhookFilter(eventType: [.smsStatus]),
                    rateLimit: 0, isSandbox: false))
        #expect(warnings == [])
    }

    @Test func acceptsAFullRequestAndKeepsEveryValueInOrder() throws {
        let request = WebhookRequest(
            "full",
            #"""
            {"cmd":"create_webhook","id":7,"name":"SMS Status Webhook","url":"https://hooks.example.com:8443/a/b?x=1#f",
             "filter":{"event_type":["SMS_INBOUND","SMS_STATUS","LINK_HIT"],"sender":["+61400000000","MyShop"],
             "status":["DELIVERED","soft_bounce"],"message_ref":["order-42"],"campaign_id":["c1","c2"]},
             "rate_limit":10}
            """#)
        let (definition, warnings) = try #require(try accepted(request))
        #expect(definition.name == "SMS Status Webhook")
        #expect(definition.url == "https://hooks.example.com:8443/a/b?x=1#f")
        #expect(definition.filter.eventType == [.smsInbound, .smsStatus, .linkHit])
        #expect(definition.filter.sender == ["+61400000000", "MyShop"])
        #expect(definition.filter.status == ["DELIVERED", "soft_bounce"])
        #expect(definition.filter.messageRef == ["order-42"])
        #expect(definition.filter.campaignId == ["c1", "c2"])
        #expect(definition.rateLimit == 10)
        #expect(definition.isSandbox == false)
        #expect(warnings == [])
    }

    // MARK: name

    @Test(arguments: [("ab", "ab"), (name100, name100), (String(repeating: "é", count: 100), "é x100"), ("A b", "A b")])
    func acceptsNamesOf2To100Characters(_ name: String, _ label: String) throws {
        let request = WebhookRequest(label, JSONWriter.string(["name": .string(name)]))
        let (definition, _) = try #require(try accepted(request))
        #expect(definition.name == name)
    }

    static let nameRejections: [RejectedWebhook] = [
        RejectedWebhook(
            WebhookRequest("name of 1 character", #"{"name":"A"}"#), field: "name",
            message: "name: length must be between 2 and 100 characters (got 1)"),
        RejectedWebhook(
            WebhookRequest("name of 101 characters", #"{"name":"\#(name101)"}"#), field: "name",
            message: "name: length must be between 2 and 100 characters (got 101)"),
        RejectedWebhook(
            WebhookRequest("empty name", #"{"name":""}"#), field: "name",
            message: "name: length must be between 2 and 100 characters (got 0)"),
        RejectedWebhook(
            WebhookRequest("name a number", #"{"name":42}"#), field: "name", message: "name: must be a string"),
        RejectedWebhook(
            WebhookRequest("name an array", #"{"name":["Hook"]}"#), field: "name", message: "name: must be a string"),
        RejectedWebhook(
            WebhookRequest("name a boolean", #"{"name":true}"#), field: "name", message: "name: must be a string"),
        RejectedWebhook(WebhookRequest("name missing", removing: ["name"]), field: "name", message: "name: required"),
        RejectedWebhook(WebhookRequest("name null", #"{"name":null}"#), field: "name", message: "name: required"),
    ]

    @Test(arguments: nameRejections)
    func rejectsBadNames(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    // MARK: url

    @Test(arguments: [
        WebhookRequest("https with path", #"{"url":"https://example.com/hook"}"#),
        WebhookRequest("https, no path", #"{"url":"https://example.com"}"#),
        WebhookRequest("upper-case scheme", #"{"url":"HTTPS://EXAMPLE.COM/Hook"}"#),
        WebhookRequest("port", #"{"url":"https://example.com:8443/hook"}"#),
        WebhookRequest("port 1", #"{"url":"https://example.com:1/"}"#),
        WebhookRequest("port 65535", #"{"url":"https://example.com:65535/"}"#),
        WebhookRequest("userinfo", #"{"url":"https://user:pa55@example.com/hook"}"#),
        WebhookRequest("query and fragment", #"{"url":"https://example.com?a=1&b=%20#frag"}"#),
        WebhookRequest("IPv4 host", #"{"url":"https://203.0.113.7/hook"}"#),
        WebhookRequest("IPv6 host", #"{"url":"https://[2001:db8::1]/hook"}"#),
        WebhookRequest("IPv6 host and port", #"{"url":"https://[2001:db8::1]:8443/hook"}"#),
        WebhookRequest("IPv4-mapped IPv6 host", #"{"url":"https://[::ffff:203.0.113.7]"}"#),
        WebhookRequest("http with --allow-http", #"{"url":"http://localhost:8080/hook"}"#, allowHTTP: true),
        WebhookRequest("https with --allow-http", #"{"url":"https://example.com/hook"}"#, allowHTTP: true),
    ])
    func acceptsGoodURLs(_ request: WebhookRequest) throws {
        let (definition, _) = try #require(try accepted(request))
        let expected = try #require(try JSONParser.parse(request.overrides)["url"]?.stringValue)
        #expect(definition.url == expected)
    }

    static let urlRejections: [RejectedWebhook] = [
        RejectedWebhook(WebhookRequest("url missing", removing: ["url"]), field: "url", message: "url: required"),
        RejectedWebhook(WebhookRequest("url null", #"{"url":null}"#), field: "url", message: "url: required"),
        RejectedWebhook(WebhookRequest("url empty", #"{"url":""}"#), field: "url", message: "url: required"),
        RejectedWebhook(
            WebhookRequest("url not a string", #"{"url":1}"#), field: "url", message: "url: must be a string"),
        RejectedWebhook(
            WebhookRequest("relative url", #"{"url":"/hook"}"#), field: "url",
            message: "url: must be an absolute URL (https://host/path)"),
        RejectedWebhook(WebhookRequest("no scheme", #"{"url":"example.com/hook"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("scheme-relative", #"{"url":"//example.com/hook"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("https without //", #"{"url":"https:example.com"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("scheme starting with a digit", #"{"url":"1https://x.com"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("ftp", #"{"url":"ftp://example.com/file"}"#), field: "url",
            message: "url: scheme \"ftp\" is not allowed; use https"),
        RejectedWebhook(
            WebhookRequest("ftp with --allow-http", #"{"url":"ftp://example.com/"}"#, allowHTTP: true), field: "url"),
        RejectedWebhook(WebhookRequest("javascript", #"{"url":"javascript://example.com/%0aalert(1)"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("file", #"{"url":"file:///etc/passwd"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("no host", #"{"url":"https:///hook"}"#), field: "url", message: "url: must have a host"),
        RejectedWebhook(WebhookRequest("nothing after scheme", #"{"url":"https://"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("port but no host", #"{"url":"https://:443/hook"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("userinfo but no host", #"{"url":"https://user@/hook"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("http without --allow-http", #"{"url":"http://example.com/hook"}"#), field: "url",
            message: "url: must use https (plain http needs the daemon's --allow-http)"),
        RejectedWebhook(WebhookRequest("HTTP without --allow-http", #"{"url":"HTTP://example.com/"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("port 0", #"{"url":"https://example.com:0/hook"}"#), field: "url",
            message: "url: invalid port \"0\""),
        RejectedWebhook(WebhookRequest("port 65536", #"{"url":"https://example.com:65536/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("port 123456", #"{"url":"https://example.com:123456/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("port not a number", #"{"url":"https://example.com:https/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("negative port", #"{"url":"https://example.com:-1/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("empty port", #"{"url":"https://example.com:/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("two ports", #"{"url":"https://example.com:443:443/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("IPv6 port 0", #"{"url":"https://[::1]:0/"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("IPv6 unclosed", #"{"url":"https://[2001:db8::1/hook"}"#), field: "url",
            message: "url: invalid IPv6 host"),
        RejectedWebhook(WebhookRequest("IPv6 empty", #"{"url":"https://[]/hook"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("IPv6 not hex", #"{"url":"https://[2001:xyz::1]/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("IPv6 unbracketed", #"{"url":"https://2001:db8::1/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("IPv6 then junk", #"{"url":"https://[::1]x/"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest("space in host", #"{"url":"https://exa mple.com/hook"}"#), field: "url",
            message: "url: must not contain spaces, control or non-ASCII characters (percent-encode them)"),
        RejectedWebhook(WebhookRequest("space in path", #"{"url":"https://example.com/a b"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("leading space", #"{"url":" https://example.com/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("trailing space", #"{"url":"https://example.com/ "}"#), field: "url"),
        RejectedWebhook(WebhookRequest("tab", #"{"url":"https://example.com/\ta"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("newline", #"{"url":"https://example.com/\n"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("DEL", #"{"url":"https://example.com/\u007f"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("non-ASCII host", #"{"url":"https://exämple.com/"}"#), field: "url"),
        RejectedWebhook(WebhookRequest("bad host character", #"{"url":"https://exa*mple.com/"}"#), field: "url"),
        RejectedWebhook(
            WebhookRequest(
                "url over 2048 bytes",
                #"{"url":"https://example.com/\#(String(repeating: "a", count: 2049 - "https://example.com/".count))"}"#
            ),
            field: "url", message: "url: longer than 2048 bytes"),
    ]

    @Test(arguments: urlRejections)
    func rejectsBadURLs(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    @Test func acceptsAURLOfExactly2048Bytes() throws {
        let url = "https://example.com/" + String(repeating: "a", count: 2048 - "https://example.com/".count)
        #expect(url.utf8.count == 2048)
        #expect(WebhookURLRule.violation(of: url, allowHTTP: false) == nil)
    }

    // MARK: rate_limit

    @Test(arguments: [("0", 0), ("1", 1), ("10000", 10_000), ("-0", 0), ("null", 0), ("absent", 0)])
    func acceptsRateLimitsFrom0To10000(_ literal: String, _ expected: Int) throws {
        let request =
            literal == "absent"
            ? WebhookRequest("rate_limit absent")
            : WebhookRequest("rate_limit \(literal)", #"{"rate_limit":\#(literal)}"#)
        let (definition, _) = try #require(try accepted(request))
        #expect(definition.rateLimit == expected)
    }

    static let rateLimitRejections: [RejectedWebhook] = [
        RejectedWebhook(
            WebhookRequest("rate_limit -1", #"{"rate_limit":-1}"#), field: "rate_limit",
            message: "rate_limit: less than the minimum value of 0"),
        RejectedWebhook(
            WebhookRequest("rate_limit 10001", #"{"rate_limit":10001}"#), field: "rate_limit",
            message: "rate_limit: greater than the maximum value of 10000"),
        RejectedWebhook(
            WebhookRequest("rate_limit 99999999999999999999", #"{"rate_limit":99999999999999999999}"#),
            field: "rate_limit", message: "rate_limit: greater than the maximum value of 10000"),
        RejectedWebhook(
            WebhookRequest("rate_limit -99999999999999999999", #"{"rate_limit":-99999999999999999999}"#),
            field: "rate_limit", message: "rate_limit: less than the minimum value of 0"),
        RejectedWebhook(
            WebhookRequest("rate_limit Int64.max", #"{"rate_limit":9223372036854775807}"#), field: "rate_limit",
            message: "rate_limit: greater than the maximum value of 10000"),
        RejectedWebhook(
            WebhookRequest("rate_limit 1.5", #"{"rate_limit":1.5}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit 1.0", #"{"rate_limit":1.0}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit 1e2", #"{"rate_limit":1e2}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit \"10\"", #"{"rate_limit":"10"}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit true", #"{"rate_limit":true}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit []", #"{"rate_limit":[10]}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
        RejectedWebhook(
            WebhookRequest("rate_limit {}", #"{"rate_limit":{}}"#), field: "rate_limit",
            message: "rate_limit: must be an integer"),
    ]

    @Test(arguments: rateLimitRejections)
    func rejectsBadRateLimits(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    // MARK: filter

    static let filterRejections: [RejectedWebhook] = [
        RejectedWebhook(
            WebhookRequest("filter a string", #"{"filter":"SMS_STATUS"}"#), field: "filter",
            message: "filter: must be an object"),
        RejectedWebhook(
            WebhookRequest("filter an array", #"{"filter":["SMS_STATUS"]}"#), field: "filter",
            message: "filter: must be an object"),
        RejectedWebhook(WebhookRequest("filter a number", #"{"filter":1}"#), field: "filter"),
        RejectedWebhook(WebhookRequest("filter a boolean", #"{"filter":true}"#), field: "filter"),
        RejectedWebhook(
            WebhookRequest("filter absent", removing: ["filter"]), field: "filter.event_type",
            message: "filter.event_type: required: at least one event type"),
        RejectedWebhook(WebhookRequest("filter null", #"{"filter":null}"#), field: "filter.event_type"),
        RejectedWebhook(WebhookRequest("filter empty", #"{"filter":{}}"#), field: "filter.event_type"),
        RejectedWebhook(
            WebhookRequest("filter.event_type empty", #"{"filter":{"event_type":[]}}"#), field: "filter.event_type",
            message: "filter.event_type: required: at least one event type"),
        RejectedWebhook(
            WebhookRequest("filter.event_type null", #"{"filter":{"event_type":null,"sender":["x"]}}"#),
            field: "filter.event_type"),
        RejectedWebhook(
            WebhookRequest("filter.event_type a string", #"{"filter":{"event_type":"SMS_STATUS"}}"#),
            field: "filter.event_type", message: "filter.event_type: must be an array of strings"),
        RejectedWebhook(
            WebhookRequest(
                "filter.event_type unknown at [1]", #"{"filter":{"event_type":["SMS_STATUS","FAX_STATUS"]}}"#),
            field: "filter.event_type[1]",
            message: "filter.event_type[1]: unknown event type \"FAX_STATUS\"; expected one of \(eventTypesList)"),
        RejectedWebhook(
            WebhookRequest("filter.event_type unknown at [0]", #"{"filter":{"event_type":["SMS"]}}"#),
            field: "filter.event_type[0]"),
        RejectedWebhook(
            WebhookRequest("filter.event_type lower case", #"{"filter":{"event_type":["SMS_STATUS","sms_status"]}}"#),
            field: "filter.event_type[1]"),
        RejectedWebhook(
            WebhookRequest("filter.event_type item a number", #"{"filter":{"event_type":["SMS_STATUS",3]}}"#),
            field: "filter.event_type[1]", message: "filter.event_type[1]: must be a string"),
        RejectedWebhook(
            WebhookRequest("filter.event_type item empty", #"{"filter":{"event_type":["SMS_STATUS",""]}}"#),
            field: "filter.event_type[1]", message: "filter.event_type[1]: must not be empty"),
        RejectedWebhook(
            WebhookRequest(
                "filter.sender[0] a number", #"{"filter":{"event_type":["SMS_STATUS"],"sender":[61400000000]}}"#),
            field: "filter.sender[0]", message: "filter.sender[0]: must be a string"),
        RejectedWebhook(
            WebhookRequest("filter.sender[0] empty", #"{"filter":{"event_type":["SMS_STATUS"],"sender":[""]}}"#),
            field: "filter.sender[0]", message: "filter.sender[0]: must not be empty"),
        RejectedWebhook(
            WebhookRequest("filter.sender a string", #"{"filter":{"event_type":["SMS_STATUS"],"sender":"MyShop"}}"#),
            field: "filter.sender", message: "filter.sender: must be an array of strings"),
        RejectedWebhook(
            WebhookRequest(
                "filter.status[2] null", #"{"filter":{"event_type":["SMS_STATUS"],"status":["a","b",null]}}"#),
            field: "filter.status[2]", message: "filter.status[2]: must be a string"),
        RejectedWebhook(
            WebhookRequest("filter.status[1] empty", #"{"filter":{"event_type":["SMS_STATUS"],"status":["a",""]}}"#),
            field: "filter.status[1]", message: "filter.status[1]: must not be empty"),
        RejectedWebhook(
            WebhookRequest(
                "filter.message_ref an object", #"{"filter":{"event_type":["SMS_STATUS"],"message_ref":{}}}"#),
            field: "filter.message_ref", message: "filter.message_ref: must be an array of strings"),
        RejectedWebhook(
            WebhookRequest(
                "filter.message_ref[0] empty", #"{"filter":{"event_type":["SMS_STATUS"],"message_ref":[""]}}"#),
            field: "filter.message_ref[0]"),
        RejectedWebhook(
            WebhookRequest(
                "filter.campaign_id[0] an array", #"{"filter":{"event_type":["SMS_STATUS"],"campaign_id":[[]]}}"#),
            field: "filter.campaign_id[0]", message: "filter.campaign_id[0]: must be a string"),
        RejectedWebhook(
            WebhookRequest(
                "filter.campaign_id a boolean", #"{"filter":{"event_type":["SMS_STATUS"],"campaign_id":true}}"#),
            field: "filter.campaign_id"),
        RejectedWebhook(
            WebhookRequest("unknown filter key", #"{"filter":{"event_type":["SMS_STATUS"],"foo":[]}}"#),
            field: "filter.foo", message: "filter.foo: unknown field"),
        RejectedWebhook(
            WebhookRequest("camel-case filter key", #"{"filter":{"eventType":["SMS_STATUS"]}}"#),
            field: "filter.eventType", message: "filter.eventType: unknown field"),
        RejectedWebhook(
            WebhookRequest("unknown filter key before a bad item", #"{"filter":{"bar":1,"event_type":["X"]}}"#),
            field: "filter.bar"),
    ]

    @Test(arguments: filterRejections)
    func rejectsBadFilters(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    /// An event type is one of the ten names, byte for byte: "LIN\u{212A}_HIT" (KELVIN SIGN
    /// for the K) is canonically equivalent to LINK_HIT under Swift's String ==, but it is
    /// not a name from the list.
    @Test func eventTypesCompareByteForByte() throws {
        try expectRejection(
            RejectedWebhook(
                WebhookRequest("Kelvin sign", #"{"filter":{"event_type":["SMS_STATUS","LIN\u212A_HIT"]}}"#),
                field: "filter.event_type[1]"))
    }

    @Test func nullFilterArraysPlaceNoCondition() throws {
        let request = WebhookRequest(
            "null arrays", #"{"filter":{"event_type":["OPT_OUT"],"sender":null,"status":[],"message_ref":null}}"#)
        let (definition, _) = try #require(try accepted(request))
        #expect(definition.filter == WebhookFilter(eventType: [.optOut]))
    }

    @Test func repeatedFilterEventTypesAreKeptOnce() throws {
        let request = WebhookRequest(
            "repeated", #"{"filter":{"event_type":["SMS_STATUS","MMS_STATUS","SMS_STATUS"]}}"#)
        let (definition, _) = try #require(try accepted(request))
        #expect(definition.filter.eventType == [.smsStatus, .mmsStatus])
    }

    @Test func acceptsEveryEventType() throws {
        let all = JSON.array(EventType.allCases.map { .string($0.rawValue) })
        let request = WebhookRequest("all types", JSONWriter.string(["filter": ["event_type": all]]))
        let (definition, _) = try #require(try accepted(request))
        #expect(definition.filter.eventType == EventType.allCases)
    }

    // MARK: unknown fields

    static let unknownFieldRejections: [RejectedWebhook] = [
        RejectedWebhook(
            WebhookRequest("unknown top-level key", #"{"foo":1}"#), field: "foo", message: "foo: unknown field"),
        RejectedWebhook(WebhookRequest("capitalised key", #"{"Name":"Hook"}"#), field: "Name"),
        RejectedWebhook(
            WebhookRequest("webhook_id is not an envelope key here", #"{"webhook_id":"x"}"#), field: "webhook_id"),
        RejectedWebhook(WebhookRequest("resource-only key", #"{"secret":"whsec_x"}"#), field: "secret"),
        RejectedWebhook(WebhookRequest("state is not settable", #"{"state":"disabled"}"#), field: "state"),
        RejectedWebhook(WebhookRequest("the first unknown key in wire order", #"{"zzz":1,"aaa":2}"#), field: "zzz"),
        RejectedWebhook(WebhookRequest("unknown key before a bad name", #"{"name":1,"x":1}"#), field: "x"),
    ]

    @Test(arguments: unknownFieldRejections)
    func rejectsUnknownFields(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    @Test func envelopeKeysAreAllowed() throws {
        let request = try WebhookRequest("envelope", #"{"cmd":"create_webhook","id":"c-1","webhook_id":"w"}"#).object()
        let validator = WebhookValidator(allowHTTP: false)
        #expect(throws: Never.self) {
            try validator.definition(from: request, envelopeKeys: ["cmd", "id", "webhook_id"])
        }
    }

    // MARK: deprecated fields

    @Test(arguments: [
        (#"{"event_type":"SMS_STATUS"}"#, [EventType.smsStatus]),
        (#"{"event_type":"MMS_STATUS"}"#, [.smsStatus, .mmsStatus]),
        (#"{"event_type":"SMS_STATUS","filter":{"event_type":["LINK_HIT","SMS_STATUS"]}}"#, [.linkHit, .smsStatus]),
        (#"{"event_type":"OPT_OUT","filter":{"event_type":[]}}"#, [.optOut]),
        (#"{"event_type":"OPT_OUT","filter":{}}"#, [.optOut]),
        (#"{"event_type":"OPT_OUT","filter":null}"#, [.optOut]),
    ])
    func deprecatedEventTypeIsMergedOnceWithAWarning(_ overrides: String, _ expected: [EventType]) throws {
        let (definition, warnings) = try #require(try accepted(WebhookRequest("deprecated", overrides)))
        #expect(definition.filter.eventType == expected)
        #expect(warnings == ["event_type: deprecated; merged into filter.event_type"])
    }

    @Test func deprecatedEventTypeAloneSatisfiesTheRequirement() throws {
        let request = WebhookRequest("no filter", #"{"event_type":"RCS_INBOUND"}"#, removing: ["filter"])
        let (definition, warnings) = try #require(try accepted(request))
        #expect(definition.filter == WebhookFilter(eventType: [.rcsInbound]))
        #expect(warnings.count == 1)
        #expect(warnings.first?.hasPrefix("event_type: ") == true)
    }

    @Test func nullDeprecatedFieldsAreIgnoredWithoutWarnings() throws {
        let (definition, warnings) = try #require(
            try accepted(WebhookRequest("nulls", #"{"event_type":null,"is_sandbox":null}"#)))
        #expect(definition.filter.eventType == [.smsStatus])
        #expect(definition.isSandbox == false)
        #expect(warnings == [])
    }

    @Test(arguments: [true, false])
    func isSandboxIsEchoedWithAWarning(_ flag: Bool) throws {
        let (definition, warnings) = try #require(
            try accepted(WebhookRequest("is_sandbox \(flag)", #"{"is_sandbox":\#(flag)}"#)))
        #expect(definition.isSandbox == flag)
        #expect(warnings == ["is_sandbox: deprecated; accepted and echoed, it has no effect"])
    }

    @Test func bothDeprecatedFieldsGiveTwoWarnings() throws {
        let (definition, warnings) = try #require(
            try accepted(WebhookRequest("both", #"{"is_sandbox":true,"event_type":"SMS_INBOUND"}"#)))
        #expect(definition.isSandbox)
        #expect(definition.filter.eventType == [.smsStatus, .smsInbound])
        #expect(warnings.count == 2)
        #expect(warnings.contains { $0.hasPrefix("event_type: ") })
        #expect(warnings.contains { $0.hasPrefix("is_sandbox: ") })
    }

    static let deprecatedRejections: [RejectedWebhook] = [
        RejectedWebhook(
            WebhookRequest("event_type a number", #"{"event_type":1}"#), field: "event_type",
            message: "event_type: must be a string"),
        RejectedWebhook(
            WebhookRequest("event_type an array", #"{"event_type":["SMS_STATUS"]}"#), field: "event_type",
            message: "event_type: must be a string"),
        RejectedWebhook(
            WebhookRequest("event_type unknown", #"{"event_type":"SMS"}"#), field: "event_type",
            message: "event_type: unknown event type \"SMS\"; expected one of \(eventTypesList)"),
        RejectedWebhook(WebhookRequest("event_type empty", #"{"event_type":""}"#), field: "event_type"),
        RejectedWebhook(
            WebhookRequest("is_sandbox a string", #"{"is_sandbox":"true"}"#), field: "is_sandbox",
            message: "is_sandbox: must be a boolean"),
        RejectedWebhook(
            WebhookRequest("is_sandbox a number", #"{"is_sandbox":1}"#), field: "is_sandbox",
            message: "is_sandbox: must be a boolean"),
    ]

    @Test(arguments: deprecatedRejections)
    func rejectsBadDeprecatedFields(_ rejected: RejectedWebhook) throws { try expectRejection(rejected) }

    // MARK: the URL rule and request fields on their own

    @Test(arguments: [
        ("https://example.com", false, true),
        ("http://example.com", false, false),
        ("http://example.com", true, true),
        ("https://[::1]:8443", false, true),
        ("ws://example.com", true, false),
        ("https://", false, false),
        ("", false, false),
    ])
    func urlRuleAgreesWithTheValidator(_ url: String, _ allowHTTP: Bool, _ acceptable: Bool) {
        #expect((WebhookURLRule.violation(of: url, allowHTTP: allowHTTP) == nil) == acceptable)
    }

    @Test(arguments: [
        ("67e3e4af-62e8-4515-8b67-6f20d0c51ffb", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"),
        ("67E3E4AF-62E8-4515-8B67-6F20D0C51FFB", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"),
    ])
    func webhookIDIsCanonicalised(_ text: String, _ expected: String) throws {
        let request = JSONObject([("webhook_id", .string(text))])
        #expect(try RequestFields.webhookID(request) == expected)
    }

    @Test(arguments: [
        (JSON.string("67e3e4af62e845158b676f20d0c51ffb"), "webhook_id: invalid webhook ID"),
        ("not-a-uuid", "webhook_id: invalid webhook ID"),
        (42, "webhook_id: must be a string"),
        (JSON.null, "webhook_id: required"),
    ])
    func badWebhookIDsAreValidationErrors(_ value: JSON, _ message: String) {
        let request = JSONObject([("webhook_id", value)])
        let error = #expect(throws: ProtocolError.self) { try RequestFields.webhookID(request) }
        #expect(error?.code == .validation)
        #expect(error?.field == "webhook_id")
        #expect(error?.message == message)
    }

    @Test func protocolErrorJSONNamesTheField() {
        let error = ProtocolError.invalid("filter.status[0]", "must not be empty")
        #expect(
            JSONWriter.string(error.json)
                == #"{"code":"validation","message":"filter.status[0]: must not be empty","field":"filter.status[0]"}"#)
        let plain = ProtocolError(.notFound, "Webhook not found")
        #expect(JSONWriter.string(plain.json) == #"{"code":"not_found","message":"Webhook not found"}"#)
        #expect(plain.field == nil)
    }
}
