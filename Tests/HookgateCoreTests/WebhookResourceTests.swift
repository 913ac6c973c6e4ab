import HookgateCore
import Testing

private let created = Timestamp(microseconds: 1_744_592_372_758_190)  // 2025-04-14T00:59:32.758190Z
private let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
private let hour: Int64 = 3600 * 1_000_000
private let day: Int64 = 24 * hour

private func sampleWebhook() -> Webhook {
    Webhook(
        id: "67e3e4af-62e8-4515-8b67-6f20d0c51ffb",
        definition: WebhookDefinition(
            name: "Hook", url: "https://example.com/hook",
            filter: WebhookFilter(eventType: [.smsStatus, .smsInbound]), rateLimit: 10, isSandbox: false),
        secret: secret, createdAt: created, updatedAt: created)
}

private let resourceJSON =
    #"{"id":"67e3e4af-62e8-4515-8b67-6f20d0c51ffb","name":"Hook","url":"https://example.com/hook","#
    + #""filter":{"event_type":["SMS_STATUS","SMS_INBOUND"],"sender":[],"status":[],"message_ref":[],"campaign_id":[]},"#
    + #""rate_limit":10,"is_sandbox":false,"state":"active","disabled_reason":null,"#
    + #""created_at":"2025-04-14T00:59:32.758190Z","updated_at":"2025-04-14T00:59:32.758190Z","#
    + #""last_success_at":null,"last_failure_at":null,"failing_since":null"#

@Suite("Webhook resource")
struct WebhookResourceTests {
    static let resourceKeys = [
        "id", "name", "url", "filter", "rate_limit", "is_sandbox", "state", "disabled_reason", "created_at",
        "updated_at", "last_success_at", "last_failure_at", "failing_since",
    ]

