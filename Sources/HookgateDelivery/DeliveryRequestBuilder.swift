import HookgateCore
import HookgateStore

/// Turns a due delivery into the POST that carries it (proto-spec/PROTOCOL.md "Delivery"): the event
/// with `webhook_id` and `webhook_name` added, JSON headers, and the Standard Webhooks
/// trio signed with every live secret.
public enum DeliveryRequestBuilder {
    public static let userAgent = "hookgate/\(HookgateVersion.current)"

    /// `webhook-id`: one per event and webhook, the same on every retry and redelivery,
    /// so that receivers can drop duplicates.
    public static func messageID(eventID: String, webhookID: String) -> String {
        "msg_\(eventID)_\(webhookID)"
    }

    /// The request for `delivery`, signed with its webhook's live secrets.
    public static func request(for delivery: DueDelivery, tag: UInt64, at time: Timestamp) -> DeliveryRequest {
        request(for: delivery, tag: tag, at: time, keys: delivery.secrets.compactMap(SigningKey.init))
    }

    /// The same, with the secrets' signing keys made already (`SigningKeyCache`).
    static func request(for delivery: DueDelivery, tag: UInt64, at time: Timestamp, keys: [SigningKey])
        -> DeliveryRequest
    {
        let body = body(payload: delivery.payload, webhookID: delivery.webhookID, webhookName: delivery.webhookName)
        let messageID = messageID(eventID: delivery.eventID, webhookID: delivery.webhookID)
        let timestamp = time.seconds
        var signatureLine = Array("webhook-signature: ".utf8)
        WebhookSigner.appendSignatures(
            messageID: messageID, timestamp: timestamp, body: body, keys: keys, to: &signatureLine)
        return DeliveryRequest(
            tag: tag, url: delivery.url,
            headers: [
                contentTypeLine,
                userAgentLine,
                "webhook-id: " + messageID,
                "webhook-timestamp: " + String(timestamp),
                String(decoding: signatureLine, as: UTF8.self),
            ],
            body: body)
    }

    static let contentTypeLine = "Content-Type: application/json"
    static let userAgentLine = "User-Agent: " + userAgent

    /// The payload with `webhook_id` and `webhook_name` after `timestamp`, as the
    /// platform orders them. The store writes payloads as `{"event_type":…,"timestamp":…,`
    /// then the body, so the two fields are spliced in without re-parsing; a payload of
    /// any other shape is parsed and rebuilt.
    public static func body(payload: [UInt8], webhookID: String, webhookName: String) -> [UInt8] {
        var added: [UInt8] = Array(#""webhook_id":"#.utf8)
        JSONWriter.writeString(webhookID, into: &added)
        added.append(contentsOf: #","webhook_name":"#.utf8)
        JSONWriter.writeString(webhookName, into: &added)
        if let splice = splicePoint(payload) {
            var body = [UInt8]()
            body.reserveCapacity(payload.count + added.count + 1)
            body.append(contentsOf: payload[..<splice])
            body.append(contentsOf: added)
            body.append(UInt8(ascii: ","))
            body.append(contentsOf: payload[splice...])
            return body
        }
        guard case .object(let event)? = try? JSONParser.parse(payload) else { return payload }
        var rebuilt = JSONObject()
        for (key, value) in event {
            rebuilt[key] = value
            if key == "timestamp" {
                rebuilt["webhook_id"] = .string(webhookID)
                rebuilt["webhook_name"] = .string(webhookName)
            }
        }
        rebuilt["webhook_id"] = .string(webhookID)
        rebuilt["webhook_name"] = .string(webhookName)
        return JSONWriter.bytes(.object(rebuilt))
    }

    /// The index just after `"timestamp":"…",` when the payload starts with exactly
    /// `{"event_type":"<TYPE>","timestamp":"<27-character UTC timestamp>",`.
    static func splicePoint(_ payload: [UInt8]) -> Int? {
        let head = Array(#"{"event_type":""#.utf8)
        guard payload.starts(with: head) else { return nil }
        var index = head.count
        while index < payload.count, payload[index] != UInt8(ascii: "\"") {
            guard
                payload[index] == UInt8(ascii: "_") || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(payload[index])
            else { return nil }
            index += 1
        }
        let middle = Array(#"","timestamp":""#.utf8)
        guard payload[index...].starts(with: middle) else { return nil }
        index += middle.count
        // 2025-04-23T00:05:18.567890Z, then the closing quote and the comma.
        let stampLength = 27
        guard payload.count > index + stampLength + 1, payload[index + stampLength] == UInt8(ascii: "\""),
            payload[index + stampLength + 1] == UInt8(ascii: ",")
        else { return nil }
        return index + stampLength + 2
    }
}
