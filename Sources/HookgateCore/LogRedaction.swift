/// What may appear of a webhook URL in the daemon's log: its userinfo and its query may
/// carry credentials (`https://user:token@host/hook?key=...`), so both are replaced.
public enum LogRedaction {
    public static let marker = "[redacted]"

    public static func url(_ url: String) -> String {
        var rest = Substring(url)
        var out = ""
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            let authorityStart = rest.index(colon, offsetBy: 3)
            out += rest[..<authorityStart]
            rest = rest[authorityStart...]
        }
        // The authority ends at the first '/', '?' or '#'; userinfo is what precedes its last '@'.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            out += marker + "@" + authority[authority.index(after: at)...]
        } else {
            out += authority
        }
        rest = rest[authorityEnd...]
        let pathEnd = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? rest.endIndex
        out += rest[..<pathEnd]
        if pathEnd < rest.endIndex, rest[pathEnd] == "?" { out += "?" + marker }
        return out
    }
}
