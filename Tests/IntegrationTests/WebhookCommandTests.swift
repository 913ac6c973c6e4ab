import Foundation
import HookgateCore
import Testing

func createRequest(
    name: String = "Order status", url: String = "https://example.com/hooks/sms", extra: JSONObject = .init()
)
    -> JSON
{
    var object = JSONObject([
        ("cmd", "create_webhook"), ("name", .string(name)), ("url", .string(url)),
        ("filter", ["event_type": ["SMS_STATUS", "SMS_INBOUND"], "sender": ["+61400000009"]]),
        ("rate_limit", 25),
    ])
    for (key, value) in extra { object[key] = value }
    return .object(object)
}

/// Every webhook command over a real socket against the real binary, standalone.
@Suite struct WebhookCommandTests {
    @Test func pingAnswersVersionAndUptime() throws {
        let daemon = try Daemon()
        let response = try daemon.client().request(["cmd": "ping", "id": "p-1"])
        #expect(response.isOK)
        #expect(response["id"] == "p-1")
        #expect(response["version"] == .string(HookgateVersion.current))
        #expect(response["uptime_s"].flatMap { if case .number(let n) = $0 { n.int64Value } else { nil } } != nil)
        #expect(try daemon.stop() == 0)
    }

    @Test func createGetListUpdateRotateDisableEnableDelete() throws {
        let daemon = try Daemon()
        let client = try daemon.client()

        let created = try client.request(createRequest())
        #expect(created.isOK, "\(created)")
        let webhook = try #require(created["webhook"]?.objectValue)
        let id = try #require(webhook["id"]?.stringValue)
        #expect(Identifiers.canonicalUUID(id) == id)
        #expect(webhook["name"] == "Order status")
        #expect(webhook["state"] == "active")
        #expect(webhook["disabled_reason"] == .null)
        #expect(webhook["rate_limit"] == 25)
        #expect(webhook["is_sandbox"] == false)
        #expect(
            webhook["filter"]
                == [
                    "event_type": ["SMS_STATUS", "SMS_INBOUND"], "sender": ["+61400000009"], "status": [],
                    "message_ref": [], "campaign_id": [],
                ])
        let secret = try #require(webhook["secret"]?.stringValue)
        #expect(secret.hasPrefix("whsec_"))
        #expect(Base64.decode(String(secret.dropFirst(6)))?.count == 24)
        let createdAt = try #require(webhook["created_at"]?.stringValue)
        #expect(Timestamp(rfc3339: createdAt) != nil)
        #expect(created["warnings"] == nil)

        let fetched = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
        #expect(fetched.isOK)
        #expect(fetched[path: "webhook", "secret"] == nil, "secret only with include_secret")
        #expect(fetched[path: "webhook", "url"] == "https://example.com/hooks/sms")
        let withSecret = try client.request(["cmd": "get_webhook", "webhook_id": .string(id), "include_secret": true])
        #expect(withSecret[path: "webhook", "secret"] == .string(secret))
        let upperCaseID = try client.request(["cmd": "get_webhook", "webhook_id": .string(id.uppercased())])
        #expect(upperCaseID[path: "webhook", "id"] == .string(id))

        // Full replace: fields left out go back to their defaults.
        let updated = try client.request([
            "cmd": "update_webhook", "webhook_id": .string(id), "name": "Renamed", "url": "https://example.org/x",
            "filter": ["event_type": ["LINK_HIT"]],
        ])
        #expect(updated.isOK, "\(updated)")
        #expect(updated[path: "webhook", "name"] == "Renamed")
        #expect(updated[path: "webhook", "rate_limit"] == 0)
        #expect(updated[path: "webhook", "filter", "sender"] == [])
        #expect(updated[path: "webhook", "created_at"] == .string(createdAt))
        #expect(updated[path: "webhook", "secret"] == nil)
        let afterUpdate = try client.request(["cmd": "get_webhook", "webhook_id": .string(id), "include_secret": true])
        #expect(afterUpdate[path: "webhook", "secret"] == .string(secret), "update keeps the secret")

