/// A webhook's filter: the platform's five arrays. An empty array places no condition.
public struct WebhookFilter: Sendable, Equatable {
    public var eventType: [EventType]
    public var sender: [String]
    public var status: [String]
    public var messageRef: [String]
    public var campaignId: [String]

    public init(
        eventType: [EventType] = [],
        sender: [String] = [],
        status: [String] = [],
        messageRef: [String] = [],
        campaignId: [String] = []
    ) {
        self.eventType = eventType
        self.sender = sender
        self.status = status
        self.messageRef = messageRef
        self.campaignId = campaignId
    }

    public static let fieldNames = ["event_type", "sender", "status", "message_ref", "campaign_id"]

    public var json: JSON {
        .object(
            JSONObject([
                ("event_type", .array(eventType.map { .string($0.rawValue) })),
                ("sender", .array(sender.map { .string($0) })),
                ("status", .array(status.map { .string($0) })),
                ("message_ref", .array(messageRef.map { .string($0) })),
                ("campaign_id", .array(campaignId.map { .string($0) })),
            ]))
    }
}

/// What a client defines on create and replaces on update.
public struct WebhookDefinition: Sendable, Equatable {
    public var name: String
    public var url: String
    public var filter: WebhookFilter
    /// Deliveries per second; 0 means the daemon's default.
    public var rateLimit: Int
    /// Deprecated by the platform: accepted and echoed, no effect.
    public var isSandbox: Bool

    public init(name: String, url: String, filter: WebhookFilter, rateLimit: Int = 0, isSandbox: Bool = false) {
        self.name = name
        self.url = url
        self.filter = filter
        self.rateLimit = rateLimit
        self.isSandbox = isSandbox
    }
}

public enum WebhookState: String, Sendable, Equatable {
    case active
    case disabled
}

/// How a webhook's receiver has been answering: kept by the delivery engine's outcomes.
public struct EndpointHealth: Sendable, Equatable {
    /// The last attempt answered 2xx.
    public var lastSuccessAt: Timestamp?
    /// The last attempt that was not (an answer other than 2xx, or no answer).
    public var lastFailureAt: Timestamp?
    /// The first failed attempt since the last 2xx; nil after any 2xx, and when the
    /// webhook is enabled.
    public var failingSince: Timestamp?

    public init(lastSuccessAt: Timestamp? = nil, lastFailureAt: Timestamp? = nil, failingSince: Timestamp? = nil) {
        self.lastSuccessAt = lastSuccessAt
        self.lastFailureAt = lastFailureAt
        self.failingSince = failingSince
    }
}

/// The webhook resource: the platform's fields plus hookgate's state and signing secret.
public struct Webhook: Sendable, Equatable {
    public var id: String
    public var definition: WebhookDefinition
    public var state: WebhookState
    public var disabledReason: String?
    public var secret: String
    /// The secret before the last rotation, still signing beside the new one until
    /// `previousSecretExpiresAt`.
    public var previousSecret: String?
    public var previousSecretExpiresAt: Timestamp?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var health: EndpointHealth

    /// How long a rotated-out secret keeps signing.
    public static let secretOverlapMicroseconds: Int64 = 24 * 3600 * 1_000_000

    public init(
        id: String,
        definition: WebhookDefinition,
        state: WebhookState = .active,
        disabledReason: String? = nil,
        secret: String,
        previousSecret: String? = nil,
        previousSecretExpiresAt: Timestamp? = nil,
        createdAt: Timestamp,
        updatedAt: Timestamp,
        health: EndpointHealth = EndpointHealth()
    ) {
        self.health = health
        self.id = id
        self.definition = definition
        self.state = state
        self.disabledReason = disabledReason
        self.secret = secret
        self.previousSecret = previousSecret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A new active webhook with a fresh id and secret.
    public static func create(_ definition: WebhookDefinition, at now: Timestamp) -> Webhook {
        Webhook(
            id: Identifiers.uuid(), definition: definition, secret: Identifiers.webhookSecret(),
            createdAt: now, updatedAt: now)
    }

    /// The full replace of `update_webhook`: the definition changes; id, secret, state and
    /// created_at are kept.
    public func replacing(with definition: WebhookDefinition, at now: Timestamp) -> Webhook {
        var copy = self
        copy.definition = definition
        copy.updatedAt = now
        return copy
    }

    /// A new secret; the current one keeps signing for 24 hours.
    public func rotatingSecret(at now: Timestamp) -> Webhook {
        var copy = self
        copy.previousSecret = secret
        copy.previousSecretExpiresAt = now.adding(microseconds: Webhook.secretOverlapMicroseconds)
        copy.secret = Identifiers.webhookSecret()
        copy.updatedAt = now
        return copy
    }

    /// Enabling a disabled webhook starts its endpoint health afresh: `failing_since`
    /// is cleared, so a receiver fixed meanwhile is not disabled again for old failures.
    public func settingState(_ state: WebhookState, reason: String?, at now: Timestamp) -> Webhook {
        var copy = self
        if state == .active, self.state == .disabled { copy.health.failingSince = nil }
        copy.state = state
        copy.disabledReason = state == .disabled ? reason : nil
        copy.updatedAt = now
        return copy
    }

    /// The secrets that sign a delivery made at `now`: the current one, and the previous
    /// one while its overlap lasts.
    public func signingSecrets(at now: Timestamp) -> [String] {
        Self.signingSecrets(
            current: secret, previous: previousSecret, previousExpiresAt: previousSecretExpiresAt, at: now)
    }

    /// The same rule for callers holding the fields rather than a webhook (the store's
    /// due-delivery scan).
    public static func signingSecrets(
        current: String, previous: String?, previousExpiresAt: Timestamp?, at now: Timestamp
    ) -> [String] {
        if let previous, let expiry = previousExpiresAt, now < expiry { return [current, previous] }
        return [current]
    }

    /// The resource as the protocol returns it.
    public func json(includeSecret: Bool) -> JSON {
        var object = JSONObject([
            ("id", .string(id)),
            ("name", .string(definition.name)),
            ("url", .string(definition.url)),
            ("filter", definition.filter.json),
            ("rate_limit", .integer(definition.rateLimit)),
            ("is_sandbox", .bool(definition.isSandbox)),
            ("state", .string(state.rawValue)),
            ("disabled_reason", disabledReason.map { .string($0) } ?? .null),
            ("created_at", .string(createdAt.rfc3339)),
            ("updated_at", .string(updatedAt.rfc3339)),
            ("last_success_at", health.lastSuccessAt.map { .string($0.rfc3339) } ?? .null),
            ("last_failure_at", health.lastFailureAt.map { .string($0.rfc3339) } ?? .null),
            ("failing_since", health.failingSince.map { .string($0.rfc3339) } ?? .null),
        ])
        if includeSecret { object["secret"] = .string(secret) }
        return .object(object)
    }
}
