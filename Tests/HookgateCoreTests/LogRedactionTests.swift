import HookgateCore
import Testing

@Suite("Log redaction")
struct LogRedactionTests {
    @Test(arguments: [
        ("https://example.com/hooks/sms", "https://example.com/hooks/sms"),
        ("https://example.com", "https://example.com"),
        ("https://example.com:8443/h", "https://example.com:8443/h"),
        ("https://user:secret@example.com/h", "https://[redacted]@example.com/h"),
        ("https://user@example.com", "https://[redacted]@example.com"),
        ("https://a@b:c@example.com/h", "https://[redacted]@example.com/h"),
        ("https://example.com/h?token=abc", "https://example.com/h?[redacted]"),
        ("https://example.com?token=abc", "https://example.com?[redacted]"),
        ("https://example.com/h#frag", "https://example.com/h"),
        ("https://example.com/h?token=abc#frag", "https://example.com/h?[redacted]"),
        ("https://u:p@example.com/a@b?k=v", "https://[redacted]@example.com/a@b?[redacted]"),
        ("https://[::1]:8443/h?x", "https://[::1]:8443/h?[redacted]"),
        ("http://u:p@127.0.0.1:9/p", "http://[redacted]@127.0.0.1:9/p"),
    ])
    func credentialsLeaveURLs(_ url: String, _ logged: String) {
        #expect(LogRedaction.url(url) == logged)
    }
}
