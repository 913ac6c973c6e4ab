import HookgateCore

/// Signing keys by secret, each made once: a webhook's secrets are the same on every
/// delivery, and decoding one and absorbing it into the HMAC state costs about as much
/// as signing a body. Owned by the delivery engine's queue.
struct SigningKeyCache {
    /// A secret that is not a `whsec_` secret maps to nil (and signs nothing).
    private var keys: [String: SigningKey?] = [:]
    /// Rotated secrets leave their keys behind: past this many, the cache starts over.
    static let bound = 4096

    mutating func keys(for secrets: [String]) -> [SigningKey] {
        var found: [SigningKey] = []
        found.reserveCapacity(secrets.count)
        for secret in secrets {
            let key: SigningKey?
            if let known = keys[secret] {
                key = known
            } else {
                key = SigningKey(secret: secret)
                if keys.count >= Self.bound { keys.removeAll(keepingCapacity: true) }
                keys[secret] = .some(key)
            }
            if let key { found.append(key) }
        }
        return found
    }
}