        let rotated = try client.request(["cmd": "rotate_secret", "webhook_id": .string(id)])
        let newSecret = try #require(rotated[path: "webhook", "secret"]?.stringValue)
        #expect(newSecret != secret)
        #expect(newSecret.hasPrefix("whsec_"))

        let disabled = try client.request(["cmd": "disable_webhook", "webhook_id": .string(id)])
        #expect(disabled[path: "webhook", "state"] == "disabled")
        #expect(disabled[path: "webhook", "disabled_reason"]?.stringValue?.isEmpty == false)
        let enabled = try client.request(["cmd": "enable_webhook", "webhook_id": .string(id)])
        #expect(enabled[path: "webhook", "state"] == "active")
        #expect(enabled[path: "webhook", "disabled_reason"] == .null)

        let deleted = try client.request(["cmd": "delete_webhook", "webhook_id": .string(id), "id": 7])
        #expect(deleted == ["ok": true, "id": 7, "deleted": .string(id)])
        let gone = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
        #expect(gone.errorCode == "not_found")
        let deletedAgain = try client.request(["cmd": "delete_webhook", "webhook_id": .string(id)])
        #expect(deletedAgain.errorCode == "not_found")
        #expect(try daemon.stop() == 0)
    }

    @Test func deprecatedFieldsAreFoldedWithWarnings() throws {
        let daemon = try Daemon()
        let response = try daemon.client().request([
            "cmd": "create_webhook", "name": "Legacy", "url": "https://example.com/legacy", "event_type": "OPT_OUT",
            "is_sandbox": true,
        ])
        #expect(response.isOK, "\(response)")
        #expect(response[path: "webhook", "filter", "event_type"] == ["OPT_OUT"])
        #expect(response[path: "webhook", "is_sandbox"] == true)
        let warnings = try #require(response["warnings"]?.arrayValue)
        #expect(warnings.count == 2)
        #expect(warnings.contains { $0.stringValue?.hasPrefix("event_type") == true })
        #expect(warnings.contains { $0.stringValue?.hasPrefix("is_sandbox") == true })
    }

    @Test func listPagesOldestFirstWithCursor() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        var ids: [String] = []
        for i in 0..<7 {
            let response = try client.request(createRequest(name: "hook \(i)"))
            ids.append(try #require(response[path: "webhook", "id"]?.stringValue))
        }
        var seen: [String] = []
        var cursor: JSON? = nil
        var pages = 0
        repeat {
            var request: JSONObject = ["cmd": "list_webhooks", "limit": 3]
            if let cursor { request["cursor"] = cursor }
            let page = try client.request(.object(request))
            #expect(page.isOK, "\(page)")
            let webhooks = try #require(page["webhooks"]?.arrayValue)
            #expect(webhooks.count <= 3)
            #expect(webhooks.allSatisfy { $0["secret"] == nil })
            seen += webhooks.compactMap { $0["id"]?.stringValue }
            cursor = page["next_cursor"]
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == ids)
        #expect(pages == 3)
        let all = try client.request(["cmd": "list_webhooks"])
        #expect(all["webhooks"]?.arrayValue?.count == 7)
        #expect(all["next_cursor"] == nil)
        let badCursor = try client.request(["cmd": "list_webhooks", "cursor": "nonsense"])
        #expect(badCursor.errorCode == "validation")
        #expect(badCursor.errorField == "cursor")
        let badLimit = try client.request(["cmd": "list_webhooks", "limit": 1001])
        #expect(badLimit.errorField == "limit")
    }

    @Test func httpURLsNeedAllowHTTP() throws {
        let strict = try Daemon()
        let refused = try strict.client().request(createRequest(url: "http://example.com/h"))
        #expect(refused.errorCode == "validation")
        #expect(refused.errorField == "url")
        let relaxed = try Daemon(arguments: ["--allow-http"])
        let accepted = try relaxed.client().request(createRequest(url: "http://example.com/h"))
        #expect(accepted.isOK, "\(accepted)")
    }
}