    @Test(arguments: [false, true])
    func hasExactlyTheResourceKeysInOrder(_ includeSecret: Bool) throws {
        let object = try #require(sampleWebhook().json(includeSecret: includeSecret).objectValue)
        #expect(object.keys == Self.resourceKeys + (includeSecret ? ["secret"] : []))
        #expect(
            object["filter"]?.objectValue?.keys == ["event_type", "sender", "status", "message_ref", "campaign_id"])
    }

    @Test func writesTheExactResource() {
        let webhook = sampleWebhook()
        #expect(JSONWriter.string(webhook.json(includeSecret: false)) == resourceJSON + "}")
        #expect(JSONWriter.string(webhook.json(includeSecret: true)) == resourceJSON + #","secret":"\#(secret)"}"#)
    }

    @Test func theResourceParsesBackToTheSameValue() throws {
        let json = sampleWebhook().json(includeSecret: true)
        #expect(try JSONParser.parse(JSONWriter.bytes(json)) == json)
    }

    @Test func everyFilterArrayAndTheSandboxFlagAreWritten() throws {
        var webhook = sampleWebhook()
        webhook.definition.filter = WebhookFilter(
            eventType: [.linkHit], sender: ["+61400000000", "MyShop"], status: ["DELIVERED"], messageRef: ["order-42"],
            campaignId: ["c1"])
        webhook.definition.isSandbox = true
        webhook.definition.rateLimit = 0
        let json = webhook.json(includeSecret: false)
        #expect(
            JSONWriter.string(try #require(json["filter"]))
                == #"{"event_type":["LINK_HIT"],"sender":["+61400000000","MyShop"],"status":["DELIVERED"],"#
                + #""message_ref":["order-42"],"campaign_id":["c1"]}"#)
        #expect(json["is_sandbox"] == true)
        #expect(json["rate_limit"] == 0)
    }

    @Test(arguments: [
        (WebhookState.active, String?.none, JSON.null),
        (.disabled, "receiver answered 410 Gone", "receiver answered 410 Gone"),
        (.disabled, nil, nil),
    ])
    func disabledReasonIsNullOrTheReason(_ state: WebhookState, _ reason: String?, _ expected: JSON) throws {
        let later = created.adding(microseconds: hour)
        let webhook = sampleWebhook().settingState(state, reason: reason, at: later)
        #expect(webhook.state == state)
        #expect(webhook.disabledReason == reason)
        #expect(webhook.updatedAt == later)
        #expect(webhook.createdAt == created)
        let json = webhook.json(includeSecret: false)
        #expect(json["state"] == .string(state.rawValue))
        // The key is always there, null when there is no reason.
        #expect(json.objectValue?.keys.contains("disabled_reason") == true)
        #expect(json["disabled_reason"] == expected)
    }

    @Test func enablingClearsTheDisabledReason() {
        let disabled = sampleWebhook().settingState(.disabled, reason: "410", at: created)
        let enabled = disabled.settingState(.active, reason: "ignored", at: created.adding(microseconds: 1))
        #expect(enabled.state == .active)
        #expect(enabled.disabledReason == nil)
        #expect(enabled.json(includeSecret: false)["disabled_reason"] == .null)
    }

    // MARK: secret rotation

    @Test func rotatingKeepsTheOldSecretBesideTheNewOne() throws {
        let original = sampleWebhook()
        let rotatedAt = created.adding(microseconds: 5 * hour)
        let rotated = original.rotatingSecret(at: rotatedAt)
        #expect(rotated.secret != original.secret)
        #expect(rotated.secret.hasPrefix("whsec_"))
        #expect(Base64.decode(String(rotated.secret.dropFirst("whsec_".count)))?.count == 24)
        #expect(rotated.previousSecret == original.secret)
        #expect(rotated.previousSecretExpiresAt == rotatedAt.adding(microseconds: day))
        #expect(rotated.updatedAt == rotatedAt)
        #expect(rotated.id == original.id)
        #expect(rotated.createdAt == original.createdAt)
        #expect(rotated.definition == original.definition)
        #expect(rotated.state == original.state)
        // The resource shows only the current secret.
        let written = JSONWriter.string(rotated.json(includeSecret: true))
        #expect(rotated.json(includeSecret: true)["secret"] == .string(rotated.secret))
        #expect(!written.contains(original.secret))
    }

    @Test(arguments: [
        (Int64(0), true),
        (1, true),
        (hour, true),
        (day - 1, true),
        (day, false),
        (day + 1, false),
        (7 * day, false),
    ])
    func theOldSecretSignsFor24Hours(_ elapsed: Int64, _ bothSign: Bool) {
        let rotatedAt = created.adding(microseconds: 5 * hour)
        let rotated = sampleWebhook().rotatingSecret(at: rotatedAt)
        let secrets = rotated.signingSecrets(at: rotatedAt.adding(microseconds: elapsed))
        #expect(secrets == (bothSign ? [rotated.secret, secret] : [rotated.secret]))
    }

    @Test func anUnrotatedWebhookSignsWithItsSecretAlone() {
        let webhook = sampleWebhook()
        #expect(webhook.previousSecret == nil)
        #expect(webhook.previousSecretExpiresAt == nil)
        #expect(webhook.signingSecrets(at: created) == [secret])
        #expect(webhook.signingSecrets(at: created.adding(microseconds: 100 * day)) == [secret])
    }

    @Test func rotatingTwiceDropsTheOldestSecret() {
        let first = sampleWebhook().rotatingSecret(at: created)
        let secondAt = created.adding(microseconds: hour)
        let second = first.rotatingSecret(at: secondAt)
        #expect(second.previousSecret == first.secret)
        #expect(second.previousSecretExpiresAt == secondAt.adding(microseconds: day))
        #expect(second.signingSecrets(at: secondAt) == [second.secret, first.secret])
        #expect(!second.signingSecrets(at: secondAt).contains(secret))
        #expect(Set([secret, first.secret, second.secret]).count == 3)
    }

    // MARK: replace and create

    @Test func replacingKeepsIdSecretStateAndCreatedAt() {
        let rotated = sampleWebhook()
            .settingState(.disabled, reason: "manual", at: created.adding(microseconds: 1))
            .rotatingSecret(at: created.adding(microseconds: 2))
        let newDefinition = WebhookDefinition(
            name: "Renamed", url: "https://other.example.com/x", filter: WebhookFilter(eventType: [.optOut]),
            rateLimit: 500, isSandbox: true)
        let updatedAt = created.adding(microseconds: hour)
        let replaced = rotated.replacing(with: newDefinition, at: updatedAt)

        #expect(replaced.definition == newDefinition)
        #expect(replaced.updatedAt == updatedAt)
        #expect(replaced.id == rotated.id)
        #expect(replaced.secret == rotated.secret)
        #expect(replaced.previousSecret == rotated.previousSecret)
        #expect(replaced.previousSecretExpiresAt == rotated.previousSecretExpiresAt)
        #expect(replaced.state == .disabled)
        #expect(replaced.disabledReason == "manual")
        #expect(replaced.createdAt == created)

        let json = replaced.json(includeSecret: false)
        #expect(json["name"] == "Renamed")
        #expect(json["url"] == "https://other.example.com/x")
        #expect(json["rate_limit"] == 500)
        #expect(json["is_sandbox"] == true)
        #expect(json["created_at"] == "2025-04-14T00:59:32.758190Z")
        #expect(json["updated_at"] == "2025-04-14T01:59:32.758190Z")
    }

    @Test func createMakesAFreshActiveWebhook() throws {
        let definition = sampleWebhook().definition
        let a = Webhook.create(definition, at: created)
        let b = Webhook.create(definition, at: created)
        for webhook in [a, b] {
            #expect(Identifiers.canonicalUUID(webhook.id) == webhook.id)
            #expect(webhook.secret.hasPrefix("whsec_"))
            #expect(webhook.state == .active)
            #expect(webhook.disabledReason == nil)
            #expect(webhook.previousSecret == nil)
            #expect(webhook.previousSecretExpiresAt == nil)
            #expect(webhook.createdAt == created)
            #expect(webhook.updatedAt == created)
            #expect(webhook.definition == definition)
        }
        #expect(a.id != b.id)
        #expect(a.secret != b.secret)
    }
}
